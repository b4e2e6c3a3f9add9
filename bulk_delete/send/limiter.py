"""A strict sliding-window limiter that learns the account's real limit and shares it.

**The window.** Never more than N call starts in any W-second window. Why not
``aiolimiter.AsyncLimiter(25, 5)``: a leaky bucket admits a full bucket at once and then drips,
so up to 49 calls can start in the first 5 s — exactly what a strict server window answers with
refusals. Here every start is logged and call N+1 waits until call 1 is one window (plus a
small safety margin) old. The margin absorbs network jitter: a server counts arrivals, and a
call that set off first can arrive a little later than the one after it. Starts are also spread
out rather than fired in bursts of N: the budget is shared by every integration on the account,
and a burst would spend all of it in an instant.

**The first window.** Until a refusal says otherwise the account may be idle, so the first
window takes all N; but its slow part comes first: ``START_CALLS`` of the calls in
``START_SPAN`` of the window, the rest closer together. A neighbour's share shows up as a full
window when our calls reach what it leaves, and where refusals count a full window stays full
for everyone (each refusal fills the slot the last one left) until our first call of the
window leaves it. Filled late in the window, it is full only briefly: beside a steady 10 of
25/5s, the neighbour loses 2–4 calls there instead of 4–5. The window log then repeats the
shape window after window, so an idle account still gets N a window; a run that ends inside
the slow part ends up to (START_SPAN − START_CALLS) of a window later than evenly paced. After
a quiet spell of a window or more (the listing and the prompt before the deletes, an outage
behind the breaker) the window log is empty and the shape starts again, slow part first, rather
than the fast gap firing a whole window at once. Once the account is known to be shared
(below), starts are spread evenly.

**The ceiling.** N is the account's limit as far as we know it — ``--rate``, or lower once a
refusal names the real one ("exceeded the limit of 10 in 5 second(s)": limits vary per tenant)
— times ``--share``, the part this run may take. Never above ``--rate``.

**Sharing.** A refusal that names no lower limit means someone else on the account is spending
the budget (the website's lead capture, say). The server refuses when its window is full, so the
number of our own starts (with a ledger, every run's on this machine: below) in the window
before the refused call's start (``started``: calls that
set off after it are in flight, not room; a refusal of an earlier call answered later in the
same window measures again from that one) is what fitted beside everyone else's: a measurement
of the free budget, where a blind multiplicative cut would only guess. From then on the account
is known to be shared, and the customer's own calls matter more than the purge's speed. Our
refusals are the only signal we see; the neighbour's refusals are the harm, and on a server
whose window counts refused calls too, each of ours keeps the window full for everyone until
our oldest call leaves it. So the pacing rate drops at once to the measured free budget less
``HEADROOM`` calls a window, and the window cap to the free budget less one:

- one call for the neighbour's jitter: a call of its own that arrives before its call from a
  window ago has left holds one slot more for a moment, at half its arrivals;
- one call for a measurement one too high. The window fills in a race: when a neighbour's call
  meets it full before ours does and refusals don't count, its refusal frees a slot that our
  next call takes. A quarter of the first reads beside a steady neighbour are one high so, and
  paced a call and a half below them, the neighbour lost 6–8 % of its calls, unseen by us.

The cap is the free budget less one, the whole call above the pace, so the spacing needs no
margin of its own: beside a steady 10 of 25/5s, 13 calls every 5 s, 86.7 % of the 15 left.
A later read taken at our own cap meets the neighbour's busiest instant (and, where refusals
count, its refused calls): it reads a call or two low, so one up to ``DAMPED_CALLS`` below the
last lowers the budget a call at a time; a neighbour that grew by more is followed at once.
The pace probes upward slowly: after ``PROBE_AFTER_WINDOWS`` windows without a refusal,
straight to one call above what was free (sitting just at the free budget would cost the
neighbour calls we never see), then one call a window more every ``PROBE_STEP_WINDOWS``
windows. A refusal during a probe measures again; a read up to ``DAMPED_CALLS`` low then keeps
the budget (the probe, above it, did not fit: that is all it shows; lowered a call each time, a
long run drifted to 82 % of what is free). On an idle account nothing is refused and nothing
changes. Beside a steady 10 of 25/5s (tests/windowsim.py, 80 phases of 120 requests,
answers after 0.1–0.2 s): 86.5 % of the 15 left, at least 85.4 %; the neighbour loses 3.3 %
of its calls where refusals count, 1.2 % where they don't, at most 4.4 % in a run.

**Retry-After.** A refusal's ``Retry-After`` is obeyed up to one window plus a second
(``RETRY_AFTER_SLACK``): once a window has passed, every call of ours the server counted has
left it, so a longer wait is a proxy's guess or about someone else's budget — one header of
100,000 s would otherwise pause a run silently for 28 hours. The first longer one is reported
once through ``on_notice``. Refusals that go on are bounded elsewhere: the pool and
``call_once`` stop after --give-up-after seconds without an accepted call.

**Several runs, one account.** Given a ``shared`` ledger (store/ledger.py: a window log in a state
file that every run on this machine with the same keys writes), a call starts only when the
account-wide window — all those runs' starts — has room too, so two purges at once split the
budget instead of refusing each other. The cap and pace a refusal gives then hold that window,
all the runs together, so the free budget is measured on it too: every run's starts before the
refused call's (``others_before``, asked by age: the ledger's clock is the wall, ours is
monotonic). Counted from its own starts only, each of two runs read half of what was free and
the pair shared one half: 46 % of the 15 left beside a steady 10 of 25/5s. The first read of a
window is noted in the ledger and a run refused in the same window takes it rather than
counting again (its count would take the first run's refused call for room: a call high), so
the runs pace alike. The first window keeps one shape for all of them (its slow part counts
every run's starts): two runs starting together would otherwise fill it twice as fast, and the
neighbour would pay for the longer full window. A run's own cap and spacing come from the same
account-wide budget, so they are never tighter than the ledger's and do not hold the pair to
one run's part. Two runs of 60 requests beside a steady 10 of 25/5s (tests/windowsim.py, 16
phases): together 86.1 % of the 15 left (at least 85.6 %), the neighbour losing 3.9 % of its
calls where refusals count; 87.2 % (at least 85.7 %) and 1.6 % where they don't.

Reads time only from the Clock it is given, so tests step a ManualClock instead of sleeping.
"""

