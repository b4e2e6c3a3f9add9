"""plan → checkpoint: the plan persisted in SQLite, and every outcome written back to it.

One file per run of a plan. The plan goes in first (requests, invalid rows, metadata with the
input fingerprint) in one transaction; senders then stream pending requests out of it and
each outcome is committed before it counts as done. WAL with synchronous=NORMAL keeps every
committed outcome through a kill -9 (only a power cut can lose the last few), and a rerun
picks up what is still pending.

States of a request: pending → queued | failed. A failed request is *transient* when another
run may well succeed (timeouts, 5xx, resets): a rerun sends those again, and ``--retry-failed``
sends the permanent ones (400, MX errors) again too.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import random
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..errors import CheckpointMismatch, InputError, StorageError
from ..files import create_private, hold_lock, real, storage_cause
from ..records import InvalidRow, Request, Status
from ..summary import Counts, RunFigures, RunResult, Verification

SCHEMA_VERSION = "1"
BATCH = 1000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS requests (
    seq          INTEGER PRIMARY KEY,
    prospect_id  TEXT NOT NULL,
    codes        TEXT NOT NULL,
    from_date    TEXT NOT NULL,
    to_date      TEXT NOT NULL,
    webhook      TEXT NOT NULL,
    source_rows  TEXT NOT NULL,
    body         TEXT NOT NULL,
    status       TEXT NOT NULL DEFAULT 'pending',
    transient    INTEGER NOT NULL DEFAULT 0,
    attempts     INTEGER NOT NULL DEFAULT 0,
    rate_limited INTEGER NOT NULL DEFAULT 0,
    http_status  INTEGER,
    error        TEXT NOT NULL DEFAULT '',
    updated_at   TEXT NOT NULL DEFAULT ''
);
-- Only what is not queued yet: resume finds its work without scanning the queued half.
CREATE INDEX IF NOT EXISTS requests_todo ON requests(seq) WHERE status != 'queued';
CREATE TABLE IF NOT EXISTS invalid_rows (
    row          INTEGER PRIMARY KEY,
    reason       TEXT NOT NULL,
    prospect_id  TEXT NOT NULL,
    codes        TEXT NOT NULL,
    from_date    TEXT NOT NULL,
    to_date      TEXT NOT NULL,
    webhook      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id           INTEGER PRIMARY KEY,
    started_at   TEXT NOT NULL,
    finished_at  TEXT,
    host         TEXT NOT NULL,
    rate         TEXT NOT NULL,
    calls        INTEGER NOT NULL DEFAULT 0,
    queued       INTEGER NOT NULL DEFAULT 0,
    failed       INTEGER NOT NULL DEFAULT 0,
    rate_limited INTEGER NOT NULL DEFAULT 0,
    send_seconds REAL NOT NULL DEFAULT 0,
    result       TEXT NOT NULL DEFAULT 'running',
    start_span   REAL NOT NULL DEFAULT 0,   -- first call start to last call start, seconds
    limit_per_second REAL                   -- the limit in force; NULL: no limit
);
"""
# --discover: what the listing found, saved page by page before any delete.
_FOUND_SCHEMA = """
CREATE TABLE IF NOT EXISTS found (    -- every activity the listing read
    activity_id  TEXT PRIMARY KEY,
    prospect_id  TEXT NOT NULL,
    code         TEXT NOT NULL,
    created_on   TEXT NOT NULL,
    kept         INTEGER NOT NULL DEFAULT 1  -- created in the window: to delete
);
CREATE TABLE IF NOT EXISTS listing (   -- one row per page read
    code         TEXT NOT NULL,
    page         INTEGER NOT NULL,
    size         INTEGER NOT NULL,     -- the page size asked
    rows         INTEGER NOT NULL,
    record_count INTEGER NOT NULL,
    next_size    INTEGER,              -- the size to ask next (0: the code's listing ended)
    PRIMARY KEY (code, page)
);
"""

