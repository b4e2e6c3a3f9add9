"""A server window, a neighbour and our limiter in virtual time (ManualClock): the sharing
bars of issue #20 measured in milliseconds of test time instead of minutes of benchmark.

The server is a strict sliding-window log, like the emulator's: at most N arrivals in any
W seconds, refused calls counted in the window too (``count_refusals``) or not. The neighbour
is the customer's own integration on a fixed schedule (absolute deadlines, no drift), each call
arriving after a jittered latency, optionally in bursts. Our side is the pool's loop in
miniature: workers take a slot from the limiter, the call arrives after a latency, a refusal
(which names the server's limit, as LeadSquared's do) goes to ``limiter.refused`` and the same
request goes again.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path

from bulk_delete.clock import ManualClock
from bulk_delete.config import RateLimit
from bulk_delete.send.limiter import SlidingWindowLimiter
from bulk_delete.store.ledger import FILE_NAME as LEDGER_FILE
from bulk_delete.store.ledger import WindowLedger


class SimWindow:
    def __init__(self, rate: RateLimit, clock: ManualClock, *, count_refusals: bool) -> None:
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


@dataclass
class Neighbour:
    """Calls at t0 + k·gap (bursts of ``burst`` every burst·gap), whatever happened before."""

    window: SimWindow
    clock: ManualClock
    rate: RateLimit
    burst: int = 1
    jitter: float = 0.05
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    log: list[tuple[float, bool]] = field(default_factory=list)
    calls: set[asyncio.Task[None]] = field(default_factory=set)

    async def run(self) -> None:
        gap = self.rate.period / self.rate.calls * self.burst
        start = self.clock.now()
        tick = 0
        while True:
            tick += 1
            await self.clock.sleep(start + tick * gap - self.clock.now())
            for _ in range(self.burst):
                call = asyncio.get_running_loop().create_task(self._call())
                self.calls.add(call)
                call.add_done_callback(self.calls.discard)

    async def _call(self) -> None:
        await self.clock.sleep(self.rng.uniform(0.0, self.jitter))
        self.log.append((self.clock.now(), self.window.admit("neighbour")))


@dataclass
class Purge:
    """Our pool in miniature: ``requests`` sent by ``workers`` through ``limiter``."""

    window: SimWindow
    clock: ManualClock
    limiter: SlidingWindowLimiter
    requests: int = 120
    workers: int = 4
    latency: tuple[float, float] = (0.05, 0.25)
    name: str = "purge"
    rng: random.Random = field(default_factory=lambda: random.Random(3))
    accepted: list[float] = field(default_factory=list)
    refusals: int = 0
    learn: bool = True  # False: refusals never reach the limiter (no measurement, no headroom)

    async def run(self) -> None:
        left = iter(range(self.requests))

        async def worker() -> None:
            for _ in left:
                while not await self._send():
                    pass

        await asyncio.gather(*(worker() for _ in range(self.workers)))

    async def _send(self) -> bool:
        started = await self.limiter.acquire()
        await self.clock.sleep(self.rng.uniform(*self.latency) / 2)
        admitted = self.window.admit(self.name)
        arrived = self.clock.now()
        await self.clock.sleep(self.rng.uniform(*self.latency) / 2)
        if admitted:
            self.accepted.append(arrived)
            return True
        self.refusals += 1
        if self.learn:
            # "exceeded the limit of N in W second(s)"
            self.limiter.refused(self.window.rate, started=started)
        return False

    @property
    def per_window(self) -> float:
        """Accepted calls a window as the server saw them: (n - 1) gaps over the span."""
        span = self.accepted[-1] - self.accepted[0]
        return (len(self.accepted) - 1) / span * self.window.rate.period


async def run_all(clock: ManualClock, *purges: Purge, step: float = 0.5) -> None:
    tasks = [asyncio.create_task(purge.run()) for purge in purges]
    began = clock.now()
    while not all(task.done() for task in tasks):
        await clock.advance(step)
        if clock.now() - began > 3600:
            raise RuntimeError("the simulation never finished")
    for task in tasks:
        task.result()


@dataclass(frozen=True)
class Shared:
    """What one run beside a neighbour measured."""

    share_of_free: float
    refusals: int  # on the whole account
    neighbour_calls: int
    neighbour_refused: int

    @property
    def neighbour_loss(self) -> float:
        return self.neighbour_refused / self.neighbour_calls


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
    """One purge beside one neighbour. ``seed`` draws both sides' jitter afresh (None: the
    fixed draws the tests were first written with)."""
    shared, purges = await _beside(
        count_refusals=count_refusals,
        limit=limit,
        neighbour=neighbour,
        burst=burst,
        rate=rate,
        requests=requests,
        start_at=start_at,
        headroom=headroom,
        seed=seed,
    )
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
    the same ManualClock), beside a steady neighbour spending 10 of 25/5s; ``share_of_free``
    is theirs together, first accepted call to last."""
    return await _beside(
        count_refusals=count_refusals,
        requests=requests,
        start_at=start_at,
        seed=seed,
        runs=runs,
        ledger=folder / LEDGER_FILE,
    )


async def _beside(
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
    runs: int = 1,
    ledger: Path | None = None,
) -> tuple[Shared, list[Purge]]:
    clock = ManualClock(start=0.0)
    window = SimWindow(RateLimit.parse(limit), clock, count_refusals=count_refusals)
    theirs, ours = (7, 3) if seed is None else (2 * seed + 11, 2 * seed + 12)
    other = None
    if neighbour is not None:
        other = Neighbour(
            window, clock, RateLimit.parse(neighbour), burst=burst, rng=random.Random(theirs)
        )
        task = asyncio.create_task(other.run())
        await clock.advance(start_at)  # the neighbour was there first
    purges = []
    for n in range(runs):
        account = None if ledger is None else WindowLedger(ledger, "acct", wall=clock, run=f"{n}")
        limiter = SlidingWindowLimiter(RateLimit.parse(rate), clock=clock, shared=account)
        name = "purge" if runs == 1 else f"purge {n + 1}"
        rng = random.Random(ours + 1000 * n)
        purges.append(
            Purge(window, clock, limiter, requests=requests, learn=headroom, name=name, rng=rng)
        )
    began = clock.now()
    try:
        await run_all(clock, *purges)
    finally:
        for purge in purges:
            if isinstance(purge.limiter.shared, WindowLedger):
                purge.limiter.shared.close()
    accepted = sorted(at for purge in purges for at in purge.accepted)
    ended = accepted[-1]
    if other is not None:
        for running in (task, *other.calls):
            running.cancel()
        await clock.advance(0.0)
    during = [ok for at, ok in (other.log if other else []) if began <= at <= ended]
    calls = window.rate.calls - (RateLimit.parse(neighbour).calls if neighbour else 0)
    together = (len(accepted) - 1) / (ended - accepted[0]) * window.rate.period
    return (
        Shared(
            share_of_free=together / calls,
            refusals=sum(window.refused.values()),
            neighbour_calls=len(during),
            neighbour_refused=during.count(False),
        ),
        purges,
    )
