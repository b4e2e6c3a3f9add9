"""→ a restore's results: the workbook a person forwards after `restore` (Summary, Activities).

Written by the one workbook writer (workbook.py: XlsxWriter, streamed, every string as text,
continuation sheets past Excel's last row). One row per activity of the backup that was
selected: where it was (lead, code, date, the purge's request), what came of it (posted, still
present, refused …) and its new id beside the old. Dates are UTC, as the backup holds them.
Inputs are plain data, so the workbook knows nothing of the checkpoint.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .workbook import GUID_WIDTH, Table, open_book

ACTIVITY_COLUMNS = (
    "ProspectId",
    "ActivityEvent",
    "ActivityDateTime (UTC)",
    "outcome",
    "new ProspectActivityId",
    "old ProspectActivityId",
    "request",
    "note",
    "owner",
    "owner email",
    "posts",
    "http status",
    "reason",
    "updated (UTC)",
)


@dataclass(frozen=True, kw_only=True)
class ActivityRow:
    """One activity and what came of it."""

    prospect_id: str
    code: int
    date: dt.datetime | None  # naive UTC
    outcome: str
    new_id: str
    old_id: str
    request: int
    note: str
    owner: str
    owner_email: str
    posts: int
    http_status: int | None
    reason: str
    updated: dt.datetime | None


def write_restore_results(
    path: Path, summary: Sequence[tuple[str, object]], activities: Iterable[ActivityRow]
) -> list[str]:
    """The workbook at ``path`` (0600, whole or not at all): the Summary's label and value
    rows, then the Activities table; returns the sheets the activities fill."""
    with open_book(path) as book:
        table = Table(book, "Summary", ("Restore", ""))
        for label, value in summary:
            table.write((label, value))
        table.finish()
        rows = Table(book, "Activities", ACTIVITY_COLUMNS)
        rows.widths[0] = rows.widths[4] = rows.widths[5] = GUID_WIDTH
        for each in activities:
            rows.write(
                (
                    each.prospect_id,
                    each.code,
                    each.date,
                    each.outcome,
                    each.new_id,
                    each.old_id,
                    each.request,
                    each.note,
                    each.owner,
                    each.owner_email,
                    each.posts,
                    each.http_status,
                    each.reason,
                    each.updated,
                )
            )
        rows.finish()
        return rows.sheets
