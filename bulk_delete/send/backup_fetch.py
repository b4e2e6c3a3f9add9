"""What a request will delete, read from LeadSquared before it is sent (for the backup).

``activities_to_delete(retrieve, selection)`` reads the lead's activities of each code with
Retrieve, page by page, and keeps those whose date lies in the request's window, as the delete
selects them (``api.activity_date``: ActivityDateTime when an activity has one, as one posted
back by a restore does, else CreatedOn). ``activities_of`` reads them all, whatever the date.
Pages are checked, not believed: anything that does not add up raises ActivitiesUnread and the
request is not sent. ``expected_calls`` prices it for the dry run.
Why and how: docs/design/backup.md.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Protocol

from ..api import activity_date
from ..errors import ActivitiesUnread
from .answers import Answer

ROWS_PER_CALL = 100
DEFAULT_MAX_ROWS = 20_000  # per lead and code: 200 calls

Retrieve = Callable[[str, str, int, int], Awaitable[tuple[Answer, dict[str, Any]]]]


class RequestScope(Protocol):
    """What a request deletes: plan.Request and checkpoint.Verifiable both fit."""

    @property
    def prospect_id(self) -> str: ...
    @property
    def codes(self) -> tuple[str, ...]: ...
    @property
    def from_date(self) -> str: ...
    @property
    def to_date(self) -> str: ...


def selected(request: RequestScope, activity: dict[str, Any]) -> bool:
    """Whether the request's delete takes this activity (the emulator's rule, LeadSquared's)."""
    when = activity_date(activity)
    return (
        _text(activity.get("EventCode")) in request.codes
        and (not request.from_date or when >= request.from_date)
        and (not request.to_date or when <= request.to_date)
    )


async def activities_to_delete(
    retrieve: Retrieve,
    request: RequestScope,
    *,
    rows_per_call: int = ROWS_PER_CALL,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> list[dict[str, Any]]:
    """Every activity the request will delete, each as Retrieve returned it, codes in the
    request's order. Raises ActivitiesUnread when the pages do not add up."""
    found: list[dict[str, Any]] = []
    for code in request.codes:
        rows = await _all_of_code(retrieve, request.prospect_id, code, rows_per_call, max_rows)
        found += [row for row in rows if selected(request, row)]
    return found


async def activities_of(
    retrieve: Retrieve,
    lead: str,
    code: str,
    *,
    rows_per_call: int = ROWS_PER_CALL,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> list[dict[str, Any]]:
    """Every activity of one code on one lead, whatever its date, each as Retrieve returned
    it. Raises ActivitiesUnread when the pages do not add up."""
    return await _all_of_code(retrieve, lead, code, rows_per_call, max_rows)


async def _all_of_code(
    retrieve: Retrieve, lead: str, code: str, size: int, max_rows: int
) -> list[dict[str, Any]]:
    """Every activity of one code on one lead, whatever its date."""
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    total, served, call = -1, size, 0
    while True:
        call += 1
        page, count = await _page(retrieve, lead, code, len(rows), size)
        where = f"Retrieve of code {code} on lead {lead}"
        if count < 0:
            raise ActivitiesUnread(f"{where} gave no RecordCount")
        if count > max_rows:
            raise ActivitiesUnread(
                f"{where} says the lead holds {count:,} activities of that code, more than a "
                f"backup reads per lead and code ({max_rows:,}); back it up in LeadSquared"
            )
        if total >= 0 and count != total:
            raise ActivitiesUnread(f"{where}: RecordCount changed from {total:,} to {count:,}")
        total = count
        _check(page, code, seen, where, call)
        rows += page
        if not page or len(rows) >= total:
            break
        if call == 1:  # a server may serve fewer rows than asked: page 1 says how many
            served = len(page)
        if call >= math.ceil(total / served) + 1:
            raise ActivitiesUnread(f"{where} still had pages after {call} calls for {total:,}")
    if len(rows) != total:
        raise ActivitiesUnread(
            f"Retrieve said lead {lead} holds {total:,} activities of code {code} but "
            f"{len(rows):,} were read"
        )
    return rows


async def _page(
    retrieve: Retrieve, lead: str, code: str, offset: int, size: int
) -> tuple[list[dict[str, Any]], int]:
    """One page's rows and its RecordCount (-1: none that reads as a number)."""
    answer, body = await retrieve(lead, code, offset, size)
    if answer.http_status != 200 or not body:
        raise ActivitiesUnread(
            f"LeadSquared did not answer Retrieve of code {code} on lead {lead}"
            + (f": {answer.message}" if answer.message else "")
        )
    rows = body.get("ProspectActivities")
    if rows is None:
        rows = []
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise ActivitiesUnread(f"Retrieve of code {code} on lead {lead} is not a list")
    try:
        count = max(-1, int(body.get("RecordCount")))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        count = -1
    return rows, count


def _check(page: list[dict[str, Any]], code: str, seen: set[str], where: str, call: int) -> None:
    """Raise naming what is wrong with one page; add its ids to ``seen``."""
    ids = [_text(row.get("Id")) for row in page]
    if not all(ids):
        raise ActivitiesUnread(f"{where}: page {call} has rows without an Id")
    if any(not _text(row.get("CreatedOn")) for row in page):
        raise ActivitiesUnread(f"{where}: page {call} has rows without a CreatedOn")
    other = {_text(row.get("EventCode")) for row in page} - {code}
    if other:
        raise ActivitiesUnread(f"{where}: page {call} holds code {', '.join(sorted(other))}")
    if len(set(ids)) < len(ids) or not seen.isdisjoint(ids):
        raise ActivitiesUnread(
            f"{where}: page {call} repeats activities already read (is Offset ignored?)"
        )
    seen.update(ids)


def _text(value: object) -> str:
    return "" if value is None else str(value).strip()


def expected_calls(
    request: RequestScope,
    held: Mapping[str, int] | None = None,
    *,
    rows_per_call: int = ROWS_PER_CALL,
) -> int:
    """Retrieve calls the fetch of one request costs: per code, ceil(n / rows_per_call) and
    at least 1, where n is how many activities *of any date* the lead holds of that code
    (``held``; unknown codes count as one call: most leads hold under 100 of a type)."""
    held = held or {}
    return sum(max(1, math.ceil(held.get(code, 0) / rows_per_call)) for code in request.codes)


def expected_total(
    requests: Iterable[RequestScope],
    held: Callable[[str], Mapping[str, int] | None] | None = None,
    *,
    rows_per_call: int = ROWS_PER_CALL,
) -> int:
    """The dry run's price of a backup: expected_calls summed over the requests still to send.
    ``held(lead)``: what is known of each lead's counts per code (e.g. from a listing)."""
    return sum(
        expected_calls(r, held(r.prospect_id) if held else None, rows_per_call=rows_per_call)
        for r in requests
    )
