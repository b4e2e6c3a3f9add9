"""A strict sliding-window limiter that paces calls at what the account's real load leaves free.

    limiter = SlidingWindowLimiter(RateLimit.parse("25/5s"), clock=SystemClock())
    started = await limiter.acquire()  # before every call, each retry too
    answer = await call()
    if answer.verdict is Verdict.RATE_LIMITED:
        limiter.refused(answer.limit, answer.retry_after, started=started)

Never more than the ``effective`` limit of starts in any window (with ``shared``, the machine's
ledger, counting every run's). Why it paces as it does, with figures: docs/design/pacing.md.
"""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
import itertools
import math
import statistics
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ..clock import Clock
from ..config import RateLimit


class Pacer(Protocol):
    """What the retry loop (pool.until_settled) asks of a limiter: a slot before each call,
    and what a refusal says. SlidingWindowLimiter is one; the bulk add's pair of windows
    (send/posting.py: its own limit within the account's) is another."""

    @property
    def effective(self) -> RateLimit: ...

    async def acquire(self) -> float: ...

    def on_the_wire(self, started: float) -> float: ...

    def sent_again(self) -> None: ...

    def refused(
        self,
        limit: RateLimit | None,
        retry_after: float | None = None,
        started: float | None = None,
    ) -> bool: ...


class SharedWindow(Protocol):
    """The account-wide window of every run on this machine (store/ledger.WindowLedger)."""

    def reserve(self, cap: int, window: float, spacing: float = 0.0) -> float: ...

    def others_before(self, age: float, window: float) -> int: ...

    def note_budget(self, free: float) -> None: ...

    def budget_within(self, window: float) -> float | None: ...


MARGIN_SHARE = 0.02  # of the window: 100 ms at 25/5s, i.e. 98 % of the limit at best
MIN_MARGIN = 0.02
HEADROOM = 2.0  # calls a window below the measured free budget, left to the neighbours
CAUTION = 0.6  # of the free budget read as a newcomer arrives: what it leaves, until measured
HOLD_WINDOWS = 4.0  # windows paced below a measured free budget before probing up to the limit
PROBE_WINDOWS = 1.0  # windows at the limit without a refusal that end the measurement
SPREAD_CALLS = 3.0  # recent reads this far below their median: a bursty or random neighbour …
NOISY_HOLD = 2.0  # … held this many times as long between probes (each costs it a clump)
RISEN_CALLS = 3.0  # a probe reads this far above a refusal in the hold before it: peaks …
PEAKY_HOLD = 1.25  # … and the holds are this many times as long (5 windows, 25 s at 25/5s) …
PEAKY_WINDOWS = 48.0  # … for this many windows
RETURN_WINDOWS = 24.0  # a level read this recent is what a returning neighbour takes again
DAMPED_CALLS = 2.0  # a read further than this from the free budget is followed at once
LULL_WINDOWS = 24.0  # after a lull, a read that jumps is one more for this many windows
TREND_READS = 3  # so is a read that is this many reads' steady climb or fall: a ramp
MEMORY_WINDOWS = 12.0  # reads this recent make the free budget (their median, at most the last)
START_CALLS = 0.6  # of the ceiling: the first window's slow part …
START_SPAN = 0.8  # … takes this much of it; the rest of the ceiling follows closer together
DENSEST = 0.05  # seconds: no shape whose fast part is closer (windows of a second or so)
LEDGER_SLACK = 0.002  # seconds: a start's stamp in the ledger may come this late
LATE_ON_THE_WIRE = 0.002  # seconds after its start that a call counts as sent late
HISTORY_WINDOWS = 4  # starts kept to measure from: a refusal may be answered seconds later
RETRY_AFTER_SLACK = 1.0  # seconds beyond one window that a Retry-After may ask for
UNCAPPED = 1 << 30  # the account-wide window's cap at --rate off


def default_margin(period: float) -> float:
    return max(MIN_MARGIN, MARGIN_SHARE * period)


def shared(limit: RateLimit, share: float) -> RateLimit:
    """The part of ``limit`` a run with ``--share`` may take (at least one call a window)."""
    if limit.unlimited or share >= 1.0:
        return limit
    calls = max(1, math.floor(limit.calls * share + 1e-9))
    return RateLimit(calls=calls, period=limit.period, label=f"{share:g} of {limit}")


