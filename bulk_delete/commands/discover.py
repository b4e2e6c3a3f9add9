"""API → found activities → plan: `--discover` lists which leads have the activities to purge.

The job asks LeadSquared (RetrieveByActivityEvent, one code across all leads in a window) and
purges exactly what it found. The whole listing is saved in the checkpoint, page by page,
before the first delete; a page that fails the checks of listing_pages.py stops the run (exit
3) before anything is deleted. One request per lead found, split as for a sheet; list calls go
through the same pool (send/pool.py) as deletes.

Why: docs/design/listing.md.
"""

from __future__ import annotations

import json
import random
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..api import activity_date
from ..clock import Clock, utc_text
from ..config import RateLimit
from ..errors import AbortedError, Interrupted, TooManyLeads, UntrustworthyListing
from ..plan import listing_pages
from ..plan.rules import PlanOptions
from ..records import Request
from ..send import recording
from ..send.client import LeadSquaredClient
from ..send.limiter import SlidingWindowLimiter
from ..send.pool import Pool, StopSwitch
from ..store.checkpoint import Checkpoint
from ..store.found import Found, FoundStore
from .common import ignore, source_of
from .spec import RunSpec

if TYPE_CHECKING:  # planning loads pandas: `export --backup` reads this module without it
    from ..plan.build import PlanSummary, RequestTally

PAGE_SIZE = 1000  # public code has paged at 1000 successfully


@dataclass(frozen=True, kw_only=True)
class Discovery:
    """What the listing found, for the plan's text and the guard."""

    by_code: list[tuple[str, int, int, str, str]]  # code, activities, leads, oldest, newest
    leads: int
    list_calls: int
    warnings: tuple[str, ...] = ()  # RecordCount disagreeing with the rows read


async def list_found(
    pool: Pool,
    client: LeadSquaredClient,
    store: FoundStore,
    options: PlanOptions,
    *,
    until: str,
    on_page: Callable[[str, int, int], None] | None = None,
) -> Discovery:
    """List every code into ``store`` through ``pool``, from where an earlier listing
    stopped: modified from the window's start to ``until`` (now, in UTC), kept when created
    in the window. Raises UntrustworthyListing (exit 3) on a page that shows the listing is
    wrong, what else stopped the pool, or Interrupted after a signal (the pages read saved)."""
    defaults = options.row_defaults()
    window = (defaults.from_date, defaults.to_date)
    listed = (defaults.from_date, max(defaults.to_date, until))
    read: dict[str, tuple[int, int]] = {}  # code: activities read, of RecordCount

    async def fetch(code: str, page: int, size: int) -> dict[str, Any]:
        return await _page(pool, client, code, listed, page, size)

    def page_read(code: str, seen: int, total: int) -> None:
        read[code] = (seen, total)
        if on_page is not None:
            on_page(code, seen, total)

    async def list_code(code: str) -> None:
        try:
            await _list_code(store, code, partial(fetch, code), window, page_read)
        except UntrustworthyListing as error:
            store.discard(code)
            raise UntrustworthyListing(
                f"{error}; nothing deleted. The pages of code {code} read so far are set "
                "aside: a rerun lists it again from page 1."
            ) from None

    report = await pool.each(options.codes, list_code)
    if report.error is not None:
        raise report.error
    if report.stopped:
        where = "; ".join(
            f"code {code}: {seen:,} of {total:,} read" for code, (seen, total) in read.items()
        )
        raise Interrupted(
            f"interrupted while listing{f' ({where})' if where else ''}; the pages read are "
            "saved. Rerun the same command to go on from the next page."
        )
    warnings = tuple(
        problem
        for code in options.codes
        if (problem := listing_pages.count_problem(code, *store.counts(code)))
    )
    return Discovery(
        by_code=store.by_code(), leads=store.leads(), list_calls=store.calls(), warnings=warnings
    )


async def _list_code(
    store: FoundStore,
    code: str,
    fetch: Callable[[int, int], Awaitable[dict[str, Any]]],
    window: tuple[str, str],
    on_page: Callable[[str, int, int], None] | None,
) -> None:
    state = store.state(code)
    if state.ended:
        return
    seen = state.rows
    async for page in listing_pages.pages(
        fetch,
        code,
        page=state.pages + 1,
        size=state.size or PAGE_SIZE,
        already_read=store.already_read,
    ):
        found = _found(page.rows, code, window)
        store.save_page(code, page.number, page.asked, page.record_count, page.next_size, found)
        seen += len(found)
        if on_page is not None and page.rows:  # (the empty page that ends a listing says nothing)
            on_page(code, seen, page.record_count)


