"""API → found activities → plan: `--discover` lists which leads have the activities to purge.

A scheduled cleanup ("every night, purge webinar activities older than 90 days") should not
need a sheet exported at 2 a.m. Instead the job asks LeadSquared (RetrieveByActivityEvent, one
activity type across all leads in a window) and purges exactly what it found.

- **Listing comes first and is saved.** Every page goes into the checkpoint in one transaction
  before the next is asked for, and the whole listing ends before the first delete: deletes
  shift the pages under a listing still running. An interrupted listing goes on from the next
  page; a resumed run never lists again.
- **Paging.** PageIndex starts at 1. The server may cap a page below the size asked, so a short
  first page sets the page size to what came back (the offsets then agree however the server
  counts them), and paging goes on until RecordCount rows were read or a page comes back empty.
- **CreatedOn, not ModifiedOn.** LeadSquared filters this listing on the modified date. An
  activity created in the window may have been modified after it, so the listing runs from the
  window's start to now (``until``), and only activities whose CreatedOn lies in the window
  are kept — the same rule the delete applies. Activities created before the window but
  modified in it are listed too, and dropped.
- **One request per lead found**, its codes the codes found on that lead, its window the job's
  window in UTC; split exactly as for a sheet. List calls spend the same budget as deletes, so
  they go through the same limiter, rate refusals and retries.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .checkpoint import Found, FoundStore
from .client import LeadSquaredClient
from .clock import Clock
from .errors import AbortedError, UsageError
from .limiter import SlidingWindowLimiter
from .plan import PlanOptions, Request
from .retry import RetryPolicy
from .senders import call_once

PAGE_SIZE = 1000  # public code has paged at 1000 successfully
MAX_PAGES = 100_000  # a server that never says "empty" must not page forever


class TooManyLeads(UsageError):
    """The listing found more leads than --max-leads: a wrong window must not purge the
    whole account at 2 a.m."""


@dataclass(frozen=True, kw_only=True)
class Discovery:
    """What the listing found, for the plan's text and the guard."""

    by_code: list[tuple[str, int, int, str, str]]  # code, activities, leads, oldest, newest
    leads: int
    list_calls: int


async def list_found(
    client: LeadSquaredClient,
    limiter: SlidingWindowLimiter,
    store: FoundStore,
    options: PlanOptions,
    *,
    clock: Clock,
    rng: random.Random,
    retry: RetryPolicy,
    until: str,
    on_page: Callable[[str, int, int], None] | None = None,
) -> Discovery:
    """List every code into ``store``, from where an earlier listing stopped: modified from
    the window's start to ``until`` (now, in UTC), kept when created in the window."""
    defaults = options.row_defaults()
    window = (defaults.from_date, defaults.to_date)
    listed = (defaults.from_date, max(defaults.to_date, until))
    for code in options.codes:
        state = store.state(code)
        page, size, seen = state.pages + 1, state.size or PAGE_SIZE, state.rows
        total = state.record_count
        while (total is None or seen < total) and page <= MAX_PAGES:
            body = await _page(client, limiter, code, listed, page, size, clock, rng, retry)
            rows = body.get("List") or []
            total = int(body.get("RecordCount") or 0)
            if not rows:
                break
            store.save_page(code, page, size, len(rows), total, _in_window(rows, code, window))
            seen += len(rows)
            if on_page is not None:
                on_page(code, seen, total)
            if page == 1 and len(rows) < size and seen < total:
                size = len(rows)  # the server's cap: page on at that size
            page += 1
    return Discovery(by_code=store.by_code(), leads=store.leads(), list_calls=store.calls())


def guard(discovery: Discovery, max_leads: int) -> None:
    if discovery.leads > max_leads:
        raise TooManyLeads(
            f"the listing found {discovery.leads:,} leads, more than --max-leads "
            f"{max_leads:,}; nothing sent. Check the codes and the window, or raise --max-leads."
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


def fingerprint(options: PlanOptions) -> str:
    """A discovered plan is defined by its options alone (the run date is in the window)."""
    text = json.dumps({"discover": True, **options.as_dict()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


async def _page(
    client: LeadSquaredClient,
    limiter: SlidingWindowLimiter,
    code: str,
    window: tuple[str, str],
    page: int,
    size: int,
    clock: Clock,
    rng: random.Random,
    retry: RetryPolicy,
) -> dict[str, Any]:
    """One list call, through the limiter, refusals and retries like any other."""
    answer, body = await call_once(
        limiter,
        lambda: client.list_activities(code, *window, page, size),
        retry=retry,
        clock=clock,
        rng=rng,
    )
    if not body:
        raise AbortedError(
            f"listing activity code {code} failed on page {page}: {answer.message}. "
            "The pages read so far are saved; rerun the same command to go on."
        )
    return body


def _in_window(rows: list[dict[str, Any]], code: str, window: tuple[str, str]) -> list[Found]:
    low, high = window
    found = []
    for row in rows:
        created = str(row.get("CreatedOn") or "")
        if created and (not low or created >= low) and (not high or created <= high):
            found.append(
                Found(
                    activity_id=str(row.get("ProspectActivityId") or ""),
                    prospect_id=str(row.get("RelatedProspectId") or "").lower(),
                    code=code,
                    created_on=created,
                )
            )
    return found
