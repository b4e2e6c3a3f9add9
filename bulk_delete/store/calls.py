"""→ calls: one row per HTTP call, so a run's report can be drawn later from its checkpoint.

``CallLog`` keeps its ``calls`` table on the checkpoint's own connection (a resumed run appends
to it): each call's kind, start and answer (epoch seconds, UTC), HTTP status (NULL when no
answer came), verdict and the limit in force. ``record`` writes one; ``commit_every=1`` commits
each, ``0`` leaves committing to the caller. The aggregations (``per_second``, ``latencies``,
``counts``, ``statuses``, ``limits``, ``span``) are single GROUP BY queries.

Why, and what it costs: docs/design/report.md.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

KINDS: Final = ("delete", "list", "verify", "preflight", "backup", "setting", "post", "lookup")
REFUSED: Final = 429  # LeadSquared's answer when the account's rate limit is exceeded

_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    id           INTEGER PRIMARY KEY,
    run          INTEGER NOT NULL,
    kind         TEXT NOT NULL,
    seq          INTEGER,            -- the request's seq, or the listing's page
    attempt      INTEGER NOT NULL,
    started      REAL NOT NULL,      -- epoch seconds, UTC wall clock
    answered     REAL,               -- NULL: no answer (timeout, connection lost)
    status       INTEGER,            -- HTTP status, NULL when no answer came
    verdict      TEXT NOT NULL,      -- queued, failed, retry, refused, read, …
    limit_calls  INTEGER,            -- the limit in force: limit_calls per limit_period s
    limit_period REAL
);
CREATE INDEX IF NOT EXISTS calls_by_time ON calls (run, started);
"""
_INSERT = (
    "INSERT INTO calls (run, kind, seq, attempt, started, answered, status, verdict,"
    " limit_calls, limit_period) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


@dataclass(frozen=True, kw_only=True)
class Second:
    """Calls started in one wall-clock second, and how many of them were refused."""

    second: int  # epoch seconds, UTC
    calls: int
    refusals: int


@dataclass(frozen=True, kw_only=True)
class LimitChange:
    """From ``since`` on, calls were sent under ``calls`` per ``period`` seconds."""

    since: float
    calls: int | None
    period: float | None

    @property
    def per_second(self) -> float | None:
        if self.calls is None or not self.period:
            return None
        return self.calls / self.period


class CallLog:
    """Appends calls to the ``calls`` table and answers the report's questions about them."""

    def __init__(self, connection: sqlite3.Connection, *, commit_every: int = 1) -> None:
        self._db = connection
        self._commit_every = commit_every
        self._uncommitted = 0

    @classmethod
    def create(cls, connection: sqlite3.Connection, *, commit_every: int = 1) -> CallLog:
        """The log over ``connection``, its table created if missing (safe to repeat)."""
        connection.executescript(_SCHEMA)
        return cls(connection, commit_every=commit_every)

    def record(
        self,
        *,
        run: int,
        kind: str,
        seq: int | None,
        attempt: int,
        started: float,
        answered: float | None,
        status: int | None,
        verdict: str,
        limit_calls: int | None = None,
        limit_period: float | None = None,
    ) -> None:
        """One call, as it ended. ``kind`` must be one of KINDS (a typo would vanish from
        every count, so it is refused here)."""
        if kind not in KINDS:
            raise ValueError(f"unknown call kind {kind!r}; expected one of {', '.join(KINDS)}")
        values = (run, kind, seq, attempt, started, answered, status, verdict)
        self._db.execute(_INSERT, (*values, limit_calls, limit_period))
        self._uncommitted += 1
        if self._commit_every and self._uncommitted >= self._commit_every:
            self.flush()

    def flush(self) -> None:
        """Commit the calls recorded so far."""
        self._db.commit()
        self._uncommitted = 0

    def runs(self) -> list[int]:
        return [run for (run,) in self._db.execute("SELECT DISTINCT run FROM calls ORDER BY run")]

    def per_second(self, run: int | None = None) -> list[Second]:
        """Calls and refusals per started second, in time order (seconds with no call absent)."""
        where, args = _run_filter(run)
        rows = self._db.execute(
            f"SELECT CAST(started AS INTEGER) AS s, COUNT(*), SUM(status = {REFUSED})"
            f" FROM calls {where} GROUP BY s ORDER BY s",
            args,
        )
        return [Second(second=s, calls=n, refusals=r or 0) for s, n, r in rows]

    def latencies(self, run: int | None = None, kind: str | None = None) -> list[float]:
        """Seconds from start to answer of every answered call, shortest first."""
        clauses, args = _clauses(run, kind)
        clauses.append("answered IS NOT NULL")
        rows = self._db.execute(
            f"SELECT answered - started AS t FROM calls WHERE {' AND '.join(clauses)} ORDER BY t",
            args,
        )
        return [t for (t,) in rows]

    def counts(self, run: int | None = None) -> dict[tuple[str, str], int]:
        """How many calls of each (kind, verdict)."""
        where, args = _run_filter(run)
        rows = self._db.execute(
            f"SELECT kind, verdict, COUNT(*) FROM calls {where} GROUP BY kind, verdict", args
        )
        return {(kind, verdict): n for kind, verdict, n in rows}

    def statuses(self, run: int | None = None, kind: str | None = None) -> dict[int | None, int]:
        """How many calls got each HTTP status (None: no answer)."""
        clauses, args = _clauses(run, kind)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._db.execute(
            f"SELECT status, COUNT(*) FROM calls {where} GROUP BY status ORDER BY status", args
        )
        return dict(rows.fetchall())

    def verdicts_by_status(
        self, run: int | None = None, kind: str | None = None
    ) -> dict[tuple[int | None, str], int]:
        """How many calls got each (HTTP status, verdict)."""
        clauses, args = _clauses(run, kind)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._db.execute(
            f"SELECT status, verdict, COUNT(*) FROM calls {where}"
            " GROUP BY status, verdict ORDER BY status",
            args,
        )
        return {(status, verdict): n for status, verdict, n in rows}

    def limits(self, run: int | None = None) -> list[LimitChange]:
        """The limit in force over time: its first value and every change after it."""
        where, args = _run_filter(run)
        rows = self._db.execute(
            "SELECT started, limit_calls, limit_period FROM ("
            " SELECT started, limit_calls, limit_period,"
            "  LAG(limit_calls) OVER w AS before_calls,"
            "  LAG(limit_period) OVER w AS before_period,"
            "  ROW_NUMBER() OVER w AS n"
            f" FROM calls {where} WINDOW w AS (ORDER BY started, id))"
            " WHERE n = 1 OR before_calls IS NOT limit_calls OR before_period IS NOT limit_period"
            " ORDER BY started",
            args,
        )
        return [LimitChange(since=t, calls=c, period=p) for t, c, p in rows]

    def span(self, run: int | None = None) -> tuple[float, float] | None:
        """The first start and the last answer (or start), or None for an empty log."""
        where, args = _run_filter(run)
        first, last = self._db.execute(
            f"SELECT MIN(started), MAX(COALESCE(answered, started)) FROM calls {where}", args
        ).fetchone()
        return None if first is None else (first, last)


def _run_filter(run: int | None) -> tuple[str, Sequence[object]]:
    return ("", ()) if run is None else ("WHERE run = ?", (run,))


def _clauses(run: int | None, kind: str | None) -> tuple[list[str], list[object]]:
    clauses: list[str] = []
    args: list[object] = []
    if run is not None:
        clauses.append("run = ?")
        args.append(run)
    if kind is not None:
        clauses.append("kind = ?")
        args.append(kind)
    return clauses, args
