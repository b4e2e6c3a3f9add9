"""The worker pool and the retry loop on a ManualClock, with scripted answers: senders that
answer each lead from a script, read calls that are refused until a virtual moment, a real
checkpoint file, and a way to step virtual time until a task ends."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from bulk_delete.clock import ManualClock
from bulk_delete.config import RateLimit
from bulk_delete.records import Request
from bulk_delete.send.answers import Answer, Verdict
from bulk_delete.send.limiter import SlidingWindowLimiter
from bulk_delete.send.pool import Reply, call_once
from bulk_delete.send.retry import RetryPolicy
from bulk_delete.store.checkpoint import Checkpoint

OK = Answer(Verdict.QUEUED, 200, "queued")
LIMITED = Answer(Verdict.RATE_LIMITED, 429, "API calls exceeded the limit")
FLAKY = Answer(Verdict.TRANSIENT, 502, "HTTP 502 with a non-JSON body")
MX = Answer(Verdict.FAILED, 500, "MXInvalidActivityEventException: system")
BAD = Answer(Verdict.FAILED, 400, "ProspectId is mandatory")
DENIED = Answer(Verdict.FATAL, 401, "MXUnAuthorizedAccessException: Invalid keys")


def guid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


class Script:
    """Answers per lead, in order; the last one repeats. Each call takes ``latency``."""

    def __init__(
        self, clock: ManualClock, script: dict[int, Sequence[Answer]], latency: float = 0.2
    ) -> None:
        self.clock = clock
        self.script = {guid(n): list(answers) for n, answers in script.items()}
        self.latency = latency
        self.calls: Counter[str] = Counter()
        self.starts: list[float] = []

    async def delete_activities(self, body_json: str) -> Answer:
        lead = body_json.split('"ProspectId":"')[1][:36]
        self.starts.append(self.clock.now())
        index = self.calls[lead]
        self.calls[lead] += 1
        await self.clock.sleep(self.latency)
        answers = self.script.get(lead, [OK])
        return answers[min(index, len(answers) - 1)]


def make_checkpoint(path: Path, leads: int) -> Checkpoint:
    checkpoint = Checkpoint.open(path)
    requests = (Request(guid(n), ("201",), "", "", "", (n + 2,)) for n in range(leads))
    checkpoint.store_plan(requests, [], source=str(path), fingerprint="f", options={}, extra={})
    return checkpoint


VIRTUAL_LIMIT = 3600.0  # virtual seconds after which a test calls a wait unbounded
BODY = {"ProspectId": "x"}


async def until_done(clock: ManualClock, task: asyncio.Task[Any]) -> None:
    """Step virtual time until ``task`` ends; fail instead of spinning for ever."""
    while not task.done():
        try:
            await clock.run_until_idle(limit=VIRTUAL_LIMIT)
        except RuntimeError:
            task.cancel()
            pytest.fail(f"still waiting after {VIRTUAL_LIMIT:g} virtual seconds")
        await asyncio.sleep(0)


class Scripted:
    """A read-only call answering ``answer`` until ``until`` (virtual time), then data."""

    def __init__(self, clock: ManualClock, answer: Answer, until: float = float("inf")) -> None:
        self.clock, self.answer, self.until = clock, answer, until
        self.calls = 0

    async def __call__(self) -> Reply:
        self.calls += 1
        await self.clock.sleep(0.2)
        if self.clock.now() < self.until:
            return self.answer, {}
        return OK, BODY


async def once(clock: ManualClock, call: Scripted, *, give_up_after: float) -> Reply:
    limiter = SlidingWindowLimiter(RateLimit.parse("25/5s"), clock=clock)
    retry = RetryPolicy(max_attempts=3, give_up_after=give_up_after)
    task = asyncio.create_task(
        call_once(limiter, call, retry=retry, clock=clock, rng=random.Random(1))
    )
    await until_done(clock, task)
    return await task
