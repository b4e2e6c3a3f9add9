"""outcomes → confirmed: ask LeadSquared what is left after the deletes it queued.

How `verify` asks and what it trusts: per lead (Retrieve) or per code (RetrieveByActivityEvent
over the run's windows, priced by its first page), whichever is cheaper; a request is
"confirmed" only from answers that hold together, else "unverified" with the reason. Every call
goes through the run's pool (send/pool.py). verify.py is the command itself (host, checkpoint
and lock, limiter, preflight, the summary it returns).

Why: docs/design/verify.md.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from functools import partial
from typing import Any

from ..api import activity_date
from ..errors import Interrupted, UntrustworthyListing
from ..plan import listing_pages
from ..send.client import LeadSquaredClient
from ..send.pool import Pool, SendReport
from ..store.checkpoint import Checkpoint
from ..store.verification import Verifiable
from ..summary import Strategy

ROWS_PER_RETRIEVE = 100
LIST_PAGE = 1000
MAX_RETRIEVE_CALLS = 50  # per lead and code: 5,000 activities at 100 a call
MAX_RETRIEVE_ROWS = MAX_RETRIEVE_CALLS * ROWS_PER_RETRIEVE
STOPPED = "interrupted; every check made is saved. Rerun to go on."


@dataclass(frozen=True)
class Choice:
    """The way verify will ask, and what it costs."""

    strategy: Strategy
    calls: int
    other: str  # the other way's cost, for the user
    requests: int


def settled(report: SendReport) -> None:
    """Raise what stopped the pool: its error (a fatal answer, the allowance), or the signal."""
    if report.error is not None:
        raise report.error
    if report.stopped:
        raise Interrupted(STOPPED)


class _NoAnswer(Exception):
    """LeadSquared gave no usable answer to a listing page."""


@dataclass(frozen=True)
class Check:
    """What is left of one request: ``left`` activities, or None and why it can't be told."""

    left: int | None
    note: str = ""

    @property
    def verified(self) -> str:
        return "unverified" if self.left is None else "remaining" if self.left else "confirmed"


async def choose(
    pool: Pool, client: LeadSquaredClient, items: list[Verifiable], until: str
) -> tuple[Choice, dict[str, Any]]:
    """Price both ways; the per-code probes' first pages come back for reuse. Raises what
    stopped the pool (`settled`)."""
    per_lead = sum(len(item.codes) for item in items)
    codes = sorted({code for item in items for code in item.codes}, key=int)
    low = min((item.from_date for item in items if item.from_date), default="")
    if per_lead <= len(codes):  # nothing to gain from probing
        return Choice(
            Strategy.PER_LEAD, per_lead, "per code: at least one call per code", len(items)
        ), {}
    firsts: dict[str, Any] = {}

    async def probe(code: str) -> None:
        _, firsts[code] = await pool.read(
            partial(client.list_activities, code, low, until, 1, LIST_PAGE)
        )

    settled(await pool.each(codes, probe))
    per_code = 0
    for code in codes:
        body = firsts[code]
        if not body:
            return Choice(
                Strategy.PER_LEAD, per_lead, "per code: could not be priced", len(items)
            ), {}
        got = max(1, len(body.get("List") or []))
        per_code += max(1, math.ceil(max(0, listing_pages.record_count(body)) / got))
    if per_code < per_lead:
        return Choice(
            Strategy.PER_CODE, per_code, f"per lead: {per_lead:,} calls", len(items)
        ), firsts
    return Choice(Strategy.PER_LEAD, per_lead, f"per code: {per_code:,} calls", len(items)), {}


async def check(
    pool: Pool,
    client: LeadSquaredClient,
    checkpoint: Checkpoint,
    items: list[Verifiable],
    choice: Choice,
    firsts: dict[str, Any],
    until: str,
) -> None:
    """Check every item the chosen way, recording each as it is known. Raises what stopped
    the pool (`settled`); the checks recorded before it stay."""
    if choice.strategy is Strategy.PER_CODE:
        found, untrusted = await _listing(pool, client, items, firsts, until)
        for item in items:
            notes = [untrusted[code] for code in item.codes if code in untrusted]
            result = Check(None, notes[0]) if notes else Check(_left_in(found, item))
            checkpoint.record_verified(item.seq, result.verified, result.left, result.note)
        return

    async def on_lead(item: Verifiable) -> None:
        result = await _left_on_lead(pool, client, item)  # cut short: stays as it was
        checkpoint.record_verified(item.seq, result.verified, result.left, result.note)

    settled(await pool.each(items, on_lead))


