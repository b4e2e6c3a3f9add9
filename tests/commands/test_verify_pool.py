"""`verify` runs through the run's worker pool and counts like the run's calls (#19.4, #20):
its per-lead checks share the pool's workers and the limiter, a stop ends it at once with
what was recorded kept, its calls go on the machine's ledger, and the daily allowance (the
ledger's or LeadSquared's refusal) stops it with exit 75 and nothing more sent. Pool logic on
the ManualClock; the ledger and the allowance on the emulator."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any, cast

import pytest

from bulk_delete.clock import ManualClock, system_wall
from bulk_delete.commands import verify_strategy
from bulk_delete.config import RateLimit, SendSettings, require_host
from bulk_delete.emulator.server import DEMO_ACCESS_KEY
from bulk_delete.errors import Interrupted
from bulk_delete.send.answers import Answer, Verdict
from bulk_delete.send.limiter import SlidingWindowLimiter
from bulk_delete.send.pool import Pool, StopSwitch
from bulk_delete.store.ledger import WindowLedger
from bulk_delete.store.verification import Verifiable
from bulk_delete.summary import Strategy

from ..conftest import demo_env, run_cli
from ..listing_fixtures import fault, purge
from ..pool_fixtures import until_done

PER_LEAD = verify_strategy.Choice(Strategy.PER_LEAD, 20, "per code: -", 20)


class Leads:
    """Retrieve on a lead with nothing left, taking a virtual second; counts its calls,
    the calls at once, and when each started. ``on_call(n)`` runs as call n starts."""

    def __init__(self, clock: ManualClock, on_call: Callable[[int], None] = lambda n: None):
        self.clock, self.on_call = clock, on_call
        self.starts: list[float] = []
        self.in_flight = self.most_at_once = 0

    async def retrieve(
        self, lead: str, code: str, offset: int, size: int
    ) -> tuple[Answer, dict[str, Any]]:
        self.starts.append(self.clock.now())
        self.on_call(len(self.starts))
        self.in_flight += 1
        self.most_at_once = max(self.most_at_once, self.in_flight)
        try:
            await self.clock.sleep(1.0)
        finally:
            self.in_flight -= 1
        return Answer(Verdict.TRANSIENT, 200, "200 without Success"), {
            "RecordCount": 0,
            "ProspectActivities": [],
        }


class Recorded:
    """The checkpoint's side of verify: what was recorded, per request."""

    def __init__(self) -> None:
        self.verified: dict[int, str] = {}

    def record_verified(self, seq: int, verified: str, left: int | None, note: str) -> None:
        self.verified[seq] = verified


def leads(count: int) -> list[Verifiable]:
    return [
        Verifiable(seq, f"lead-{seq}", ("201",), "2024-01-01 00:00:00", "2024-06-30 23:59:59")
        for seq in range(1, count + 1)
    ]


async def check(
    clock: ManualClock, client: Leads, pool: Pool, recorded: Recorded, items: list[Verifiable]
) -> None:
    task = asyncio.create_task(
        verify_strategy.check(
            pool, cast(Any, client), cast(Any, recorded), items, PER_LEAD, {}, "2026-01-01"
        )
    )
    await until_done(clock, task)
    await task


def reads(clock: ManualClock, rate: str, stop: StopSwitch | None = None) -> Pool:
    limiter = SlidingWindowLimiter(RateLimit.parse(rate), clock=clock)
    settings = SendSettings(rate=limiter.account, workers=4, max_attempts=3, give_up_after=60)
    return Pool.for_reads(
        settings, clock=clock, rng=random.Random(1), limiter=limiter, stop=stop, drain_seconds=0
    )


async def test_verify_per_lead_runs_on_the_pools_workers_under_its_limiter() -> None:
    clock = ManualClock(start=0.0)
    client, recorded = Leads(clock), Recorded()
    pool = reads(clock, "5/1s")
    await check(clock, client, pool, recorded, leads(20))
    assert recorded.verified == dict.fromkeys(range(1, 21), "confirmed")
    assert pool.progress.figures.calls == len(client.starts) == 20  # counted by the pool
    assert client.most_at_once == 4  # --concurrency 4: the pool's workers, no more
    for start in client.starts:  # the shared limiter: 5 starts a second at most
        assert sum(1 for other in client.starts if start <= other < start + 1.0) <= 5
    # a read's "200 without Success" with data is an answer: the breaker never opened
    assert pool.breaker.failures_in_a_row == 0


