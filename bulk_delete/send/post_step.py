"""The restore's two steps, as work items of the one pool: read a lead, and post a batch.

``read_lead`` reads the lead's activities whole and decides for each: gone (to post), present
(held), or, after a lost answer, found (posted) or not (to post again); one transaction per
lead. ``post`` commits ``posting`` before the call, never repeats it blind (``Pool.post``), and
commits each activity's answer before the next call. A kill -9 leaves each activity settled or
``posting``, and the next run reads those leads first.

Why: docs/design/restore.md.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from ..errors import ActivitiesUnread, StorageError
from ..records import Restored
from ..store.restore_checkpoint import Item, RestoreCheckpoint, Settled
from . import backup_fetch
from .answers import Answer, Verdict
from .pool import Cut, Pool, Reply, answer_of_read
from .posting import (
    BulkWindows,
    Reading,
    bulk_item,
    create_body,
    settle_reading,
    settled_by_bulk,
    settled_by_create,
)
from .recording import calling

READ = (Restored.UNCHECKED, Restored.PRESENT, Restored.POSTING)  # what a reading decides


class Poster(Protocol):
    """What the steps call (LeadSquaredClient)."""

    async def retrieve(
        self, lead: str, code: str, offset: int, count: int
    ) -> tuple[Answer, dict[str, Any]]: ...

    async def create_activity(self, activity: dict[str, Any]) -> tuple[Answer, dict[str, Any]]: ...

    async def bulk_add(self, activities: list[dict[str, Any]]) -> tuple[Answer, dict[str, Any]]: ...


@dataclass
class PostFigures:
    """The posting as it went: calls, activities created, and its span on the clock."""

    posts: int = 0  # post calls that went out (refusals included)
    accepted: int = 0  # … answered and not refused
    created: int = 0  # activities created by this run (answered, or found after a lost one)
    last_created: int = 0  # … by the last accepted post (its batch may be a short one)
    reads: int = 0  # Retrieve calls
    first_answer: float | None = None  # clock time of the first accepted post's answer
    last_answer: float | None = None  # … and of the last
    busiest: int = 0  # the most activities carried by posts started within one window …
    window: float = 0.0  # … of the limit that binds the posting, this long (0: no limit)
    _starts: deque[tuple[float, int]] = field(default_factory=deque)

    def started(self, now: float, carried: int) -> None:
        """A post went out carrying ``carried`` activities: the busiest window so far, as the
        limiter counts calls (a pool's ``_busiest``), in activities."""
        if not self.window:
            return
        starts = self._starts
        starts.append((now, carried))
        while starts[0][0] <= now - self.window:
            starts.popleft()
        self.busiest = max(self.busiest, sum(each for _, each in starts))


class _Stopped(Exception):
    """A read cut short by the stop: the lead stays as it was."""


@dataclass
class PostStep:
    """Reads leads and posts batches for one restore run."""

    checkpoint: RestoreCheckpoint
    client: Poster
    max_attempts: int
    bulk: BulkWindows | None = None  # None: Create, one activity a call
    figures: PostFigures = field(default_factory=PostFigures)

    async def read_lead(self, pool: Pool, lead: str) -> None:
        """Read the lead and record what it shows (see the module's docstring)."""
        items = self.checkpoint.of_lead(lead)
        codes = sorted({item.activity.code for item in items if item.status in READ}, key=int)
        retrieve = partial(self._gated, pool)
        try:
            rows = {code: await backup_fetch.activities_of(retrieve, lead, code) for code in codes}
        except _Stopped:
            return
        except ActivitiesUnread as error:  # nothing decided: the lead is read again next run
            unread = [
                Settled(item.seq, item.status, error=f"not read: {error}")
                for item in items
                if item.status in READ
            ]
            self._write(pool, partial(self.checkpoint.record, unread))
            return
        seen = self.checkpoint.seen(lead)
        settled, before = settle_reading(
            items, Reading(lead, rows), seen, max_attempts=self.max_attempts
        )
        if self._write(pool, partial(self.checkpoint.settle_lead, lead, settled, before)):
            found = sum(1 for each in settled if each.found)
            self._count(pool, created=found)

    async def post(self, pool: Pool, batch: Sequence[Item]) -> None:
        """Post one batch (one activity with Create) and record what came of each. The batch
        is marked ``posting`` once it has its slot, just before its first call goes out: a
        stop while it waits for the slot leaves it as it was (gone), with nothing to look for
        on the next run; a kill after the mark leaves something to look for."""
        if pool.stop.is_set():
            return
        marked = False
        send = self._call(batch)

        async def call() -> Reply:
            nonlocal marked
            if not marked:  # a StorageError here stops the pool, and nothing goes out
                self.checkpoint.mark_posting([item.seq for item in batch])
                marked = True
            self.figures.started(pool.clock.now(), len(batch))
            return await send()

        with calling("post"):
            tried = await pool.post(call, pacer=self.bulk)
        if not marked:  # the stop came before it went out
            return
        answer, reply = tried.answer, tried.reply or {}
        assert answer is not None  # marked: its call went out and came back
        accepted = self._timed(pool, tried.attempts + tried.rate_limited, answer)
        if self.bulk is not None:
            settled = settled_by_bulk(batch, answer, reply)
        else:
            settled = [settled_by_create(batch[0], answer, reply)]
        if self._write(pool, partial(self.checkpoint.record, settled)):
            created = sum(1 for each in settled if each.status is Restored.POSTED)
            if accepted:
                self.figures.last_created = created
            refused = sum(
                1 for each in settled if each.status in (Restored.FAILED, Restored.LEAD_MISSING)
            )
            self._count(pool, created=created, failed=refused)

    def _timed(self, pool: Pool, calls: int, answer: Answer) -> bool:
        """The post's calls, and when an accepted one was answered (the rate it achieved);
        whether it was accepted."""
        figures = self.figures
        figures.posts += calls
        if answer.verdict in (Verdict.RATE_LIMITED, Verdict.ALLOWANCE):
            return False
        figures.accepted += 1
        figures.last_answer = pool.clock.now()
        if figures.first_answer is None:
            figures.first_answer = figures.last_answer
        return True

    def _call(self, batch: Sequence[Item]) -> Callable[[], Awaitable[Reply]]:
        if self.bulk is None:
            return partial(self.client.create_activity, create_body(batch[0].activity))
        items = [bulk_item(item.activity) for item in batch]

        async def call() -> Reply:  # rows, not a Status: a 200 with a body is an answer
            answer, body = await self.client.bulk_add(items)
            return answer_of_read(answer, body), body

        return call

    async def _gated(
        self, pool: Pool, lead: str, code: str, offset: int, size: int
    ) -> tuple[Answer, dict[str, Any]]:
        """One Retrieve page as a read of the pool (its gates, its stop)."""

        async def call() -> tuple[Answer, dict[str, Any]]:
            self.figures.reads += 1
            return await self.client.retrieve(lead, code, offset, size)

        with calling("lookup"):
            try:
                return await pool.read(call)
            except Cut:
                raise _Stopped from None

    def _write(self, pool: Pool, write: Callable[[], None]) -> bool:
        """A checkpoint write; a full disk stops the pool (what is recorded is safe)."""
        try:
            write()
        except StorageError as error:
            pool.abort(error)
            return False
        return True

    def _count(self, pool: Pool, *, created: int = 0, failed: int = 0) -> None:
        self.figures.created += created
        pool.progress.figures.queued += created
        pool.progress.figures.failed += failed
        pool.on_progress(pool.progress)
