"""Issue 22 end to end on the emulator: the results workbook and the HTML report written after
every run (exit 1, 3 and 130 included), every call recorded in the checkpoint, and `report` on a
checkpoint and on a job's state folder."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import signal
import sqlite3
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from bulk_delete.commands.results import write_workbook
from bulk_delete.config import RateLimit
from bulk_delete.records import Request
from bulk_delete.store.checkpoint import Checkpoint
from bulk_delete.store.results_workbook import REQUEST_COLUMNS
from bulk_delete.summary import RunFigures, Window

from ..conftest import GUIDS, demo_env, leads_csv, run_cli, send_sheet, start_cli, until
from ..listing_fixtures import WINDOW, dataset


def _refusals_recorded(checkpoint: Path) -> int:
    with sqlite3.connect(checkpoint) as db:
        return int(db.execute("SELECT COUNT(*) FROM calls WHERE status = 429").fetchone()[0])


def _chart_total(page: str, name: str) -> int:
    match = re.search(rf'data-chart="{name}"[^>]*data-total="(\d+)"', page) or re.search(
        rf'data-total="(\d+)"[^>]*data-chart="{name}"', page
    )
    assert match, f"no {name} chart with a data-total"
    return int(match.group(1))


async def test_a_run_with_invalid_rows_and_a_429_storm_leaves_a_workbook_and_a_report(
    emulator: Any, tmp_path: Path
) -> None:
    # The storm: the account allows 100/10s, the run asks 200/10s until a refusal names the
    # limit. (Ten-second windows: virtual time skips their waits, and a busy machine still
    # sends more than 100 in one; at 1 s windows a slow one could not, and saw no refusal.)
    emu = await emulator(rate="100/10s")
    sheet = leads_csv(tmp_path / "leads.csv", 150, extra_rows="not-a-guid,201\n,201\n")
    checkpoint = tmp_path / "night.sqlite"
    done = await send_sheet(
        emu,
        sheet,
        checkpoint,
        "--rate",
        "200/10s",
        "--from",
        "2025-01-01",
        "--to",
        "2025-01-31",
        "--tz",
        "Asia/Kolkata",
    )
    assert done.returncode == 1, done.stderr  # the invalid rows
    refusals = _refusals_recorded(checkpoint)
    assert refusals >= 1
    with sqlite3.connect(checkpoint) as db:
        kinds = dict(db.execute("SELECT kind, COUNT(*) FROM calls GROUP BY kind").fetchall())
        queued = db.execute("SELECT COUNT(*) FROM calls WHERE verdict = 'queued'").fetchone()[0]
    assert kinds == {"preflight": 1, "delete": 150 + refusals}
    with sqlite3.connect(checkpoint) as db:
        preflight = db.execute("SELECT verdict, status FROM calls WHERE kind = 'preflight'")
        assert preflight.fetchall() == [("read", 200)]
    assert queued == 150  # every accepted delete recorded once

    book = openpyxl.load_workbook(tmp_path / "night-results.xlsx")
    assert book.sheetnames == ["Summary", "Requests", "Invalid rows"]
    requests = book["Requests"]
    assert requests.freeze_panes == "A2"
    assert requests.auto_filter.ref
    assert requests["C1"].value == "FromDate (Asia/Kolkata)"
    assert requests["C2"].value == dt.datetime(2025, 1, 1, 0, 0)  # a date cell, in the run's tz
    assert requests.max_row == 151
    assert requests.max_column == len(REQUEST_COLUMNS)  # the sheet has no other columns
    assert book["Invalid rows"].max_row == 3

    page_path = tmp_path / "night-report.html"
    page = page_path.read_text()
    assert page_path.stat().st_size < 2_000_000
    assert page_path.stat().st_mode & 0o777 == 0o600
    assert not re.search(r"""(src|href)\s*=\s*["']?https?:""", page)
    assert _chart_total(page, "refusals") == refusals


def _requests_sheet(path: Path) -> list[dict[str, Any]]:
    rows = list(openpyxl.load_workbook(path)["Requests"].iter_rows(values_only=True))
    return [dict(zip(map(str, rows[0]), row, strict=True)) for row in rows[1:]]


