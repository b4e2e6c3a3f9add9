"""→ results: the workbook a person forwards after a run (Summary, Requests, Invalid rows).

Written by the one workbook writer (workbook.py: XlsxWriter, streamed, every string as text,
continuation sheets past Excel's last row). Dates are converted to the run's zone and written
as plain date cells, and the header names the zone. When the requests go on past one sheet,
the Summary names the sheets they fill: nothing is dropped.

Inputs are plain data (``ResultsSummary``, ``RequestRow``, ``InvalidSheetRow``), so the workbook
knows nothing of the checkpoint: whoever reads the checkpoint hands the rows in as iterables.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from .workbook import GUID_WIDTH, Book, Styles, Table, open_book, put

Pairs = Sequence[tuple[str, object]]


@dataclass(frozen=True, kw_only=True)
class ResultsSummary:
    """What the Summary sheet says: what was asked, the plan, what came of it."""

    asked: str  # "sheet leads.xlsx" or "discovery: activities created in the window"
    codes: Sequence[
        int | str
    ]  # each code, with its name where the account told it: "201 (Webinar)"
    window_from: dt.datetime | None  # aware; None when open or not known
    window_to: dt.datetime | None
    span: bool = False  # the window is the span the sheet's rows cover, each row its own
    tz: str  # the run's zone (IANA name)
    plan: Pairs = ()  # ("rows read", 312), ("requests", 300), ("invalid rows", 12)
    outcomes: Pairs = ()  # ("queued", 290), ("failed", 10)
    rate_achieved: float | None = None  # calls per second, as the limiter counts (summary.py)
    of_limit: float | None = None  # the busiest window's share of the limit in force, 0-1
    refusals: int = 0  # 429 answers
    learned_limit: str | None = None  # "20 calls / 5 s", when the account told us less
    share: float | None = None  # this job's share of the account's limit, 0-1
    verification: Pairs = ()  # ("verified", 280), ("remaining", 3); empty when not run
    backup: str | None = None  # where the backup went and what it holds, when one was taken
    exit_code: int | None = None
    finished_at: dt.datetime | None = None  # aware


@dataclass(frozen=True, kw_only=True)
class RequestRow:
    """One request and what happened to it; ``extra`` follows the workbook's extra columns."""

    prospect_id: str
    codes: Sequence[int]
    from_date: dt.datetime  # aware
    to_date: dt.datetime
    outcome: str  # queued, failed, invalid, pending
    reason: str = ""
    source_rows: Sequence[int] = ()
    http_status: int | None = None
    attempts: int = 0
    updated_at: dt.datetime | None = None
    extra: Sequence[object] = field(default_factory=tuple)


@dataclass(frozen=True, kw_only=True)
class InvalidSheetRow:
    """A sheet row never sent: its number, why, and its cells as they were written."""

    row: int
    reason: str
    cells: Sequence[object] = ()


def write_results(
    path: Path,
    summary: ResultsSummary,
    requests: Iterable[RequestRow],
    invalid: Iterable[InvalidSheetRow] = (),
    *,
    extra_columns: Sequence[str] = (),
    sheet_columns: Sequence[str] = (),
) -> None:
    """Write the three-sheet workbook at ``path`` (0600, whole or not at all).

    ``extra_columns`` name each RequestRow's ``extra`` values (the sheet's own columns, carried
    over); ``sheet_columns`` name each InvalidSheetRow's ``cells``."""
    tz = ZoneInfo(summary.tz)
    with open_book(path) as book:
        sheet, row = _summary_sheet(book, summary, tz)
        sheets = _requests_sheet(book, requests, extra_columns, tz)
        _invalid_sheet(book, invalid, sheet_columns)
        if len(sheets) > 1:  # the Summary's last section, written once the count is known
            _section(book.styles, sheet, row, "Requests", [("On sheets", ", ".join(sheets))])


def _local(moment: dt.datetime | None, tz: ZoneInfo) -> dt.datetime | None:
    """The moment in the run's zone, without tzinfo: Excel date cells have no zone."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise ValueError(f"a naive datetime reached the workbook: {moment!r}")
    return _in_zone(moment, tz)


@functools.lru_cache(maxsize=4096)
def _in_zone(moment: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """Cached: a sheet's requests mostly share a handful of windows."""
    return moment.astimezone(tz).replace(tzinfo=None)


def _summary_sheet(book: Book, summary: ResultsSummary, tz: ZoneInfo) -> tuple[Any, int]:
    """The Summary sheet, and its next free row."""
    sheet = book.sheet("Summary")
    sheet.set_column(0, 0, 28)
    sheet.set_column(1, 2, 40)
    sheet.write_string(0, 0, "Bulk delete: results", book.styles.title)
    row = 2
    for title, pairs in _summary_sections(summary, tz):
        if pairs:
            row = _section(book.styles, sheet, row, title, pairs)
    return sheet, row


