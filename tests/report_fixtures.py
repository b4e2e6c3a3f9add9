"""Nights of calls on a real SQLite file, for the report's tests."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import signal
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bulk_delete.store.calls import CallLog

from .conftest import start_cli

T0 = 1_780_000_000.0


def night_log(path: Path, calls: int, seed: int = 3) -> CallLog:
    """A run near 5 calls/s: a 429 storm in its middle, the limit learned lower after it. Its
    calls come at random, so now and then more than 25 start within 5 s: it does not keep
    its limit."""
    rng = random.Random(seed)
    log = CallLog.create(sqlite3.connect(path), commit_every=0)
    started = T0
    for n in range(calls):
        started += rng.expovariate(4.8)
        storm = calls // 3 < n < calls // 2
        status = 429 if storm and rng.random() < 0.5 else 200
        limit = 25 if n < calls // 2 else 20
        _call(log, n, started, rng.uniform(0.05, 0.9), status, limit)
    log.flush()
    return log


def kept_log(path: Path, calls: int, seed: int = 5, verify_after: float = 3 * 3600) -> CallLog:
    """A run that keeps its limit (never more than the limit's calls in any window, as the
    limiter keeps it): a 429 storm after the first third, the limit learned lower (25 → 20
    per 5 s) after it, then a `verify` of a few reads ``verify_after`` seconds later. Its
    95th and 99th percentile answer times lie close together (a slow path on the server)."""
    rng = random.Random(seed)
    log = CallLog.create(sqlite3.connect(path), commit_every=0)
    starts: list[float] = []
    started = T0
    for n in range(calls):
        limit = 25 if n < calls // 2 else 20
        started += rng.expovariate(6.0)
        if len(starts) >= limit:  # the call `limit` back must be a whole window old
            started = max(started, starts[-limit] + 5.0 + 0.01)
        starts.append(started)
        storm = calls // 3 < n < calls // 2
        status = 429 if storm and rng.random() < 0.4 else 200
        _call(log, n, started, _latency(rng), status, limit)
    for n in range(min(calls, 40)):
        _call(log, n, starts[-1] + verify_after + n * 0.3, 0.2, 200, 20, kind="verify")
    log.flush()
    return log


def _call(
    log: CallLog, n: int, started: float, took: float, status: int, limit: int, kind: str = "delete"
) -> None:
    """One call of a run under ``limit`` calls per 5 s (a verify's is its second run)."""
    verdict = "read" if kind == "verify" else "queued" if status == 200 else "refused"
    log.record(
        run=2 if kind == "verify" else 1,
        kind=kind,
        seq=n,
        attempt=1,
        started=started,
        answered=started + took,
        status=status,
        verdict=verdict,
        limit_calls=limit,
        limit_period=5.0,
    )


def _latency(rng: random.Random) -> float:
    """Most answers near 0.2 s; one in sixteen takes the slow path, 0.600–0.604 s."""
    return rng.uniform(0.6, 0.604) if rng.random() < 1 / 16 else rng.lognormvariate(-1.7, 0.35)


# A sheet for a run a person must be told about: leads whose code 5 LeadSquared refuses
# (a system activity: failed, never retried), rows that are invalid, and enough leads that a
# slow rate leaves most of them pending when the run is stopped.
FAILING_CODE = "5"
SYSTEM_REFUSAL = "system activities"  # part of the emulator's reason, as the page shows it


def troubled_sheet(path: Path, leads: int = 80, failing: int = 3) -> Path:
    """``leads`` leads in a window (the first ``failing`` of them asking code 5), then two
    invalid rows: a ProspectId that is no GUID, and a code that is no number."""
    lines = ["ProspectId,ActivityEventList,FromDate,ToDate"]
    for n in range(leads):
        code = FAILING_CODE if n < failing else "201"
        lines.append(f"00000000-0000-4000-8000-{n:012d},{code},2025-01-01,2025-01-31")
    lines.append("not-a-guid,201,2025-01-01,2025-01-31")
    lines.append("00000000-0000-4000-8000-999999999999,2x1,2025-01-01,2025-01-31")
    path.write_text("\n".join(lines) + "\n")
    return path


def troubled_run(folder: Path, stopped_after: int = 12) -> Path:
    """A real run on the emulator of ``troubled_sheet``, in its own process, stopped by
    SIGTERM once ``stopped_after`` deletes were queued: exit 130, with failures and invalid
    rows. Returns the report the run wrote beside its checkpoint. (In a thread of its own: the
    browser tests' Playwright keeps an event loop running in this one.)"""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, _troubled(folder, stopped_after)).result()


async def _troubled(folder: Path, stopped_after: int) -> Path:
    from bulk_delete.config import RateLimit
    from bulk_delete.emulator.server import (
        DEMO_ACCESS_KEY,
        DEMO_SECRET_KEY,
        Emulator,
        EmulatorConfig,
    )

    emu = Emulator(EmulatorConfig(rate=RateLimit.parse("off"), latency=0.05))
    await emu.start()
    try:
        sheet = troubled_sheet(folder / "leads.csv")
        env = {"LSQ_HOST": emu.url, "LSQ_ACCESS_KEY": DEMO_ACCESS_KEY}
        env["LSQ_SECRET_KEY"] = DEMO_SECRET_KEY
        env["XDG_STATE_HOME"] = str(folder / "xdg-state")  # the fixture's own, not the machine's
        process = await start_cli(
            "run", str(sheet), "--checkpoint", str(folder / "night.sqlite"),
            "--tz", "Asia/Kolkata", "--rate", "10/1s", "--yes", env=env,
        )  # fmt: skip
        async with asyncio.timeout(60):
            while len(emu.records) < stopped_after:
                assert process.returncode is None, await process.communicate()
                await asyncio.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 130, stderr
    finally:
        await emu.stop()
    return folder / "night-report.html"


def nights_folder(
    folder: Path, nights: int, jobs: tuple[str, ...] = ("webinars", "enquiries")
) -> Path:
    """A job state folder of ``nights`` nights for each of ``jobs`` (real checkpoints, each of
    a few requests queued and its listing's activities counted), written out of date order."""
    folder.mkdir(parents=True, exist_ok=True)
    start = dt.date(2026, 1, 1)
    for job_number, job in enumerate(jobs):
        for n in reversed(range(nights)):
            day = start + dt.timedelta(days=n)
            requests = 3 + (n * 7 + job_number * 5) % 11
            night_checkpoint(folder / f"{job}-{day.isoformat()}.sqlite", job, requests)
    return folder


def night_checkpoint(path: Path, job: str, requests: int) -> None:
    from bulk_delete.records import Request
    from bulk_delete.store.checkpoint import Checkpoint
    from bulk_delete.store.found import Found

    with Checkpoint.open(path) as checkpoint:
        leads = [f"00000000-0000-4000-8000-{n:012d}" for n in range(requests)]
        listed = [
            Found(f"a{n}", leads[n // 2], "201", "2025-01-02 00:00:00") for n in range(2 * requests)
        ]
        checkpoint.found.save_page("201", 1, 1000, len(listed), 0, listed)
        planned = (
            Request(lead, ("201",), "2025-01-01 00:00:00", "2025-01-31 23:59:59", "", ())
            for lead in leads
        )
        checkpoint.store_plan(
            planned, [], source="listing", fingerprint="f", options={"tz": "UTC"},
            extra={"label": job, "discover": "1", "leads": str(requests)},
        )  # fmt: skip
        checkpoint.mark_queued_up_to(requests - 1)
