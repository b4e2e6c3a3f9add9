"""Dates as people read them: in --tz beside the UTC that is sent (plan, listing, preview,
export), never raw sheet text and converted dates in one column, and stamped log lines."""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from bulk_delete.cli.main import cli
from bulk_delete.cli.summary_text import summary_line
from bulk_delete.commands import export
from bulk_delete.plan.build import build_plan
from bulk_delete.plan.rules import PlanOptions
from bulk_delete.store.checkpoint import Checkpoint
from bulk_delete.store.row_files import PREVIEW_COLUMNS
from bulk_delete.summary import RunSummary

from ..conftest import demo_env, run_cli

G1 = "3aee22bd-8419-422a-8242-c510df9af021"
G2 = "3aee22bd-8419-422a-8242-c510df9af022"
IST = "Asia/Kolkata"
STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ "


def plan(*args: str) -> str:
    result = CliRunner().invoke(cli, ["plan", *args])
    assert result.exit_code == 0, result.stderr
    return result.stdout


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or ()), list(reader)


def test_the_plan_and_preview_show_the_sheet_dates_in_its_tz_beside_utc(
    write_csv: Callable[..., Path], tmp_path: Path
) -> None:
    sheet = write_csv(f"ProspectId,Codes,FromDate,ToDate\n{G1},201,2025-04-01,2025-06-30\n")
    preview = tmp_path / "preview.csv"
    out = plan(str(sheet), "--tz", IST, "--out", str(preview))
    assert "date span      2025-04-01 00:00:00 → 2025-06-30 23:59:59 Asia/Kolkata\n" in out
    assert "(2025-03-31 18:30:00 → 2025-06-30 18:29:59 UTC, as sent)" in out
    header, rows = read_csv(preview)
    assert header[2:6] == ["FromDate", "ToDate", "FromDate (Asia/Kolkata)", "ToDate (Asia/Kolkata)"]
    assert rows[0]["FromDate"] == "2025-03-31 18:30:00"  # what is sent, unchanged
    assert rows[0]["ToDate"] == "2025-06-30 18:29:59"
    assert rows[0]["FromDate (Asia/Kolkata)"] == "2025-04-01 00:00:00"  # what the sheet said
    assert rows[0]["ToDate (Asia/Kolkata)"] == "2025-06-30 23:59:59"
    assert '"FromDate":"2025-03-31 18:30:00"' in rows[0]["body"]


def test_utc_shows_nothing_extra(write_csv: Callable[..., Path], tmp_path: Path) -> None:
    sheet = write_csv(f"ProspectId,Codes,FromDate,ToDate\n{G1},201,2025-04-01,2025-06-30\n")
    preview = tmp_path / "preview.csv"
    out = plan(str(sheet), "--out", str(preview))
    assert "date span      2025-04-01 00:00:00 → 2025-06-30 23:59:59 UTC\n" in out
    assert "UTC, as sent" not in out
    header, _ = read_csv(preview)
    assert tuple(header) == PREVIEW_COLUMNS


def test_an_open_ended_span_converts_each_date(write_csv: Callable[..., Path]) -> None:
    sheet = write_csv(
        f"ProspectId,Codes,FromDate,ToDate\n{G1},201,2025-04-01,2025-06-30\n{G2},201,,2025-05-31\n"
    )
    out = plan(str(sheet), "--tz", IST)
    assert "2025-04-01 00:00:00 or open → 2025-06-30 23:59:59 Asia/Kolkata" in out
    assert "(2025-03-31 18:30:00 or open → 2025-06-30 18:29:59 UTC, as sent)" in out


def test_the_export_shows_local_dates_from_the_checkpoint_and_raw_cells_apart(
    write_csv: Callable[..., Path], tmp_path: Path
) -> None:
    """The plan's tz comes from the checkpoint; an invalid row's dates, never converted, are
    in their own "as written" columns and its FromDate/ToDate stay empty."""
    sheet = write_csv(
        "ProspectId,Codes,FromDate,ToDate\n"
        f"{G1},201,2025-04-01,2025-06-30\n"
        f"{G2},201,31/12/2024,2025-06-30\n"
    )
    options = PlanOptions(tz=IST, date_order="MDY")  # (31/12/2024 is no MDY date)
    made = build_plan(sheet, options)
    path = tmp_path / "c.sqlite"
    with Checkpoint.open(path) as checkpoint:
        checkpoint.store_plan(
            made.requests(),
            made.invalid,
            source=str(sheet),
            fingerprint="f",
            options=options.as_dict(),
            extra={},
        )
    out = tmp_path / "export.csv"
    assert export.export(path, out) == 2
    header, rows = read_csv(out)
    assert header[2:6] == ["FromDate", "ToDate", "FromDate (Asia/Kolkata)", "ToDate (Asia/Kolkata)"]
    assert header[-2:] == ["FromDate (as written)", "ToDate (as written)"]
    pending, invalid = rows
    assert pending["status"] == "pending"
    assert pending["FromDate"] == "2025-03-31 18:30:00"
    assert pending["FromDate (Asia/Kolkata)"] == "2025-04-01 00:00:00"
    assert pending["FromDate (as written)"] == ""
    assert invalid["status"] == "invalid"
    assert invalid["FromDate"] == invalid["ToDate"] == ""
    assert invalid["FromDate (Asia/Kolkata)"] == invalid["ToDate (Asia/Kolkata)"] == ""
    assert invalid["FromDate (as written)"] == "31/12/2024"
    assert invalid["ToDate (as written)"] == "2025-06-30"


