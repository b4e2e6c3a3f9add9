"""send → calls: every HTTP attempt written to the checkpoint's call log, for the run report.

The one retry loop (`pool.until_settled`) asks ``current()`` before each attempt; when a
command has installed a recorder (``recording``) the attempt is written with its wall-clock
start and answer, its status, our verdict and the limit in force. What kind of call it is
comes from ``calling(kind)``, set where the call is made (the pool's deletes are "delete",
the listing "list", verify "verify", preflight "preflight", --check-codes "setting", backup
reads "backup").

Both are context variables rather than parameters: the recorder then reaches the listing,
verify and backup calls without threading one more argument through each of them, a task
inherits them when it is created (the pool's workers), and a dry run, which installs none,
records nothing at no cost. ``run`` is the checkpoint's ``runs`` row while one is open; calls
made outside one (the listing before the first send, preflight, verify) are recorded with
run 0.

Writing the log must never stop a purge: a failure to write it (a full disk) turns the
recorder off, and the outcome write that follows says what is wrong.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from ..clock import system_wall
from ..store.calls import CallLog
from .answers import Answer
from .limiter import SlidingWindowLimiter

NO_RUN = 0  # calls made outside a runs row
READ = "read"  # the verdict of a read call that got its data


@dataclass(eq=False)
class CallRecorder:
    """Writes each attempt to ``log`` under run ``run`` (set while a runs row is open)."""

    log: CallLog
    run: int = NO_RUN
    wall: Callable[[], float] = system_wall  # the command gives its clock's
    broken: bool = False

    def record(
        self,
        *,
        kind: str,
        seq: int | None,
        attempt: int,
        started: float,
        answer: Answer,
        limiter: SlidingWindowLimiter,
        read: bool = False,
    ) -> None:
        """One attempt, as it ended. ``read``: a read call (listing, verify, preflight) got
        its data, recorded as verdict "read" (its answer is judged as a delete's would be)."""
        if self.broken:
            return
        limit = limiter.effective
        unlimited = limit.unlimited
        try:
            self.log.record(
                run=self.run,
                kind=kind,
                seq=seq,
                attempt=attempt,
                started=started,
                answered=None if answer.http_status is None else self.wall(),
                status=answer.http_status,
                verdict=READ if read else str(answer.verdict),
                limit_calls=None if unlimited else limit.calls,
                limit_period=None if unlimited else limit.period,
            )
        except sqlite3.Error:
            self.broken = True


_RECORDER: ContextVar[CallRecorder | None] = ContextVar("call_recorder", default=None)
_KIND: ContextVar[str] = ContextVar("call_kind", default="delete")


def current() -> tuple[CallRecorder | None, str]:
    """The recorder in force (None: record nothing) and the kind of call being made."""
    return _RECORDER.get(), _KIND.get()


@contextmanager
def recording(recorder: CallRecorder | None) -> Iterator[CallRecorder | None]:
    """Record every call made inside (and in tasks created inside) to ``recorder``."""
    token = _RECORDER.set(recorder)
    try:
        yield recorder
    finally:
        _RECORDER.reset(token)


@contextmanager
def calling(kind: str) -> Iterator[None]:
    """The calls made inside are of ``kind`` (one of store.calls.KINDS)."""
    token = _KIND.set(kind)
    try:
        yield
    finally:
        _KIND.reset(token)
