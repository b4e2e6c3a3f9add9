"""A server window, a neighbour and our limiter in virtual time: the pacing bars measured in
milliseconds of test time instead of minutes of benchmark (docs/design/pacing.md).

- **The server** (``SimWindow``) is a strict sliding-window log, like the emulator's: at most N
  arrivals in any W seconds, refused calls counted in the window too (``count_refusals``) or
  not.
- **The neighbour** (``Neighbour``) is the customer's own integration. It follows a ``Load``:
  steady, on and off, a ramp up and down, bursts, random (Poisson) arrivals, or steady until it
  stops. Each call arrives after a jittered latency and is never retried: a refused lead
  capture is a lost call.
- **Our side** (``Purge``) runs the pool's own retry loop (``send.pool.until_settled``: the
  breaker, the limiter, the retry policy) around a call that arrives after a latency. Faults
  are drawn as the emulator draws them, after the window has counted the call: 500s, HTML
  pages and resets (``Faults``). A call after a reset or an HTML page opens a new connection
  and may arrive later than its start said (``Faults.cold``).

Two engines of virtual time. ``simulate`` runs a coroutine on an event loop whose clock is
virtual and jumps to the next timer whenever nothing is ready (``VirtualTime`` reads it): a run
of 800 requests takes about 0.1 s. ``run_all`` steps a ManualClock, for the tests written
against it first.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import random
import selectors
from collections import Counter, deque
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, TypeVar, TypeVarTuple

from bulk_delete.clock import MANUAL_WALL_START, Clock, ManualClock
from bulk_delete.config import RateLimit
from bulk_delete.errors import AbortedError, RefusedTooLong
from bulk_delete.send import wire
from bulk_delete.send.answers import Answer, Verdict
from bulk_delete.send.breaker import CircuitBreaker
from bulk_delete.send.limiter import UNCAPPED, SlidingWindowLimiter
from bulk_delete.send.pool import Gates, Tried, until_settled
from bulk_delete.send.retry import RetryPolicy
from bulk_delete.store.ledger import FILE_NAME as LEDGER_FILE
from bulk_delete.store.ledger import WindowLedger

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

# ------------------------------------------------------------------ virtual time


STILL_TURNS = 10_000  # turns of the loop in a row at one instant: a spin (a run: 9 at most)


class _Selector(selectors.DefaultSelector):
    """Never blocks: a wait for the next timer moves virtual time there instead."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self._still = 0  # turns of the loop since virtual time last moved

    def select(self, timeout: float | None = None) -> list[Any]:
        if timeout is None:  # nothing is ready and no timer is set (no real I/O here)
            raise RuntimeError("the simulation waits for something that never comes")
        before = self.now
        self.now += timeout
        self._still = 0 if self.now > before else self._still + 1
        if self._still > STILL_TURNS:  # a failure, not a hang
            raise RuntimeError(f"virtual time stood still at {self.now!r} for {STILL_TURNS} turns")
        return []


