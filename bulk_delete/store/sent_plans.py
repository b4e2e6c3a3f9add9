"""The plans this machine has sent, so that none is sent again by accident.

A plan is known by two fingerprints, a row each: its file and options, and its requests (a
memory from before those holds only the first); its account by a hash of host and access key
(never a key). ``sent-plans.sqlite`` lies beside the ledger (store/state_file.py).

    remember(plan, host, access_key, checkpoint, at=clock.wall(), requests=...)
    earlier = sent_before({plan}, host, access_key, requests=...)  # read only: [] if none sent

Why, and who refuses a plan sent before: docs/design/ledger.md.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..errors import SentPlansUnusable
from .ledger import account_id
from .state_file import StateFile

FILE_NAME = "sent-plans.sqlite"
APPLICATION_ID = int.from_bytes(b"BDsp", "big")
BUSY_TIMEOUT = 5.0
_SCHEMA = """
CREATE TABLE IF NOT EXISTS sent (
    plan TEXT NOT NULL, account TEXT NOT NULL, host TEXT NOT NULL, checkpoint TEXT NOT NULL,
    at REAL NOT NULL, PRIMARY KEY (plan, account, checkpoint)
);
"""
SENT_PLANS = StateFile(
    FILE_NAME,
    APPLICATION_ID,
    _SCHEMA,
    frozenset({"sent"}),
    SentPlansUnusable,
    "which knows of no plan sent before",
)


@dataclass(frozen=True)
class Sent:
    """One earlier send of a plan: the checkpoint it went under, its host, and when."""

    checkpoint: str
    host: str
    at: float  # epoch seconds
    # Known by the file and options (so that checkpoint resumes with this sheet), not only
    # by the same requests (a sheet written otherwise, or other options to the same effect).
    same_file: bool = True

    @property
    def when(self) -> str:
        return dt.datetime.fromtimestamp(self.at, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def remember(
    plan: str,
    host: str,
    access_key: str,
    checkpoint: str,
    *,
    at: float,
    requests: str = "",
    folder: Path | None = None,
) -> None:
    """Keep that ``plan`` (and its ``requests`` fingerprint, when known) was sent to the
    account under ``checkpoint`` (the first time only). SentPlansUnusable, naming the file,
    when it cannot be written."""
    path = SENT_PLANS.path(folder)
    db = SENT_PLANS.open(path, timeout=BUSY_TIMEOUT)
    account = account_id(host, access_key)
    rows = [(known, account, host, checkpoint, at) for known in (plan, requests) if known]
    with contextlib.closing(db):
        try:
            db.executemany("INSERT OR IGNORE INTO sent VALUES (?, ?, ?, ?, ?)", rows)
        except sqlite3.DatabaseError as error:
            raise SENT_PLANS.sqlite_problem(path, error) from None


def sent_before(
    plans: Iterable[str],
    host: str = "",
    access_key: str | None = None,
    *,
    requests: str = "",
    folder: Path | None = None,
) -> list[Sent]:
    """The earlier sends of any of ``plans`` (one plan under the names of its zone) or of its
    ``requests`` fingerprint, one per checkpoint, oldest first: to this account when the host
    and key are known, else to any. Read only: [] when no run on this machine has written the
    file. SentPlansUnusable when it cannot be read."""
    path = SENT_PLANS.path(folder)
    db = SENT_PLANS.read_only(path)
    if db is None:
        return []
    files = sorted(plans)
    known = [*files, requests] if requests else files
    query = (
        f"SELECT checkpoint, host, MIN(at), MAX(plan IN ({_marks(files)})) FROM sent "
        f"WHERE plan IN ({_marks(known)})"
    )
    wanted = [*files, *known]
    if host and access_key is not None:
        query += " AND account = ?"
        wanted.append(account_id(host, access_key))
    with contextlib.closing(db):
        try:
            if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'sent'").fetchone():
                return []  # made by a run that died before its first write
            rows = db.execute(query + " GROUP BY checkpoint, account ORDER BY 3", wanted).fetchall()
        except sqlite3.DatabaseError as error:
            raise SENT_PLANS.sqlite_problem(path, error) from None
    return [Sent(checkpoint, sent_host, at, bool(same)) for checkpoint, sent_host, at, same in rows]


def _marks(values: list[str]) -> str:
    return ",".join("?" * len(values))
