"""The limiter under a ManualClock: the window guarantee, the pacing, the 429 pause."""

from __future__ import annotations

import asyncio
import itertools
import random
from pathlib import Path

import pytest

from bulk_delete.clock import ManualClock
from bulk_delete.config import RateLimit
from bulk_delete.errors import AllowanceUsed
from bulk_delete.send.limiter import SlidingWindowLimiter
from bulk_delete.store.ledger import FILE_NAME, WindowLedger

from .helpers import max_in_any_window


async def drive(
    limiter: SlidingWindowLimiter,
    clock: ManualClock,
    workers: int,
    calls: int,
    latency: tuple[float, float] = (0.0, 0.0),
    seed: int = 1,
) -> list[float]:
    rng = random.Random(seed)
    starts: list[float] = []
    remaining = iter(range(calls))

    async def worker() -> None:
        for _ in remaining:
            await limiter.acquire()
            starts.append(clock.now())
            await clock.sleep(rng.uniform(*latency))

    tasks = [asyncio.create_task(worker()) for _ in range(workers)]
    while not all(task.done() for task in tasks):
        await clock.run_until_idle()
    return starts


@pytest.mark.parametrize(
    ("rate", "workers", "latency"),
    [("25/5s", 50, (0.1, 1.5)), ("5/1s", 3, (0.0, 0.4)), ("2/5s", 10, (0.0, 9.0))],
)
async def test_never_more_than_n_in_any_window(
    rate: str, workers: int, latency: tuple[float, float]
) -> None:
    clock = ManualClock()
    limit = RateLimit.parse(rate)
    limiter = SlidingWindowLimiter(limit, clock=clock)
    starts = await drive(limiter, clock, workers, 300, latency)
    assert len(starts) == 300
    assert max_in_any_window(starts, limit.period) <= limit.calls
    assert max_in_any_window(starts, limit.period + limiter.margin * 0.99) <= limit.calls


async def test_runs_at_the_limit_less_the_margin() -> None:
    clock = ManualClock()
    limiter = SlidingWindowLimiter(RateLimit.parse("25/5s"), clock=clock)
    starts = await drive(limiter, clock, 30, 251, (0.5, 1.0))
    rate = (len(starts) - 1) / (starts[-1] - starts[0])
    assert 0.97 * 5 <= rate <= 5.0
    assert limiter.margin == pytest.approx(0.1)


async def test_the_first_window_starts_slow_and_the_window_log_repeats_it() -> None:
    clock = ManualClock(start=0.0)
    limiter = SlidingWindowLimiter(RateLimit.parse("25/5s"), clock=clock)
    starts = await drive(limiter, clock, 25, 50)
    gaps = [round(b - a, 6) for a, b in itertools.pairwise(starts)]
    assert set(gaps[:15]) == {round(0.8 * 5.1 / 15, 6)}  # 60 % of the calls in 80 % of it
    assert set(gaps[15:25]) == {round(0.2 * 5.1 / 10, 6)}  # then the rest closer together
    assert gaps[25:] == gaps[: len(gaps) - 25]  # the same shape, window after window
    assert max_in_any_window(starts, 5.1 * 0.999) <= 25


async def test_once_the_account_is_shared_starts_are_spread_evenly() -> None:
    clock = ManualClock(start=0.0)
    limiter = SlidingWindowLimiter(RateLimit.parse("25/5s"), clock=clock)
    starts = await drive(limiter, clock, 4, 16)
    limiter.refused(RateLimit.parse("25/5s"), started=starts[-1])
    later = await drive(limiter, clock, 4, 12)
    gaps = {round(b - a, 6) for a, b in itertools.pairwise(later)}
    assert gaps == {round(5.0 / limiter.current, 6)}  # the pace: no margin, the cap keeps it
    assert max_in_any_window(later, 5.1 * 0.999) <= limiter.current + 1  # the cap: free - 1


