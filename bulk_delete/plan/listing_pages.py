"""RetrieveByActivityEvent pages, checked rather than believed: shared by `--discover` (what to
delete) and `verify` (what is left).

A page with repeated ProspectActivityIds, or rows that cannot be used (no id, a lead that is
not a GUID, no CreatedOn, another ActivityEvent), stops the caller. Pages go on while they come
back full; a RecordCount that disagrees with the rows read is reported (``count_problem``).
After page 1, the page size is what page 1 held.

Why: docs/design/listing.md.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ..errors import UntrustworthyListing

MAX_PAGES = 100_000  # a server that never serves a short page must not page forever
GUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


@dataclass(frozen=True, slots=True)
class Page:
    """One page read and checked. ``next_size`` is the size to ask next; 0: the listing ended."""

    number: int
    asked: int
    rows: list[dict[str, Any]]
    record_count: int  # -1: the server gave none that reads as a number
    next_size: int


def text(value: object) -> str:
    return "" if value is None else str(value).strip()


def ids_of(rows: list[dict[str, Any]]) -> list[str]:
    return [text(row.get("ProspectActivityId")) for row in rows]


def next_size(page: int, asked: int, got: int) -> int:
    """The page size to ask next, or 0 when this page ended the listing: page 1 sets the size
    (the server's cap, or its own size), later pages go on while full."""
    if got == 0:
        return 0
    if page == 1:
        return got
    return asked if got >= asked else 0


def check_page(rows: list[dict[str, Any]], code: str, page: int, already_read: int) -> None:
    """Raise UntrustworthyListing naming what is wrong with this page, if anything.
    ``already_read``: how many of its ids were read on earlier pages."""
    clauses = []
    ids = ids_of(rows)
    present = [activity for activity in ids if activity]
    if len(present) < len(ids):
        clauses.append(
            f"has {len(ids) - len(present):,} row(s) without a ProspectActivityId, so its "
            "activities cannot be told apart"
        )
    leads = [text(row.get("RelatedProspectId")) for row in rows]
    bad = [lead for lead in leads if not GUID.fullmatch(lead)]
    if bad:
        clauses.append(
            f"has {len(bad):,} row(s) whose RelatedProspectId is not a GUID (e.g. {bad[0][:40]!r})"
        )
    undated = sum(1 for row in rows if not text(row.get("CreatedOn")))
    if undated:
        clauses.append(f"has {undated:,} row(s) without a CreatedOn")
    other = {text(row.get("ActivityEvent")) for row in rows} - {code, ""}
    if other:
        clauses.append(f"holds activities of code {', '.join(sorted(other))}, not {code}")
    repeated = already_read + len(present) - len(set(present))
    if repeated:
        noun = "activity" if repeated == 1 else "activities"
        clause = f"repeats {repeated:,} {noun} already read on earlier pages"
        if repeated == len(rows):
            clause += ": the server seems to ignore PageIndex"
        clauses.append(clause)
    if clauses:
        raise UntrustworthyListing(f"page {page} of code {code} " + "; it ".join(clauses))


def record_count(body: dict[str, Any]) -> int:
    try:
        return max(-1, int(body.get("RecordCount")))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return -1


def count_problem(code: str, read: int, counts: tuple[int, int]) -> str:
    """'' when every page said the server holds ``read`` activities; else what disagrees.
    ``counts``: the lowest and highest RecordCount the pages gave."""
    low, high = counts
    if low < 0:
        return f"the server gave no RecordCount for code {code}; {read:,} activities were read"
    if low != high:
        return (
            f"the server's count of code {code} changed while it was listed (between {low:,} "
            f"and {high:,}); {read:,} activities were read"
        )
    if low != read:
        return f"the server said {low:,} activities of code {code} but {read:,} were read"
    return ""


async def pages(
    fetch: Callable[[int, int], Awaitable[dict[str, Any]]],
    code: str,
    *,
    page: int,
    size: int,
    already_read: Callable[[list[str]], int],
    first: dict[str, Any] | None = None,
) -> AsyncIterator[Page]:
    """Pages of one code from ``page`` on, each checked before it is handed out; ``first``
    is that page's body when it was already read (verify's probe)."""
    body = first
    while True:
        if page > MAX_PAGES:
            raise UntrustworthyListing(
                f"code {code} still served full pages after {MAX_PAGES:,} pages"
            )
        if body is None:
            body = await fetch(page, size)
        rows = body.get("List") or []
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise UntrustworthyListing(f"page {page} of code {code} is not a list of activities")
        check_page(rows, code, page, already_read(ids_of(rows)))
        after = next_size(page, size, len(rows))
        yield Page(page, size, rows, record_count(body), after)
        if not after:
            return
        page, size, body = page + 1, after, None
