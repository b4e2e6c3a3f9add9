"""One budget for every purge on one account and machine: a shared log of call starts.

Every run with the same host and keys writes its call starts into one SQLite file in the
user's state directory and starts a call only when the account-wide window has room; it also
counts the day's calls for ``--daily-limit``. A ledger that cannot be used raises
LedgerUnusable, naming the file and how to mend it. Design and figures: docs/design/ledger.md.

    with shared_window(host, access_key, wall=clock.wall, name="nightly") as ledger:
        wait = ledger.reserve(cap=25, window=5.0)   # 0: the start is taken
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from ..allowance import allowance_used
from ..config import RateLimit
from ..errors import LedgerUnusable, StorageError
from .state_file import APP, StateFile, state_dir

__all__ = ["APP", "FILE_NAME", "WindowLedger", "account_id", "calls_today", "state_dir"]

FILE_NAME = "ledger.sqlite"
KEEP = 60.0  # seconds of starts kept: longer than any rate window
DAY = 86400
BUSY_TIMEOUT = 5.0  # seconds another process may hold the write lock
AHEAD = 1.0  # seconds a start may lie ahead of our wall clock (another process read it later)
# The mark only bulk-delete writes: a SQLite header field, set before the file goes WAL.
APPLICATION_ID = int.from_bytes(b"BDLg", "big")
_TABLES = frozenset({"starts", "days", "runs", "budgets"})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS starts (account TEXT NOT NULL, run TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS starts_by_time ON starts (account, at);
CREATE TABLE IF NOT EXISTS days (
    account TEXT NOT NULL, day INTEGER NOT NULL, calls INTEGER NOT NULL,
    PRIMARY KEY (account, day)
);
CREATE TABLE IF NOT EXISTS runs (run TEXT PRIMARY KEY, name TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS budgets (
    account TEXT PRIMARY KEY, run TEXT NOT NULL, at REAL NOT NULL, free REAL NOT NULL
);
"""


LEDGER = StateFile(
    FILE_NAME,
    APPLICATION_ID,
    _SCHEMA,
    _TABLES,
    LedgerUnusable,
    "whose count of today's calls starts again from 0",
)


def account_id(host: str, access_key: str) -> str:
    """What names the account in the file: a hash, never the key."""
    return hashlib.sha256(f"{host}\n{access_key}".encode()).hexdigest()


