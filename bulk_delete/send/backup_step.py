"""The backup step: what a request deletes, read and on disk before the request is sent.

The pool calls ``BackupStep.before_send`` for each request; the delete goes out only when it
returns True. The order is the one the issue asks for:

1. a request already in the backup file (a resumed run: killed or stopped between the write
   and the send, or its send failed and is tried again) is read again with Retrieve, as in 2,
   and the activities its saved copy lacks (by id) are appended as one more member of that
   request: its window may reach into the present, and what was created since the first read
   would be deleted unsaved. Listing rows are not used here: they are as old as the first
   copy. The request is then sent; a re-read that fails is handled as any failed read (below);
2. with --discover, the listing's rows of the request are saved as they are when they carry
   the activity's fields (no call at all: the listing read them from LeadSquared already);
   otherwise its activities are read with Retrieve (backup_fetch.py), every call through the pool's
   own gates (limiter, retries, breaker): backup reads spend the same budget as the deletes;
3. they are written to the backup and fsync'd; only then is the delete sent.

What goes wrong, and why it is handled so:

- *The activities cannot be read exactly* (``ActivitiesUnread``: pages that do not add up, a
  Retrieve that never answered): the request is recorded failed, transient, "not backed up:
  …", and is not sent. It is one lead's trouble, not the run's, and a rerun tries it again.
- *The backup cannot be written* (StorageError naming the file): nothing more is sent and the
  run stops (exit 3). Every later request would fail the same way, and a request must never be
  sent unbacked.
- *A fatal answer or an outage* during a read stops the run as it would during a delete.

A resume re-reads only the requests it sends again (pending, or failed and transient), each
one Retrieve per code at least: what the re-read finds is appended, never taken away, so the
backup holds everything each delete took.
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