def _section(styles: Styles, sheet: Any, row: int, title: str, pairs: Pairs) -> int:
    """A titled section of label, value rows from ``row``; returns the row after its gap."""
    sheet.write_string(row, 0, title, styles.section)
    row += 1
    for label, value in pairs:
        sheet.write_string(row, 0, label)
        put(sheet, styles, row, 1, value, _style_for(styles, value))
        row += 1
    return row + 1


def _style_for(styles: Styles, value: object) -> Any:
    if isinstance(value, float):
        return styles.rate
    return styles.number if isinstance(value, int) else None


def _summary_sections(summary: ResultsSummary, tz: ZoneInfo) -> list[tuple[str, Pairs]]:
    """The Summary sheet's sections, in the order a reader asks."""
    asked: list[tuple[str, object]] = [
        ("Asked", summary.asked),
        ("Activity codes", ", ".join(str(code) for code in summary.codes)),
        ("Time zone", summary.tz),
    ]
    if summary.window_from is not None and summary.window_to is not None:
        side = "Rows' dates span, " if summary.span else ""
        asked += [
            (f"{side}From ({summary.tz})", _local(summary.window_from, tz)),
            (f"{side}To ({summary.tz})", _local(summary.window_to, tz)),
            (f"{side}From (UTC)", _local(summary.window_from, ZoneInfo("UTC"))),
            (f"{side}To (UTC)", _local(summary.window_to, ZoneInfo("UTC"))),
        ]
    rate: list[tuple[str, object]] = [("Refusals (HTTP 429)", summary.refusals)]
    if summary.rate_achieved is not None:
        rate.insert(0, ("Rate achieved (calls/s)", summary.rate_achieved))
    if summary.of_limit is not None:
        rate.insert(1, ("Busiest window (share of the limit)", f"{summary.of_limit:.0%}"))
    if summary.learned_limit:
        rate.append(("Learned limit", summary.learned_limit))
    if summary.share is not None:
        rate.append(("Share of the account's limit", f"{summary.share:.0%}"))
    ended: list[tuple[str, object]] = []
    if summary.finished_at is not None:
        ended.append((f"Finished ({summary.tz})", _local(summary.finished_at, tz)))
    if summary.exit_code is not None:
        ended.append(("Exit code", summary.exit_code))
    return [
        ("What was asked", asked),
        ("The plan", summary.plan),
        ("Outcomes (queued: LeadSquared accepted the request)", summary.outcomes),
        ("Rate", rate),
        ("Verification", summary.verification),
        ("Backup", [("Written to", summary.backup)] if summary.backup else []),
        ("Run", ended),
    ]


REQUEST_COLUMNS = (
    "ProspectId",
    "ActivityEventList",
    "FromDate",
    "ToDate",
    "outcome",
    "reason",
    "sheet rows",
    "http status",
    "attempts",
    "updated",
)


def _requests_sheet(
    book: Book, requests: Iterable[RequestRow], extra_columns: Sequence[str], tz: ZoneInfo
) -> list[str]:
    """The Requests table, on as many sheets as it takes; returns their names."""
    zone = str(tz)
    headers = [
        f"{name} ({zone})" if name in {"FromDate", "ToDate", "updated"} else name
        for name in REQUEST_COLUMNS
    ]
    table = Table(book, "Requests", [*headers, *extra_columns])
    table.widths[0] = GUID_WIDTH
    for request in requests:
        table.write(
            (
                request.prospect_id,
                ",".join(str(code) for code in request.codes),
                _local(request.from_date, tz),
                _local(request.to_date, tz),
                request.outcome,
                request.reason,
                _rows_cell(request.source_rows),
                request.http_status,
                request.attempts,
                _local(request.updated_at, tz),
                *request.extra,
            )
        )
    table.finish()
    return table.sheets


def _rows_cell(rows: Sequence[int]) -> object:
    """One row as a number (it sorts and filters as one), several as text."""
    return rows[0] if len(rows) == 1 else ", ".join(str(row) for row in rows)


def _invalid_sheet(
    book: Book, invalid: Iterable[InvalidSheetRow], sheet_columns: Sequence[str]
) -> None:
    table = Table(book, "Invalid rows", ["row", "reason", *sheet_columns])
    for each in invalid:
        table.write((each.row, each.reason, *(_as_written(cell) for cell in each.cells)))
    table.finish()


def _as_written(cell: object) -> object:
    """A sheet cell as it was: text stays text; numbers and dates keep their type."""
    if isinstance(cell, dt.datetime) and cell.tzinfo is not None:
        return cell.replace(tzinfo=None)
    return cell