async def test_pause_holds_everyone_for_a_window() -> None:
    clock = ManualClock(start=0.0)
    limiter = SlidingWindowLimiter(RateLimit.parse("10/1s"), clock=clock)
    await limiter.acquire()
    limiter.pause()
    waiter = asyncio.create_task(limiter.acquire())
    await clock.advance(1.0)
    assert not waiter.done()
    await clock.advance(0.05)
    assert waiter.done()
    limiter.pause(3.0)  # Retry-After wins when the server sends one
    waiter = asyncio.create_task(limiter.acquire())
    await clock.advance(2.9)
    assert not waiter.done()
    await clock.advance(0.2)
    assert waiter.done()


async def test_unlimited_never_waits() -> None:
    clock = ManualClock()
    limiter = SlidingWindowLimiter(RateLimit.parse("off"), clock=clock)
    for _ in range(1000):
        await limiter.acquire()
    assert clock.now() == 1000.0


async def test_a_named_lower_limit_is_learned_and_kept_by_the_window() -> None:
    clock = ManualClock(start=0.0)
    limiter = SlidingWindowLimiter(RateLimit.parse("25/5s"), clock=clock)
    starts = await drive(limiter, clock, workers=4, calls=11)
    assert limiter.refused(RateLimit.parse("10/5s")) is True  # the 11th was refused: learn
    assert limiter.refused(RateLimit.parse("10/5s")) is False  # once
    assert str(limiter.effective) == "10/5s (learned)"
    starts += await drive(limiter, clock, workers=4, calls=30)
    later = [start for start in starts if start > starts[10]]
    assert max_in_any_window(later, 5.0) <= 10
    assert limiter.refused(RateLimit.parse("72/5s")) is False  # never above what is known


async def test_never_above_the_configured_rate() -> None:
    limiter = SlidingWindowLimiter(RateLimit.parse("10/5s"), clock=ManualClock())
    assert limiter.learn(RateLimit.parse("25/5s")) is False
    assert limiter.effective.calls == 10


async def test_share_leaves_the_rest_to_others() -> None:
    clock = ManualClock(start=0.0)
    limiter = SlidingWindowLimiter(RateLimit.parse("25/5s"), clock=clock, share=0.6)
    assert limiter.effective.calls == 15
    starts = await drive(limiter, clock, workers=8, calls=60)
    assert max_in_any_window(starts, 5.0) <= 15
    limiter.learn(RateLimit.parse("10/5s"))
    assert limiter.effective.calls == 6  # the share of the learned limit


async def test_refused_by_a_full_shared_window_headroom_then_slow_probing() -> None:
    clock = ManualClock(start=0.0)
    limiter = SlidingWindowLimiter(RateLimit.parse("25/5s"), clock=clock)
    starts = await drive(limiter, clock, workers=2, calls=16)  # the 16th was refused: 15 fitted
    # not lower: someone else spends
    assert limiter.refused(RateLimit.parse("25/5s"), started=starts[-1]) is False
    assert limiter.shares_account
    assert limiter.free == 15
    assert limiter.current == 13  # the free budget less a headroom of two calls
    limiter.refused(RateLimit.parse("25/5s"), started=starts[-1])  # the same window: in flight
    assert limiter.free == 15  # one measurement a window
    clock.jump(5.0 * 11.9)  # no probing before twelve quiet windows …
    assert limiter.current == 13
    clock.jump(0.5)
    assert limiter.current == 16  # … then one call above what was free, past the headroom
    clock.jump(5.0 * 3)
    assert limiter.current == 17  # … and one call a window more every three windows
    clock.jump(5.0 * 3 * 10)
    assert limiter.current == 25  # nobody refused all along: back at the ceiling
    assert not limiter.shares_account


