"""The results of a 100,000-call run: HTML report and workbook, timed and sized.

    python -m bench.results_report [OUT_FOLDER]

A synthetic night (a 429 storm, a learned limit, then a share) is written to a real SQLite
call log; the report is made from it as `bulk-delete report` would, and a workbook of 100,000
requests is written. Then the same 100,000 calls go into a real checkpoint (a plan of 100,000
requests, all queued) and `bulk-delete report CK -o FILE` runs on it as a process, start-up and
its imports included; and so does `bulk-delete report STATE_DIR` on a job's folder of 365
nights. Prints the time each step took and the sizes.
"""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from bulk_delete.cli.report_page import Night, report_data, write_report
from bulk_delete.records import Request
from bulk_delete.store.calls import CallLog
from bulk_delete.store.checkpoint import Checkpoint
from bulk_delete.store.results_workbook import (
    InvalidSheetRow,
    RequestRow,
    ResultsSummary,
    write_results,
)

T0 = 1_780_000_000.0
TZ = "Asia/Kolkata"


def synthetic_log(connection: sqlite3.Connection, calls: int, seed: int = 7) -> CallLog:
    """``calls`` delete calls near 5/s: refusals in a storm, the limit learned, then shared."""
    rng = random.Random(seed)
    log = CallLog.create(connection, commit_every=0)
    started = T0
    for n in range(calls):
        part = n / calls
        limit = 25 if part < 0.35 else (20 if part < 0.7 else 10)
        started += rng.expovariate(limit / 5 * 0.95)
        storm = 0.3 < part < 0.35 or rng.random() < 0.002
        status = 429 if storm and rng.random() < 0.6 else 200
        latency = rng.lognormvariate(-1.6, 0.45)
        log.record(
            run=1,
            kind="delete",
            seq=n,
            attempt=1,
            started=started,
            answered=started + latency,
            status=status,
            verdict="queued" if status == 200 else "refused",
            limit_calls=limit,
            limit_period=5.0,
        )
    log.flush()
    return log


def requests(count: int) -> Iterator[RequestRow]:
    start = dt.datetime(2026, 11, 1, 18, 30, tzinfo=dt.UTC)
    for n in range(count):
        yield RequestRow(
            prospect_id=str(uuid.UUID(int=n)),
            codes=(201, 202),
            from_date=start,
            to_date=start + dt.timedelta(days=1),
            outcome="queued",
            source_rows=(n + 2,),
            http_status=200,
            attempts=1,
            updated_at=start,
            extra=(f"Lead {n}", f"lead{n}@example.com"),
        )


def main(out: Path) -> None:
    (out / "calls.sqlite").unlink(missing_ok=True)
    connection = sqlite3.connect(out / "calls.sqlite")
    began = time.perf_counter()
    log = synthetic_log(connection, 100_000)
    print(f"call log of 100,000 calls written in {time.perf_counter() - began:.2f} s")
    began = time.perf_counter()
    nights = [
        Night(
            date=dt.date(2026, 11, d), requests=100_000, queued=q, refused=r, verified=v, left=left
        )
        for d, q, r, v, left in [(1, 95_000, 2_100, 94_800, 5_000), (2, 5_000, 12, 4_990, 0)]
    ]
    data = report_data(
        log,
        title="Bulk delete — night of 2026-11-01",
        tz=TZ,
        headline=[("requests", "100,000"), ("queued", "95,000"), ("refused (429)", "2,100")],
        verification=[("gone", 94_800), ("still there", 200)],
        nights=nights,
        generated_at=dt.datetime.now(dt.UTC),
    )
    write_report(out / "report.html", data)
    took = time.perf_counter() - began
    size = (out / "report.html").stat().st_size
    print(f"report.html: {size / 1e6:.2f} MB in {took:.2f} s (aggregations + charts + page)")
    began = time.perf_counter()
    summary = ResultsSummary(
        asked="sheet leads.xlsx", codes=(201, 202), window_from=None, window_to=None, tz=TZ
    )
    invalid = (InvalidSheetRow(row=n, reason="not a GUID", cells=("x",)) for n in range(1000))
    write_results(
        out / "results.xlsx",
        summary,
        requests(100_000),
        invalid,
        extra_columns=("Name", "Email"),
        sheet_columns=("ProspectId",),
    )
    took = time.perf_counter() - began
    size = (out / "results.xlsx").stat().st_size
    print(f"results.xlsx: 100,000 requests, {size / 1e6:.2f} MB in {took:.2f} s")
    report_of_a_checkpoint(out, 100_000)
    report_of_nights(out, 365)


def report_of_nights(out: Path, nights: int) -> None:
    """`bulk-delete report STATE_DIR` as a process, on a job's folder of ``nights`` nights
    (real checkpoints, each with its listing counted)."""
    from tests.report_fixtures import nights_folder

    state = nights_folder(out / "state", nights, jobs=("nightly",))
    page = out / "nights.html"
    began = time.perf_counter()
    command = [sys.executable, "-m", "bulk_delete", "report", str(state), "-o", str(page)]
    subprocess.run(command, check=True, capture_output=True)
    took = time.perf_counter() - began
    print(
        f"bulk-delete report on a folder of {nights} nights: {page.stat().st_size / 1e6:.2f} MB "
        f"in {took:.2f} s (a process: start-up and imports included)"
    )


def report_of_a_checkpoint(out: Path, count: int) -> None:
    """`bulk-delete report` as a user runs it, on a real checkpoint of ``count`` calls."""
    path = out / "night.sqlite"
    path.unlink(missing_ok=True)
    with Checkpoint.open(path) as checkpoint:
        planned = (
            Request(str(uuid.UUID(int=n)), ("201",), "2026-11-01 00:00:00", "", "", (n + 2,))
            for n in range(count)
        )
        checkpoint.store_plan(
            planned, [], source="leads.csv", fingerprint="f", options={"tz": TZ}, extra={}
        )
        checkpoint.mark_queued_up_to(count)
        checkpoint.start_run(host="https://api.example", rate="25/5s")
        synthetic_log(checkpoint._db, count)
    page = out / "night-report.html"
    began = time.perf_counter()
    command = [sys.executable, "-m", "bulk_delete", "report", str(path), "-o", str(page)]
    subprocess.run(command, check=True, capture_output=True)
    took = time.perf_counter() - began
    size = page.stat().st_size
    print(
        f"bulk-delete report on a checkpoint of {count:,} calls: {size / 1e6:.2f} MB "
        f"in {took:.2f} s (a process: start-up and imports included)"
    )


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as folder:
            main(Path(folder))
