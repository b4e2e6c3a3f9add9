"""A strict sliding-window limiter: never more than N call starts in any W-second window.

Why not ``aiolimiter.AsyncLimiter(25, 5)``: a leaky bucket admits a full bucket at once and
then drips, so up to 49 calls can start in the first 5 s — exactly what a strict server window
answers with 429s. Here every start is logged and call N+1 waits until call 1 is one window
(plus a small safety margin) old. The margin absorbs network jitter: a server counts arrivals,
and a call that set off first can arrive a little later than the one after it.

Starts are also paced evenly, (W + margin) / N apart, rather than fired in bursts of N: the
budget is shared by every integration on the account, and a burst would spend all of it in an
instant. The window log stays as the hard guarantee (a timer may wake a little early).

Reads time only from the Clock it is given, so tests step a ManualClock instead of sleeping.
"""

from __future__ import annotations

import asyncio
from collections import deque

from .clock import Clock
from .config import RateLimit

MARGIN_SHARE = 0.02  # of the window: 100 ms at 25/5s, i.e. 98 % of the limit at best
MIN_MARGIN = 0.02


def default_margin(rate: RateLimit) -> float:
    return max(MIN_MARGIN, MARGIN_SHARE * rate.period)


class SlidingWindowLimiter:
    def __init__(self, rate: RateLimit, *, clock: Clock, margin: float | None = None) -> None:
        self.rate = rate
        self.clock = clock
        self.margin = default_margin(rate) if margin is None else margin
        self._starts: deque[float] = deque(maxlen=max(1, rate.calls))
        self._paused_until = float("-inf")
        self._next_start = float("-inf")
        self.spacing = 0.0 if rate.unlimited else (rate.period + self.margin) / rate.calls
        self._lock = asyncio.Lock()  # FIFO: callers start in the order they asked

    async def acquire(self) -> None:
        """Wait until one more call may start, and count it as started."""
        if self.rate.unlimited:
            return
        async with self._lock:
            while (wait := self._wait(self.clock.now())) > 0:
                await self.clock.sleep(wait)
            now = self.clock.now()
            self._starts.append(now)
            self._next_start = now + self.spacing

    def _wait(self, now: float) -> float:
        wait = max(self._paused_until, self._next_start) - now
        if len(self._starts) == self.rate.calls:
            wait = max(wait, self._starts[0] + self.rate.period + self.margin - now)
        return wait

    def pause(self, seconds: float | None = None) -> None:
        """After a 429 nobody starts for one window (or what Retry-After asked)."""
        window = self.rate.period + self.margin if seconds is None else seconds
        self._paused_until = max(self._paused_until, self.clock.now() + window)
