"""Time comes from outside: what paces, waits or stamps reads a Clock, so tests step a
ManualClock instead of sleeping.

``now()`` is monotonic seconds, for pacing and waits; ``wall()`` is epoch seconds (UTC), for
what a file, a log or another process reads (the machine's ledger, a checkpoint's stamps, a
listing's end). The CLI makes one SystemClock per command and passes it down; send/, store/
and commands/ never read the machine's clock themselves (tests/test_layers.py holds that).

    clock = SystemClock()        # or ManualClock() in a test
    await clock.sleep(0.2); clock.now(); utc(clock)
"""

from __future__ import annotations

import asyncio
import datetime as dt
import heapq
import itertools
import time
from typing import Protocol

# Where a ManualClock's wall starts: 2026-01-01 00:00:00 UTC, a fixed day for every test.
MANUAL_WALL_START = 1_767_225_600.0


class Clock(Protocol):
    def now(self) -> float: ...

    def wall(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


def system_wall() -> float:
    """The machine's wall clock (epoch seconds): the default of a store object that stamps,
    when no command gave it its clock's ``wall``."""
    return time.time()


def utc(clock: Clock) -> dt.datetime:
    """The clock's wall time as an aware UTC datetime."""
    return dt.datetime.fromtimestamp(clock.wall(), dt.UTC)


def utc_text(seconds: float) -> str:
    """Epoch seconds as the API writes dates: ``YYYY-MM-DD HH:MM:SS`` (UTC)."""
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


class SystemClock:
    """Monotonic time (the event loop's own clock), the machine's wall time, real sleeps."""

    def now(self) -> float:
        return time.monotonic()

    __call__ = now

    def wall(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class ManualClock:
    """Time moves only when a test calls ``advance``; sleepers wake in deadline order. Its
    wall moves with it, from ``wall_start`` (epoch seconds)."""

    def __init__(self, start: float = 1000.0, wall_start: float = MANUAL_WALL_START) -> None:
        self._now = start
        self._wall_offset = wall_start - start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def now(self) -> float:
        return self._now

    __call__ = now

    def wall(self) -> float:
        return self._now + self._wall_offset

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._order), future))
        await future

    def jump(self, seconds: float) -> None:
        """Move time without waking anyone (for code that only reads the clock)."""
        self._now += seconds

    @property
    def next_deadline(self) -> float | None:
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)  # cancelled sleepers
        return self._sleepers[0][0] if self._sleepers else None

    async def advance(self, seconds: float) -> None:
        """Move time forward, waking each sleeper at its own deadline and letting it run."""
        target = self._now + seconds
        await _settle()
        while (deadline := self.next_deadline) is not None and deadline <= target:
            self._now = max(self._now, deadline)
            while self._sleepers and self._sleepers[0][0] <= self._now:
                _, _, future = heapq.heappop(self._sleepers)
                if not future.done():
                    future.set_result(None)
            await _settle()
        self._now = target
        await _settle()

    async def run_until_idle(self, limit: float = 1e6) -> None:
        """Jump from deadline to deadline until nobody sleeps (virtual time, no waiting)."""
        start = self._now
        await _settle()
        while (deadline := self.next_deadline) is not None:
            if deadline - start > limit:
                raise RuntimeError(f"still sleeping after {limit} virtual seconds")
            await self.advance(deadline - self._now)


async def _settle(rounds: int = 20) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)