from __future__ import annotations

import asyncio
import bisect
import math
from collections import deque
from collections.abc import Callable
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
DAMPED_CALLS = 3.0  # a later read up to this far below the last lowers it one call at a time
START_CALLS = 0.6  # of the ceiling: the first window's slow part …
START_SPAN = 0.8  # … takes this much of it; the rest of the ceiling follows closer together
PROBE_AFTER_WINDOWS = 12.0  # windows without a refusal before probing above the free budget
PROBE_STEP_WINDOWS = 3.0  # then one call a window more every this many windows
HISTORY_WINDOWS = 4  # starts kept to measure from: a refusal may be answered seconds later
DRAIN = 0.3  # of a window: the pause after a refusal, for the server's window to drain
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
        self._cut_at: float | None = None  # when the free budget was last measured
        self._free = 0.0  # the free budget (calls a window) measured then
        self._cut_from: float | None = None  # the start of the refused call it was measured from
        self._last: float | None = None  # the budget before that read (None: it was the first)
        self._probed = False  # that read was a refused probe's (taken above the budget)
        self._first: float | None = None  # the run's first start, while no refusal came
        self._shaped = True  # the first window's shape still holds (nothing refused yet)
        self._set_ceiling()

    # ------------------------------------------------------------ what it allows now

    @property
    def effective(self) -> RateLimit:
        """The ceiling: the account's limit as known, times the share."""
        return shared(self.account, self.share)

    @property
    def current(self) -> float:
        """The pacing rate in calls per window: the ceiling, or less after a refusal."""
        return self._rate_at(self.clock.now())

    @property
    def spacing(self) -> float:
        if self.account.unlimited:
            return 0.0
        if self._shaped and (shape := self._shape()) is not None:
            return shape[2]  # the window log repeats the first window's shape
        if self._cut_at is not None:  # shared: the cap keeps the window, the pace sits below
            return self._period / self.current
        return (self._period + self.margin) / self.current

    def _shape(self) -> tuple[int, float, float] | None:
        """The first window's shape: (slow starts, their gap, the gap of the rest)."""
        cap = self.effective.calls
        slow = min(cap - 1, round(START_CALLS * cap))
        if slow < 1:
            return None
        span = self._period + self.margin
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
            self._starts.append(now)
            self._next_start = now + self.spacing
            return now

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
        """In the first window the slow starts come first: a neighbour's share is found
        late in the window, so the window it fills is full only briefly (see above)."""
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
        fractional rate's average; the cap only stops a catch-up burst). On a shared account,
        the next whole call above the pace: the free budget less one, room for the neighbour's
        jitter, so the pace below it is never held back by the margin. A pace floored at one
        call (a free budget of 1 or 2, a ceiling of 1) keeps that cap too: the call above it
        is not free, and its spacing of a whole window has no margin."""
        rate = self._rate_at(now)
        if self._cut_at is not None:
            above = math.floor(rate + 1e-9) + 1
            if rate <= self._free:  # not probing: the whole call above the pace is free - 1
                above = min(above, math.floor(self._free + 1e-9) - 1)
            return max(1, min(above, self.effective.calls))
        return max(1, math.ceil(rate - 1e-9))

    def _reserve(self) -> float:
        """Our own window has room: take the start in the account-wide one too, or wait."""
        if self.shared is None:
            return 0.0
        cap = self._cap(self.clock.now())
        return self.shared.reserve(cap, self._period + self.margin, self.spacing)

    # ------------------------------------------------------------ refusals

    def learn(self, limit: RateLimit) -> bool:
        """Adopt a limit LeadSquared named, if it is below the one in use. True if adopted."""
        if limit.unlimited or limit.per_second >= self.account.per_second * 0.999:
            return False
        self.account = RateLimit(calls=limit.calls, period=limit.period, label="learned")
        self._shaped = False
        self._set_ceiling()
        self._cut_at = None  # the window log now keeps the real limit by itself
        return True

    def refused(
        self,
        limit: RateLimit | None,
        retry_after: float | None = None,
        started: float | None = None,
    ) -> bool:
        """A rate refusal came back. Returns True when it taught the account's real limit.

        A named limit below ours is learned: the window log then keeps it, no pause needed.
        Otherwise someone else is spending the budget: cut the pacing rate (once a window)
        and let the window drain a little (``DRAIN``) — a full window when the refusal said
        nothing.
        """
        if limit is not None and self.learn(limit):
            return True
        self._cut(self.clock.now(), started)
        if limit is not None:  # the window was full at the limit it named: someone else spends
            self._tell_shared(self.clock.now())
        if retry_after is not None or limit is None:
            self.pause(self._capped(retry_after))  # Retry-After, or a window if none was said
        else:
            self.pause(DRAIN * self._period)
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
        """True once a refusal showed someone else spending the budget (and still probing)."""
        return self._cut_at is not None

    @property
    def free(self) -> float:
        """The free budget (calls a window) last measured; 0 while the account seems idle."""
        return self._free if self._cut_at is not None else 0.0

    def _cut(self, now: float, started: float | None) -> None:
        self._shaped = False
        if self._cut_at is not None and now - self._cut_at < self._period:
            # One measurement a window: refusals of calls already in flight say nothing more,
            # unless one set off before the call measured from (answers overtake each other).
            if started is not None and self._cut_from is not None and started < self._cut_from:
                self._free = min(self._free, self._damped(max(1.0, self._before(started))))
                self._cut_from = started
            return
        # The server's window was full when the refused call arrived: our starts (with a
        # ledger, every run's here) in the window before it fitted beside everyone else's
        # (also right after our own start: the others' calls span the whole window
        # regardless). Counted back from the refused call's own start, so calls that set off
        # after it, still in flight, are not taken for room; without it, from now, less the
        # refused call. Another run's read of this window, noted in the ledger, serves ours.
        noted = None if self.shared is None else self.shared.budget_within(self._period)
        if noted is not None:  # another run here measured this window: one read for all
            ours = noted
        elif started is None:
            ours = sum(1 for start in self._starts if start > now - self._period) - 1.0
            ours += self._others_before(now)
        else:
            ours = self._before(started)
        quiet = None if self._cut_at is None else (now - self._cut_at) / self._period
        self._probed = quiet is not None and quiet >= PROBE_AFTER_WINDOWS
        self._last = self._free if self._cut_at is not None else None
        self._free = self._damped(max(1.0, min(float(self.effective.calls), ours)))
        self._cut_at, self._cut_from = now, started
        if self.shared is not None and noted is None:
            self.shared.note_budget(self._free)

    def _tell_shared(self, now: float) -> None:
        """Once a run: why it slowed down, since nothing else on the screen says it."""
        if self._told_shared or self.on_notice is None:
            return
        self._told_shared = True
        self.on_notice(
            f"someone else is spending this account's rate limit: about {self._free:g} of "
            f"{self.effective.calls} calls per {self._period:g} s were free when LeadSquared "
            f"refused one; pacing at {self._rate_at(now):g} per {self._period:g} s to leave "
            "them room"
        )

    def _damped(self, read: float) -> float:
        """A later read taken at our own cap meets the neighbour's busiest instant, and where
        refusals count, its refused calls too: it reads low. A neighbour that really grew is
        followed a call a window; one that grew by more, at once. A refused probe's read, taken
        at the probe's cap above the budget, reads low alike but shows only that the probe did
        not fit: the budget stays (lowered a call every probe, a long run would drift to 82 %).
        The same for a refusal of an earlier call answered later in the window: the order of
        answers changes nothing."""
        last = self._last
        if last is None or read < last - DAMPED_CALLS:
            return read
        return max(read, last if self._probed else last - 1)

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
        """Calls a window: the ceiling, or, on a shared account, the free budget less the
        headroom, probing upward slowly after a quiet spell."""
        ceiling = float(self.effective.calls)
        if self._cut_at is None:
            return ceiling
        rate = self._free - HEADROOM
        quiet = (now - self._cut_at) / self._period - PROBE_AFTER_WINDOWS
        if quiet >= 0:  # past the headroom at once: one call above what was free
            rate = self._free + 1 + math.floor(quiet / PROBE_STEP_WINDOWS)
        if rate >= ceiling:
            self._cut_at = None  # probed up to the ceiling unrefused: the neighbour has gone
            return ceiling
        return max(1.0, rate)

    def _set_ceiling(self) -> None:
        self._period = self.account.period
        self.margin = (
            default_margin(self._period) if self._margin_given is None else self._margin_given
        )
