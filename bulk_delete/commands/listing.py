"""API → found activities → plan: the --discover listing step as `plan` and `run` take it.

discover.py says how a listing is paged and checked; this module runs it for a command: under
the command's retry policy and stop switch, recorded as "list" calls, held to --max-leads, and
turns what was found into the plan's summary (and, for `run`, the plan saved in the
checkpoint before anything is deleted).
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from pathlib import Path

from ..clock import Clock
from ..errors import Interrupted
from ..plan.build import PlanSummary, RequestTally
from ..send import recording
from ..send.client import LeadSquaredClient
from ..send.limiter import SlidingWindowLimiter
from ..send.pool import StopSwitch
from ..sheet.read import SheetInfo
from ..spec import RunSpec
from ..store.checkpoint import Checkpoint
from ..store.found import FoundStore
from . import discover
from .common import _ignore, _retry, _source


async def _list(
    client: LeadSquaredClient,
    limiter: SlidingWindowLimiter,
    store: FoundStore,
    spec: RunSpec,
    clock: Clock,
    rng: random.Random,
    stop: StopSwitch | None,
    on_listing: Callable[[str, int, int], None] = _ignore,
) -> discover.Discovery:
    def between_pages(code: str, seen: int, total: int) -> None:
        on_listing(code, seen, total)
        if stop is not None and stop.is_set():  # the page just read is saved
            raise Interrupted(
                f"interrupted while listing (code {code}: {seen:,} of {total:,} read); the "
                "pages read are saved. Rerun the same command to go on from the next page."
            )

    with recording.calling("list"):
        found = await discover.list_found(
            client,
            limiter,
            store,
            spec.plan_options,
            clock=clock,
            rng=rng,
            retry=_retry(spec),
            until=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S"),
            on_page=between_pages,
        )
    discover.guard(found, spec.max_leads, spec.name_of("max_leads"))
    return found


def _store_discovered(
    checkpoint: Checkpoint, spec: RunSpec, fingerprint: str, warnings: tuple[str, ...]
) -> PlanSummary:
    tally = RequestTally()
    leads = checkpoint.found.leads()
    checkpoint.store_plan(
        tally.observe(
            request for request, _ in discover.requests(checkpoint.found, spec.plan_options)
        ),
        [],
        source=_source(spec),
        fingerprint=fingerprint,
        options=spec.plan_options.as_dict(),
        extra={"leads": str(leads), "rows_read": "0", "label": spec.label, "discover": "1"},
    )
    return _discovered_summary(leads, tally, spec, warnings)


def _discovered_summary(
    leads: int, tally: RequestTally, spec: RunSpec, warnings: tuple[str, ...] = ()
) -> PlanSummary:
    return PlanSummary(
        source=SheetInfo(path=Path(_source(spec)), kind="discover", warnings=warnings),
        rows_read=0,
        blank_rows=0,
        invalid_rows=0,
        invalid_groups=[],
        leads=leads,
        tally=tally,
        rate=spec.effective_rate,
        tz=spec.tz,
    )