@dataclass(frozen=True)
class Estimate:
    """What the others on the account left free, as a refusal measured it."""

    free: float  # calls a window
    at: float  # when: the hold and the probe count from here
    started: float | None  # the start of the refused call it was measured from
    cautious: bool  # read as a newcomer arrived, its calls still coming: paced lower at first
    hold: float = HOLD_WINDOWS  # windows paced below it before the probe
    level: bool = False  # a level read: not a newcomer's guess, the lowest of reads that
    # disagree, or a level a lull brought back
    rose_from: float | None = None  # the level a probe's read jumped above, if it did


class SlidingWindowLimiter:
    def __init__(
        self,
        rate: RateLimit,
        *,
        clock: Clock,
        margin: float | None = None,
        share: float = 1.0,
        on_notice: Callable[[str], None] | None = None,
        shared: SharedWindow | None = None,
    ) -> None:
        self.configured = rate
        self.shared = shared
        self.on_notice = on_notice
        self._noticed = False
        self._told_shared = False
        self.clock = clock
        self.share = share
        self._margin_given = margin
        self.account = rate  # the account's limit as known
        # Our starts of the last HISTORY_WINDOWS windows: the window (W + margin) is its tail,
        # and a refusal answered late still finds the starts before it to measure from.
        self._starts: deque[float] = deque()
        self._paused_until = float("-inf")
        self._next_start = float("-inf")
        self._lock = asyncio.Lock()  # FIFO: callers start in the order they asked
        self._estimate: Estimate | None = None  # the free budget, while it holds
        self._reads: deque[tuple[float, float]] = deque()  # (when, read), MEMORY_WINDOWS back
        self._at_limit_since: float | None = None  # paced at the limit since (no estimate)
        self._left = False  # the last estimate ended unrefused: the others had gone
        self._level: tuple[float, float] | None = None  # (when, free) last read, not a guess
        self._lulls_until = float("-inf")  # a read that jumps is a lull until then
        self._dip: float | None = None  # the lowest read refused in the hold since the probe
        self._peaky_until = float("-inf")  # holds are PEAKY_HOLD as long until then
        self._first: float | None = None  # the run's first start, while no refusal came
        self._shaped = True  # the first window's shape still holds (nothing refused yet)
        self.margin = 0.0  # seconds added to the window for network jitter (_set_ceiling)
        self._set_ceiling()

    # ------------------------------------------------------------ what it allows now

    @property
    def effective(self) -> RateLimit:
        """The ceiling: the account's limit as known, times the share."""
        return shared(self.account, self.share)

    @property
    def current(self) -> float:
        """The pacing rate in calls per window: the ceiling, or less beside others."""
        return self._rate_at(self.clock.now())

    @property
    def spacing(self) -> float:
        if self.account.unlimited:
            return 0.0
        now = self.clock.now()
        if self._shaped and (shape := self._shape()) is not None:
            return shape[2]  # the window log repeats the first window's shape
        if self._holding(now):  # the cap keeps the window, the pace sits below
            return self._period / self.current
        return (self._period + self.margin) / self.current

    def _shape(self) -> tuple[int, float, float] | None:
        """The first window's shape: (slow starts, their gap, the gap of the rest). None when
        its fast part would be a burst (DENSEST; a window of a second or so): calls 20 ms
        apart at 25/1s, window after window, and a server stamping some late under load
        refused the account's own pace. Such windows are paced evenly from the first call."""
        cap = self.effective.calls
        slow = min(cap - 1, round(START_CALLS * cap))
        span = self._period + self.margin
        if slow < 1 or (1 - START_SPAN) * span / (cap - slow) < DENSEST:
            return None
        return slow, START_SPAN * span / slow, (1 - START_SPAN) * span / (cap - slow)

    # ------------------------------------------------------------ taking a slot

    async def acquire(self) -> float:
        """Wait until one more call may start, and count it as started. Returns when it
        started: give it back to ``refused`` if that call is refused."""
        if self.account.unlimited:  # --rate off (loopback only): no pace, but the day's count
            if self.shared is not None:  # and its --daily-limit hold all the same
                self.shared.reserve(UNCAPPED, 0.0)
            return self.clock.now()
        async with self._lock:
            while (wait := self._wait(self.clock.now())) > 0 or (wait := self._reserve()) > 0:
                await self.clock.sleep(wait)
            now = self.clock.now()
            if self._first is None:
                self._first = now
            if self._at_limit_since is None:
                self._at_limit_since = now
            self._starts.append(now)
            self._next_start = self._next_after(now)
            return now

    def _next_after(self, now: float) -> float:
        """The next start, a spacing after this one's due time: a wake-up a millisecond late
        is not carried into every later start (at 25/1s, 3 % of the pace), and a start after
        an idle spell counts from now."""
        spacing = self.spacing
        due = self._next_start if now - self._next_start < spacing else now
        return due + spacing

    def on_the_wire(self, started: float) -> float:
        """The call that started at ``started`` goes on the wire only now: a new connection
        was opened first (after a reset, say), and the server will count it from now, not
        from its start. Its start moves to now, so the window holds from where the server sees
        it. Returns the start as now counted."""
        now = self.clock.now()
        if self.account.unlimited or now - started <= LATE_ON_THE_WIRE:
            return started
        index = bisect.bisect_left(self._starts, started)
        if index < len(self._starts) and self._starts[index] == started:
            del self._starts[index]
        bisect.insort(self._starts, now)
        return now

    def sent_again(self) -> None:
        """A call went out once more without a start of its own (an HTTP client re-sending a
        GET on a dropped connection): the server counted it, so the window counts it too."""
        if not self.account.unlimited:
            bisect.insort(self._starts, self.clock.now())

    def ready_in(self) -> float:
        """Seconds until ``acquire`` would start a call at once (0: now), taking nothing: for
        a caller that must take another slot first (the bulk add: the account's, then its
        own, each stamped when the call goes)."""
        if self.account.unlimited:
            return 0.0
        return max(0.0, self._wait(self.clock.now()))

    def _wait(self, now: float) -> float:
        window = self._period + self.margin
        while self._starts and self._starts[0] <= now - HISTORY_WINDOWS * self._period:
            self._starts.popleft()
        if not self._starts or self._starts[-1] <= now - window:
            self._first = None  # a quiet spell of a window or more: the next start is a first
        wait = max(self._paused_until, self._next_start, self._shaped_start(now)) - now
        cap = self._cap(now)
        if len(self._starts) >= cap:  # the cap-th latest start must have left the window
            wait = max(wait, self._starts[-cap] + window - now)
        return wait

    def _shaped_start(self, now: float) -> float:
        """In the first window the slow starts come first: a neighbour's share is found late
        in the window, so the window it fills is full only briefly."""
        shape = self._shape() if self._shaped and self._first is not None else None
        if shape is None or self._first is None or now >= self._first + self._period:
            return float("-inf")
        slow, slow_gap, gap = shape
        k = len(self._starts) - bisect.bisect_left(self._starts, self._first)  # since the first
        if self.shared is not None:  # runs at once keep one shape, not one each
            k += self.shared.others_before(0.0, now - self._first)
        return self._first + min(k, slow) * slow_gap + max(0, k - slow) * gap

    def _cap(self, now: float) -> int:
        """Starts a window may hold: the pacing rate rounded up (the spacing keeps a
        fractional rate's average; the cap only stops a catch-up burst). Below a measured free
        budget, the next whole call above the pace, and at most the free budget less one: room
        for the neighbour's jitter, so the pace below it is never held back by the margin."""
        rate = self._rate_at(now)
        if self._holding(now):
            assert self._estimate is not None
            above = min(math.floor(rate + 1e-9) + 1, math.floor(self._estimate.free + 1e-9) - 1)
            return max(1, min(above, self.effective.calls))
        return max(1, math.ceil(rate - 1e-9))

    def _reserve(self) -> float:
        """Our own window has room: take the start in the account-wide one too, or wait. The
        ledger keeps the account's starts a spacing apart less LEDGER_SLACK: its stamps come a
        moment after each start's due time, and a whole spacing from the last of them made
        every start wait twice, a millisecond late each time (2.5 % of the pace at 25/1s)."""
        if self.shared is None:
            return 0.0
        cap = self._cap(self.clock.now())
        spacing = max(0.0, self.spacing - LEDGER_SLACK)
        return self.shared.reserve(cap, self._period + self.margin, spacing)

    # ------------------------------------------------------------ refusals

    def learn(self, limit: RateLimit) -> bool:
        """Adopt a limit LeadSquared named, if it is below the one in use. True if adopted."""
        if limit.unlimited or limit.per_second >= self.account.per_second * 0.999:
            return False
        self.account = RateLimit(calls=limit.calls, period=limit.period, label="learned")
        self._shaped = False
        self._set_ceiling()
        self._forget()  # the window log now keeps the real limit by itself
        return True

    def refused(
        self,
        limit: RateLimit | None,
        retry_after: float | None = None,
        started: float | None = None,
    ) -> bool:
        """A rate refusal came back. Returns True when it taught the account's real limit.

        A named limit below ours is learned: the window log then keeps it. Otherwise someone
        else spends the budget: what was free is measured from ``started`` and paced below
        (when our own calls alone filled the window, the margin widens once too). A refusal
        that names no limit, or says Retry-After, also pauses everyone: a window, or what it
        asked.
        """
        if limit is not None and self.learn(limit):
            return True
        self._shaped = False
        now = self.clock.now()
        self._measure(now, started)
        if limit is not None and self._estimate is not None:  # a full window: someone spends
            self._tell_shared(now)
        if retry_after is not None or limit is None:
            self.pause(self._capped(retry_after))  # Retry-After, or a window if none was said
        return False

    def pause(self, seconds: float | None = None) -> None:
        """Nobody starts for one window (or ``seconds``)."""
        window = self._period + self.margin if seconds is None else seconds
        self._paused_until = max(self._paused_until, self.clock.now() + window)

    @property
    def max_retry_after(self) -> float:
        return self._period + self.margin + RETRY_AFTER_SLACK

    def _capped(self, retry_after: float | None) -> float | None:
        if retry_after is None or retry_after <= self.max_retry_after:
            return retry_after
        if not self._noticed and self.on_notice is not None:
            self.on_notice(
                f"LeadSquared asked to wait {retry_after:g} s (Retry-After); waiting "
                f"{self.max_retry_after:g} s at most, one window of its rate limit, instead"
            )
        self._noticed = True
        return self.max_retry_after

    @property
    def shares_account(self) -> bool:
        """True while a measured free budget sets the pace (someone else spends the budget)."""
        return self._estimate_at(self.clock.now()) is not None

    @property
    def free(self) -> float:
        """The free budget (calls a window) last measured; 0 while the account seems idle."""
        estimate = self._estimate_at(self.clock.now())
        return 0.0 if estimate is None else estimate.free

    def _measure(self, now: float, started: float | None) -> None:
        """The server's window was full when the refused call arrived: the account's starts
        we see (ours, and every run's in the ledger) in the window before the refused call's
        start fitted beside everyone else's. Calls that set off after it are in flight, not
        room; without a start, counted back from now, less the refused call. A call that was
        in flight when the last read was taken says nothing new, unless it set off before the
        call that read came from (answers overtake each other)."""
        estimate = self._estimate_at(now)
        if estimate is not None and (
            started < estimate.at if started is not None else now - estimate.at < self._period
        ):  # in flight when it was read (without a start: a window counts as one)
            self._refine(estimate, started)
            return
        noted = None if self.shared is None else self.shared.budget_within(self._period)
        if noted is not None:  # another run here measured this window: one read for all
            read = noted
        elif started is None:
            read = sum(1 for start in self._starts if start > now - self._period) - 1.0
            read += self._others_before(now)
        else:
            read = self._before(started)
        read = max(1.0, min(float(self.effective.calls), read))
        if estimate is None:
            self._widen(read)
        self._set(now, read, started, cautious=estimate is None and self._newcomer(now))
        if self.shared is not None and noted is None:
            self.shared.note_budget(self._estimate.free if self._estimate else read)

    def _refine(self, estimate: Estimate, started: float | None) -> None:
        """A refusal of a call that set off before the one the last read came from, answered
        later in the window: the same full window, counted from an earlier start."""
        if started is None or estimate.started is None or started >= estimate.started:
            return
        read = max(1.0, self._before(started))
        if read < estimate.free:
            self._estimate = dataclasses.replace(estimate, free=read, started=started)

    def _widen(self, read: float) -> None:
        """Our own calls filled the window, as far as we count them: one of them may have
        arrived later than its start said (network jitter beyond the margin), so the margin
        widens, once, to twice its default. The pace still gives way: a newcomer's first
        calls look the same (a shorter hold for such a read cost the on/off neighbour's bar
        three points in virtual time: docs/design/pacing.md)."""
        if read >= self.effective.calls - 1 and self._margin_given is None:
            self.margin = max(self.margin, 2 * default_margin(self._period))

    def _newcomer(self, now: float) -> bool:
        """A refusal now is a newcomer, whose calls are still arriving, so the read is higher
        than it will leave: we have paced at the limit, unrefused, for a window or more, or
        since a probe found the others gone (a neighbour that comes and goes is back). Only
        in the run's first window is it someone who was there before us, read at its level."""
        if self._left:
            return True
        return self._at_limit_since is not None and now - self._at_limit_since >= self._period

    def _set(self, now: float, read: float, started: float | None, *, cautious: bool) -> None:
        """A new read of the free budget.

        - A newcomer's read stands alone, scaled down: a moment of its arrival, not its level;
          but not below the level last read, if that is recent (RETURN_WINDOWS): a neighbour
          that comes and goes comes back at the level it left.
        - Paced below the last read and refused all the same, the others grew: followed at
          once (never up: our window still holds calls from the pace before). If that read
          had jumped above the level before it, it was a lull (a neighbour coming back, a
          quiet moment between its clumps), not room: the level before, at most this read.
        - A read at the probe is the level again. One a call or two off (a race for the last
          slot, the neighbour's busiest instant) moves nothing until a second agrees: the
          median of the recent reads, the lower of a tie when the read is higher, the higher
          when it is lower. A neighbour that grew by more is followed at once, and so is a
          level that moves: a read past the two before it, each past the one before (a
          neighbour ramping up or down through the day).
        - A probe that reads RISEN_CALLS above a refusal in the hold before it: the level came
          back after a dip, a bursty or random neighbour's peaks, not a move. Each probe costs
          such a neighbour a peak: holds are PEAKY_HOLD as long for PEAKY_WINDOWS, but for a
          read within HEADROOM of the limit (a neighbour that stopped, its last calls still in
          the window: a call or two to protect, and the limit is wanted back within 30 s).
        """
        while self._reads and self._reads[0][0] < now - MEMORY_WINDOWS * self._period:
            self._reads.popleft()
        before = self._estimate
        last = before.free if before is not None else None
        hold, level, rose_from = HOLD_WINDOWS, False, None
        if cautious:
            free = max(CAUTION * read, min(read, self._returning(now)))
        elif before is not None and last is not None and self._holding(now):
            free, level = min(read, last), read < last or before.level
            if read < last and before.rose_from is not None:  # a lull: the level before it
                free, level = min(read, before.rose_from), read <= before.rose_from
                self._lulls_until = now + LULL_WINDOWS * self._period
            if read < last:
                self._reads.append((now, read))
                self._dip = read if self._dip is None else min(self._dip, read)
        else:
            self._after_dip(now, read)
            moving = self._moving(read)
            jump = last is not None and read > last + DAMPED_CALLS  # far above the level
            self._reads.append((now, read))
            values = [value for _, value in self._reads]
            if statistics.median_low(values) - min(values) > SPREAD_CALLS:
                free = min(values)  # reads that disagree: a bursty or random neighbour's peaks
                hold = NOISY_HOLD * HOLD_WINDOWS
            elif last is not None and jump and not moving and now < self._lulls_until:
                # a neighbour that showed a lull shows more: this is one, until one agrees
                free, level = max(last, statistics.median_low(values)), True
            elif moving or last is None or abs(read - last) > DAMPED_CALLS:
                free, level = read, True
                if jump and before is not None and before.level:  # from a level read only
                    rose_from = last
            elif read <= last:
                free, level = min(last, statistics.median_high(values)), True
            else:
                free, level = max(last, statistics.median_low(values)), True
        if now < self._peaky_until and free < self.effective.calls - HEADROOM:
            hold *= PEAKY_HOLD
        if not cautious:
            self._level = (now, free)
        self._estimate = Estimate(free, now, started, cautious, hold, level, rose_from)
        self._at_limit_since = None

    def _moving(self, read: float) -> bool:
        """This read and the TREND_READS - 1 recent ones before it climb or fall, each past
        the one before: the level itself moves (a ramp), not a read a call or two off it, so
        the damping would only lag it (docs/design/pacing.md)."""
        recent = [*[value for _, value in self._reads][-(TREND_READS - 1) :], read]
        steps = [after - before for before, after in itertools.pairwise(recent)]
        return len(recent) == TREND_READS and (
            all(step > 0 for step in steps) or all(step < 0 for step in steps)
        )

    def _after_dip(self, now: float, read: float) -> None:
        """A probe's read: RISEN_CALLS above a refusal in the hold before it, the level came
        back after a dip (a random neighbour's busy window, a clump): its peaks, not a move.
        Steady neighbours that dip by a call or two are not marked: their stop must still be
        seen within the hold and probe (docs/design/pacing.md)."""
        if self._dip is not None and read >= self._dip + RISEN_CALLS:
            self._peaky_until = now + PEAKY_WINDOWS * self._period
        self._dip = None

    def _returning(self, now: float) -> float:
        """The free budget last read (not guessed), if recent: what a neighbour that left and
        comes back leaves again (0: none)."""
        if self._level is None or now - self._level[0] >= RETURN_WINDOWS * self._period:
            return 0.0
        return self._level[1]

    def _estimate_at(self, now: float) -> Estimate | None:
        """The estimate, while it holds: a probe at the limit that no refusal met for
        PROBE_WINDOWS ends it (the others left, or spend less than we can tell)."""
        estimate = self._estimate
        if estimate is not None:
            ends = estimate.at + (estimate.hold + PROBE_WINDOWS) * self._period
            if now >= ends:
                self._forget(ends)
        return self._estimate

    def _holding(self, now: float) -> bool:
        """Paced below a measured free budget (not yet probing)."""
        estimate = self._estimate_at(now)
        return estimate is not None and now < estimate.at + estimate.hold * self._period

    def _forget(self, at: float | None = None) -> None:
        self._left = at is not None  # a probe found room (None: a limit was learned)
        self._estimate = None
        self._reads.clear()
        self._at_limit_since = at

    def _tell_shared(self, now: float) -> None:
        """Once a run: why it slowed down, since nothing else on the screen says it."""
        if self._told_shared or self.on_notice is None or self._estimate is None:
            return
        self._told_shared = True
        self.on_notice(
            f"someone else is spending this account's rate limit: about "
            f"{self._estimate.free:g} of {self.effective.calls} calls per {self._period:g} s "
            f"were free when LeadSquared refused one; pacing at {self._rate_at(now):g} per "
            f"{self._period:g} s to leave them room"
        )

    def _before(self, started: float) -> float:
        """The account's starts in the window before ``started`` as far as we see them: ours,
        and with a ledger every other run's on this machine. The cap and pace derived from it
        hold the ledger's window, all those runs together, so each must measure all of it:
        from its own starts only, two runs would each read half and share one half."""
        return self._ours_before(started) + self._others_before(started)

    def _ours_before(self, started: float) -> float:
        """Our starts in the window before ``started``."""
        return float(sum(1 for start in self._starts if started - self._period < start < started))

    def _others_before(self, started: float) -> float:
        """The other runs' starts in the ledger's window before ``started`` (0 without one)."""
        if self.shared is None:
            return 0.0
        return float(self.shared.others_before(self.clock.now() - started, self._period))

    def _rate_at(self, now: float) -> float:
        """Calls a window: HEADROOM below a measured free budget for its hold, else the
        ceiling (after the hold, that is the probe: until a refusal, or the estimate's end)."""
        ceiling = float(self.effective.calls)
        estimate = self._estimate_at(now)
        if estimate is None or not self._holding(now):
            return ceiling
        return max(1.0, min(ceiling, estimate.free - HEADROOM))

    def _set_ceiling(self) -> None:
        self._period = self.account.period
        self.margin = (
            default_margin(self._period) if self._margin_given is None else self._margin_given
        )