class WindowLedger:
    """The account-wide window log, shared by every run on the machine through one file."""

    def __init__(
        self,
        path: Path,
        account: str,
        *,
        wall: Callable[[], float],
        run: str | None = None,
        name: str = "",
        daily_limit: int | None = None,
        on_notice: Callable[[str], None] | None = None,
    ) -> None:
        self.path = path
        self.account = account
        self.wall = wall
        self.run = run or f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.name = name
        self.daily_limit = daily_limit  # --daily-limit: no start past it today
        self.on_notice = on_notice
        self._neighbours: set[str] = set()  # other runs seen in the window beside ours
        self._told_ahead = False
        self._db = LEDGER.open(path, timeout=BUSY_TIMEOUT)
        if name:
            with self._write(opening=True) as db:
                db.execute("DELETE FROM runs WHERE at <= ?", (wall() - DAY,))
                db.execute("INSERT OR REPLACE INTO runs VALUES (?, ?, ?)", (self.run, name, wall()))

    @classmethod
    def for_account(
        cls,
        host: str,
        access_key: str,
        *,
        folder: Path | None = None,
        wall: Callable[[], float],
        name: str = "",
        daily_limit: int | None = None,
        on_notice: Callable[[str], None] | None = None,
    ) -> WindowLedger:
        """The machine's ledger (in ``folder``, default the state directory) for one account.
        Raises LedgerUnusable when it cannot be opened, or is damaged or not ours."""
        account = account_id(host, access_key)
        return cls(
            LEDGER.path(folder),
            account,
            wall=wall,
            name=name,
            daily_limit=daily_limit,
            on_notice=on_notice,
        )

    def close(self) -> None:
        self._db.close()

    # ------------------------------------------------------------ the window

    def reserve(self, cap: int, window: float, spacing: float = 0.0) -> float:
        """Take a start now if the account-wide window has room: fewer than ``cap`` starts in
        the last ``window`` seconds and none in the last ``spacing``. Returns 0 when taken,
        else the seconds to wait before asking again. Atomic across processes. Raises
        AllowanceUsed once ``daily_limit`` starts were taken today, by every run together."""
        now = self.wall()
        with self._write() as db:
            self._check_allowance(db, now)
            db.execute(
                "DELETE FROM starts WHERE account = ? AND at <= ?", (self.account, now - KEEP)
            )
            self._restamp_ahead(db, now)
            rows = db.execute(
                "SELECT at, run FROM starts WHERE account = ? AND at > ? ORDER BY at",
                (self.account, now - window),
            ).fetchall()
            starts = [at for at, _ in rows]
            self._neighbours.update(run for _, run in rows if run != self.run)
            wait = starts[-1] + spacing - now if starts else 0.0
            if len(starts) >= cap:
                wait = max(wait, starts[len(starts) - cap] + window - now)
            if wait > 0:
                return wait
            db.execute("INSERT INTO starts VALUES (?, ?, ?)", (self.account, self.run, now))
            db.execute(
                "INSERT INTO days VALUES (?, ?, 1) ON CONFLICT (account, day) "
                "DO UPDATE SET calls = calls + 1",
                (self.account, int(now // DAY)),
            )
            return 0.0

    def _restamp_ahead(self, db: sqlite3.Connection, now: float) -> None:
        """Starts stamped ahead of the wall clock (it went back, or the file was changed)
        would hold the window until the clock caught up with them: an hour's jump, an hour's
        wait. Their true time is unknown but past, so they count as made now: in the window
        for one window at most, never dropped (they may be real calls), and said once."""
        count, latest = db.execute(
            "SELECT COUNT(*), MAX(at) FROM starts WHERE account = ? AND at > ?",
            (self.account, now + AHEAD),
        ).fetchone()
        if not count:
            return
        db.execute(
            "UPDATE starts SET at = ? WHERE account = ? AND at > ?",
            (now, self.account, now + AHEAD),
        )
        if self.on_notice is not None and not self._told_ahead:
            self.on_notice(
                f"the machine's ledger {self.path} held {count} call start(s) up to "
                f"{latest - now:.0f} s ahead of this machine's clock (the clock went back, or "
                "the file was changed): counted as made now, they hold the account's window "
                "for one window at most"
            )
        self._told_ahead = True

    def others_before(self, age: float, window: float) -> int:
        """The other runs' starts on this account in the ``window`` seconds before the moment
        ``age`` seconds ago: with the run's own, what filled the account's window before a
        refused call (the limiter's free budget). An age, not a time: the limiter's clock is
        monotonic, the ledger's the wall."""
        until = self.wall() - age
        (count,) = self._db.execute(
            "SELECT COUNT(*) FROM starts WHERE account = ? AND run != ? AND at > ? AND at < ?",
            (self.account, self.run, until - window, until),
        ).fetchone()
        return int(count)

    def note_budget(self, free: float) -> None:
        """Leave the free budget (calls a window) this run just measured at a refusal, for the
        other runs refused in the same window: one read for the account's window."""
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO budgets VALUES (?, ?, ?, ?)",
                (self.account, self.run, self.wall(), free),
            )

    def budget_within(self, window: float) -> float | None:
        """The free budget another run noted in the last ``window`` seconds, if any. A run
        refused after it would count that run's refused call as room, and read high."""
        now = self.wall()
        row = self._db.execute(  # (one noted ahead of the clock is not of this window)
            "SELECT free FROM budgets WHERE account = ? AND run != ? AND at > ? AND at <= ?",
            (self.account, self.run, now - window, now + AHEAD),
        ).fetchone()
        return None if row is None else float(row[0])

    def calls_today(self) -> int:
        """Call starts of every run on this account since midnight UTC."""
        return _calls_on(self._db, self.account, self.wall())

    def _check_allowance(self, db: sqlite3.Connection, now: float) -> None:
        if self.daily_limit is None or _calls_on(db, self.account, now) < self.daily_limit:
            return
        moment = dt.datetime.fromtimestamp(now, tz=dt.UTC)
        raise allowance_used(RateLimit(calls=self.daily_limit, period=float(DAY)), moment)

    def shared_with(self) -> tuple[str, ...]:
        """The names of the other runs whose starts were in the window beside ours. A run of
        our own name is this run's earlier self (killed, then resumed: the checkpoint's lock
        lets no two run at once), whose starts still count but are not a neighbour."""
        named = dict(self._db.execute("SELECT run, name FROM runs").fetchall())
        names = {named.get(run, f"run {run}") for run in self._neighbours}
        return tuple(sorted(names - {self.name} if self.name else names))

    def other_runs(self, window: float = KEEP) -> set[str]:
        """The other runs that started calls on this account in the last ``window`` seconds."""
        rows = self._db.execute(
            "SELECT DISTINCT run FROM starts WHERE account = ? AND at > ? AND run != ?",
            (self.account, self.wall() - window, self.run),
        )
        return {run for (run,) in rows}

    @contextlib.contextmanager
    def _write(self, *, opening: bool = False) -> Iterator[sqlite3.Connection]:
        """One transaction. When SQLite cannot write (another process has held the file for
        over BUSY_TIMEOUT seconds, a full disk), the ledger is named: opening, as unusable;
        during a run, as a StorageError that stops it before its next call (not as a bug)."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.OperationalError as error:
            if opening:
                self._db.close()
                raise LEDGER.sqlite_problem(self.path, error) from None
            raise StorageError(
                f"the machine's ledger {self.path} cannot be written ({error}; another "
                f"process may have held it for over {BUSY_TIMEOUT:g} s: a run stopped with "
                "Ctrl-Z, a sqlite3 shell). The run stopped before its next call; nothing is "
                "lost. Rerun the same command to resume."
            ) from None


def _calls_on(db: sqlite3.Connection, account: str, now: float) -> int:
    row = db.execute(
        "SELECT calls FROM days WHERE account = ? AND day = ?", (account, int(now // DAY))
    ).fetchone()
    return int(row[0]) if row else 0


def calls_today(
    host: str,
    access_key: str,
    *,
    folder: Path | None = None,
    wall: Callable[[], float],
) -> int:
    """Today's call starts on this account, for a dry run: read only, and 0 when no run on
    this machine has written the file yet (a dry run never creates it). Raises LedgerUnusable
    where the run would: a folder it cannot make, a file damaged or not ours."""
    path = LEDGER.path(folder)
    db = LEDGER.read_only(path)
    if db is None:
        return 0
    try:
        with contextlib.closing(db):
            if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'days'").fetchone():
                return 0  # made by a run that died before its first write
            return _calls_on(db, account_id(host, access_key), wall())
    except sqlite3.DatabaseError as error:
        raise LEDGER.sqlite_problem(path, error) from None


@contextlib.contextmanager
def shared_window(
    host: str,
    access_key: str,
    *,
    wall: Callable[[], float],
    name: str = "",
    daily_limit: int | None = None,
    on_notice: Callable[[str], None] | None = None,
) -> Iterator[WindowLedger | None]:
    """The machine's ledger for this account while a run lasts. When it cannot be used, a
    run with a ``daily_limit`` stops before its first call (LedgerUnusable, exit 2): the limit
    would not hold. Without one the run goes on alone (None), said through ``on_notice``."""
    try:
        ledger = WindowLedger.for_account(
            host, access_key, wall=wall, name=name, daily_limit=daily_limit, on_notice=on_notice
        )
    except LedgerUnusable as error:
        if daily_limit is not None:
            raise
        if on_notice is not None:
            on_notice(error.warning)
        yield None
        return
    try:
        yield ledger
    finally:
        ledger.close()
