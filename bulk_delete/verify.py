"""outcomes → confirmed: ask LeadSquared what is left after the deletes it queued.

LeadSquared answers a delete with "queued" and carries it out later; locked activities, a wrong
time zone or a role without the right can leave activities in place. `verify` asks, for each
queued request (or a random sample), what is left: activities of the request's codes on that
lead whose CreatedOn lies in the request's window. Two ways to ask, and the cheaper is used:

- **per lead**: Retrieve, one call per lead and code (more when a lead has over 100);
- **per code**: RetrieveByActivityEvent over the run's windows, 1,000 activities a call for
  the whole account — cheap for a big run, wasteful for a sample of ten. Its first page per
  code (which says RecordCount) is the probe that prices it, and is used if it wins.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from .checkpoint import Checkpoint, Verifiable
from .client import LeadSquaredClient
from .clock import Clock
from .errors import Interrupted
from .limiter import SlidingWindowLimiter
from .retry import RetryPolicy
from .senders import Reply, StopSwitch, call_once

ROWS_PER_RETRIEVE = 100
LIST_PAGE = 1000


@dataclass(frozen=True)
class Choice:
    """The way verify will ask, and what it costs."""

    strategy: str  # "per lead" | "per code"
    calls: int
    other: str  # the other way's cost, for the user
    requests: int


@dataclass
class Caller:
    """One read-only call at a time through the run's limiter, counted."""

    client: LeadSquaredClient
    limiter: SlidingWindowLimiter
    retry: RetryPolicy
    clock: Clock
    rng: random.Random
    calls: int = 0

    async def __call__(self, call: Callable[[], Awaitable[Reply]]) -> dict[str, Any] | None:
        self.calls += 1
        _, body = await call_once(
            self.limiter, call, retry=self.retry, clock=self.clock, rng=self.rng
        )
        return body or None


async def choose(
    caller: Caller, items: list[Verifiable], until: str
) -> tuple[Choice, dict[str, Any]]:
    """Price both ways; the per-code probes' first pages come back for reuse."""
    per_lead = sum(len(item.codes) for item in items)
    codes = sorted({code for item in items for code in item.codes}, key=int)
    low = min((item.from_date for item in items if item.from_date), default="")
    if per_lead <= len(codes):  # nothing to gain from probing
        return Choice("per lead", per_lead, "per code: at least one call per code", len(items)), {}
    firsts: dict[str, Any] = {}
    per_code = 0
    for code in codes:
        body = await caller(partial(caller.client.list_activities, code, low, until, 1, LIST_PAGE))
        if body is None:
            return Choice("per lead", per_lead, "per code: could not be priced", len(items)), {}
        firsts[code] = body
        got = max(1, len(body.get("List") or []))
        per_code += max(1, math.ceil(int(body.get("RecordCount") or 0) / got))
    if per_code < per_lead:
        return Choice("per code", per_code, f"per lead: {per_lead:,} calls", len(items)), firsts
    return Choice("per lead", per_lead, f"per code: {per_code:,} calls", len(items)), {}


async def check(
    caller: Caller,
    checkpoint: Checkpoint,
    items: list[Verifiable],
    choice: Choice,
    firsts: dict[str, Any],
    until: str,
    workers: int,
    stop: StopSwitch | None,
) -> None:
    """Check every item the chosen way, recording each as it is known."""
    if choice.strategy == "per code":
        found = await _listing(caller, items, firsts, until, stop)
        for item in items:
            if found is None:
                checkpoint.record_verified(item.seq, "unverified", None)
            else:
                left = sum(
                    1 for code, created in found[item.prospect_id] if _inside(item, code, created)
                )
                checkpoint.record_verified(item.seq, "confirmed" if not left else "remaining", left)
        return
    queue: asyncio.Queue[Verifiable] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)

    async def worker() -> None:
        while not queue.empty() and not (stop is not None and stop.is_set()):
            item = queue.get_nowait()
            left = await _left_on_lead(caller, item)
            verified = "unverified" if left is None else "confirmed" if not left else "remaining"
            checkpoint.record_verified(item.seq, verified, left)

    async with asyncio.TaskGroup() as group:
        for _ in range(max(1, min(workers, len(items)))):
            group.create_task(worker())


async def _left_on_lead(caller: Caller, item: Verifiable) -> int | None:
    left = 0
    for code in item.codes:
        offset, total = 0, None
        while total is None or offset < total:
            body = await caller(
                partial(caller.client.retrieve, item.prospect_id, code, offset, ROWS_PER_RETRIEVE)
            )
            if body is None:
                return None
            rows = body.get("ProspectActivities") or []
            total = int(body.get("RecordCount") or 0)
            left += sum(
                1
                for row in rows
                if _inside(item, str(row.get("EventCode")), str(row.get("CreatedOn") or ""))
            )
            if not rows:
                break
            offset += len(rows)
    return left


async def _listing(
    caller: Caller,
    items: list[Verifiable],
    firsts: dict[str, Any],
    until: str,
    stop: StopSwitch | None,
) -> dict[str, list[tuple[str, str]]] | None:
    """(code, CreatedOn) of what is left, per lead, over the run's window (all pages)."""
    low = min((item.from_date for item in items if item.from_date), default="")
    found: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for code, first in firsts.items():
        body, page, size, seen = first, 1, LIST_PAGE, 0
        while body:
            rows = body.get("List") or []
            for row in rows:
                found[str(row.get("RelatedProspectId") or "").lower()].append(
                    (code, str(row.get("CreatedOn") or ""))
                )
            seen += len(rows)
            if not rows or seen >= int(body.get("RecordCount") or 0):
                break
            if page == 1 and len(rows) < size:
                size = len(rows)
            if stop is not None and stop.is_set():
                raise Interrupted("interrupted while listing; nothing recorded. Rerun verify.")
            page += 1
            body = await caller(
                partial(caller.client.list_activities, code, low, until, page, size)
            )
            if body is None:
                return None
    return found


def _inside(item: Verifiable, code: str, created: str) -> bool:
    return (
        code in item.codes
        and bool(created)
        and (not item.from_date or created >= item.from_date)
        and (not item.to_date or created <= item.to_date)
    )
