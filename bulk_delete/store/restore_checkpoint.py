"""A restore's own checkpoint: the activities to post back, where each stands, its new id beside
the old, and the ids a lead held before any post reached it. Its own mark (schema ``RESTORE``);
every step is committed before the next call (a kill -9 leaves each settled or ``posting``).

    with RestoreCheckpoint.open(path) as checkpoint, lock(path):
        checkpoint.store_selection(activities, meta={...})
        checkpoint.mark_posting([seq]); checkpoint.record_posts([Post(...)])

Why: docs/design/restore.md.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..files import require_file
from ..records import Restorable, Restored
from ..summary import Counts
from .calls import CallLog
from .checkpoint import open_to_write
from .reasons import REASONS_SHOWN, ROWS_SHOWN, Reason
from .runs import RunsTable
from .schema import BATCH, RESTORE, _connect, _inspect, _not_ours, _uri

FINGERPRINT = "fingerprint"  # meta: what the selection was made from (the backup, the options)
# Still to do in a run: read on its lead, or post.
TODO = (Restored.UNCHECKED, Restored.PRESENT, Restored.GONE, Restored.POSTING)
_COLUMNS = (
    "seq, old_id, request, prospect_id, code, activity_date, note, fields, owner_email,"
    " owner, status, transient, new_id, found, attempts, http_status, error, updated_at"
)


@dataclass(frozen=True, slots=True)
class Item:
    """One stored activity and where it stands."""

    activity: Restorable
    status: Restored
    transient: bool = False
    new_id: str = ""
    found: bool = False  # created by a post whose answer was lost, and found on its lead
    attempts: int = 0  # posts made
    http_status: int | None = None
    error: str = ""
    updated_at: str = ""

    @property
    def seq(self) -> int:
        return self.activity.seq


@dataclass(frozen=True, slots=True)
class Settled:
    """What is now known of one activity: its new status, and what goes with it."""

    seq: int
    status: Restored
    new_id: str = ""
    found: bool = False
    transient: bool = False
    http_status: int | None = None
    error: str = ""


@dataclass(frozen=True, kw_only=True)
class Tally:
    """The activities by where they stand."""

    activities: int = 0
    leads: int = 0
    unchecked: int = 0
    present: int = 0
    gone: int = 0
    posting: int = 0
    posted: int = 0
    found: int = 0  # of posted: created by a post whose answer was lost
    already: int = 0  # an identical activity was on the lead already: not posted
    failed: int = 0
    failed_transient: int = 0
    lead_missing: int = 0
    owners_known: int = 0  # activities whose owner's email the backup names

    @property
    def todo(self) -> int:
        return self.unchecked + self.present + self.gone + self.posting + self.failed_transient

    def as_counts(self, rate_limited_429: int = 0) -> Counts:
        """As a run's totals: requests = activities, queued = posted or already there,
        failed = refused or given up on (and leads gone), pending = not posted yet."""
        return Counts(
            requests=self.activities,
            pending=self.unchecked + self.present + self.gone + self.posting,
            queued=self.posted + self.already,
            failed=self.failed + self.lead_missing,
            failed_transient=self.failed_transient,
            leads=self.leads,
            rate_limited_429=rate_limited_429,
        )


@dataclass(frozen=True)
class Span:
    """What the selection holds: activities of each code, the dates they span (UTC), and the
    purge's requests that deleted them."""

    codes: list[tuple[str, int]]
    first: str
    last: str
    requests: int


