"""The limiter under a ManualClock: the window guarantee, the pacing, the 429 pause."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import pytest

from bulk_delete.clock import ManualClock
from bulk_delete.config import RateLimit
from bulk_delete.errors import AllowanceUsed
from bulk_delete.send.limiter import (
    CAUTION,
    HEADROOM,
    HOLD_WINDOWS,
    NOISY_HOLD,
    PEAKY_HOLD,
    PROBE_WINDOWS,
    RETURN_WINDOWS,
    SlidingWindowLimiter,
)
from bulk_delete.store.ledger import FILE_NAME, WindowLedger

from ..helpers import drive, max_in_any_window

LIMIT = RateLimit.parse("25/5s")


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


async def test_refused_beside_a_neighbour_it_paces_below_the_free_budget_then_probes() -> None:
    """The cycle of docs/design/pacing.md: a refusal measures the free budget, the pace sits
    HEADROOM below it for HOLD_WINDOWS, then goes back to the limit; a probe no refusal
    meets for PROBE_WINDOWS ends the measurement: the neighbour has gone."""
    clock = ManualClock(start=0.0)
    limiter = SlidingWindowLimiter(LIMIT, clock=clock)
    starts = await drive(limiter, clock, workers=2, calls=17)  # the 16th refused: 15 fitted
    assert limiter.refused(LIMIT, started=starts[15]) is False  # not lower: someone else spends
    assert limiter.shares_account
    assert limiter.free == 15
    assert limiter.current == 15 - HEADROOM
    limiter.refused(LIMIT, started=starts[16])  # in flight when it was measured: nothing new
    assert limiter.free == 15
    clock.jump(5.0 * HOLD_WINDOWS - 0.3)
    assert limiter.current == 13
    clock.jump(0.4)
    assert limiter.current == 25  # the probe: the limit again
    assert limiter.shares_account
    clock.jump(5.0 * PROBE_WINDOWS)
    assert not limiter.shares_account  # nobody refused it: the estimate has ended
    assert limiter.current == 25


async def test_a_newcomer_is_given_way_at_once_and_measured_at_the_probe() -> None:
    """Paced at the limit for a window or more, a refusal is a newcomer whose calls are still
    arriving: its read (23 here) says what it left at that moment, not what it will take, so
    the pace gives way to CAUTION of it. The probe then reads its level."""
    clock = ManualClock(start=0.0)
    limiter = SlidingWindowLimiter(LIMIT, clock=clock)
    starts = await drive(limiter, clock, workers=2, calls=60)  # past two windows at the limit
    last = starts[-1]
    limiter.refused(LIMIT, started=last)
    read = sum(1 for start in starts if last - 5.0 < start < last)
    assert limiter.free == pytest.approx(CAUTION * read)
    assert limiter.current == pytest.approx(CAUTION * read - HEADROOM)
    clock.jump(5.0 * HOLD_WINDOWS)
    starts = await drive(limiter, clock, workers=2, calls=16)  # the probe, refused at 16
    limiter.refused(LIMIT, started=starts[-1])
    assert limiter.free == 15  # its level, read at the probe
    assert limiter.current == 13


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


async def first_read_15(clock: ManualClock) -> SlidingWindowLimiter:
    """A limiter whose first window ends in a refusal after 15 of its calls: someone there
    before it leaves 15 of 25 a window, read at that level (not a newcomer's)."""
    limiter = SlidingWindowLimiter(LIMIT, clock=clock)
    starts = await drive(limiter, clock, workers=2, calls=16)
    limiter.refused(LIMIT, started=starts[-1])
    return limiter


async def probe_read(limiter: SlidingWindowLimiter, clock: ManualClock, fitted: int) -> None:
    """Wait out the hold, then a probe whose call after ``fitted`` of ours is refused."""
    clock.jump(5.0 * HOLD_WINDOWS + 0.1)  # past the hold (and our last call's window)
    assert limiter.current == 25
    starts = await drive(limiter, clock, workers=2, calls=fitted + 1)
    limiter.refused(LIMIT, started=starts[-1])


async def test_a_read_a_call_or_two_off_moves_nothing_until_a_second_agrees() -> None:
    """Reads at the probe vary by a call around the level (a race for the last slot, the
    neighbour's busiest instant): the median of the recent ones keeps it. Two agreeing reads
    move it; a read more than DAMPED_CALLS away is followed at once."""
    clock = ManualClock(start=0.0)
    limiter = await first_read_15(clock)
    assert limiter.free == 15
    await probe_read(limiter, clock, 14)
    assert limiter.free == 15  # one read a call low: kept
    await probe_read(limiter, clock, 16)
    assert limiter.free == 15  # one a call high: kept
    await probe_read(limiter, clock, 14)
    assert limiter.free == 14  # a second agrees: lowered
    await probe_read(limiter, clock, 10)
    assert limiter.free == 10  # the neighbour grew by more: followed at once
    clock.jump(5.0)
    shrank = await first_read_15(clock)
    await probe_read(shrank, clock, 19)
    assert shrank.free == 19  # and one that shrank by more


async def test_a_level_that_moves_read_after_read_is_followed_at_once() -> None:
    """A neighbour ramping down through the day leaves a call or two more at each probe: each
    read alone is one the damping keeps out, and the pace lags the ramp by a probe or more. A
    read past the TREND_READS - 1 before it, each past the one before, is the level moving:
    followed at once, up as down. Reads that zigzag by as much are not."""
    clock = ManualClock(start=0.0)
    limiter = await first_read_15(clock)
    assert limiter.free == 15
    await probe_read(limiter, clock, 16)
    assert limiter.free == 15  # one read a call high: kept
    await probe_read(limiter, clock, 17)
    assert limiter.free == 17  # the third of a climb: followed (the median would say 16)
    await probe_read(limiter, clock, 16)
    await probe_read(limiter, clock, 15)
    assert limiter.free == 15  # 17, 16, 15: a fall, followed too (the median would say 16)
    clock.jump(5.0)
    zigzag = await first_read_15(clock)
    for fitted in (14, 16):  # 15, 14, 16: as far from 15, no way
        await probe_read(zigzag, clock, fitted)
        assert zigzag.free == 15


async def test_refused_in_the_hold_after_a_read_that_jumped_the_level_before_comes_back() -> None:
    """A probe reads far more room than the level (19 against 15): a lull, a neighbour coming
    back whose calls are still arriving, a quiet moment between clumps. Refused in the hold
    after it, at 16, the pace does not step down read by read (each step cost the neighbour a
    call or two at a full window: 13.9 % of its calls on one generated on-and-off trace): it
    goes back to the level before the jump at once. A newcomer's guess is not such a level."""
    clock = ManualClock(start=0.0)
    limiter = await first_read_15(clock)
    assert limiter.free == 15
    await probe_read(limiter, clock, 19)
    assert limiter.free == 19  # more than DAMPED_CALLS above: followed at once
    clock.jump(5.0)
    starts = await drive(limiter, clock, workers=2, calls=17)  # the 17th refused: 16 fitted
    limiter.refused(LIMIT, started=starts[-1])
    assert limiter.free == 15
    newcomer = SlidingWindowLimiter(LIMIT, clock=clock)
    clock.jump(5.0)
    starts = await drive(newcomer, clock, workers=2, calls=26)  # a window at the limit, then
    newcomer.refused(LIMIT, started=starts[-1])  # a refusal: a newcomer, read at CAUTION
    assert newcomer.free == pytest.approx(CAUTION * 24)
    await probe_read(newcomer, clock, 19)
    clock.jump(5.0)
    starts = await drive(newcomer, clock, workers=2, calls=17)
    newcomer.refused(LIMIT, started=starts[-1])
    assert newcomer.free == 16  # followed: 14.4 was a guess, not a level read


async def test_after_a_lull_a_read_that_jumps_waits_for_a_second_to_agree() -> None:
    """A neighbour that showed a lull shows more: a random one's reads jump at its quiet
    moments. Followed at once, each jump came back down at the next refusal in the hold, and
    each round trip cost it calls. For LULL_WINDOWS a read that jumps is damped like one a call
    or two off: it moves the level only once a second agrees."""
    clock = ManualClock(start=0.0)
    limiter = await first_read_15(clock)
    await probe_read(limiter, clock, 18)
    assert limiter.free == 18
    clock.jump(5.0)
    starts = await drive(limiter, clock, workers=2, calls=17)  # 15 fitted in the window
    limiter.refused(LIMIT, started=starts[-1])
    assert limiter.free == 15  # the lull
    await probe_read(limiter, clock, 18)
    assert limiter.free == 15  # the median of 15, 18, 15 and 18: not 18 at once
    clock.jump(5.0 * HOLD_WINDOWS * (PEAKY_HOLD - 1))  # 18 after a dip of 15: peaky too
    await probe_read(limiter, clock, 18)
    assert limiter.free == 18  # a second agrees
    clock.jump(5.0)
    calm = await first_read_15(clock)
    await probe_read(calm, clock, 18)
    assert calm.free == 18  # no lull seen: a jump is followed at once


async def test_refused_again_below_the_free_budget_the_neighbour_grew() -> None:
    """A call that set off after the free budget was read, at the pace below it, is refused
    all the same: the others take more now. Followed at once, never up (our window still
    holds calls from the pace before)."""
    clock = ManualClock(start=0.0)
    limiter = await first_read_15(clock)
    clock.jump(5.0)
    starts = await drive(limiter, clock, workers=2, calls=12)  # the 12th refused: 11 fitted
    limiter.refused(LIMIT, started=starts[-1])
    assert limiter.free == 11
    assert limiter.current == 9


async def test_reads_that_disagree_keep_the_lowest_and_probe_half_as_often() -> None:
    """A bursty or random neighbour's calls come in clumps: reads at its clumps are far below
    the others. The lowest recent read sets the pace, and each probe (which costs such a
    neighbour a clump) comes NOISY_HOLD times as late."""
    clock = ManualClock(start=0.0)
    limiter = await first_read_15(clock)
    await probe_read(limiter, clock, 15)
    await probe_read(limiter, clock, 11)  # a clump: 4 below the median of 15, 15, 11
    assert limiter.free == 11
    clock.jump(5.0 * HOLD_WINDOWS + 0.5)
    assert limiter.current == 9  # still holding: twice the hold
    clock.jump(5.0 * HOLD_WINDOWS * (NOISY_HOLD - 1))
    assert limiter.current == 25


async def test_a_neighbour_back_soon_after_the_probe_found_it_gone_gets_its_level_back() -> None:
    """A probe found the limit free: the neighbour had gone. A refusal within the next window
    is it coming back (on and off, as a sales app does), its calls still arriving: read at
    face value (19 here) the pace took all but two of what it had left, and each call it sent
    after met a full window. Now the level it left (15) is given back at once; a level read
    longer than RETURN_WINDOWS ago is not known any more, and CAUTION of the read is."""
    clock = ManualClock(start=0.0)
    limiter = await first_read_15(clock)
    assert limiter.free == 15  # the run's first window: there before us, read at its level
    clock.jump(5.0 * (HOLD_WINDOWS + PROBE_WINDOWS))
    assert not limiter.shares_account  # the probe found it gone
    starts = await drive(limiter, clock, workers=2, calls=20)  # less than a window
    limiter.refused(LIMIT, started=starts[-1])
    assert limiter.free == 15
    assert limiter.current == 15 - HEADROOM
    clock.jump(5.0 * (HOLD_WINDOWS + PROBE_WINDOWS + RETURN_WINDOWS))
    starts = await drive(limiter, clock, workers=2, calls=20)
    limiter.refused(LIMIT, started=starts[-1])
    assert limiter.free == pytest.approx(CAUTION * 19)


async def test_a_probe_that_reads_the_level_back_after_a_dip_probes_less_often() -> None:
    """Refused in the hold three calls below the level (a random neighbour's busy window, a
    clump), then the probe reads the level again: its peaks, not a move. Each probe costs
    such a neighbour a peak, so the holds are PEAKY_HOLD as long for a while."""
    clock = ManualClock(start=0.0)
    limiter = await first_read_15(clock)
    clock.jump(5.0)
    starts = await drive(limiter, clock, workers=2, calls=13)  # in the hold: 12 fitted
    limiter.refused(LIMIT, started=starts[-1])
    assert limiter.free == 12
    await probe_read(limiter, clock, 15)  # back at its level, RISEN_CALLS above the dip
    assert limiter.free == 15
    clock.jump(5.0 * HOLD_WINDOWS + 0.5)
    assert limiter.current == 13  # still holding
    clock.jump(5.0 * HOLD_WINDOWS * (PEAKY_HOLD - 1))
    assert limiter.current == 25


async def test_a_read_near_the_limit_is_held_as_usual_beside_a_peaky_neighbour() -> None:
    """A neighbour that stops leaves its last calls in the window: a probe just after the stop
    reads the limit less a call or two. Held PEAKY_HOLD as long, the limit came back 30.6 s
    after a steady neighbour's stop (seed 9053, docs/design/pacing.md). A read within HEADROOM
    of the limit gets the usual hold: what is left to protect is a call or two."""
    clock = ManualClock(start=0.0)
    limiter = await first_read_15(clock)
    clock.jump(5.0)
    starts = await drive(limiter, clock, workers=2, calls=13)  # a dip in the hold: 12 fitted
    limiter.refused(LIMIT, started=starts[-1])
    await probe_read(limiter, clock, 15)  # back at its level: peaky
    clock.jump(5.0 * HOLD_WINDOWS * (PEAKY_HOLD - 1))
    await probe_read(limiter, clock, 23)  # the neighbour spends two: nearly gone
    assert limiter.free == 23
    clock.jump(5.0 * HOLD_WINDOWS - 0.5)
    assert limiter.current == 21  # still holding
    clock.jump(1.0)
    assert limiter.current == 25  # probing after the usual hold, not a peaky one


async def test_a_refusal_that_names_no_limit_pauses_a_window() -> None:
    """A bare 429 says nothing of the window: everyone pauses a window. A refusal naming the
    limit pauses nobody: the pace and the cap below the free budget let the window drain."""
    clock = ManualClock(start=0.0)
    limiter = SlidingWindowLimiter(LIMIT, clock=clock)
    limiter.refused(None)
    assert limiter._wait(clock.now()) == pytest.approx(5.1)
    other = SlidingWindowLimiter(LIMIT, clock=clock)
    other.refused(LIMIT)
    assert other._paused_until == float("-inf")


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