async def test_a_stop_mid_verify_ends_it_at_once_and_keeps_what_was_recorded() -> None:
    clock = ManualClock(start=0.0)
    stop = StopSwitch()
    stopped_at: list[int] = []

    def signal_at_sixth(call: int) -> None:
        if call == 6:  # SIGTERM while calls are on the wire
            stop.stop()
            stopped_at.append(call)

    client, recorded = Leads(clock, signal_at_sixth), Recorded()
    pool = reads(clock, "off", stop)
    with pytest.raises(Interrupted, match="interrupted; every check made is saved"):
        await check(clock, client, pool, recorded, leads(20))
    assert stopped_at == [6]
    assert len(client.starts) == 6  # no call started after the stop
    assert recorded.verified == dict.fromkeys(range(1, 5), "confirmed")  # the 4 answered
    assert client.in_flight == 0  # the reads on the wire were abandoned, not waited for


def ledger_calls(emu: Any) -> int:
    ledger = WindowLedger.for_account(require_host(emu.url), DEMO_ACCESS_KEY, wall=system_wall)
    try:
        return ledger.calls_today()
    finally:
        ledger.close()


async def test_verify_is_counted_on_the_ledger_and_stops_at_the_daily_limit(
    emulator: Any, tmp_path: Any
) -> None:
    emu, checkpoint = await purge(emulator, tmp_path, webhook_delay=60)
    env = demo_env(emu.url)
    paced = ("--rate", "1000/1s", "--sample", "30")  # 3 could all hold none: confirmed
    done = await run_cli("verify", str(checkpoint), *paced, env=env)
    assert done.returncode == 1, done.stderr  # nothing carried out yet: remaining
    verified = emu.stats()["calls"]
    # every call is on the ledger: the purge's (at --rate off too) and verify's
    assert ledger_calls(emu) == verified
    assert ledger_calls(emu) >= 3
    limit = str(ledger_calls(emu) + 1)  # the preflight takes the last call of the day
    stopped = await run_cli("verify", str(checkpoint), *paced, "--daily-limit", limit, env=env)
    assert stopped.returncode == 75, stopped.stderr
    assert "daily allowance used; resume after 00:00 UTC" in stopped.stderr
    assert emu.stats()["calls"] == verified + 1  # the preflight only, then nothing
    assert "allowance_used" not in emu.stats()["outcomes"]  # it stopped itself


async def test_verify_stops_at_the_accounts_allowance_refusal(emulator: Any, tmp_path: Any) -> None:
    emu, checkpoint = await purge(emulator, tmp_path, webhook_delay=60)
    fault(emu, daily_limit=2)  # today: the preflight and one probe, then refused
    args = ("verify", str(checkpoint), "--rate", "off", "--sample", "3", "--concurrency", "1")
    done = await run_cli(*args, env=demo_env(emu.url))
    assert done.returncode == 75, done.stderr
    assert "daily allowance used; resume after 00:00 UTC" in done.stderr
    calls = emu.stats()["calls"]
    assert emu.stats()["outcomes"]["allowance_used"] == 1
    await asyncio.sleep(0.3)
    assert emu.stats()["calls"] == calls  # nothing sent after the refusal


async def test_the_listing_reads_codes_at_once_on_the_pool_each_codes_pages_in_order(
    emulator: Any, tmp_path: Any
) -> None:
    """--discover's listing is the pool's too: one code per work item, so the codes are
    listed side by side (--concurrency 2), and each code's pages one after the other."""
    emu = await emulator(rate="off", dataset_leads=400, page_cap=40, latency=0.02)
    window = ("--codes", "201,202", "--from", "2024-03-01", "--to", "2024-12-31")
    run = ("run", "--discover", *window, "--rate", "off", "--concurrency", "2", "--dry-run")
    done = await run_cli(*run, "--checkpoint", str(tmp_path / "c.sqlite"), env=demo_env(emu.url))
    assert done.returncode == 0, done.stderr
    asked = [(str(call["code"]), int(call["page"])) for call in emu.list_calls]
    for code in ("201", "202"):
        pages = [page for listed, page in asked if listed == code]
        assert pages == list(range(1, len(pages) + 1))  # in order, none twice
        assert len(pages) > 2
    first_of_202 = asked.index(("202", 1))
    assert first_of_202 < asked.index(("201", 3))  # not one code after the other