def _left_in(found: dict[str, list[tuple[str, str]]], item: Verifiable) -> int:
    return sum(1 for code, created in found[item.prospect_id] if _inside(item, code, created))


async def _left_on_lead(pool: Pool, client: LeadSquaredClient, item: Verifiable) -> Check:
    left = 0
    for code in item.codes:
        result = await _left_of_code(pool, client, item, code)
        if result.left is None:
            return result
        left += result.left
    return Check(left)


async def _left_of_code(
    pool: Pool, client: LeadSquaredClient, item: Verifiable, code: str
) -> Check:
    """Retrieve's pages of one code on one lead, at most MAX_RETRIEVE_CALLS of them."""
    seen: set[str] = set()
    left, total = 0, 0
    for _ in range(MAX_RETRIEVE_CALLS):
        _, body = await pool.read(
            partial(client.retrieve, item.prospect_id, code, len(seen), ROWS_PER_RETRIEVE)
        )
        if not body:
            return Check(None, "LeadSquared did not answer Retrieve")
        rows = body.get("ProspectActivities") or []
        total = listing_pages.record_count(body)
        if total > MAX_RETRIEVE_ROWS:
            return Check(
                None,
                f"Retrieve said a lead holds {total:,} activities of code {code}, more than "
                f"verify reads per lead and code ({MAX_RETRIEVE_ROWS:,}); check it in LeadSquared",
            )
        ids = [listing_pages.text(row.get("Id")) for row in rows if isinstance(row, dict)]
        if len(ids) < len(rows) or not all(ids) or len(set(ids) | seen) < len(seen) + len(ids):
            return Check(
                None, f"Retrieve of code {code} repeated activities or gave rows without Id"
            )
        seen.update(ids)
        left += sum(
            1
            for row in rows
            if _inside(item, listing_pages.text(row.get("EventCode")), activity_date(row))
        )
        if not rows or len(seen) >= total:
            break
    else:
        return Check(None, f"Retrieve of code {code} still had pages after {MAX_RETRIEVE_CALLS}")
    if len(seen) != total:
        return Check(
            None, f"Retrieve said {total:,} activities of code {code} but {len(seen):,} were read"
        )
    return Check(left)


async def _listing(
    pool: Pool,
    client: LeadSquaredClient,
    items: list[Verifiable],
    firsts: dict[str, Any],
    until: str,
) -> tuple[dict[str, list[tuple[str, str]]], dict[str, str]]:
    """(code, date) of what is left, per lead, over the run's window (all pages), and
    why each code whose listing does not hold together cannot be trusted. One code per work
    item, its pages in order."""
    low = min((item.from_date for item in items if item.from_date), default="")
    found: dict[str, list[tuple[str, str]]] = defaultdict(list)
    untrusted: dict[str, str] = {}
    read: set[str] = set()

    async def fetch(code: str, page: int, size: int) -> dict[str, Any]:
        _, body = await pool.read(partial(client.list_activities, code, low, until, page, size))
        if not body:
            raise _NoAnswer(f"LeadSquared did not answer page {page} of code {code}")
        return body

    async def list_code(code: str) -> None:
        first = firsts[code]
        rows, counts = 0, []
        try:
            async for page in listing_pages.pages(
                partial(fetch, code),
                code,
                page=1,
                size=LIST_PAGE,
                already_read=lambda ids: len(read.intersection(ids)),
                first=first,
            ):
                read.update(listing_pages.ids_of(page.rows))
                rows += len(page.rows)
                counts.append(page.record_count)
                for row in page.rows:
                    found[listing_pages.text(row.get("RelatedProspectId")).lower()].append(
                        (code, activity_date(row))
                    )
        except UntrustworthyListing as error:
            untrusted[code] = f"listing not trusted: {error}"
            return
        except _NoAnswer as error:
            untrusted[code] = str(error)
            return
        problem = listing_pages.count_problem(code, rows, (min(counts), max(counts)))
        if problem:
            untrusted[code] = f"listing not trusted: {problem}"

    settled(await pool.each(list(firsts), list_code))
    return found, untrusted


def _inside(item: Verifiable, code: str, created: str) -> bool:
    return (
        code in item.codes
        and bool(created)
        and (not item.from_date or created >= item.from_date)
        and (not item.to_date or created <= item.to_date)
    )