# Columns added after the first release: (table, column, declaration) for older checkpoints.
# RunFigures' fields as the runs table names them (the 429 count kept its first column name).
_RUN_COLUMNS = {
    "calls": "calls",
    "queued": "queued",
    "failed": "failed",
    "rate_limited_429": "rate_limited",
    "send_seconds": "send_seconds",
    "start_span": "start_span",
    "limit_per_second": "limit_per_second",
}
_ADDED_COLUMNS = (
    ("runs", "start_span", "REAL NOT NULL DEFAULT 0"),
    ("runs", "limit_per_second", "REAL"),
    # `verify`: confirmed (nothing left) | remaining (n left) | unverified | '' (not checked)
    ("requests", "verified", "TEXT NOT NULL DEFAULT ''"),
    ("requests", "remaining", "INTEGER"),
    ("requests", "verified_at", "TEXT NOT NULL DEFAULT ''"),
    ("requests", "verified_note", "TEXT NOT NULL DEFAULT ''"),  # why it stayed unverified
    # --discover: rows outside the window are kept too (to spot repeated pages), kept = 0;
    # the page size learned is saved with the page (NULL: saved before it was).
    ("found", "kept", "INTEGER NOT NULL DEFAULT 1"),
    ("listing", "next_size", "INTEGER"),
)


_OUR_TABLES = frozenset({"meta", "requests", "invalid_rows", "runs", "found", "listing"})
_CORE_TABLES = frozenset({"meta", "requests", "invalid_rows", "runs"})  # in every release

# The mark only bulk-delete writes: a SQLite header field (set before the file goes WAL, so it
# is in the file itself), the format it was written in, and a meta row.
APPLICATION_ID = int.from_bytes(b"BDel", "big")
USER_VERSION = 1
MARK = ("format", "bulk-delete checkpoint")
# A checkpoint from before the mark is recognised by what its plan always held.
_LEGACY_META = frozenset({"schema", "fingerprint", "input", "options", "created_at"})
_SQLITE_MAGIC = b"SQLite format 3\x00"
_BESIDE = ("-wal", "-shm")  # SQLite's files beside a checkpoint, made with the file's mode


def _connect(path: Path, uri: str) -> sqlite3.Connection:
    try:
        return sqlite3.connect(uri, uri=True, isolation_level=None)
    except sqlite3.Error as error:
        raise InputError(f"cannot open checkpoint {path}: {error}") from None


def _uri(path: Path, *, read_only: bool) -> str:
    return f"file:{quote(str(real(path)))}" + ("?mode=ro" if read_only else "")


def _tables(path: Path, connection: sqlite3.Connection) -> set[str]:
    try:
        rows = connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ).fetchall()
    except sqlite3.DatabaseError as error:
        raise _not_ours(path, str(error)) from None
    return {name for (name,) in rows}


def _not_ours(path: Path, why: str) -> InputError:
    return InputError(
        f"{path} is not a bulk-delete checkpoint ({why}); not touched. "
        "Give a new file name for the checkpoint."
    )


def _inspect(path: Path) -> str:
    """What ``path`` holds, found without writing a byte (no WAL switch, no table created):
    "new" (absent or empty), "ours" (our mark) or "legacy" (a checkpoint from before the
    mark). Anything else is refused, so another program's file stays byte-identical."""
    try:
        with open(path, "rb") as file:
            header = file.read(100)
    except FileNotFoundError:
        return "new"
    except OSError as error:
        raise InputError(f"cannot read checkpoint {path}: {error.strerror}") from None
    if not header:
        return "new"
    if len(header) < 100 or not header.startswith(_SQLITE_MAGIC):
        raise _not_ours(path, "not a SQLite database")
    if int.from_bytes(header[68:72], "big") not in (0, APPLICATION_ID):
        raise _not_ours(path, "another program's SQLite database: its application_id is not ours")
    connection = _connect(path, _uri(path, read_only=True))
    try:
        return _kind(path, connection)
    except sqlite3.DatabaseError as error:
        raise _not_ours(path, str(error)) from None
    finally:
        connection.close()


def _kind(path: Path, connection: sqlite3.Connection) -> str:
    # Read through SQLite: a header stamped in WAL mode may not be in the file yet.
    (application_id,) = connection.execute("PRAGMA application_id").fetchone()
    (version,) = connection.execute("PRAGMA user_version").fetchone()
    if application_id == APPLICATION_ID:
        if version > USER_VERSION:
            raise InputError(
                f"checkpoint {path} was written by a newer bulk-delete (format {version}); "
                "not touched. Use that version to resume it."
            )
        return "ours"
    if application_id != 0 or version != 0:
        raise _not_ours(path, "another program's SQLite database: its header is not ours")
    _check_legacy(path, connection)
    return "legacy"