def test_the_scheduler_line_is_stamped() -> None:
    summary = RunSummary(exit_code=0, checkpoint="c.sqlite", input="x", host="h", rate_limit="")
    moment = dt.datetime(2026, 11, 30, 2, 30, tzinfo=dt.UTC)
    assert summary_line(summary, moment).startswith("2026-11-30T02:30:00Z bulk-delete: exit=0 ")


def _shifted(utc: str, hours: float) -> str:
    moment = dt.datetime.strptime(utc, "%Y-%m-%d %H:%M") + dt.timedelta(hours=hours)
    return moment.strftime("%Y-%m-%d %H:%M")


async def test_discover_shows_what_it_found_in_the_tz_and_logs_are_stamped(
    emulator: Any, tmp_path: Path
) -> None:
    emu = await emulator(rate="off", dataset_leads=60, page_cap=40, webhook_delay=0.05)
    window = ["--discover", "--codes", "201", "--from", "2024-03-01", "--to", "2024-12-31"]
    window += ["--rate", "off", "--tz", IST]
    preview = tmp_path / "preview.csv"
    dry = await run_cli("plan", *window, "--out", str(preview), env=demo_env(emu.url))
    assert dry.returncode == 0, dry.stderr
    checkpoint = tmp_path / "c.sqlite"
    done = await run_cli(
        "run", *window, "--checkpoint", str(checkpoint), "--yes", env=demo_env(emu.url)
    )
    assert done.returncode == 0, done.stderr
    found = re.compile(
        r"Found [\d,]+ activities of code 201 on [\d,]+ leads "
        r"\((\S+ \S+) → (\S+ \S+) Asia/Kolkata; (\S+ \S+) → (\S+ \S+) UTC\)"
    )
    for text in (dry.stdout, done.stdout):  # the dry run, and the run (the CLI's hook)
        match = found.search(text)
        assert match is not None, text
        oldest, newest, oldest_utc, newest_utc = match.groups()
        assert oldest == _shifted(oldest_utc, 5.5)
        assert newest == _shifted(newest_utc, 5.5)
    _, rows = read_csv(preview)
    assert {row["FromDate"] for row in rows} == {"2024-02-29 18:30:00"}
    assert {row["FromDate (Asia/Kolkata)"] for row in rows} == {"2024-03-01 00:00:00"}
    for log in (dry.stderr, done.stderr):  # not a terminal: every log line is stamped
        assert re.search(rf"^{STAMP}listing code 201: ", log, re.MULTILINE)
    assert re.search(rf"^{STAMP}bulk-delete: exit=0 queued=", done.stderr, re.MULTILINE)
    export = tmp_path / "export.csv"
    assert (await run_cli("export", str(checkpoint), "--out", str(export))).returncode == 0
    _, exported = read_csv(export)
    assert {row["ToDate (Asia/Kolkata)"] for row in exported} == {"2024-12-31 23:59:59"}
    assert {row["ToDate"] for row in exported} == {"2024-12-31 18:29:59"}


def test_a_window_backwards_is_named_in_the_sheets_tz(write_csv: Callable[..., Path]) -> None:
    sheet = write_csv(
        "ProspectId,Codes,FromDate,ToDate\n"
        f"{G1},201,2025-05-01,2025-04-01\n{G2},201,2025-04-01,2025-04-30\n"  # (one valid row)
    )
    out = plan(str(sheet), "--tz", IST)
    assert "FromDate 2025-05-01 00:00:00 is after ToDate 2025-04-01 23:59:59 (Asia/Kolkata)" in out
    result = CliRunner().invoke(
        cli, ["plan", str(sheet), "--tz", IST, "--from", "2025-05-01", "--to", "2025-04-01"]
    )
    assert result.exit_code == 2
    assert "2025-05-01 00:00:00 is after ToDate 2025-04-01 23:59:59 (Asia/Kolkata)" in result.stderr
    utc = plan(str(sheet))
    assert "FromDate 2025-05-01 00:00:00 is after ToDate 2025-04-01 23:59:59 (UTC)" in utc
