"""A call counts in the window from when it went on the wire (send/wire.py): late after a new
connection, and again when the HTTP client sends it again by itself."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from bulk_delete.clock import ManualClock
from bulk_delete.config import Credentials, RateLimit, SendSettings
from bulk_delete.emulator.server import DEMO_ACCESS_KEY, DEMO_SECRET_KEY
from bulk_delete.send.breaker import CircuitBreaker
from bulk_delete.send.client import LeadSquaredClient, open_session
from bulk_delete.send.limiter import SlidingWindowLimiter
from bulk_delete.send.pool import Gates, Tried, until_settled
from bulk_delete.send.retry import RetryPolicy

KEYS = Credentials(access_key=DEMO_ACCESS_KEY, secret_key=DEMO_SECRET_KEY)
RNG = random.Random(1)


async def test_a_get_the_http_client_sends_again_is_counted_twice(emulator: Any) -> None:
    """aiohttp sends an idempotent GET (the preflight's UserByAccessKey, --check-codes'
    GetActivitySetting) once more by itself when the connection drops under it. The server
    counted both: so must the window. Counted once, a window of 2 let the next call start a
    spacing later, into a window the server already held full."""
    emu = await emulator(rate="off", drop_rate=1.0)  # every connection dropped unanswered
    clock = ManualClock(start=0.0)
    limiter = SlidingWindowLimiter(RateLimit.parse("2/0.2s"), clock=clock)
    gates = Gates(CircuitBreaker(clock, give_up_after=60.0), limiter, RetryPolicy(), clock, RNG)
    tried: Tried[dict[str, Any]] = Tried()
    settings = SendSettings(rate=limiter.configured, workers=2, timeout=5.0)
    async with open_session(settings) as session:
        client = LeadSquaredClient(session, emu.url, KEYS)
        await until_settled(
            client.user_by_access_key, gates, tried, fail=_raise, stopping=lambda: True
        )
    assert tried.answer is not None
    assert tried.answer.http_status is None  # reset, no answer
    assert emu.calls == 2  # one attempt of ours, two requests on the server
    waiting = asyncio.create_task(limiter.acquire())
    await clock.advance(0.2)  # past the spacing
    assert not waiting.done()  # the window (0.2 s and its margin) holds both requests
    await clock.advance(0.05)
    assert waiting.done()


def _raise(error: Exception) -> None:
    raise error


async def test_a_call_sent_late_counts_from_when_it_went_out() -> None:
    """A call whose connection had to be opened first (after a reset, say) reaches the server
    later than its start: its start moves to when it went out, so the call a window after it
    waits for it to leave the server's window, not for its start to."""
    clock = ManualClock(start=0.0)
    limiter = SlidingWindowLimiter(RateLimit.parse("2/0.2s"), clock=clock, margin=0.0)
    first = await limiter.acquire()
    await clock.advance(0.05)  # the handshake of a new connection
    assert limiter.on_the_wire(first) == 0.05
    second = asyncio.create_task(limiter.acquire())  # a spacing (0.1 s) after the first
    await clock.advance(0.06)
    assert second.done()
    third = asyncio.create_task(limiter.acquire())
    await clock.advance(0.11)  # 0.22 s: a window after the first's start, not after it went out
    assert not third.done()
    await clock.advance(0.04)
    assert third.done()