def _check_legacy(path: Path, connection: sqlite3.Connection) -> None:
    """Exactly our tables with our columns, and a meta with our keys: a checkpoint made before
    the mark. (One whose plan was never stored holds nothing, and passes when it is empty.)"""
    tables = _tables(path, connection)
    foreign = tables - _OUR_TABLES
    if foreign:
        shown = ", ".join(sorted(foreign)[:5])
        raise _not_ours(path, f"another program's SQLite database (tables: {shown})")
    if not tables >= _CORE_TABLES:
        raise _not_ours(path, f"tables {', '.join(sorted(tables)) or 'none'}")
    expected, added = _expected_columns(), {(table, name) for table, name, _ in _ADDED_COLUMNS}
    for table in tables:
        have = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
        required = {name for name in expected[table] if (table, name) not in added}
        if not required <= have <= expected[table]:
            raise _not_ours(path, f"table {table} has other columns")
    keys = {key for (key,) in connection.execute("SELECT key FROM meta")}
    empty = not any(
        connection.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() for table in tables
    )
    if not (keys >= _LEGACY_META or empty):
        raise _not_ours(path, "its meta table is not a plan's")


@functools.cache
def _expected_columns() -> dict[str, frozenset[str]]:
    """Each table's columns, as this code creates them (the schema is the one source)."""
    connection = sqlite3.connect(":memory:")
    try:
        connection.executescript(_SCHEMA + _FOUND_SCHEMA)
        _add_missing_columns(connection)
        return {
            table: frozenset(row[1] for row in connection.execute(f"PRAGMA table_info({table})"))
            for table in _OUR_TABLES
        }
    finally:
        connection.close()


def _add_missing_columns(connection: sqlite3.Connection) -> None:
    for table, column, declaration in _ADDED_COLUMNS:
        have = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
        if column not in have:
            connection.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")


def lock(path: Path) -> AbstractContextManager[None]:
    """The checkpoint's exclusive lock: one process sends from a checkpoint at a time. It is
    taken on the real file (and a ``.lock`` beside it names the holder), so a symlink, a ``..``
    or a hard link cannot make a second, independent lock."""
    target = real(path)
    return hold_lock(target.with_name(target.name + ".lock"), f"checkpoint {path}", target=target)


def _make_private(path: Path) -> None:
    """The checkpoint and SQLite's files beside it, 0600 (an earlier release left them 0644)."""
    create_private(path)
    target = real(path)
    for suffix in _BESIDE:
        beside = target.with_name(target.name + suffix)
        if beside.exists():
            create_private(beside)


def _prepare(connection: sqlite3.Connection, *, stamp: bool) -> None:
    """Settings, tables and the mark. The header is stamped before the switch to WAL, so a new
    checkpoint carries its mark in the file itself from the first write."""
    if stamp:
        connection.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        connection.execute(f"PRAGMA user_version = {USER_VERSION}")
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute("PRAGMA busy_timeout=5000")
    connection.executescript(_SCHEMA + _FOUND_SCHEMA)
    _add_missing_columns(connection)
    if stamp:
        connection.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", MARK)


def now_text() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


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


@dataclass(frozen=True, slots=True)
class Verifiable:
    """A queued request to check: what should be gone from that lead."""

    seq: int
    prospect_id: str
    codes: tuple[str, ...]
    from_date: str
    to_date: str


