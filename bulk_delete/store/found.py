"""What --discover's listing found, page by page, in the checkpoint (or in memory)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass

from .schema import _FOUND_SCHEMA, BATCH


@dataclass(frozen=True, slots=True)
class Found:
    """One activity the listing read; ``kept`` when it is in the codes and its CreatedOn in
    the window (the others are kept only to spot a page that repeats them)."""

    activity_id: str
    prospect_id: str
    code: str
    created_on: str
    kept: bool = True
    row: str = ""  # the listing row as JSON, kept for --backup when it carries the fields


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
                "INSERT INTO found (activity_id, prospect_id, code, created_on, kept, row)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    (f.activity_id, f.prospect_id, f.code, f.created_on, int(f.kept), f.row)
                    for f in found
                ),
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

    def listed_rows(self, lead: str, codes: tuple[str, ...]) -> list[str] | None:
        """--backup: the lead's kept rows of these codes as the listing gave them (JSON), in
        the order read; None when any of them was saved without its fields."""
        marks = ",".join("?" * len(codes))
        rows = self._db.execute(
            f"SELECT row FROM found WHERE prospect_id = ? AND kept = 1 AND code IN ({marks})"
            " ORDER BY rowid",
            (lead, *codes),
        ).fetchall()
        if any(not row for (row,) in rows):
            return None
        return [row for (row,) in rows]

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

    def event_names(self) -> dict[str, str]:
        """Each code's name as the listing's rows gave it (``EventName``), where they carried
        it: the account's own name for the activity type, for the report."""
        names: dict[str, str] = {}
        rows = self._db.execute(
            "SELECT code, MIN(row) FROM found WHERE kept = 1 AND row != '' GROUP BY code"
        )
        for code, row in rows:
            try:
                name = json.loads(row).get("EventName")
            except (ValueError, AttributeError):
                continue
            if isinstance(name, str) and name.strip():
                names[str(code)] = name.strip()
        return names

    def leads(self) -> int:
        return int(
            self._db.execute(
                "SELECT COUNT(DISTINCT prospect_id) FROM found WHERE kept = 1"
            ).fetchone()[0]
        )
