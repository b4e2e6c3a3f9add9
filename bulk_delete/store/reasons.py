"""Why requests failed and rows were invalid, grouped, with the sheet rows of each: what the
report and the results workbook tell a person who did not run the purge.

A failure's reason is LeadSquared's message (or ours for an outage), the same for every
request it stopped, so failures group by it as written. An invalid row's reason names its own
cell ("ProspectId 'abc' is not a GUID"), so invalid rows group by the reason with each quoted
value left out: one line per kind of mistake, with an example and the first rows.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from .schema import BATCH
from .tables import Tables

ROWS_SHOWN = 20  # sheet rows named per reason; the rest are counted
REASONS_SHOWN = 10  # reasons listed; the rest are counted

_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


@dataclass(frozen=True, kw_only=True)
class Reason:
    """One reason, how many it stopped, and the first of them: sheet rows (or, for requests
    without rows, such as a discovery's, their leads)."""

    reason: str
    count: int
    rows: Sequence[int] = ()
    leads: Sequence[str] = ()
    transient: bool = False  # a failure a rerun sends again
    example: str = ""  # an invalid row's reason as written, when the group's differs
    of: int = 0  # how many rows or leads it has in all, when not one each (0: ``count``)


def kind_of(reason: str) -> str:
    """A reason without the values it quotes: what rows with the same mistake share."""
    return _QUOTED.sub("'…'", reason)


class ReasonsTable(Tables):
    """Failures and invalid rows, grouped by reason, for the report and the workbook."""

    def plan_codes(self) -> list[str]:
        """Every activity code the plan's requests carry (from the sheet or the options),
        in numeric order."""
        codes: set[str] = set()
        for (text,) in self._db.execute("SELECT DISTINCT codes FROM requests"):
            codes.update(code for code in str(text).split(";") if code)
        return sorted(codes, key=lambda code: (len(code), code))

    def plan_span(self) -> DateSpan:
        """What the requests' windows cover (see ``DateSpan``)."""
        earliest, latest, no_from, no_to = self._db.execute(
            "SELECT MIN(NULLIF(from_date, '')), MAX(NULLIF(to_date, '')),"
            " COALESCE(SUM(from_date = ''), 0), COALESCE(SUM(to_date = ''), 0) FROM requests"
        ).fetchone()
        windows = self._db.execute(
            "SELECT COUNT(*) FROM (SELECT DISTINCT from_date, to_date FROM requests LIMIT 2)"
        ).fetchone()[0]
        return DateSpan(
            earliest=earliest or "",
            latest=latest or "",
            one_window=windows == 1,
            no_from=int(no_from),
            no_to=int(no_to),
        )

    def failure_groups(self, shown: int = REASONS_SHOWN) -> list[Reason]:
        """Failed requests by reason, most frequent first."""
        groups = self._db.execute(
            "SELECT error, COUNT(*), MAX(transient) FROM requests WHERE status = 'failed'"
            " GROUP BY error ORDER BY COUNT(*) DESC, error LIMIT ?",
            (shown,),
        ).fetchall()
        found = []
        for error, count, transient in groups:
            rows, leads = self._first_of(str(error))
            found.append(
                Reason(
                    reason=str(error),
                    count=int(count),
                    rows=rows,
                    leads=leads,
                    transient=bool(transient),
                )
            )
        return found

    def failure_reason_count(self) -> int:
        row = self._db.execute(
            "SELECT COUNT(DISTINCT error) FROM requests WHERE status = 'failed'"
        ).fetchone()
        return int(row[0])

    def _first_of(self, error: str) -> tuple[list[int], list[str]]:
        """The first sheet rows of the requests that failed so; their leads when the requests
        have no rows (a discovery's)."""
        rows: list[int] = []
        leads: list[str] = []
        cursor = self._db.execute(
            "SELECT source_rows, prospect_id FROM requests WHERE status = 'failed' AND error = ?"
            " ORDER BY seq",
            (error,),
        )
        for source_rows, lead in cursor:
            numbers = [int(each) for each in str(source_rows).split(";") if each.isdigit()]
            if numbers:
                rows += numbers[: ROWS_SHOWN - len(rows)]
            elif len(leads) < ROWS_SHOWN:
                leads.append(str(lead))
            if len(rows) + len(leads) >= ROWS_SHOWN:
                break
        return rows, leads

    def invalid_groups(self) -> list[Reason]:
        """Invalid rows by kind of mistake, most frequent first, each with its first rows."""
        counts: dict[str, int] = {}
        first: dict[str, list[int]] = {}
        example: dict[str, str] = {}
        for row, reason in self._invalid_reasons():
            for part in reason.split("; "):
                kind = kind_of(part)
                counts[kind] = counts.get(kind, 0) + 1
                rows = first.setdefault(kind, [])
                if len(rows) < ROWS_SHOWN:
                    rows.append(row)
                example.setdefault(kind, part)
        ordered = sorted(counts, key=lambda kind: (-counts[kind], first[kind][0]))
        return [
            Reason(
                reason=kind,
                count=counts[kind],
                rows=first[kind],
                example=example[kind] if example[kind] != kind else "",
            )
            for kind in ordered
        ]

    def _invalid_reasons(self) -> Iterator[tuple[int, str]]:
        cursor = self._db.execute("SELECT row, reason FROM invalid_rows ORDER BY row")
        while rows := cursor.fetchmany(BATCH):
            for row, reason in rows:
                yield int(row), str(reason)


@dataclass(frozen=True, kw_only=True)
class DateSpan:
    """The dates the plan's requests cover, in UTC as sent: the earliest FromDate and the
    latest ToDate, whether every request has the same window, and how many have an open side."""

    earliest: str
    latest: str
    one_window: bool
    no_from: int
    no_to: int
