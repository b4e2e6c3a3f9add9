"""Time comes from outside: the limiter, the backoff and the emulator's window read a Clock,
so tests step a ManualClock instead of sleeping."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """Monotonic time (the event loop's own clock) and real sleeps."""

    def now(self) -> float:
        return time.monotonic()

    __call__ = now

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class ManualClock:
    """Time moves only when a test calls ``advance``; sleepers wake in deadline order."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def now(self) -> float:
        return self._now

    __call__ = now

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