def guard(discovery: Discovery, max_leads: int, name: str = "--max-leads") -> None:
    """``name``: the option as the user wrote it (``max_leads`` in a job file)."""
    if discovery.leads > max_leads:
        raise TooManyLeads(
            f"the listing found {discovery.leads:,} leads, more than {name} "
            f"{max_leads:,}; nothing sent. Check the codes and the window, or raise {name}."
        )


def requests(store: FoundStore, options: PlanOptions) -> Iterator[tuple[Request, int]]:
    """One request per lead found (split past --max-codes-per-request), with its activities."""
    defaults = options.row_defaults()
    limit = options.max_codes_per_request
    for lead, codes, activities in store.by_lead():
        for start in range(0, len(codes), limit):
            part = codes[start : start + limit]
            yield (
                Request(lead, part, defaults.from_date, defaults.to_date, defaults.webhook, ()),
                activities,
            )


async def _page(
    pool: Pool,
    client: LeadSquaredClient,
    code: str,
    window: tuple[str, str],
    page: int,
    size: int,
) -> dict[str, Any]:
    """One list call, through the pool's gates like any other."""
    answer, body = await pool.read(lambda: client.list_activities(code, *window, page, size))
    if not body:
        raise AbortedError(
            f"listing activity code {code} failed on page {page}: {answer.message}. "
            "The pages read so far are saved; rerun the same command to go on."
        )
    return body


def _found(rows: list[dict[str, Any]], code: str, window: tuple[str, str]) -> list[Found]:
    """Every row read (checked already), kept when created in the window."""
    low, high = window
    found = []
    for row in rows:
        created = activity_date(row)  # (a restored activity's CreatedOn is when it was posted)
        found.append(
            Found(
                activity_id=listing_pages.text(row.get("ProspectActivityId")),
                prospect_id=listing_pages.text(row.get("RelatedProspectId")).lower(),
                code=code,
                created_on=created,
                kept=(kept := (not low or created >= low) and (not high or created <= high)),
                row=json.dumps(row, ensure_ascii=False) if kept and carries_fields(row) else "",
            )
        )
    return found


# What every listing row names; a row with nothing else does not carry the activity's fields.
_LISTING_IDS = frozenset(
    {"ProspectActivityId", "RelatedProspectId", "ActivityEvent", "CreatedOn", "ModifiedOn"}
)


def carries_fields(row: dict[str, Any]) -> bool:
    """Whether a listing row holds the activity's own fields (notes, owner, custom fields),
    so that --backup can save it as it is instead of reading the lead again."""
    return any(key not in _LISTING_IDS for key in row)


# ---------------------------------------------------------------- the step, for a command


async def list_codes(
    client: LeadSquaredClient,
    limiter: SlidingWindowLimiter,
    store: FoundStore,
    spec: RunSpec,
    clock: Clock,
    rng: random.Random,
    stop: StopSwitch | None,
    on_listing: Callable[[str, int, int], None] = ignore,
    *,
    checkpoint: Checkpoint | None = None,
    on_limit_learned: Callable[[RateLimit], None] | None = None,
) -> Discovery:
    """List every code's activities in the window through a reading pool on the run's
    limiter; a limit learned here is kept in ``checkpoint`` and said, as a delete's would be."""
    pool = Pool.for_reads(
        spec.send_settings(),
        clock=clock,
        rng=rng,
        limiter=limiter,
        stop=stop,
        checkpoint=checkpoint,
        on_limit_learned=on_limit_learned,
    )
    with recording.calling("list"):
        found = await list_found(
            pool,
            client,
            store,
            spec.plan_options,
            until=utc_text(clock.wall()),
            on_page=on_listing,
        )
    guard(found, spec.max_leads, spec.name_of("max_leads"))
    return found


def store_discovered(
    checkpoint: Checkpoint, spec: RunSpec, fingerprint: str, warnings: tuple[str, ...]
) -> PlanSummary:
    from ..plan.build import RequestTally

    tally = RequestTally()
    leads = checkpoint.found.leads()
    checkpoint.store_plan(
        tally.observe(request for request, _ in requests(checkpoint.found, spec.plan_options)),
        [],
        source=source_of(spec),
        fingerprint=fingerprint,
        options=spec.plan_options.as_dict(),
        extra={"leads": str(leads), "rows_read": "0", "label": spec.label, "discover": "1"},
    )
    return discovered_summary(leads, tally, spec, warnings)


def discovered_summary(
    leads: int, tally: RequestTally, spec: RunSpec, warnings: tuple[str, ...] = ()
) -> PlanSummary:
    from ..plan.build import PlanSummary
    from ..sheet.read import SheetInfo

    return PlanSummary(
        source=SheetInfo(path=Path(source_of(spec)), kind="discover", warnings=warnings),
        rows_read=0,
        blank_rows=0,
        invalid_rows=0,
        invalid_groups=[],
        leads=leads,
        tally=tally,
        rate=spec.effective_rate,
        tz=spec.tz,
    )
