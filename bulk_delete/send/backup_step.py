"""The backup step: what a request deletes, read and on disk before the request is sent.

The pool calls ``BackupStep.before_send(pool, item)`` for each request and sends the delete
only when it returns True: the request's activities (the listing's rows, else Retrieve through
the pool's gates) are first appended to the backup file and fsync'd. A read that does not add
up fails that request, unsent; a write that fails stops the run. Order and reasons:
docs/design/backup.md.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from ..errors import ActivitiesUnread, StorageError
from ..records import Status
from ..store.backup_file import BackupWriter
from ..store.checkpoint import Outcome, Pending
from . import backup_fetch
from .answers import Answer
from .pool import Cut, Pool
from .recording import calling

NOT_BACKED_UP = "not backed up"


@dataclass(frozen=True, slots=True)
class BodySelection:
    """What a request deletes, read back from the exact body the pool will send."""

    prospect_id: str
    codes: tuple[str, ...]
    from_date: str
    to_date: str

    @classmethod
    def of(cls, item: Pending) -> BodySelection:
        body = json.loads(item.body)
        return cls(
            prospect_id=str(body.get("ProspectId") or item.prospect_id),
            codes=tuple(str(code) for code in body.get("ActivityEventList") or ()),
            from_date=str(body.get("FromDate") or ""),
            to_date=str(body.get("ToDate") or ""),
        )


class _Stopped(Exception):
    """The run is stopping: a read cut short; the request stays pending, unsent."""


Retriever = Callable[[str, str, int, int], Awaitable[tuple[Answer, dict[str, Any]]]]


@dataclass
class BackupStep:
    """Reads and saves each request's activities before the pool sends it."""

    writer: BackupWriter
    retrieve: Retriever  # the client's Retrieve, one call, no gates
    # --discover: the listing's rows of the request, when they carry the fields (no call)
    listed: Callable[[BodySelection], list[dict[str, Any]] | None] | None = None
    reads: int = 0  # Retrieve calls made (the dry run's prediction is checked against it)

    async def before_send(self, pool: Pool, item: Pending) -> bool:
        """True once the request's activities are on disk; False when it must not be sent
        (recorded failed, or the run is stopping)."""
        saved = item.seq in self.writer.saved_requests()
        selection = BodySelection.of(item)
        try:
            activities = None if saved or not self.listed else self.listed(selection)
            if activities is None:
                activities = await backup_fetch.activities_to_delete(
                    partial(self._gated, pool), selection
                )
        except _Stopped:
            return False
        except ActivitiesUnread as error:
            _record_unbacked(pool, item, str(error))
            return False
        try:
            write = partial(self.writer.add, item.seq, item.prospect_id, activities)
            await pool.on_wire(partial(asyncio.to_thread, write), counted=False)
        except StorageError as error:
            pool.abort(error)
            return False
        return not pool.stop.is_set()  # a stop during the read or write: saved, sent on resume

    async def _gated(
        self, pool: Pool, lead: str, code: str, offset: int, size: int
    ) -> tuple[Answer, dict[str, Any]]:
        """One Retrieve page as a read of the pool (its gates, its stop); a reply with a
        body settles it."""

        async def call() -> tuple[Answer, dict[str, Any]]:
            self.reads += 1
            return await self.retrieve(lead, code, offset, size)

        with calling("backup"):  # the call log keeps backup reads apart from the deletes
            try:
                return await pool.read(call)
            except Cut:  # stopping, or the read stopped the pool
                raise _Stopped from None


def _record_unbacked(pool: Pool, item: Pending, why: str) -> None:
    """The request is not sent: failed, transient (a rerun reads it again)."""
    outcome = Outcome(
        seq=item.seq,
        status=Status.FAILED,
        transient=True,
        attempts=0,
        rate_limited=0,
        http_status=None,
        error=f"{NOT_BACKED_UP}: {why} (nothing sent; a rerun tries again)",
    )
    pool.record_outcome(item, outcome)
