"""The checkpoint's tables, its mark, and how a file from an older release is read or
migrated: the SQLite side of opening one, before any plan or outcome.

Two kinds of file carry the mark: a purge's checkpoint (`run`, `job`, `verify`) and a
restore's (`restore`), each with its own tables and its own meta row, so neither command ever
writes into the other's file (docs/design/restore.md).
"""

from __future__ import annotations

import functools
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from ..errors import InputError
from ..files import create_private, real
from .calls import CallLog

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
    limit_per_second REAL,                  -- the limit in force; NULL: no limit
    busiest_share REAL,                     -- most starts in one window / the limit's calls
    busiest_per_second REAL                 -- … / the limit's seconds
);
"""
# --discover: what the listing found, saved page by page before any delete.
_FOUND_SCHEMA = """
CREATE TABLE IF NOT EXISTS found (    -- every activity the listing read
    activity_id  TEXT PRIMARY KEY,
    prospect_id  TEXT NOT NULL,
    code         TEXT NOT NULL,
    created_on   TEXT NOT NULL,
    kept         INTEGER NOT NULL DEFAULT 1,  -- created in the window: to delete
    row          TEXT NOT NULL DEFAULT ''     -- --backup: the listing row, when it has fields
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

_ADDED_COLUMNS = (
    ("found", "row", "TEXT NOT NULL DEFAULT ''"),
    ("runs", "start_span", "REAL NOT NULL DEFAULT 0"),
    ("runs", "limit_per_second", "REAL"),
    ("runs", "busiest_share", "REAL"),
    ("runs", "busiest_per_second", "REAL"),
    # `verify`: confirmed (nothing left) | remaining (n left) | unverified | '' (not checked)
    ("requests", "verified", "TEXT NOT NULL DEFAULT ''"),
    ("requests", "remaining", "INTEGER"),
    ("requests", "verified_at", "TEXT NOT NULL DEFAULT ''"),
    ("requests", "verified_note", "TEXT NOT NULL DEFAULT ''"),  # why it stayed unverified
    # --discover: rows outside the window are kept too (to spot repeated pages), kept = 0;
    # the page size learned is saved with the page (NULL: saved before it was).
    ("found", "kept", "INTEGER NOT NULL DEFAULT 1"),
    ("listing", "next_size", "INTEGER"),
    # the sheet's own other columns of the request's first row (a JSON list, in the order of
    # meta's extra_columns); '' when the sheet had none, or planned before they were kept
    ("requests", "extra", "TEXT NOT NULL DEFAULT ''"),
)


# A restore's own file: one row per activity to post back, its outcome and its new id beside
# the old (store/restore_checkpoint.py); the ids seen on a lead before any post reached it; and
# the runs and calls tables a purge's checkpoint has, for the summary and the report.
_RESTORE_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS activities (
    seq          INTEGER PRIMARY KEY,   -- the order they are posted in
    old_id       TEXT NOT NULL UNIQUE,  -- its ProspectActivityId in the backup
    request      INTEGER NOT NULL,      -- the purge's request that deleted it
    prospect_id  TEXT NOT NULL,
    code         TEXT NOT NULL,
    activity_date TEXT NOT NULL,        -- its date, posted as ActivityDateTime (UTC)
    note         TEXT NOT NULL,
    fields       TEXT NOT NULL,         -- JSON [[SchemaName, Value], ...]
    owner_email  TEXT NOT NULL,         -- ActivityOwnerEmail, when the backup names one
    owner        TEXT NOT NULL,         -- the owner it had, as the backup names it
    status       TEXT NOT NULL DEFAULT 'unchecked',
    transient    INTEGER NOT NULL DEFAULT 0,
    new_id       TEXT NOT NULL DEFAULT '',
    found        INTEGER NOT NULL DEFAULT 0,  -- created by a post whose answer was lost
    attempts     INTEGER NOT NULL DEFAULT 0,
    http_status  INTEGER,
    error        TEXT NOT NULL DEFAULT '',
    updated_at   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS activities_by_lead ON activities(prospect_id, status);
CREATE TABLE IF NOT EXISTS seen (       -- on a lead before any post of this restore reached it
    prospect_id  TEXT NOT NULL,
    code         TEXT NOT NULL,
    activity_id  TEXT NOT NULL,
    PRIMARY KEY (prospect_id, code, activity_id)
) WITHOUT ROWID;
"""
_RUNS_SCHEMA = _SCHEMA[_SCHEMA.index("CREATE TABLE IF NOT EXISTS runs") :]

# calls: every HTTP call, for the run report (store/calls.py); created on open for writing.
_OUR_TABLES = frozenset({"meta", "requests", "invalid_rows", "runs", "found", "listing", "calls"})
_CORE_TABLES = frozenset({"meta", "requests", "invalid_rows", "runs"})  # in every release

# The mark only bulk-delete writes: a SQLite header field (set before the file goes WAL, so it
# is in the file itself), the format it was written in, and a meta row.
APPLICATION_ID = int.from_bytes(b"BDel", "big")
USER_VERSION = 1
MARK = ("format", "bulk-delete checkpoint")


@dataclass(frozen=True)
class Kind:
    """One kind of file bulk-delete keeps: its meta mark, its tables, and what it is called."""

    mark: str  # the meta row's value: "format" = mark
    noun: str  # what the file is, for people
    tables: frozenset[str]
    core: frozenset[str]  # the tables every file of this kind holds from its first write
    script: str  # its tables, created if missing
    legacy: bool  # a file from before the mark may be opened as this kind (a purge's only)


PURGE = Kind(
    MARK[1],
    "a purge's checkpoint (bulk-delete run)",
    _OUR_TABLES,
    _CORE_TABLES,
    _SCHEMA + _FOUND_SCHEMA,
    legacy=True,
)
RESTORE = Kind(
    "bulk-delete restore checkpoint",
    "a restore's checkpoint (bulk-delete restore)",
    frozenset({"meta", "activities", "seen", "runs", "calls"}),
    frozenset({"meta", "activities", "seen", "runs"}),
    _RESTORE_SCHEMA + _RUNS_SCHEMA,
    legacy=False,
)
_KINDS = (PURGE, RESTORE)
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


def _inspect(path: Path, kind: Kind = PURGE) -> str:
    """What ``path`` holds, found without writing a byte (no WAL switch, no table created):
    "new" (absent or empty), "ours" (our mark, of ``kind``) or "legacy" (a purge's checkpoint
    from before the mark). Anything else is refused, so another program's file, or a file of
    the other kind, stays byte-identical."""
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
        # One read transaction: a run stamping the file meanwhile is seen whole or not at all
        # (read statement by statement, its old application_id and new user_version read as
        # another program's header).
        connection.execute("BEGIN")
        return _kind(path, connection, kind)
    except sqlite3.DatabaseError as error:
        raise _not_ours(path, str(error)) from None
    finally:
        connection.close()


def _kind(path: Path, connection: sqlite3.Connection, kind: Kind) -> str:
    # Read through SQLite: a header stamped in WAL mode may not be in the file yet.
    (application_id,) = connection.execute("PRAGMA application_id").fetchone()
    (version,) = connection.execute("PRAGMA user_version").fetchone()
    if application_id == APPLICATION_ID:
        if version > USER_VERSION:
            raise InputError(
                f"checkpoint {path} was written by a newer bulk-delete (format {version}); "
                "not touched. Use that version to resume it."
            )
        _check_marked(path, connection, kind)
        return "ours"
    if application_id != 0 or version != 0:
        raise _not_ours(path, "another program's SQLite database: its header is not ours")
    if not kind.legacy:
        raise _not_ours(path, f"it carries no mark of {kind.noun}")
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
        CallLog.create(connection)
        _add_missing_columns(connection)
        return {
            table: frozenset(row[1] for row in connection.execute(f"PRAGMA table_info({table})"))
            for table in _OUR_TABLES
        }
    finally:
        connection.close()


def _add_missing_columns(connection: sqlite3.Connection) -> None:
    """Columns added since a checkpoint was made, looked for and added in one write
    transaction: two processes opening one old checkpoint at once (the loser is about to be
    told the lock is held) must not both add a column, which SQLite refuses as a duplicate."""
    connection.execute("BEGIN IMMEDIATE")  # waits for the other writer (busy_timeout)
    try:
        for table, column, declaration in _ADDED_COLUMNS:
            have = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
            if column not in have:
                connection.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def _make_private(path: Path) -> None:
    """The checkpoint and SQLite's files beside it, 0600 (an earlier release left them 0644)."""
    create_private(path)
    target = real(path)
    for suffix in _BESIDE:
        beside = target.with_name(target.name + suffix)
        if beside.exists():
            create_private(beside)


def _check_marked(path: Path, connection: sqlite3.Connection, kind: Kind = PURGE) -> None:
    """Our header alone is not enough: our meta row too, and no table of anyone else's. A
    file of the other kind (a restore's checkpoint given to `run`, say) is named as such."""
    try:
        row = connection.execute("SELECT value FROM meta WHERE key = ?", MARK[:1]).fetchone()
    except sqlite3.DatabaseError:
        row = None
    other = next((each for each in _KINDS if row is not None and row[0] == each.mark), None)
    if other is not None and other is not kind:
        raise InputError(
            f"{path} is {other.noun}, not {kind.noun}; not touched. Give this command a "
            "file of its own."
        )
    tables = _tables(path, connection)
    if tables - kind.tables or row is None or row[0] != kind.mark:
        raise _not_ours(path, "it carries our header but not our tables and mark")
    if missing := kind.core - tables:
        raise InputError(
            f"checkpoint {path} has lost its table(s) {', '.join(sorted(missing))}: changed by "
            "another program or damaged; not touched. Restore it from a copy, or start a new "
            "checkpoint."
        )


def _prepare(connection: sqlite3.Connection, *, stamp: bool, kind: Kind = PURGE) -> None:
    """Settings, tables and the mark. The header, the tables and the meta row are written in
    one transaction before the switch to WAL: a new checkpoint carries its whole mark in the
    file itself from its first write, or none of it."""
    connection.execute("PRAGMA busy_timeout=5000")
    if stamp:
        connection.executescript(
            f"BEGIN IMMEDIATE; PRAGMA application_id = {APPLICATION_ID};"
            f" PRAGMA user_version = {USER_VERSION};"
            + kind.script
            + f"INSERT OR REPLACE INTO meta VALUES ('{MARK[0]}', '{kind.mark}'); COMMIT;"
        )
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.executescript(kind.script)
    CallLog.create(connection)
    if kind is PURGE:
        _add_missing_columns(connection)