class Checkpoint:
    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self.location = str(path.resolve())  # as summaries show it
        self._db = connection

    @classmethod
    def open(cls, path: str | Path) -> Checkpoint:
        """Open a checkpoint to write, creating it (0600) if it does not exist. Its folder
        must exist: a typo'd path must not silently start the whole plan again elsewhere. A
        file that is not ours is refused before anything writes to it; one from before the
        mark gets it."""
        path = Path(path)
        if path.is_dir():
            raise InputError(f"checkpoint {path} is a directory; give a file name like run.sqlite")
        if not path.parent.is_dir():
            raise InputError(
                f"checkpoint {path}: no such directory {path.parent}; create it first "
                "(or check the path for a typo)"
            )
        kind = _inspect(path)
        try:
            _make_private(path)
        except OSError as error:
            raise InputError(
                f"cannot write checkpoint {path} in {path.parent}: {error.strerror}"
            ) from None
        connection = _connect(path, _uri(path, read_only=False))
        try:
            _prepare(connection, stamp=kind != "ours")
        except sqlite3.DatabaseError as error:
            connection.close()
            cause = storage_cause(error) or str(error)
            raise InputError(f"cannot write checkpoint {path}: {cause}; nothing sent") from None
        except BaseException:
            connection.close()
            raise
        return cls(path, connection)

    @classmethod
    def open_existing(cls, path: str | Path) -> Checkpoint:
        """Open a checkpoint to read (status, export): read-only, never changed, so one from
        before the mark is read as it is."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: no such checkpoint")
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

    @contextmanager
    def _storing(self, what: str, *, sending: bool = True) -> Iterator[None]:
        """A full or failing disk named as such, not passed off as a bug: before sending an
        InputError (exit 2), after an AbortedError (exit 3) that says what is safe."""
        try:
            yield
        except (sqlite3.Error, OSError) as error:
            cause = storage_cause(error)
            if cause is None:
                raise
            if not sending:
                message = f"cannot {what} in checkpoint {self.path}: {cause}; nothing sent"
                raise InputError(message) from None
            raise StorageError(
                f"cannot {what} in checkpoint {self.path}: {cause}. Every outcome recorded "
                "before is safe; free some space and rerun the same command to resume."
            ) from None

    def __enter__(self) -> Checkpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ metadata

    @property
    def meta(self) -> dict[str, str]:
        return dict(self._db.execute("SELECT key, value FROM meta").fetchall())

    @property
    def found(self) -> FoundStore:
        """What --discover's listing found, kept with the plan."""
        return FoundStore(self._db)

    def set_meta(self, key: str, value: str) -> None:
        with self._storing("save a setting"):
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

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
        recorded = json.loads(meta.get("options", "{}"))
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
        stamp = now_text()
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
            " source_rows, body, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                now_text(),
                outcome.seq,
            ),
        )

    def mark_queued_up_to(self, seq: int) -> None:
        """Benchmarks and tests: pretend the first ``seq`` requests were queued earlier."""
        self._db.execute(
            "UPDATE requests SET status = 'queued', attempts = 1, http_status = 200,"
            " updated_at = ? WHERE seq <= ?",
            (now_text(), seq),
        )

    def start_run(self, *, host: str, rate: str) -> int:
        with self._storing("start a run", sending=False):
            cursor = self._db.execute(
                "INSERT INTO runs (started_at, host, rate) VALUES (?, ?, ?)",
                (now_text(), host, rate),
            )
        return int(cursor.lastrowid or 0)

    def finish_run(self, run_id: int, stats: RunFigures) -> None:
        with self._storing("record the run's end"):
            self._finish_run(run_id, stats)

    def _finish_run(self, run_id: int, stats: RunFigures) -> None:
        self._db.execute(
            "UPDATE runs SET finished_at = ?, calls = ?, queued = ?, failed = ?, rate_limited = ?,"
            " send_seconds = ?, result = ?, start_span = ?, limit_per_second = ? WHERE id = ?",
            (
                now_text(),
                stats.calls,
                stats.queued,
                stats.failed,
                stats.rate_limited_429,
                stats.send_seconds,
                stats.result,
                stats.start_span,
                stats.limit_per_second,
                run_id,
            ),
        )

    def last_run(self) -> RunFigures | None:
        # A checkpoint from before a column was added (read-only: never migrated) reads 0/NULL.
        have = {row[1] for row in self._db.execute("PRAGMA table_info(runs)")}
        added = {name: "0" if "NOT NULL" in kind else "NULL" for _, name, kind in _ADDED_COLUMNS}
        names = ("result", *_RUN_COLUMNS.values())
        columns = ", ".join(name if name in have else added[name] for name in names)
        row = self._db.execute(f"SELECT {columns} FROM runs ORDER BY id DESC LIMIT 1").fetchone()
        if row is None:
            return None
        result, *figures = row
        return RunFigures(result=RunResult(result), **dict(zip(_RUN_COLUMNS, figures, strict=True)))

    def last_run_target(self) -> tuple[str, str]:
        """The host and the rate the last run sent at; blank before any run."""
        row = self._db.execute("SELECT host, rate FROM runs ORDER BY id DESC LIMIT 1").fetchone()
        return ("", "") if row is None else (str(row[0]), str(row[1]))

    def run_count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM runs").fetchone()[0])

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

    # ------------------------------------------------------------ verify

    def to_verify(self, sample: int | None, rng: random.Random) -> list[Verifiable]:
        """Queued requests not yet confirmed (all, or a random ``sample`` of them)."""
        rows = self._db.execute(
            "SELECT seq, prospect_id, codes, from_date, to_date FROM requests"
            " WHERE status = 'queued' AND verified != 'confirmed' ORDER BY seq"
        ).fetchall()
        if sample is not None and sample < len(rows):
            rows = sorted(rng.sample(rows, sample))
        return [
            Verifiable(seq, lead, tuple(codes.split(";")), low, high)
            for seq, lead, codes, low, high in rows
        ]

    def record_verified(
        self, seq: int, verified: str, remaining: int | None, note: str = ""
    ) -> None:
        """``note``: why a request stays unverified."""
        with self._storing("record a check"):
            self._db.execute(
                "UPDATE requests SET verified = ?, remaining = ?, verified_at = ?,"
                " verified_note = ? WHERE seq = ?",
                (verified, remaining, now_text(), note, seq),
            )

    def unverified_notes(self, limit: int = 3) -> list[tuple[str, int]]:
        """(why, how many) of the requests left unverified, most frequent first."""
        if "verified_note" not in self._columns("requests"):
            return []
        rows = self._db.execute(
            "SELECT verified_note, COUNT(*) FROM requests WHERE verified = 'unverified'"
            " AND verified_note != '' GROUP BY verified_note ORDER BY COUNT(*) DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [(str(note), int(count)) for note, count in rows]

    def verification(self) -> Verification:
        if "verified" not in self._columns("requests"):
            return Verification()
        rows = self._db.execute(
            "SELECT verified, COUNT(*), SUM(COALESCE(remaining, 0)),"
            " COUNT(DISTINCT prospect_id) FROM requests WHERE verified != '' GROUP BY verified"
        ).fetchall()
        by = {verified: (count, left, leads) for verified, count, left, leads in rows}
        remaining = by.get("remaining", (0, 0, 0))
        return Verification(
            checked=sum(count for count, _, _ in by.values()),
            confirmed=by.get("confirmed", (0, 0, 0))[0],
            remaining_requests=remaining[0],
            remaining_activities=remaining[1],
            remaining_leads=remaining[2],
            unverified=by.get("unverified", (0, 0, 0))[0],
        )

    def _columns(self, table: str) -> set[str]:
        return {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}

    def export_rows(self, statuses: Iterable[str]) -> Iterator[tuple[Any, ...]]:
        """Rows in the export's column order; ``invalid`` rows come from the invalid table.
        An invalid row's dates are the sheet's text, never converted: they go in the last
        two columns ("as written"), and its FromDate/ToDate stay empty."""
        wanted = set(statuses)
        request_statuses = sorted(wanted & {"queued", "failed", "pending"})
        verify = (
            "verified, remaining, verified_at"
            if "verified" in self._columns("requests")
            else "'', NULL, ''"  # a checkpoint from before `verify`, opened read-only
        )
        if request_statuses:
            marks = ", ".join("?" * len(request_statuses))
            cursor = self._db.execute(
                "SELECT prospect_id, codes, from_date, to_date, webhook, status, attempts,"
                f" http_status, error, source_rows, updated_at, {verify}, '', '' FROM requests"
                f" WHERE status IN ({marks}) ORDER BY seq",
                request_statuses,
            )
            while rows := cursor.fetchmany(BATCH):
                yield from rows
        if "invalid" in wanted:
            stamp = self.meta.get("created_at", "")
            cursor = self._db.execute(
                "SELECT prospect_id, codes, from_date, to_date, webhook, row, reason"
                " FROM invalid_rows ORDER BY row"
            )
            while rows := cursor.fetchmany(BATCH):
                for pid, codes, from_date, to_date, webhook, row, reason in rows:
                    yield (
                        pid,
                        codes,
                        "",
                        "",
                        webhook,
                        "invalid",
                        0,
                        None,
                        reason,
                        str(row),
                        stamp,
                        "",
                        None,
                        "",
                        from_date,
                        to_date,
                    )


@dataclass(frozen=True, slots=True)
class Found:
    """One activity the listing read; ``kept`` when it is in the codes and its CreatedOn in
    the window (the others are kept only to spot a page that repeats them)."""

    activity_id: str
    prospect_id: str
    code: str
    created_on: str
    kept: bool = True


@dataclass(frozen=True, slots=True)
class ListingState:
    """How far the listing of one code got: pages read, rows seen, the server's count, the
    page size to ask next, and whether its last page ended it."""

    pages: int = 0
    rows: int = 0
    record_count: int | None = None
    size: int | None = None
    ended: bool = False


class FoundStore:
    """The listing's pages, each saved whole in one transaction: an interrupted listing goes
    on from the next page, at the page size the server showed, and never reads one twice. In
    a checkpoint for `run`, in memory for the dry run."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection

    @classmethod
    def in_memory(cls) -> FoundStore:
        connection = sqlite3.connect(":memory:", isolation_level=None)
        connection.executescript(_FOUND_SCHEMA)
        return cls(connection)

    def state(self, code: str) -> ListingState:
        pages, rows = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(rows), 0) FROM listing WHERE code = ?", (code,)
        ).fetchone()
        if not pages:
            return ListingState()
        size, got, record_count, after = self._db.execute(
            "SELECT size, rows, record_count, next_size FROM listing WHERE code = ?"
            " ORDER BY page DESC LIMIT 1",
            (code,),
        ).fetchone()
        if after is None:  # saved before the size was: page 1 held the server's cap
            first = self._db.execute(
                "SELECT rows FROM listing WHERE code = ? AND page = 1", (code,)
            ).fetchone()
            after = min(size, first[0]) if first and first[0] else size
            after = after if got >= after else 0
        return ListingState(
            pages=pages, rows=rows, record_count=record_count, size=after or None, ended=not after
        )

    def already_read(self, ids: list[str]) -> int:
        """How many of ``ids`` an earlier page held."""
        wanted = sorted(set(filter(None, ids)))
        count = 0
        for start in range(0, len(wanted), 500):  # under any SQLite's limit of parameters
            part = wanted[start : start + 500]
            marks = ", ".join("?" * len(part))
            query = f"SELECT COUNT(*) FROM found WHERE activity_id IN ({marks})"
            count += int(self._db.execute(query, part).fetchone()[0])
        return count

    def save_page(
        self,
        code: str,
        page: int,
        size: int,
        record_count: int,
        next_size: int,
        found: list[Found],
    ) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                "INSERT INTO found VALUES (?, ?, ?, ?, ?)",
                ((f.activity_id, f.prospect_id, f.code, f.created_on, int(f.kept)) for f in found),
            )
            db.execute(
                "INSERT INTO listing VALUES (?, ?, ?, ?, ?, ?)",
                (code, page, size, len(found), record_count, next_size),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def discard(self, code: str) -> None:
        """Forget every page of ``code``: a listing found untrustworthy plans nothing, and the
        next run lists that code again from page 1."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("DELETE FROM found WHERE code = ?", (code,))
            db.execute("DELETE FROM listing WHERE code = ?", (code,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def counts(self, code: str) -> tuple[int, tuple[int, int]]:
        """(rows read, (lowest, highest) RecordCount the pages gave) for one code."""
        read, low, high = self._db.execute(
            "SELECT COALESCE(SUM(rows), 0), MIN(record_count), MAX(record_count) FROM listing"
            " WHERE code = ?",
            (code,),
        ).fetchone()
        return int(read), (int(low if low is not None else 0), int(high or 0))

    def calls(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM listing").fetchone()[0])

    def by_lead(self) -> Iterator[tuple[str, tuple[str, ...], int]]:
        """(ProspectId, its codes found, activities found), in the order leads were found."""
        cursor = self._db.execute(
            "SELECT prospect_id, GROUP_CONCAT(DISTINCT code), COUNT(*) FROM found WHERE kept = 1"
            " GROUP BY prospect_id ORDER BY MIN(rowid)"
        )
        while rows := cursor.fetchmany(BATCH):
            for lead, codes, count in rows:
                yield lead, tuple(sorted(set(codes.split(",")), key=int)), int(count)

    def by_code(self) -> list[tuple[str, int, int, str, str]]:
        """(code, activities, leads, oldest CreatedOn, newest CreatedOn) per code found."""
        rows = self._db.execute(
            "SELECT code, COUNT(*), COUNT(DISTINCT prospect_id), MIN(created_on),"
            " MAX(created_on) FROM found WHERE kept = 1 GROUP BY code"
        ).fetchall()
        return sorted(
            ((str(code), count, leads, low, high) for code, count, leads, low, high in rows),
            key=lambda row: int(row[0]),
        )

    def leads(self) -> int:
        return int(
            self._db.execute(
                "SELECT COUNT(DISTINCT prospect_id) FROM found WHERE kept = 1"
            ).fetchone()[0]
        )
