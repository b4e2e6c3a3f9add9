"""send → calls: every HTTP attempt written to the checkpoint's call log, for the run report.

A command installs a recorder (``with recording(CallRecorder(...))``); the call site names the
kind (``with calling("list")``); the retry loop asks ``current()`` before each attempt and
writes it (wall-clock start and answer, status, verdict, limit in force). Both are context
variables: tasks inherit them, and with none installed (a dry run) nothing is recorded. Calls
outside a ``runs`` row have run ``NO_RUN`` (0). A failed write turns the recorder off.

Why: docs/design/report.md.
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
from .limiter import Pacer

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
        limiter: Pacer,
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
