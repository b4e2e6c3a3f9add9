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
from ..config import RateLimit
from ..plan.build import PlanSummary, RequestTally
from ..send import recording
from ..send.client import LeadSquaredClient
from ..send.limiter import SlidingWindowLimiter
from ..send.pool import Pool, StopSwitch
from ..sheet.read import SheetInfo
from ..spec import RunSpec
from ..store.checkpoint import Checkpoint
from ..store.found import FoundStore
from . import discover
from .common import ignore, source_of


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
) -> discover.Discovery:
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
        found = await discover.list_found(
            pool,
            client,
            store,
            spec.plan_options,
            until=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S"),
            on_page=on_listing,
        )
    discover.guard(found, spec.max_leads, spec.name_of("max_leads"))
    return found


def store_discovered(
    checkpoint: Checkpoint, spec: RunSpec, fingerprint: str, warnings: tuple[str, ...]
) -> PlanSummary:
    tally = RequestTally()
    leads = checkpoint.found.leads()
    checkpoint.store_plan(
        tally.observe(
            request for request, _ in discover.requests(checkpoint.found, spec.plan_options)
        ),
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