class _VirtualLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self._virtual = _Selector()
        super().__init__(self._virtual)

    def time(self) -> float:
        return self._virtual.now

    def call_at(
        self,
        when: float,
        callback: Callable[[*Ts], object],
        *args: *Ts,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        """asyncio fires a timer due within the clock's resolution (1 ns) at once. A real
        clock is past it a moment later; virtual time, while another task is ready, is not: a
        limiter's wait a rounding step above zero (5.7e-14 s at 266 s) woke to the same wait,
        and two purges on one ledger kept each other ready for ever. Virtual time moves to such
        a timer, as a real clock would."""
        if 0.0 < when - self._virtual.now <= self._clock_resolution:  # type: ignore[attr-defined]
            self._virtual.now = when
        return super().call_at(when, callback, *args, context=context)


def simulate(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on an event loop of virtual time, from 0.0."""
    loop = _VirtualLoop()
    try:
        return loop.run_until_complete(main)
    finally:
        loop.close()


class VirtualTime:
    """The Clock of a ``simulate``d run (made inside it): the loop's own time, its own sleep."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wall_offset = MANUAL_WALL_START - self._loop.time()

    def now(self) -> float:
        return self._loop.time()

    __call__ = now

    def wall(self) -> float:
        return self._loop.time() + self._wall_offset

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


# ------------------------------------------------------------------ the server


class SimWindow:
    def __init__(self, rate: RateLimit, clock: Clock, *, count_refusals: bool) -> None:
        self.rate = rate
        self.clock = clock
        self.count_refusals = count_refusals
        self._arrivals: deque[float] = deque()
        self.calls: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()

    def admit(self, caller: str) -> bool:
        now = self.clock.now()
        while self._arrivals and self._arrivals[0] <= now - self.rate.period:
            self._arrivals.popleft()
        self.calls[caller] += 1
        admitted = len(self._arrivals) < self.rate.calls
        if admitted or self.count_refusals:
            self._arrivals.append(now)
        if not admitted:
            self.refused[caller] += 1
        return admitted


# ------------------------------------------------------------------ the neighbour


@dataclass(frozen=True)
class Load:
    """What a neighbour spends over time: ``calls`` per window of the account's limit at its
    busiest. ``on``/``off``: seconds busy, then quiet, over and over (``phase`` seconds into
    the cycle at its start); ``ramp``: seconds from nothing up to ``calls`` and back down;
    ``until``: seconds after which it stops for good; ``burst`` calls at once;
    ``poisson``: arrivals at random (exponential gaps), not on a fixed schedule."""

    calls: float
    on: float = math.inf
    off: float = 0.0
    phase: float = 0.0
    ramp: float = 0.0
    until: float = math.inf
    burst: int = 1
    poisson: bool = False

    def rate(self, t: float) -> float:
        """Calls per window ``t`` seconds after the neighbour began."""
        if t < 0 or t >= self.until:
            return 0.0
        if self.off and (t + self.phase) % (self.on + self.off) >= self.on:
            return 0.0
        if self.ramp:
            x = (t % self.ramp) / self.ramp
            return self.calls * (1.0 - abs(2.0 * x - 1.0))
        return self.calls

    def times(self, period: float, rng: random.Random) -> Iterator[float]:
        """When its calls set off (bursts counted once), seconds after it began."""
        if self.calls <= 0:
            return
        if self.poisson:  # thinning: candidates at the busiest rate, kept at rate(t)/busiest
            busiest = self.calls / period / self.burst
            t = 0.0
            while t < self.until:
                t += rng.expovariate(busiest)
                if rng.random() * self.calls < self.rate(t):
                    yield t
            return
        step, credit, t = 0.05, 0.0, 0.0
        while t < self.until:  # a fixed schedule: a burst whenever the calls owed reach one
            t += step
            owed = self.rate(t) / period / self.burst  # bursts a second, about now
            credit += owed * step
            while credit >= 1.0:
                credit -= 1.0
                yield t - credit / owed  # the instant within the step it fell due

    def __str__(self) -> str:
        parts = [f"{self.calls:g}/window"]
        if self.off:
            parts.append(f"on {self.on:g} s/off {self.off:g} s")
        if self.ramp:
            parts.append(f"ramp {self.ramp:g} s")
        if self.until < math.inf:
            parts.append(f"until {self.until:g} s")
        if self.burst > 1:
            parts.append(f"bursts of {self.burst}")
        if self.poisson:
            parts.append("poisson")
        return ", ".join(parts)


@dataclass
class Neighbour:
    window: SimWindow
    clock: Clock
    load: Load
    jitter: float = 0.05
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    log: list[tuple[float, bool]] = field(default_factory=list)
    calls: set[asyncio.Task[None]] = field(default_factory=set)
    began: float = 0.0

    async def run(self) -> None:
        self.began = self.clock.now()
        for at in self.load.times(self.window.rate.period, self.rng):
            await self.clock.sleep(self.began + at - self.clock.now())
            for _ in range(self.load.burst):
                call = asyncio.get_running_loop().create_task(self._call())
                self.calls.add(call)
                call.add_done_callback(self.calls.discard)

    async def _call(self) -> None:
        await self.clock.sleep(self.rng.uniform(0.0, self.jitter))
        self.log.append((self.clock.now(), self.window.admit("neighbour")))


# ------------------------------------------------------------------ our side


@dataclass(frozen=True)
class Faults:
    """Shares of our calls that fail after the window counted them, as the emulator's
    --transient-rate, --html-rate and --drop-rate do; ``cold``: up to this many seconds more
    before the next call of that worker arrives (a new connection after a reset or a page)."""

    transient: float = 0.0
    html: float = 0.0
    reset: float = 0.0
    cold: float = 0.0

    def draw(self, rng: random.Random) -> str:
        x = rng.random()
        for name, share in (("reset", self.reset), ("html", self.html)):
            if x < share:
                return name
            x -= share
        return "transient" if x < self.transient else ""


NO_FAULTS = Faults()
ISSUE_FAULTS = Faults(transient=0.04, html=0.02, reset=0.02, cold=0.02)  # issue #30's


class _Deaf(SlidingWindowLimiter):
    """A limiter that never hears a refusal: no measurement, no pause (the harness's control)."""

    def refused(
        self,
        limit: RateLimit | None,
        retry_after: float | None = None,
        started: float | None = None,
    ) -> bool:
        return False


class _Even(_Deaf):
    """The oracle's pacer: even, and at what the neighbour's ``load`` leaves in the coming
    window less ``headroom`` (calls a window, fractional; the limit where the neighbour is not
    due). It hears no refusal: it knows the neighbour's schedule, which no pacer does, though
    not its draws (jitter, random arrivals). ``oracle`` chooses the headroom on the trace."""

    def __init__(self, rate: RateLimit, *, clock: Clock, load: Load, headroom: float) -> None:
        super().__init__(rate, clock=clock)
        self.load = load
        self.headroom = headroom
        self._shaped = False

    def _rate_at(self, now: float) -> float:
        steps = 50
        due = max(self.load.rate(now + k * self._period / steps) for k in range(steps + 1))
        if due <= 0:
            return float(self.effective.calls)
        return min(
            float(self.effective.calls), max(0.2, self.effective.calls - due - self.headroom)
        )

    @property
    def spacing(self) -> float:
        pace = self._rate_at(self.clock.now())
        margin = self.margin if pace >= self.effective.calls else 0.0
        return (self._period + margin) / pace

    def _cap(self, now: float) -> int:
        return UNCAPPED  # the spacing alone


@dataclass
class Purge:
    """Our pool in miniature: ``requests`` sent by ``workers`` through ``limiter``, each by
    the pool's own retry loop."""

    window: SimWindow
    clock: Clock
    limiter: SlidingWindowLimiter
    requests: int = 120
    workers: int = 16  # the pool has rate x timeout of them: never the bottleneck
    up: tuple[float, float] = (0.025, 0.125)  # seconds from the start to the server
    down: tuple[float, float] = (0.025, 0.125)  # and from the server back
    name: str = "purge"
    rng: random.Random = field(default_factory=lambda: random.Random(3))
    faults: Faults = NO_FAULTS
    accepted: list[float] = field(default_factory=list)  # arrivals answered "queued"
    admitted: list[float] = field(default_factory=list)  # arrivals the window let in
    starts: list[float] = field(default_factory=list)
    first_calls: list[float] = field(default_factory=list)  # each request's first start
    refusals: int = 0

    async def run(self) -> None:
        left = iter(range(self.requests))
        self.first_calls.clear()
        gates = Gates(
            CircuitBreaker(self.clock, give_up_after=600.0),
            self.limiter,
            RetryPolicy(max_attempts=50),
            self.clock,
            self.rng,
        )

        async def worker() -> None:
            cold = [0.0]  # this worker's next call opens a new connection: it arrives later
            for _ in left:
                tried: Tried[None] = Tried()
                call = partial(self._call, cold, tried)
                await until_settled(call, gates, tried, fail=_raise)

        workers = [asyncio.create_task(worker()) for _ in range(self.workers)]
        try:
            await asyncio.gather(*workers)
        finally:  # one gave up (the breaker): the others end with it
            for each in workers:
                each.cancel()

    async def _call(self, cold: list[float], tried: Tried[None]) -> tuple[Answer, None]:
        self.starts.append(self.clock.now())
        if tried.answer is None:  # the request's first call
            self.first_calls.append(self.clock.now())
        up, down = self.rng.uniform(*self.up), self.rng.uniform(*self.down)
        if cold[0]:  # a new connection's handshake before the request goes out
            await self.clock.sleep(cold[0])
            cold[0] = 0.0
        wire.went_out()
        await self.clock.sleep(up)
        arrived = self.clock.now()
        if not self.window.admit(self.name):
            self.refusals += 1
            await self.clock.sleep(down)
            rate = self.window.rate
            message = f"API calls exceeded the limit of {rate.calls} in {rate.period:g} second(s)"
            return Answer(Verdict.RATE_LIMITED, 429, message, limit=self.window.rate), None
        self.admitted.append(arrived)
        fault = self.faults.draw(self.rng)
        if fault in ("reset", "html"):
            cold[0] = self.rng.uniform(0.0, self.faults.cold)
        if fault:
            await self.clock.sleep(0.0 if fault == "reset" else down)
            return Answer(Verdict.TRANSIENT, None if fault == "reset" else 500, fault), None
        await self.clock.sleep(down)
        self.accepted.append(arrived)
        return Answer(Verdict.QUEUED, 200, "queued"), None

    @property
    def per_window(self) -> float:
        """Accepted calls a window as the server saw them: (n - 1) gaps over the span."""
        span = self.accepted[-1] - self.accepted[0]
        return (len(self.accepted) - 1) / span * self.window.rate.period


def _raise(error: AbortedError) -> None:
    raise error


async def run_all(clock: ManualClock, *purges: Purge, step: float = 0.5) -> None:
    tasks = [asyncio.create_task(purge.run()) for purge in purges]
    began = clock.now()
    while not all(task.done() for task in tasks):
        await clock.advance(step)
        if clock.now() - began > 3600:
            raise RuntimeError("the simulation never finished")
    for task in tasks:
        task.result()


# ------------------------------------------------------------------ a run, measured


@dataclass(frozen=True)
class Scenario:
    """One run beside one neighbour (``load`` None: an idle account)."""

    load: Load | None = Load(10)
    count_refusals: bool = True
    limit: str = "25/5s"
    rate: str = "25/5s"
    requests: int = 120
    start_at: float = 7.0  # seconds the neighbour was there before the purge began
    up: tuple[float, float] = (0.025, 0.125)  # our calls' way to the server
    down: tuple[float, float] = (0.025, 0.125)  # and the answer's way back
    jitter: float = 0.05  # the neighbour's
    faults: Faults = NO_FAULTS
    seed: int | None = None  # None: the fixed draws the first tests were written with
    runs: int = 1  # purges at once, on one ledger when ``ledger`` is given
    ledger: Path | None = None
    hears: bool = True  # False: refusals never reach the limiter
    oracle: float | None = None  # paced by the oracle at this headroom, not by our limiter

    def __str__(self) -> str:
        load = "idle" if self.load is None else str(self.load)
        counted = "counted" if self.count_refusals else "not counted"
        return f"{load}; {self.limit}, refusals {counted}; {self.requests} requests"


@dataclass(frozen=True)
class Shared:
    """What one run beside a neighbour measured."""

    share_of_free: float  # our admitted calls a window against what the neighbour left
    pace: float  # our admitted calls a window while every request had had a call, of the limit
    refusals: int  # on the whole account
    neighbour_calls: int
    neighbour_refused: int
    began: float  # the neighbour's first instant, virtual time
    admitted: tuple[float, ...]  # every purge's admitted arrivals, in order
    lost: tuple[float, ...]  # when the neighbour's refused calls arrived (the whole trace)
    period: float
    calls: int  # the limit's

    @property
    def neighbour_loss(self) -> float:
        return self.neighbour_refused / self.neighbour_calls if self.neighbour_calls else 0.0

    def back_at(self, after: float, share: float = 0.9) -> float:
        """Seconds from ``after`` (since the neighbour began) until a window of our admitted
        calls holds ``share`` of the limit (inf: never)."""
        need = math.ceil(share * self.calls - 1e-9)
        times = [t - self.began for t in self.admitted if t - self.began > after]
        for last in range(need - 1, len(times)):
            if times[last] - times[last - need + 1] < self.period:
                return times[last] - after
        return math.inf


async def _run(scenario: Scenario) -> tuple[Shared, list[Purge]]:
    clock = VirtualTime()
    limit = RateLimit.parse(scenario.limit)
    window = SimWindow(limit, clock, count_refusals=scenario.count_refusals)
    seed = scenario.seed
    theirs, ours = (7, 3) if seed is None else (2 * seed + 11, 2 * seed + 12)
    other = None
    if scenario.load is not None:
        other = Neighbour(
            window, clock, scenario.load, jitter=scenario.jitter, rng=random.Random(theirs)
        )
        task = asyncio.create_task(other.run())
    await clock.sleep(scenario.start_at)
    purges = [
        _purge(scenario, window, clock, n, random.Random(ours + 1000 * n))
        for n in range(scenario.runs)
    ]
    try:
        await asyncio.gather(*(purge.run() for purge in purges))
    finally:
        for purge in purges:
            if isinstance(purge.limiter.shared, WindowLedger):
                purge.limiter.shared.close()
        if other is not None:  # a purge that gave up leaves the neighbour running too
            for running in (task, *other.calls):
                running.cancel()
            await asyncio.sleep(0)
    return _measured(scenario, window, purges, other), purges


def _purge(
    scenario: Scenario, window: SimWindow, clock: Clock, n: int, rng: random.Random
) -> Purge:
    account = None
    if scenario.ledger is not None:
        account = WindowLedger(scenario.ledger, "acct", wall=clock.now, run=f"{n}")
    rate = RateLimit.parse(scenario.rate)
    limiter: SlidingWindowLimiter
    if scenario.oracle is not None and scenario.load is not None:
        limiter = _Even(rate, clock=clock, load=scenario.load, headroom=scenario.oracle)
    else:
        kind = SlidingWindowLimiter if scenario.hears else _Deaf
        limiter = kind(rate, clock=clock, shared=account)
    return Purge(
        window,
        clock,
        limiter,
        requests=scenario.requests,
        up=scenario.up,
        down=scenario.down,
        name="purge" if scenario.runs == 1 else f"purge {n + 1}",
        rng=rng,
        faults=scenario.faults,
    )


def _measured(
    scenario: Scenario, window: SimWindow, purges: list[Purge], other: Neighbour | None
) -> Shared:
    admitted = sorted(at for purge in purges for at in purge.admitted)
    first, last = admitted[0], admitted[-1]
    period, calls = window.rate.period, window.rate.calls
    began = other.began if other is not None else 0.0
    load = scenario.load
    steps = max(1, int((last - first) / 0.1))
    used = (
        0.0
        if load is None
        else sum(
            load.rate(first - began + (k + 0.5) * (last - first) / steps) for k in range(steps)
        )
        / steps
    )
    ours = (len(admitted) - 1) / (last - first) * period
    # The pace while there was work for every slot: until the last request's first call (then
    # only retries of a few failed ones are left, waiting out the retry policy's backoff).
    busy = max(purge.first_calls[-1] for purge in purges)
    while_busy = sum(1 for at in admitted if at <= busy)
    during = [ok for at, ok in (other.log if other else []) if first <= at <= last]
    return Shared(
        share_of_free=ours / (calls - used),
        pace=(while_busy - 1) / (busy - first) * period / calls,
        refusals=sum(window.refused.values()),
        neighbour_calls=len(during),
        neighbour_refused=during.count(False),
        began=began,
        admitted=tuple(admitted),
        lost=tuple(at for at, ok in (other.log if other else []) if not ok),
        period=period,
        calls=calls,
    )


def run(scenario: Scenario) -> tuple[Shared, list[Purge]]:
    """One scenario in virtual time (sync: its own event loop)."""
    return simulate(_run(scenario))


async def beside_a_neighbour(
    *,
    count_refusals: bool,
    limit: str = "25/5s",
    neighbour: str | None = "10/5s",
    burst: int = 1,
    rate: str = "25/5s",
    requests: int = 120,
    start_at: float = 7.0,
    headroom: bool = True,
    seed: int | None = None,
) -> tuple[Shared, Purge]:
    """One purge beside one steady neighbour (for async tests: the run has its own loop, in a
    thread). ``seed`` draws both sides' jitter afresh (None: the fixed draws the tests were
    first written with)."""
    load = None
    if neighbour is not None:
        spends = RateLimit.parse(neighbour)
        load = Load(spends.calls * RateLimit.parse(limit).period / spends.period, burst=burst)
    scenario = Scenario(
        load=load,
        count_refusals=count_refusals,
        limit=limit,
        rate=rate,
        requests=requests,
        start_at=start_at,
        seed=seed,
        hears=headroom,
    )
    shared, purges = await asyncio.to_thread(run, scenario)
    return shared, purges[0]


async def on_one_ledger(
    folder: Path,
    *,
    count_refusals: bool,
    runs: int = 2,
    requests: int = 60,
    start_at: float = 7.0,
    seed: int | None = None,
) -> tuple[Shared, list[Purge]]:
    """``runs`` purges at once on one machine, sharing one ledger file in ``folder`` (its wall
    the same virtual clock), beside a steady neighbour spending 10 of 25/5s; ``share_of_free``
    is theirs together, first admitted call to last."""
    folder.mkdir(parents=True, exist_ok=True)
    scenario = Scenario(
        count_refusals=count_refusals,
        requests=requests,
        start_at=start_at,
        seed=seed,
        runs=runs,
        ledger=folder / LEDGER_FILE,
    )
    return await asyncio.to_thread(run, scenario)


# ------------------------------------------------------------------ generated load

KINDS = ("steady", "on/off", "bursts", "ramp", "poisson", "stops")


def draw(seed: int, *, requests: int = 600) -> Scenario:
    """One scenario of the generated family, all of it from ``seed`` (the kind in turn): a
    neighbour spending 6 to 12 of 25 calls per 5 s steadily, on and off at several periods
    (busy 20 to 60 s, quiet 10 to 60 s), in bursts of 2 to 4, up and down a ramp as over a
    day (up to 8 to 15, over 2 to 10 minutes), at random (Poisson, 2 to 6), or steadily
    for one to three minutes of the run, then stops; either window model; latency and jitter
    of any size; transient faults in a quarter of them."""
    rng = random.Random(seed)
    kind = KINDS[seed % len(KINDS)]
    calls = float(rng.randint(6, 12))
    load = Load(calls)
    if kind == "on/off":
        on, off = rng.choice((20.0, 40.0, 60.0)), rng.choice((10.0, 20.0, 40.0, 60.0))
        load = Load(calls, on=on, off=off, phase=rng.uniform(0, on + off))
    elif kind == "bursts":
        load = Load(calls, burst=rng.randint(2, 4))
    elif kind == "ramp":
        load = Load(rng.uniform(8, 15), ramp=rng.uniform(120, 600))
    elif kind == "poisson":
        load = Load(float(rng.randint(2, 6)), poisson=True)
    start_at = rng.uniform(2.0, 60.0)
    if kind == "stops":  # after a minute to three of the run
        load = Load(calls, until=start_at + rng.uniform(60, 180))
    low = rng.uniform(0.001, 0.08)
    return Scenario(
        load=load,
        count_refusals=rng.random() < 0.5,
        requests=requests,
        start_at=start_at,
        up=(low, low + rng.uniform(0.0, 0.03)),
        down=(low, low + rng.uniform(0.0, 0.2)),
        jitter=rng.uniform(0.0, 0.1),
        faults=ISSUE_FAULTS if rng.random() < 0.25 else NO_FAULTS,
        seed=seed,
    )


# ------------------------------------------------------------------ the oracle


def oracle(scenario: Scenario, *, loss: float = 0.05, steps: int = 12) -> tuple[float, Shared]:
    """The oracle's best run on ``scenario``: paced evenly at what the neighbour's schedule
    leaves less a headroom, chosen on this very trace (its window model, latency, faults and
    draws) to take the most of the free budget while the neighbour loses at most ``loss`` of
    its calls. Beside a steady, bursty or random neighbour that is the best constant even pace.
    Bisection finds the least headroom within ``loss``; a little more may take more all the
    same (where refusals count, a deaf pace a shade above the free budget fills the window with
    its own refused calls), so a few above it are tried too. Returns the headroom (calls a
    window) and that run."""
    low, high = -3.0, float(RateLimit.parse(scenario.limit).calls)  # too little, enough
    runs: dict[float, Shared] = {}
    for _ in range(steps):
        headroom = (low + high) / 2
        shared = _even_run(scenario, headroom)
        if shared is not None and shared.neighbour_loss <= loss:
            high, runs[headroom] = headroom, shared
        else:
            low = headroom
    for more in (0.25, 0.5, 0.75, 1.0, 1.5, 2.0):
        shared = _even_run(scenario, high + more)
        if shared is not None and shared.neighbour_loss <= loss:
            runs[high + more] = shared
    if not runs:
        runs[high] = run(replace(scenario, oracle=high))[0]
    best = max(runs, key=lambda headroom: runs[headroom].share_of_free)
    return best, runs[best]


def _even_run(scenario: Scenario, headroom: float) -> Shared | None:
    """The oracle's run at ``headroom``; None when so far above the free budget that every
    call was refused for the breaker's give-up time."""
    try:
        return run(replace(scenario, oracle=headroom))[0]
    except RefusedTooLong:
        return None