async def test_the_free_budget_is_counted_back_from_the_refused_call() -> None:
    clock = ManualClock(start=0.0)
    limiter = SlidingWindowLimiter(RateLimit.parse("25/5s"), clock=clock)
    starts = await drive(limiter, clock, workers=2, calls=18)
    # The 16th was refused, its answer came back after two more had set off: those are in
    # flight, not room beside the neighbour.
    limiter.refused(RateLimit.parse("25/5s"), started=starts[15])
    assert limiter.free == 15
    # An earlier call's refusal answered later, in the same window: the measure goes back to it.
    limiter.refused(RateLimit.parse("25/5s"), started=starts[14])
    assert limiter.free == 14


async def test_a_refused_probe_measures_the_free_budget_again() -> None:
    clock = ManualClock(start=0.0)
    limiter = SlidingWindowLimiter(RateLimit.parse("25/5s"), clock=clock)
    await drive(limiter, clock, workers=2, calls=21)
    limiter.refused(RateLimit.parse("25/5s"))  # no start given: counted from now, less itself
    assert limiter.free == 20
    clock.jump(5.0 * 13)
    assert limiter.current == 21  # probing above the 18 kept
    starts = await drive(limiter, clock, workers=2, calls=19)  # the 19th refused
    limiter.refused(RateLimit.parse("25/5s"), started=starts[-1])
    assert limiter.free == 20  # read 18 at the probe's own cap: it did not fit, that is all
    assert limiter.current == 18
    clock.jump(5.0)
    starts = await drive(limiter, clock, workers=2, calls=19)
    limiter.refused(RateLimit.parse("25/5s"), started=starts[-1])
    assert limiter.free == 19  # read 18 below the probe: lowered one call (a busy instant, or …)
    clock.jump(5.0)
    starts = await drive(limiter, clock, workers=2, calls=18)
    limiter.refused(RateLimit.parse("25/5s"), started=starts[-1])
    assert limiter.free == 18  # … the neighbour grew: followed a call a window
    clock.jump(5.0)
    starts = await drive(limiter, clock, workers=2, calls=12)
    limiter.refused(RateLimit.parse("25/5s"), started=starts[-1])
    assert limiter.free == 11  # grown by more than three calls: followed at once


async def test_a_refusal_that_names_no_limit_pauses_a_window() -> None:
    clock = ManualClock(start=0.0)
    limiter = SlidingWindowLimiter(RateLimit.parse("25/5s"), clock=clock)
    limiter.refused(None)
    assert limiter._wait(clock.now()) == pytest.approx(5.1)
    other = SlidingWindowLimiter(RateLimit.parse("25/5s"), clock=clock)
    other.refused(RateLimit.parse("25/5s"))  # a named one: the window drains, 0.3 of it
    assert other._paused_until - clock.now() == pytest.approx(1.5)


async def test_rate_off_still_counts_the_day_and_its_allowance(tmp_path: Path) -> None:
    """`--rate off` (loopback only) paces nothing, but every start still goes into the
    machine's ledger: the day's count, and --daily-limit, hold as at any rate."""
    clock = ManualClock(start=1_800_000_000.0)
    ledger = WindowLedger(tmp_path / FILE_NAME, "acct", wall=clock, run="mine", daily_limit=3)
    limiter = SlidingWindowLimiter(RateLimit.parse("off"), clock=clock, shared=ledger)
    for _ in range(3):
        await limiter.acquire()
    assert ledger.calls_today() == 3
    with pytest.raises(AllowanceUsed):
        await limiter.acquire()


async def test_a_shared_account_is_said_once() -> None:
    clock = ManualClock(start=0.0)
    said: list[str] = []
    limiter = SlidingWindowLimiter(RateLimit.parse("25/5s"), clock=clock, on_notice=said.append)
    starts = await drive(limiter, clock, workers=2, calls=16)
    limiter.refused(RateLimit.parse("25/5s"), started=starts[-1])
    clock.jump(5.0)
    limiter.refused(RateLimit.parse("25/5s"), started=clock.now() - 0.1)
    assert said == [
        "someone else is spending this account's rate limit: about 15 of 25 calls per 5 s were "
        "free when LeadSquared refused one; pacing at 13 per 5 s to leave them room"
    ]
