"""plan → checkpoint: the plan persisted in SQLite, and every outcome written back to it.

One file per plan: the plan goes in whole before anything is sent, each outcome is committed
before it counts as done, and a rerun resumes what is still pending. Tables, mark, migration,
WAL and locking: docs/design/checkpoint.md.

    with Checkpoint.open(path) as checkpoint, lock(path):
        checkpoint.store_plan(requests, invalid, source=..., fingerprint=..., options=..., extra={})
        for item in checkpoint.todo(): checkpoint.record(outcome_of(item))
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CheckpointMismatch, InputError
from ..files import hold_lock, real, require_file, storage_cause
from ..records import InvalidRow, Request, Status
from ..summary import Counts
from ..timetext import plan_options
from .calls import CallLog
from .export_rows import ExportRows
from .found import FoundStore
from .reasons import ReasonsTable
from .runs import RunsTable
from .schema import (
    BATCH,
    PURGE,
    SCHEMA_VERSION,
    Kind,
    _connect,
    _inspect,
    _make_private,
    _not_ours,
    _prepare,
    _uri,
)
from .verification import VerificationTable


@contextmanager
def lock(path: Path) -> Iterator[None]:
    """The checkpoint's exclusive lock: one process sends from a checkpoint at a time. It is
    taken on the real file (and a ``.lock`` beside it names the holder), so a symlink, a ``..``
    or a hard link cannot make a second, independent lock.

    A checkpoint with more than one name (a hard link) is then refused outright: SQLite names
    its write-ahead log after the name it was opened by, so outcomes committed under one name
    just before a kill -9 are invisible to a resume under the other, which would send them
    again. A symlink is fine: it resolves to the one name."""
    target = real(path)
    with hold_lock(target.with_name(target.name + ".lock"), f"checkpoint {path}", target=target):
        _refuse_second_names(path)  # a link made since it was opened
        yield


def _refuse_second_names(path: Path) -> None:
    """A checkpoint with more than one name (hard links) is refused: see `lock`."""
    try:
        links = os.stat(path).st_nlink
    except FileNotFoundError:
        return  # a new checkpoint
    if links > 1:
        raise InputError(
            f"{path}: the checkpoint has {links} names (hard links). SQLite keeps its "
            "journal beside the name it is opened by, so a resume under another name could "
            "miss outcomes and send them again. Keep one name: copy it (cp, not ln) and "
            "remove the others, or use a symlink."
        )


def open_to_write(path: Path, kind: Kind) -> sqlite3.Connection:
    """A checkpoint of ``kind`` opened to write, created (0600) if it does not exist, its
    tables and mark in place. Refused before anything writes to it: a folder, a FIFO or a
    device, a missing folder, a second name (hard link), and a file not ours or of the other
    kind; one from before the mark (a purge's) gets it."""
    if path.is_dir():
        raise InputError(f"checkpoint {path} is a directory; give a file name like run.sqlite")
    if path.exists():  # a FIFO or a device is never opened: it would block for ever
        require_file(path, "checkpoint")
    if not path.parent.is_dir():
        raise InputError(
            f"checkpoint {path}: no such directory {path.parent}; create it first "
            "(or check the path for a typo)"
        )
    _refuse_second_names(path)  # before SQLite writes a journal under this name
    if (found := _inspect(path, kind)) == "ours":
        return _opened_to_write(path, kind, found)
    # Two runs creating one checkpoint (or stamping one from before the mark) at once: SQLite
    # may refuse one's switch to WAL at once (no busy wait where waiting could deadlock), which
    # read as a checkpoint it cannot write. The first holds its lock meanwhile, and the other
    # is told who has it.
    # Letting go closes the lock's descriptor of the file, and a close drops every POSIX lock
    # the process holds on it: a connection open across it would lose the shared lock SQLite
    # holds in WAL mode, and the next other process to close the checkpoint would checkpoint
    # and delete the WAL this one goes on writing (a kill -9 then loses its outcomes). So the
    # connection made under the lock is closed under it, and the run's is opened after.
    with lock(path):  # read again under it: another run may have created it meanwhile
        _opened_to_write(path, kind, _inspect(path, kind)).close()
    return _opened_to_write(path, kind, _inspect(path, kind))


def _opened_to_write(path: Path, kind: Kind, found: str) -> sqlite3.Connection:
    """The connection to write ``path`` through, ``found`` being what ``_inspect`` read of it:
    the mark stamped unless it is ours already."""
    try:
        _make_private(path)
    except OSError as error:
        raise InputError(
            f"cannot write checkpoint {path} in {path.parent}: {error.strerror}"
        ) from None
    connection = _connect(path, _uri(path, read_only=False))
    try:
        _prepare(connection, stamp=found != "ours", kind=kind)
    except sqlite3.DatabaseError as error:
        connection.close()
        cause = storage_cause(error) or str(error)
        raise InputError(f"cannot write checkpoint {path}: {cause}; nothing sent") from None
    except BaseException:
        connection.close()
        raise
    return connection


@dataclass(frozen=True, slots=True)
class Pending:
    """A request to send: its key in the checkpoint and the exact body."""

    seq: int
    body: str
    prospect_id: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one request in this run, ready to be written back."""

    seq: int
    status: Status
    transient: bool
    attempts: int
    rate_limited: int
    http_status: int | None
    error: str


class Checkpoint(RunsTable, VerificationTable, ExportRows, ReasonsTable):
    """One run of a plan in SQLite: the plan, every outcome, its runs and what verify found
    (each group of tables in its own module), opened and locked here."""

    @classmethod
    def open(cls, path: str | Path) -> Checkpoint:
        """Open a checkpoint to write, creating it (0600) if it does not exist. Its folder
        must exist: a typo'd path must not silently start the whole plan again elsewhere. A
        file that is not ours is refused before anything writes to it; one from before the
        mark gets it."""
        path = Path(path)
        return cls(path, open_to_write(path, PURGE))

    @classmethod
    def open_existing(cls, path: str | Path) -> Checkpoint:
        """Open a checkpoint to read (status, export): read-only, never changed, so one from
        before the mark is read as it is."""
        path = Path(path)
        require_file(path, "checkpoint", missing="no such checkpoint")
        if _inspect(path) == "new":
            raise _not_ours(path, "an empty file")
        connection = _connect(path, _uri(path, read_only=True))
        try:
            checkpoint = cls(path, connection)
            if not checkpoint.has_plan:
                raise InputError(f"{path}: the checkpoint holds no plan")
        except BaseException:
            connection.close()
            raise
        return checkpoint

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Checkpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ metadata

    @property
    def found(self) -> FoundStore:
        """What --discover's listing found, kept with the plan."""
        return FoundStore(self._db)

    @property
    def calls(self) -> CallLog | None:
        """Every HTTP call recorded for the run report; None in a checkpoint from before the
        call log, opened read-only (opened to write, it gets the table)."""
        if not self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'calls'"
        ).fetchone():
            return None
        return CallLog(self._db)

    def account_used(self) -> bool:
        """Whether an account already answered for this checkpoint: a delete queued, a page
        read (commands/account.py)."""
        return self.counts().queued > 0 or self.found.calls() > 0

    @property
    def has_plan(self) -> bool:
        return (
            self._db.execute("SELECT 1 FROM meta WHERE key = 'fingerprint'").fetchone() is not None
        )

    def check_input(self, *, source: str, fingerprint: str, options: dict[str, Any]) -> None:
        """Refuse to resume from another input or other plan options (exit 2)."""
        meta = self.meta
        if meta.get("fingerprint") == fingerprint:
            return
        recorded = plan_options(meta, f"checkpoint {self.path}")
        changed = sorted(
            k for k in set(recorded) | set(options) if recorded.get(k) != options.get(k)
        )
        made_from, reads = meta.get("input", "?"), source
        if made_from != reads:
            what = f"was made from {made_from}, not {reads}"
        elif changed:
            what = f"was made from the same file with other options ({', '.join(changed)})"
        else:
            what = f"was made from {made_from} before the file changed"
        raise CheckpointMismatch(
            f"checkpoint {self.path} {what}; nothing sent. Use another --checkpoint for "
            "another input, or the original file and options to resume."
        )

    # ------------------------------------------------------------ the plan

    def store_plan(
        self,
        requests: Iterable[Request],
        invalid: Iterable[InvalidRow],
        *,
        source: str,
        fingerprint: str,
        options: dict[str, Any],
        extra: dict[str, str],
    ) -> int:
        """Persist the plan in one transaction: all of it, or (after a crash) none of it."""
        with self._storing("store the plan", sending=False):
            return self._store_plan(requests, invalid, source, fingerprint, options, extra)

    def _store_plan(
        self,
        requests: Iterable[Request],
        invalid: Iterable[InvalidRow],
        source: str,
        fingerprint: str,
        options: dict[str, Any],
        extra: dict[str, str],
    ) -> int:
        stamp = self.now_text()
        count = 0
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            batch: list[tuple[Any, ...]] = []
            for request in requests:
                count += 1
                batch.append(
                    (
                        count,
                        request.prospect_id,
                        ";".join(request.codes),
                        request.from_date,
                        request.to_date,
                        request.webhook,
                        ";".join(map(str, request.source_rows)),
                        request.body_json(),
                        stamp,
                        request.extra,
                    )
                )
                if len(batch) >= BATCH:
                    self._insert_requests(batch)
                    batch.clear()
            self._insert_requests(batch)
            db.executemany(
                "INSERT INTO invalid_rows VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    (r.row, r.reason, r.prospect_id, r.codes, r.from_date, r.to_date, r.webhook)
                    for r in invalid
                ),
            )
            meta = {
                **extra,
                "schema": SCHEMA_VERSION,
                "input": source,
                "options": json.dumps(options, sort_keys=True),
                "created_at": stamp,
                "requests": str(count),
                "fingerprint": fingerprint,
            }
            db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", meta.items())
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:  # SQLite may have rolled back already (a full disk does)
                db.execute("ROLLBACK")
            raise
        return count

    def _insert_requests(self, batch: list[tuple[Any, ...]]) -> None:
        self._db.executemany(
            "INSERT INTO requests (seq, prospect_id, codes, from_date, to_date, webhook,"
            " source_rows, body, updated_at, extra) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            batch,
        )

    # ------------------------------------------------------------ sending

    def todo(self, *, retry_failed: bool = False, batch: int = BATCH) -> Iterator[Pending]:
        """Requests still to send, in plan order, streamed in batches (never all in memory)."""
        condition = (
            "status != 'queued'" if retry_failed else "(status = 'pending' OR transient = 1)"
        )
        last = 0
        while True:
            rows = self._db.execute(
                f"SELECT seq, body, prospect_id FROM requests INDEXED BY requests_todo "
                f"WHERE status != 'queued' AND seq > ? AND {condition} ORDER BY seq LIMIT ?",
                (last, batch),
            ).fetchall()
            if not rows:
                return
            for seq, body, prospect_id in rows:
                yield Pending(seq, body, prospect_id)
            last = rows[-1][0]

    def todo_counts(self, *, retry_failed: bool = False) -> tuple[int, int]:
        """(requests, distinct leads) still to send."""
        condition = (
            "status != 'queued'" if retry_failed else "(status = 'pending' OR transient = 1)"
        )
        row = self._db.execute(
            f"SELECT COUNT(*), COUNT(DISTINCT prospect_id) FROM requests INDEXED BY requests_todo "
            f"WHERE status != 'queued' AND {condition}"
        ).fetchone()
        return int(row[0]), int(row[1])

    def open_windows(self, *, retry_failed: bool = False) -> tuple[int, int]:
        """(requests without FromDate, requests without ToDate) still to send."""
        condition = (
            "status != 'queued'" if retry_failed else "(status = 'pending' OR transient = 1)"
        )
        row = self._db.execute(
            "SELECT COALESCE(SUM(from_date = ''), 0), COALESCE(SUM(to_date = ''), 0)"
            f" FROM requests WHERE status != 'queued' AND {condition}"
        ).fetchone()
        return int(row[0]), int(row[1])

    def record(self, outcome: Outcome) -> None:
        """Write one outcome and commit: once this returns, a kill -9 cannot lose it."""
        with self._storing("record an outcome"):
            self._record(outcome)

    def _record(self, outcome: Outcome) -> None:
        self._db.execute(
            "UPDATE requests SET status = ?, transient = ?, attempts = attempts + ?,"
            " rate_limited = rate_limited + ?, http_status = COALESCE(?, http_status),"
            " error = ?, updated_at = ? WHERE seq = ?",
            (
                outcome.status,
                int(outcome.transient),
                outcome.attempts,
                outcome.rate_limited,
                outcome.http_status,
                outcome.error,
                self.now_text(),
                outcome.seq,
            ),
        )

    def mark_queued_up_to(self, seq: int) -> None:
        """Benchmarks and tests: pretend the first ``seq`` requests were queued earlier."""
        self._db.execute(
            "UPDATE requests SET status = 'queued', attempts = 1, http_status = 200,"
            " updated_at = ? WHERE seq <= ?",
            (self.now_text(), seq),
        )

    # ------------------------------------------------------------ reading back

    def counts(self) -> Counts:
        rows = self._db.execute(
            "SELECT status, transient, COUNT(*), SUM(rate_limited) FROM requests"
            " GROUP BY status, transient"
        ).fetchall()
        by: dict[tuple[str, int], int] = {}
        limited = 0
        for status, transient, count, rate_limited in rows:
            by[(status, transient)] = count
            limited += rate_limited or 0
        failed_transient = by.get(("failed", 1), 0)
        failed = failed_transient + by.get(("failed", 0), 0)
        pending = sum(count for (status, _), count in by.items() if status == "pending")
        queued = sum(count for (status, _), count in by.items() if status == "queued")
        invalid = self._db.execute("SELECT COUNT(*) FROM invalid_rows").fetchone()[0]
        meta = self.meta
        return Counts(
            requests=pending + queued + failed,
            pending=pending,
            queued=queued,
            failed=failed,
            failed_transient=failed_transient,
            invalid_rows=int(invalid),
            leads=int(meta.get("leads", "0")),
            rate_limited_429=limited,
        )

    def failure_reasons(self, limit: int = 10) -> list[tuple[str, int, bool]]:
        """(error, count, transient) for failed requests, most frequent first."""
        rows = self._db.execute(
            "SELECT error, COUNT(*), MAX(transient) FROM requests WHERE status = 'failed'"
            " GROUP BY error ORDER BY COUNT(*) DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [(str(error), int(count), bool(transient)) for error, count, transient in rows]
