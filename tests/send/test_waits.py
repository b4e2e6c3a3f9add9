"""Every wait is bounded (issue 23.4): refusals of every call, a long Retry-After, an outage
met by a single call (the preflight, a listing page, --check-codes). Logic on ManualClock; the
command line against the emulator with short --give-up-after values and windows."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bulk_delete.clock import ManualClock
from bulk_delete.commands import run
from bulk_delete.commands.spec import RunSpec
from bulk_delete.config import Credentials, RateLimit
from bulk_delete.emulator.server import DEMO_ACCESS_KEY, DEMO_SECRET_KEY
from bulk_delete.errors import Interrupted, RefusedTooLong, ServiceDownError
from bulk_delete.send.limiter import SlidingWindowLimiter
from bulk_delete.send.pool import Pool, SendReport, StopSwitch, call_once
from bulk_delete.send.retry import RetryPolicy

from ..conftest import demo_env, leads_csv, moved_to, run_cli, send_sheet
from ..pool_fixtures import (
    BODY,
    FLAKY,
    LIMITED,
    OK,
    Script,
    Scripted,
    make_checkpoint,
    once,
    until_done,
)

KEYS = Credentials(access_key=DEMO_ACCESS_KEY, secret_key=DEMO_SECRET_KEY)


async def pool_run(checkpoint: Any, sender: Script, clock: ManualClock, **spec: Any) -> SendReport:
    pool = Pool(
        checkpoint, sender, RunSpec(**spec).send_settings(), clock=clock, rng=random.Random(3)
    )
    todo, _ = checkpoint.todo_counts()
    task = asyncio.create_task(pool.run(todo))
    await until_done(clock, task)
    return await task


# ------------------------------------------------------------ refusals of every call


async def test_refusals_of_every_call_stop_the_pool_after_give_up_after(tmp_path: Path) -> None:
    clock = ManualClock(start=0.0)
    checkpoint = make_checkpoint(tmp_path / "c.sqlite", 30)
    sender = Script(clock, {n: [LIMITED] for n in range(30)})
    report = await pool_run(
        checkpoint, sender, clock, rate=RateLimit.parse("25/5s"), concurrency=4, give_up_after=20
    )
    assert isinstance(report.error, RefusedTooLong)
    assert report.error.exit_code == 3
    assert "every call for 2" in str(report.error)
    assert "refused as over the rate limit" in str(report.error)
    assert "rerun the same command later to resume" in str(report.error).lower()
    assert checkpoint.counts().todo == 30  # nothing lost: all pending for the rerun
    assert 20 <= clock.now() < 40


async def test_an_accepted_call_now_and_then_keeps_a_refused_pool_going(tmp_path: Path) -> None:
    clock = ManualClock(start=0.0)
    checkpoint = make_checkpoint(tmp_path / "c.sqlite", 12)
    # each lead is refused for a while, then queued: accepted calls keep coming, so no stop
    sender = Script(clock, {n: [LIMITED, OK] for n in range(12)}, latency=1.0)
    report = await pool_run(
        checkpoint, sender, clock, rate=RateLimit.parse("25/5s"), concurrency=2, give_up_after=20
    )
    assert report.error is None
    assert checkpoint.counts().queued == 12


async def test_call_once_refused_for_ever_stops_after_give_up_after() -> None:
    clock = ManualClock(start=0.0)
    call = Scripted(clock, LIMITED)
    with pytest.raises(RefusedTooLong, match=r"every call for 2\d s was refused"):
        await once(clock, call, give_up_after=20)
    assert 20 <= clock.now() < 40
    assert call.calls < 10  # a window apart, not hammering


# ------------------------------------------------------------ an outage met by a single call


async def test_call_once_rides_out_an_outage_shorter_than_give_up_after() -> None:
    clock = ManualClock(start=0.0)
    call = Scripted(clock, FLAKY, until=20.0)  # a 20 s outage; 3 attempts took 3 s before
    answer, body = await once(clock, call, give_up_after=120)
    assert answer.verdict is OK.verdict
    assert body == BODY
    assert call.calls < 15  # probes, doubling apart


async def test_call_once_gives_up_on_an_outage_after_give_up_after() -> None:
    clock = ManualClock(start=0.0)
    call = Scripted(clock, FLAKY)
    with pytest.raises(ServiceDownError, match="no call has succeeded for"):
        await once(clock, call, give_up_after=30)
    assert 30 <= clock.now() < 70


class FullWindow:
    """The machine's ledger when another run filled the account's window for an hour."""

    def reserve(self, cap: int, window: float, spacing: float = 0.0) -> float:
        return 3600.0

    def others_before(self, age: float, window: float) -> int:
        return 0

    def note_budget(self, free: float) -> None:
        return None

    def budget_within(self, window: float) -> float | None:
        return None


@pytest.mark.parametrize("waiting", ["behind the breaker", "for a full shared window"])
async def test_a_stop_cuts_a_single_call_s_wait_short(waiting: str) -> None:
    """A signal while the preflight waits: before, it waited on (111 s in the issue's outage,
    and the preflight was sent after the signal); now it ends at once, and no call follows."""
    clock = ManualClock(start=0.0)
    call = Scripted(clock, FLAKY)
    shared = FullWindow() if waiting == "for a full shared window" else None
    limiter = SlidingWindowLimiter(RateLimit.parse("25/5s"), clock=clock, shared=shared)
    stop = StopSwitch()
    retry = RetryPolicy(max_attempts=3, give_up_after=120)
    task = asyncio.create_task(
        call_once(limiter, call, retry=retry, clock=clock, rng=random.Random(1), stop=stop)
    )
    await clock.advance(10.0)  # the breaker has opened after 3 attempts (or no slot came)
    assert not task.done()
    calls = call.calls
    stop.stop()
    with pytest.raises(Interrupted, match="nothing was sent after the signal"):
        await asyncio.wait_for(task, 5)  # virtual time stands still: the stop alone ends it
    assert call.calls == calls
    assert clock.now() == 10.0
    with pytest.raises(Interrupted):  # a stop before the call: no call at all
        await call_once(limiter, call, retry=retry, clock=clock, rng=random.Random(1), stop=stop)
    assert call.calls == calls


# ------------------------------------------------------------ Retry-After


async def test_a_long_retry_after_is_capped_at_a_window_and_told_once() -> None:
    clock = ManualClock(start=0.0)
    notices: list[str] = []
    limiter = SlidingWindowLimiter(RateLimit.parse("25/5s"), clock=clock, on_notice=notices.append)
    await limiter.acquire()
    limiter.refused(None, retry_after=100000.0)
    limiter.refused(None, retry_after=100000.0)
    task = asyncio.create_task(limiter.acquire())
    await until_done(clock, task)
    assert clock.now() <= limiter.max_retry_after <= 5 + 0.1 + 1
    assert len(notices) == 1
    assert "asked to wait 100000 s (Retry-After)" in notices[0]


async def test_a_short_retry_after_is_obeyed_whole() -> None:
    clock = ManualClock(start=0.0)
    notices: list[str] = []
    limiter = SlidingWindowLimiter(RateLimit.parse("25/5s"), clock=clock, on_notice=notices.append)
    limiter.refused(None, retry_after=4.0)
    task = asyncio.create_task(limiter.acquire())
    await until_done(clock, task)
    assert clock.now() >= 4.0
    assert notices == []


# ------------------------------------------------------------ the command line


async def test_a_run_refused_for_ever_exits_3_and_says_why(emulator: Any, tmp_path: Path) -> None:
    emu = await emulator(rate="off", refuse_all=float("inf"))
    sheet = leads_csv(tmp_path / "leads.csv", 5)
    args = ("--rate", "25/0.5s", "--give-up-after", "0.5")  # a refusal, a window, a refusal
    done = await send_sheet(emu, sheet, tmp_path / "c.sqlite", *args, "--no-preflight")
    assert done.returncode == 3, done.stderr
    assert "was refused as over the rate limit" in done.stderr
    assert "Another integration may be using the whole budget" in done.stderr
    assert emu.records == []
    assert emu.stats()["outcomes"]["refused_all"] < 20  # a window apart, not hammering
    done = await send_sheet(emu, sheet, tmp_path / "c.sqlite", *args)  # the preflight too
    assert done.returncode == 3, done.stderr
    assert "was refused as over the rate limit" in done.stderr


async def test_a_huge_retry_after_is_capped_and_noted_once(emulator: Any, tmp_path: Path) -> None:
    emu = await emulator(rate="off", refuse_all=0.2, retry_after=100000)
    sheet = leads_csv(tmp_path / "leads.csv", 5)
    # quarter-second windows: the cap is 1.27 s, and after the refusal the run paces at one
    # call a window (the account looks shared)
    done = await send_sheet(emu, sheet, tmp_path / "c.sqlite", "--rate", "25/0.25s")
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("asked to wait 100000 s (Retry-After)") == 1
    assert len(emu.records) == 5


async def test_verify_caps_a_huge_retry_after_and_notes_it_once(
    emulator: Any, tmp_path: Path
) -> None:
    ran = await emulator(rate="off", webhook_delay=0.05)
    checkpoint = tmp_path / "c.sqlite"
    done = await send_sheet(ran, leads_csv(tmp_path / "leads.csv", 5), checkpoint, "--rate", "off")
    assert done.returncode == 0, done.stderr
    # verify where every call is refused for its first 0.2 s, with a day-long Retry-After (a
    # second emulator: the refusals start at an emulator's first call, the run's was earlier)
    emu = await emulator(rate="off", refuse_all=0.2, retry_after=100000)
    moved_to(checkpoint, emu.url)
    args = ("verify", str(checkpoint), "--rate", "25/0.25s")
    checked = await run_cli(*args, env=demo_env(emu.url))
    assert checked.returncode in (0, 1), checked.stderr  # checked (what is left is another test's)
    assert emu.stats()["outcomes"]["refused_all"] >= 1
    assert checked.stderr.count("asked to wait 100000 s (Retry-After)") == 1


async def test_the_preflight_rides_out_an_outage_from_the_first_call(
    emulator: Any, tmp_path: Path
) -> None:
    """The run on a ManualClock shared with the emulator's outage: the waits are virtual,
    the calls and the checkpoint real."""
    clock = ManualClock(start=0.0)
    # 3.2 s: longer than the old preflight's three attempts could wait (at most 3 s)
    emu = await emulator(clock=clock, rate="off", outage_after=0.0, outage_seconds=3.2)
    spec = RunSpec.from_values(
        {
            "input": str(leads_csv(tmp_path / "leads.csv", 5)),
            "checkpoint": str(tmp_path / "c.sqlite"),
            "host": emu.url,
            "rate": "off",
            "open_window": True,
        }
    )
    hooks = run.RunHooks(confirm=lambda confirmation: True)
    async with aiohttp.ClientSession() as session:
        task = asyncio.create_task(
            run.run(spec, KEYS, session=session, rng=random.Random(), hooks=hooks, clock=clock)
        )
        await until_done(clock, task)
        summary = await task
    assert summary.totals.complete
    assert emu.stats()["outcomes"]["outage_503"] >= 3  # the preflight met the outage
    assert emu.stats()["outcomes"]["user"] == 1  # … and rode it out
    assert clock.now() >= 3.2
    assert len(emu.records) == 5


async def test_the_listing_rides_out_an_outage_within_give_up_after(
    emulator: Any, tmp_path: Path
) -> None:
    # before: each page had --max-attempts sends and gave up long before --give-up-after (two
    # sends, at most 1 s of backoff apart: over before the 1.1 s outage is)
    emu = await emulator(rate="off", dataset_leads=20, outage_after=0.0, outage_seconds=1.1)
    window = ("--codes", "201", "--from", "2024-03-01", "--to", "2024-12-31", "--rate", "off")
    args = ("--max-attempts", "2", "--give-up-after", "30", "--no-preflight", "--yes")
    checkpoint = ("--checkpoint", str(tmp_path / "c.sqlite"))
    done = await run_cli("run", "--discover", *window, *checkpoint, *args, env=demo_env(emu.url))
    assert done.returncode == 0, done.stderr
    assert emu.stats()["outcomes"]["outage_503"] >= 2
    assert "listing code 201: " in done.stderr