async def test_the_sheets_own_columns_are_carried_over_a_coalesced_request_takes_its_first_rows(
    emulator: Any, tmp_path: Path
) -> None:
    emu = await emulator(rate="off")
    sheet = tmp_path / "named.csv"
    sheet.write_text(
        "Name,ProspectId,ActivityEventList,Email\n"
        f"Asha,{GUIDS[0]},201,asha@example.com\n"
        f"Ben,{GUIDS[1]},201,\n"
        f"Asha again,{GUIDS[0]},202,asha2@example.com\n"  # coalesced with row 2
    )
    done = await send_sheet(emu, sheet, tmp_path / "c.sqlite", "--rate", "off")
    assert done.returncode == 0, done.stderr
    rows = _requests_sheet(tmp_path / "c-results.xlsx")
    assert list(rows[0])[-2:] == ["Name", "Email"]
    assert [(r["ProspectId"], r["Name"], r["Email"]) for r in rows] == [
        (GUIDS[0], "Asha", "asha@example.com"),
        (GUIDS[1], "Ben", None),  # an empty cell stays empty
    ]


async def test_a_checkpoint_from_before_extra_columns_still_writes_results(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.sqlite"
    with Checkpoint.open(path) as checkpoint:
        planned = [Request(GUIDS[n], ("201",), "", "", "", (n + 2,)) for n in range(3)]
        checkpoint.store_plan(planned, [], source="x.csv", fingerprint="f", options={}, extra={})
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE requests DROP COLUMN extra")
    out = tmp_path / "old.xlsx"
    assert write_workbook(path, out, Window(tz="UTC"))
    rows = _requests_sheet(out)
    assert [row["ProspectId"] for row in rows] == GUIDS[:3]
    assert len(rows[0]) == len(REQUEST_COLUMNS)


async def test_results_are_written_when_refusals_stop_the_run_exit_3(
    emulator: Any, tmp_path: Path
) -> None:
    emu = await emulator(rate="off", refuse_all=float("inf"))
    sheet = leads_csv(tmp_path / "leads.csv", 20)
    done = await send_sheet(
        emu,
        sheet,
        tmp_path / "c.sqlite",
        "--rate",
        "off",
        "--give-up-after",
        "1",
        "--no-preflight",
        "--results",
        str(tmp_path / "out" / "r.xlsx"),
    )
    assert done.returncode == 3, done.stderr
    assert (tmp_path / "out" / "r.xlsx").is_file()
    page = (tmp_path / "out" / "r.html").read_text()
    assert _chart_total(page, "refusals") == _refusals_recorded(tmp_path / "c.sqlite") > 0


async def test_no_results_writes_none(emulator: Any, tmp_path: Path) -> None:
    emu = await emulator(rate="off")
    sheet = leads_csv(tmp_path / "leads.csv", 5)
    done = await send_sheet(emu, sheet, tmp_path / "c.sqlite", "--rate", "off", "--no-results")
    assert done.returncode == 0, done.stderr
    assert not list(tmp_path.glob("c-*"))


@pytest.mark.e2e
async def test_results_are_written_on_sigterm_exit_130(emulator: Any, tmp_path: Path) -> None:
    emu = await emulator(rate="off", latency=0.3)
    sheet = leads_csv(tmp_path / "leads.csv", 150)
    args = ["run", str(sheet), "--checkpoint", str(tmp_path / "c.sqlite"), "--yes"]
    process = await start_cli(*args, "--open-window", "--rate", "30/1s", env=demo_env(emu.url))
    await until(lambda: len(emu.records) >= 10, process)
    process.send_signal(signal.SIGTERM)
    await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 130
    assert (tmp_path / "c-results.xlsx").is_file()
    assert (tmp_path / "c-report.html").is_file()


async def test_report_on_a_checkpoint_and_on_a_job_state_folder(
    emulator: Any, tmp_path: Path
) -> None:
    emu = await emulator(rate="off")
    state = tmp_path / "state"
    state.mkdir()
    for night, start in (("2025-03-01", 0), ("2025-03-02", 10)):
        sheet = leads_csv(tmp_path / f"{night}.csv", 4 + start // 10, start=start)
        checkpoint = state / f"nightly-{night}.sqlite"
        done = await send_sheet(emu, sheet, checkpoint, "--rate", "off", "--no-results")
        assert done.returncode == 0, done.stderr
    one = await run_cli(
        "report", str(state / "nightly-2025-03-01.sqlite"), "-o", str(tmp_path / "one.html")
    )
    assert one.returncode == 0, one.stderr
    assert 'data-chart="rate"' in (tmp_path / "one.html").read_text()
    nights = await run_cli("report", str(state), "-o", str(tmp_path / "nights.html"))
    assert nights.returncode == 0, nights.stderr
    page = (tmp_path / "nights.html").read_text()
    assert "2025-03-01" in page
    assert "2025-03-02" in page
    refused = await run_cli(
        "report",
        str(state / "nightly-2025-03-01.sqlite"),
        "-o",
        str(state / "nightly-2025-03-01.sqlite"),
    )
    assert refused.returncode == 2


async def test_an_open_window_exit_2_after_the_plan_is_saved_still_leaves_results(
    emulator: Any, tmp_path: Path
) -> None:
    emu = await emulator(rate="off")
    sheet = leads_csv(tmp_path / "leads.csv", 3)
    done = await run_cli(
        "run",
        str(sheet),
        "--checkpoint",
        str(tmp_path / "c.sqlite"),
        "--yes",
        env=demo_env(emu.url),
    )
    assert done.returncode == 2
    assert emu.calls == 0
    book = openpyxl.load_workbook(tmp_path / "c-results.xlsx")
    assert [row[4] for row in book["Requests"].iter_rows(min_row=2, values_only=True)] == [
        "pending"
    ] * 3


async def test_a_bad_sheet_leaves_no_results_and_no_warning(emulator: Any, tmp_path: Path) -> None:
    emu = await emulator(rate="off")
    sheet = tmp_path / "leads.csv"
    sheet.write_text("Name,Email\nx,y\n")
    done = await send_sheet(emu, sheet, tmp_path / "c.sqlite", "--rate", "off")
    assert done.returncode == 2
    assert "results not written" not in done.stderr
    assert not (tmp_path / "c-results.xlsx").exists()


async def test_report_of_a_checkpoint_from_before_the_call_log_has_numbers_and_no_charts(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.sqlite"
    with Checkpoint.open(path) as checkpoint:
        planned = [Request(GUIDS[n], ("201",), "", "", "", (n + 2,)) for n in range(3)]
        checkpoint.store_plan(planned, [], source="x.csv", fingerprint="f", options={}, extra={})
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE calls")
    status = await run_cli("status", str(path))  # read-only: the old file stays as it was
    assert status.returncode == 1, status.stderr
    done = await run_cli("report", str(path), "-o", str(tmp_path / "old.html"))
    assert done.returncode == 0, done.stderr
    page = (tmp_path / "old.html").read_text()
    assert "data-chart=" not in page
    assert "no charts" in page


async def test_listing_verify_and_preflight_calls_are_recorded_a_dry_run_records_none(
    emulator: Any, tmp_path: Path
) -> None:
    emu = await dataset(emulator)
    checkpoint = tmp_path / "c.sqlite"
    env = demo_env(emu.url)
    done = await run_cli(
        "run", "--discover", *WINDOW, "--checkpoint", str(checkpoint), "--yes", env=env
    )
    assert done.returncode == 0, done.stderr
    listed = emu.stats()["outcomes"]["list"]
    await asyncio.sleep(0.3)  # the emulator carries the queued deletes out
    checked = await run_cli("verify", str(checkpoint), "--rate", "off", env=env)
    assert checked.returncode == 0, checked.stderr
    with sqlite3.connect(checkpoint) as db:
        by_kind = dict(db.execute("SELECT kind, COUNT(*) FROM calls GROUP BY kind").fetchall())
        runs = dict(db.execute("SELECT kind, MAX(run) FROM calls GROUP BY kind").fetchall())
        (run_id,) = db.execute("SELECT MAX(id) FROM runs").fetchone()
    assert sum(by_kind.values()) == emu.calls  # every HTTP call, whatever its kind
    assert by_kind["list"] == listed  # every listing page of the run
    assert by_kind["preflight"] == 2  # the run's and verify's
    assert by_kind["delete"] == len(emu.records)
    assert by_kind["verify"] >= 1
    assert runs == {"list": 0, "preflight": 0, "verify": 0, "delete": run_id}
    plan = await run_cli(
        "run", "--discover", *WINDOW, "--checkpoint", str(checkpoint), "--dry-run", env=env
    )
    assert plan.returncode == 0, plan.stderr
    with sqlite3.connect(checkpoint) as db:  # the dry run listed, in memory, and recorded nothing
        assert db.execute("SELECT COUNT(*) FROM calls").fetchone()[0] == sum(by_kind.values())


async def test_terminal_json_status_and_workbook_give_one_rate_never_over_the_limit(
    emulator: Any, tmp_path: Path
) -> None:
    """The rate is the busiest window's, as the limiter counts, wherever it is shown."""
    emu = await emulator(rate="off")
    checkpoint = tmp_path / "c.sqlite"
    summary = tmp_path / "s.json"
    sheet = leads_csv(tmp_path / "leads.csv", 12)
    done = await send_sheet(
        emu, sheet, checkpoint, "--rate", "10/1s", "--summary-json", str(summary)
    )
    assert done.returncode == 0, done.stderr
    run = json.loads(summary.read_text())["this_run"]
    rate, share = run["calls_per_second"], run["share_of_limit"]
    assert 0 < share <= 1
    assert rate == round(share * 10, 3)
    said = f"{rate:.2f} calls/s = {share:.0%} of the limit 10/1s"
    assert said in done.stdout
    assert said in (await run_cli("status", str(checkpoint))).stdout
    book = openpyxl.load_workbook(tmp_path / "c-results.xlsx", read_only=True)
    cells = {row[0]: row[1] for row in book["Summary"].iter_rows(values_only=True) if row}
    assert cells["Rate achieved (calls/s)"] == rate
    assert cells["Busiest window (share of the limit)"] == f"{share:.0%}"


@pytest.mark.parametrize(
    ("calls", "span", "limit", "busiest"),
    [
        (10, 2.45, RateLimit(calls=10, period=3000.0), 10),
        (31, 0.99, RateLimit(calls=30, period=1.0), 30),
    ],
)
def test_the_issue_s_runs_read_at_most_the_limit(
    calls: int, span: float, limit: RateLimit, busiest: int
) -> None:
    """Runs the server found within its window: first-to-last read them as "110170 %" and
    "101 %" of the limit."""
    figures = RunFigures(
        calls=calls,
        start_span=span,
        limit_per_second=limit.per_second,
        busiest_share=busiest / limit.calls,
        busiest_per_second=busiest / limit.period,
    )
    assert figures.share_of_limit == 1.0
    assert figures.calls_per_second == round(limit.per_second, 3)


def _summary_sheet(path: Path) -> dict[str, Any]:
    rows = openpyxl.load_workbook(path)["Summary"].iter_rows(values_only=True)
    return {str(row[0]): row[1] for row in rows if row[0] is not None}


async def test_the_summary_sheet_names_the_codes_the_backup_and_the_sheet_and_verify_refreshes_it(
    emulator: Any, tmp_path: Path
) -> None:
    """Codes from the sheet (no --codes), the backup with what it holds, the sheet by its name
    and not its path, the rate the --summary-json says; `verify` writes it and the report again."""
    emu = await emulator(rate="off")
    sheet = leads_csv(tmp_path / "leads.csv", 12, codes="201;202")
    checkpoint = tmp_path / "night.sqlite"
    done = await send_sheet(
        emu, sheet, checkpoint, "--rate", "20/1s", "--backup", str(tmp_path / "saved.jsonl.gz"),
        "--summary-json", str(tmp_path / "s.json"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    said = _summary_sheet(tmp_path / "night-results.xlsx")
    assert said["Asked"] == "sheet leads.csv"
    assert str(tmp_path) not in str(said["Asked"])
    assert said["Activity codes"].startswith("201 (")  # named, from the backup's rows
    assert "202 (" in said["Activity codes"]
    assert str(tmp_path / "saved.jsonl.gz") in said["Written to"]
    assert "activities saved before their deletes" in said["Written to"]
    summary = json.loads((tmp_path / "s.json").read_text())
    assert said["Rate achieved (calls/s)"] == summary["this_run"]["calls_per_second"]
    assert "checked" not in said

    done = await run_cli("verify", str(checkpoint), "--rate", "off", env=demo_env(emu.url))
    assert done.returncode in (0, 1), done.stderr
    said = _summary_sheet(tmp_path / "night-results.xlsx")
    assert said["checked"] == 12
    assert said["Exit code"] == 0  # the run's, kept
    page = (tmp_path / "night-report.html").read_text()
    assert "Checked</dt><dd>12 of 12 queued request(s)" in page


async def test_the_summary_sheet_gives_the_span_of_the_rows_own_windows(
    emulator: Any, tmp_path: Path
) -> None:
    """Dates from the sheet's rows (no --from/--to): the HTML report showed their span and the
    Summary sheet showed no window at all."""
    emu = await emulator(rate="off")
    sheet = tmp_path / "leads.csv"
    lead = "00000000-0000-4000-8000-{:012d}"
    sheet.write_text(
        "ProspectId,Codes,FromDate,ToDate\n"
        f"{lead.format(1)},201,2024-01-05,2024-02-01\n"
        f"{lead.format(2)},201,2024-03-01,2024-04-30 12:00:00\n"
    )
    done = await send_sheet(emu, sheet, tmp_path / "c.sqlite", "--tz", "UTC")
    assert done.returncode == 0, done.stderr
    cells = _summary_sheet(tmp_path / "c-results.xlsx")
    assert cells["Rows' dates span, From (UTC)"] == dt.datetime(2024, 1, 5)
    assert cells["Rows' dates span, To (UTC)"] == dt.datetime(2024, 4, 30, 12)
