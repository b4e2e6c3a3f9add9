"""Helpers shared by tests (fixtures live in conftest.py)."""

from __future__ import annotations

import asyncio
import random
import shlex
from pathlib import Path
from typing import TypedDict

import pexpect

from bulk_delete.clock import Clock, ManualClock, SystemClock
from bulk_delete.send.limiter import SlidingWindowLimiter


def max_in_any_window(starts: list[float], period: float) -> int:
    """The most starts inside any half-open window [t, t + period)."""
    starts = sorted(starts)
    best, left = 0, 0
    for right, start in enumerate(starts):
        while start - starts[left] >= period:
            left += 1
        best = max(best, right - left + 1)
    return best


async def drive(
    limiter: SlidingWindowLimiter,
    clock: ManualClock,
    workers: int,
    calls: int,
    latency: tuple[float, float] = (0.0, 0.0),
    seed: int = 1,
) -> list[float]:
    """``calls`` acquisitions of ``limiter`` by ``workers`` workers, each call taking a
    random ``latency`` in virtual time; returns when each started."""
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


class QuickClock(SystemClock):
    """Real time, but every sleep a hundredth as long: backoff on the real emulator without
    the wait. Only for runs with the limiter off (it reads the same clock)."""

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / 100)


class RealTime(TypedDict):
    """What the CLI passes a command: the machine's clock and a fresh source of chance."""

    clock: Clock
    rng: random.Random


def real_time() -> RealTime:
    """``run.run(spec, keys, session=session, hooks=hooks, **real_time())``"""
    return {"clock": SystemClock(), "rng": random.Random()}


def typed(line: str, folder: Path, env: dict[str, str]) -> int:
    """A command line typed on a terminal in ``folder``, its confirmation answered yes as a
    person would; its exit status."""
    words = shlex.split(line)
    child = pexpect.spawn(
        words[0], words[1:], cwd=str(folder), env=env, encoding="utf-8", timeout=90
    )
    if child.expect([r"\[y/N\]", pexpect.EOF]) == 0:
        child.sendline("y")
        child.expect(pexpect.EOF)
    child.close()
    status: int | None = child.exitstatus
    assert status is not None, f"{line}\n{child.before}"
    return status