class RestoreCheckpoint(RunsTable):
    """A restore's SQLite file, opened (and created) here; lock it with checkpoint.lock."""

    @classmethod
    def open(cls, path: str | Path) -> RestoreCheckpoint:
        """Open to write, creating it (0600); anything but a restore's checkpoint is refused
        untouched (a purge's checkpoint is named as one)."""
        path = Path(path)
        return cls(path, open_to_write(path, RESTORE))

    @classmethod
    def open_existing(cls, path: str | Path) -> RestoreCheckpoint:
        """Open to read (the results, the report): read-only, never changed."""
        path = Path(path)
        require_file(path, "checkpoint", missing="no such checkpoint")
        if _inspect(path, RESTORE) == "new":
            raise _not_ours(path, "an empty file")
        return cls(path, _connect(path, _uri(path, read_only=True)))

    @staticmethod
    def is_one(path: Path) -> bool:
        """Whether ``path`` is a restore's checkpoint (read without changing a byte)."""
        try:
            return path.is_file() and _inspect(path, RESTORE) == "ours"
        except InputError:
            return False

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> RestoreCheckpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def calls(self) -> CallLog:
        return CallLog(self._db)

    @property
    def has_selection(self) -> bool:
        return self.meta.get(FINGERPRINT) is not None

    def account_used(self) -> bool:
        """Whether an account already answered for it: a post made, or one on the wire."""
        row = self._db.execute(
            "SELECT 1 FROM activities WHERE status IN (?, ?) LIMIT 1",
            (Restored.POSTED, Restored.POSTING),
        ).fetchone()
        return row is not None

    # ------------------------------------------------------------ the selection

    def store_selection(self, activities: Iterable[Restorable], meta: dict[str, str]) -> int:
        """The activities to post back and what they were chosen from, in one transaction."""
        with self._storing("store the selection", sending=False):
            return self._store(activities, meta)

    def _store(self, activities: Iterable[Restorable], meta: dict[str, str]) -> int:
        db, count, stamp = self._db, 0, self.now_text()
        db.execute("BEGIN IMMEDIATE")
        try:
            batch: list[tuple[object, ...]] = []
            for activity in activities:
                count += 1
                batch.append(_row(count, activity, stamp))
                if len(batch) >= BATCH:
                    _insert(db, batch)
                    batch.clear()
            _insert(db, batch)
            rows = {**meta, "created_at": stamp, "activities": str(count)}
            db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", rows.items())
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return count

    # ------------------------------------------------------------ reading back

    def tally(self) -> Tally:
        rows = self._db.execute(
            "SELECT status, transient, COUNT(*), SUM(found), SUM(owner_email != '')"
            " FROM activities GROUP BY status, transient"
        ).fetchall()
        by: Counter[str] = Counter()
        found = owners = 0
        for status, transient, count, posted_found, known in rows:
            by[status] += count
            by["failed_transient"] += count if status == Restored.FAILED and transient else 0
            found += posted_found or 0 if status == Restored.POSTED else 0
            owners += known or 0
        (leads,) = self._db.execute("SELECT COUNT(DISTINCT prospect_id) FROM activities").fetchone()
        return Tally(
            activities=sum(by[status] for status in Restored),
            leads=int(leads),
            unchecked=by[Restored.UNCHECKED],
            present=by[Restored.PRESENT],
            gone=by[Restored.GONE],
            posting=by[Restored.POSTING],
            posted=by[Restored.POSTED],
            found=found,
            already=by[Restored.ALREADY],
            failed=by[Restored.FAILED],
            failed_transient=by["failed_transient"],
            lead_missing=by[Restored.LEAD_MISSING],
            owners_known=owners,
        )

    def items(self, statuses: Sequence[Restored] = tuple(Restored)) -> Iterator[Item]:
        """The activities in those states, in order, in batches (never all in memory)."""
        marks = ", ".join("?" * len(statuses))
        last = 0
        while True:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM activities WHERE seq > ? AND status IN ({marks})"
                " ORDER BY seq LIMIT ?",
                (last, *statuses, BATCH),
            ).fetchall()
            if not rows:
                return
            yield from map(_item, rows)
            last = rows[-1][0]

    def leads_to_read(self, statuses: Sequence[Restored]) -> list[str]:
        """The leads holding an activity in those states (to read them before posting)."""
        marks = ", ".join("?" * len(statuses))
        rows = self._db.execute(
            f"SELECT prospect_id, MIN(seq) FROM activities WHERE status IN ({marks})"
            " GROUP BY prospect_id ORDER BY MIN(seq)",
            tuple(statuses),
        ).fetchall()
        return [str(lead) for lead, _ in rows]

    def of_lead(self, lead: str) -> list[Item]:
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM activities WHERE prospect_id = ? ORDER BY seq", (lead,)
        ).fetchall()
        return [_item(row) for row in rows]

    def seen(self, lead: str) -> set[tuple[str, str]]:
        """(code, id) of what the lead held before any post of this restore reached it."""
        rows = self._db.execute(
            "SELECT code, activity_id FROM seen WHERE prospect_id = ?", (lead,)
        ).fetchall()
        return {(str(code), str(activity)) for code, activity in rows}

    def held_requests(self, limit: int = 20) -> tuple[int, ...]:
        """The purge's requests whose activities are still present (the first ``limit``)."""
        rows = self._db.execute(
            "SELECT DISTINCT request FROM activities WHERE status = ? ORDER BY request LIMIT ?",
            (Restored.PRESENT, limit),
        ).fetchall()
        return tuple(int(request) for (request,) in rows)

    def failure_reasons(self, limit: int = 10) -> list[tuple[str, int, bool]]:
        """(error, count, transient) of what was not posted, most frequent first."""
        rows = self._db.execute(
            "SELECT error, COUNT(*), MAX(transient) FROM activities WHERE status IN (?, ?)"
            " GROUP BY error ORDER BY COUNT(*) DESC LIMIT ?",
            (Restored.FAILED, Restored.LEAD_MISSING, limit),
        ).fetchall()
        return [(str(error), int(count), bool(transient)) for error, count, transient in rows]

    def failure_groups(self, limit: int = REASONS_SHOWN) -> list[Reason]:
        """What was not posted, by reason, most frequent first, with the first leads of each
        (an activity has no sheet row)."""
        groups = []
        for error, count, transient in self.failure_reasons(limit):
            leads = [
                str(lead)
                for (lead,) in self._db.execute(
                    "SELECT DISTINCT prospect_id FROM activities WHERE status IN (?, ?)"
                    " AND error = ? ORDER BY prospect_id",
                    (Restored.FAILED, Restored.LEAD_MISSING, error),
                )
            ]
            groups.append(
                Reason(
                    reason=error,
                    count=count,
                    transient=transient,
                    leads=leads[:ROWS_SHOWN],
                    of=len(leads),
                )
            )
        return groups

    def span(self) -> Span:
        codes = self._db.execute(
            "SELECT code, COUNT(*) FROM activities GROUP BY code ORDER BY CAST(code AS INTEGER)"
        ).fetchall()
        first, last, requests = self._db.execute(
            "SELECT MIN(activity_date), MAX(activity_date), COUNT(DISTINCT request) FROM activities"
        ).fetchone()
        pairs = [(str(code), int(count)) for code, count in codes]
        return Span(pairs, str(first or ""), str(last or ""), int(requests))

    # ------------------------------------------------------------ sending

    def retry_given_up(self) -> None:
        """A new run tries again what an earlier one gave up on after answers that never
        came, none of them found on the lead: they are gone, so they go back to GONE."""
        with self._storing("prepare the run", sending=False):
            self._db.execute(
                "UPDATE activities SET status = ?, transient = 0"
                " WHERE status = ? AND transient = 1",
                (Restored.GONE, Restored.FAILED),
            )

    def settle_lead(
        self, lead: str, settled: Iterable[Settled], seen: Iterable[tuple[str, str]]
    ) -> None:
        """What one reading of a lead decided, with the ids it held, in one transaction: a kill
        leaves the lead as it was before the reading, or as it is after."""

        def write() -> None:
            self._settle(settled)
            self._db.executemany(
                "INSERT OR IGNORE INTO seen VALUES (?, ?, ?)",
                ((lead, code, activity) for code, activity in seen),
            )

        with self._storing("record a lead's activities"):
            self._in_one(write)

    def mark_posting(self, seqs: Sequence[int]) -> None:
        """Committed before the post goes out: from here a kill means "look first"."""
        with self._storing("record a post"):
            self._db.executemany(
                "UPDATE activities SET status = ?, attempts = attempts + 1, updated_at = ?"
                " WHERE seq = ?",
                ((Restored.POSTING, self.now_text(), seq) for seq in seqs),
            )

    def record(self, settled: Iterable[Settled]) -> None:
        """What the post's answer said, for each activity it carried, in one transaction."""
        with self._storing("record a post's answer"):
            self._in_one(lambda: self._settle(settled))

    def _settle(self, settled: Iterable[Settled]) -> None:
        stamp = self.now_text()
        self._db.executemany(
            "UPDATE activities SET status = ?, new_id = ?, found = ?, transient = ?,"
            " http_status = COALESCE(?, http_status), error = ?, updated_at = ? WHERE seq = ?",
            (
                (
                    each.status,
                    each.new_id,
                    int(each.found),
                    int(each.transient),
                    each.http_status,
                    each.error,
                    stamp,
                    each.seq,
                )
                for each in settled
            ),
        )

    def _in_one(self, work: Callable[[], None]) -> None:
        """``work`` in one transaction."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            work()
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise


def _row(seq: int, activity: Restorable, stamp: str) -> tuple[object, ...]:
    return (
        seq,
        activity.old_id,
        activity.request,
        activity.prospect_id,
        activity.code,
        activity.date,
        activity.note,
        json.dumps([list(pair) for pair in activity.fields], ensure_ascii=False),
        activity.owner_email,
        activity.owner,
        stamp,
    )


def _insert(db: sqlite3.Connection, batch: list[tuple[object, ...]]) -> None:
    db.executemany(
        "INSERT INTO activities (seq, old_id, request, prospect_id, code, activity_date, note,"
        " fields, owner_email, owner, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        batch,
    )


def _item(row: tuple[object, ...]) -> Item:
    seq, old_id, request, lead, code, date, note, fields, email, owner = row[:10]
    status, transient, new_id, found, attempts, http_status, error, updated_at = row[10:]
    activity = Restorable(
        old_id=str(old_id),
        request=int(str(request)),
        prospect_id=str(lead),
        code=str(code),
        date=str(date),
        note=str(note),
        fields=tuple((str(name), str(value)) for name, value in json.loads(str(fields))),
        owner_email=str(email),
        owner=str(owner),
        seq=int(str(seq)),
    )
    return Item(
        activity=activity,
        status=Restored(str(status)),
        transient=bool(transient),
        new_id=str(new_id),
        found=bool(found),
        attempts=int(str(attempts)),
        http_status=None if http_status is None else int(str(http_status)),
        error=str(error),
        updated_at=str(updated_at),
    )
