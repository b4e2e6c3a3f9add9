"""The dry run (`plan`): sheet or listing → plan → preview files, and nothing deleted.

`plan` is the pipeline of `run` with the send step left out, never a separate code path: a
sheet goes through the same build_plan, a --discover listing through the same listing step
(kept in memory here, so a dry run leaves no checkpoint), and --check-codes spends the same
limiter as the deletes would. It returns a typed PlanReport and never prints: the CLI shows it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from ..allowance import DailyEstimate, across_days
from ..clock import Clock, utc
from ..config import Credentials, require_host
from ..errors import OptionError
from ..plan.build import PlanSummary, RequestTally, build_plan, nothing_to_send, summarise
from ..send import recording
from ..send.answers import Verdict
from ..send.client import LeadSquaredClient
from ..send.limiter import SlidingWindowLimiter
from ..send.pool import call_once
from ..store.found import FoundStore
from ..store.ledger import calls_today
from ..store.row_files import open_table, preview_columns, preview_row, write_invalid
from ..store.sent_plans import Sent
from . import backups, discover, outputs, resend
from .common import host_of, ignore, input_of, retry_policy
from .discover import discovered_summary, list_codes
from .preflight import preflight
from .spec import RunSpec

if TYPE_CHECKING:  # (the client imports aiohttp when a session is first opened)
    import aiohttp


@dataclass(frozen=True, kw_only=True)
class PlanReport:
    """What `plan` found: the summary, and each code's name when --check-codes asked."""

    summary: PlanSummary
    code_names: dict[str, str] | None = None
    discovery: discover.Discovery | None = None
    host: str = ""
    out: Path | None = None
    invalid_out: Path | None = None
    daily: DailyEstimate | None = None  # with --daily-limit: how the run spreads over days
    backup: backups.BackupPrice | None = None  # --backup: its calls, time and activities
    sent_before: tuple[Sent, ...] = ()  # this plan, sent from this machine before
    memory_warning: str = ""  # the machine's memory of sent plans could not be read


async def plan(
    spec: RunSpec,
    *,
    credentials: Credentials | None = None,
    session: aiohttp.ClientSession | None = None,
    clock: Clock,
    rng: random.Random,
    on_listing: Callable[[str, int, int], None] = ignore,
    on_notice: Callable[[str], None] = ignore,
) -> PlanReport:
    """The dry run: plan the sheet (or list what --discover finds), write the preview files,
    and (with --check-codes) name each code. ``credentials`` and ``session`` are needed only
    for --discover and --check-codes."""
    outputs.check_spec(spec)  # before the sheet is read or a listing call is made
    found, backup, requests = None, _backup_price(spec), ""
    if spec.discover:
        if credentials is None or session is None:
            raise OptionError("--discover needs LeadSquared keys and a session")
        found, summary, backup = await _plan_discovered(
            spec, credentials, session, clock, rng, on_listing, on_notice
        )
    else:
        summary, requests = _plan_and_write(spec)
    names = None
    if spec.check_codes:
        if credentials is None or session is None:
            raise OptionError("--check-codes needs LeadSquared keys and a session")
        codes = sorted(summary.tally.code_counts, key=int)
        names = await check_codes(
            codes, spec, credentials, session, clock, rng, on_notice=on_notice
        )
    sent, warning = resend.earlier_sends(spec, credentials, requests)
    return PlanReport(
        summary=summary,
        sent_before=sent,
        memory_warning=warning,
        code_names=names,
        discovery=found,
        daily=daily_estimate(spec, summary.requests, credentials, clock),
        host=spec.host,
        out=spec.out,
        invalid_out=spec.invalid_out,
        backup=backup,
    )


def _backup_price(spec: RunSpec) -> backups.BackupPrice | None:
    """The sheet's plan, read again for the price of --backup (a discovered plan: its own)."""
    if spec.backup is None or spec.discover:
        return None
    planned = build_plan(input_of(spec), spec.plan_options, extra=False)
    return backups.price(spec, planned.requests())


async def _plan_discovered(
    spec: RunSpec,
    credentials: Credentials,
    session: aiohttp.ClientSession,
    clock: Clock,
    rng: random.Random,
    on_listing: Callable[[str, int, int], None],
    on_notice: Callable[[str], None] = ignore,
) -> tuple[discover.Discovery, PlanSummary, backups.BackupPrice | None]:
    """The dry run of --discover: the same listing, kept in memory; nothing is deleted."""
    client = LeadSquaredClient(session, host_of(spec), credentials, auth=spec.auth)
    limiter = SlidingWindowLimiter(spec.rate, clock=clock, share=spec.share, on_notice=on_notice)
    if spec.preflight:
        await preflight(client, limiter, clock, rng=rng, give_up_after=spec.give_up_after)
    store = FoundStore.in_memory()
    found = await list_codes(client, limiter, store, spec, clock, rng, None, on_listing)
    tally = RequestTally()
    planned = discover.requests(store, spec.plan_options)
    if spec.out is not None:
        with open_table(spec.out, (*preview_columns(spec.tz), "activities"), "Plan") as write:
            for request, activities in planned:
                tally.add(request)
                write((*preview_row(request, spec.tz), activities))
    else:
        for request, _ in planned:
            tally.add(request)
    summary = discovered_summary(found.leads, tally, spec, found.warnings)
    return found, summary, backups.discovered_price(spec, store)


def _plan_and_write(spec: RunSpec) -> tuple[PlanSummary, str]:
    """The sheet's plan, its preview files written, and what it sends as a fingerprint."""
    plan_ = build_plan(input_of(spec), spec.plan_options, extra=False)
    rate = spec.effective_rate
    if spec.out is not None:
        with open_table(spec.out, preview_columns(spec.tz), "Plan") as write:
            summary = summarise(
                plan_, rate, sink=lambda request: write(preview_row(request, spec.tz))
            )
    else:
        summary = summarise(plan_, rate)
    if spec.invalid_out is not None:
        write_invalid(spec.invalid_out, plan_.invalid)
    if (empty := nothing_to_send(plan_)) is not None:
        raise empty
    return summary, plan_.fingerprint()


async def check_codes(
    codes: list[str],
    spec: RunSpec,
    credentials: Credentials,
    session: aiohttp.ClientSession,
    clock: Clock,
    rng: random.Random,
    *,
    on_notice: Callable[[str], None] = ignore,
) -> dict[str, str]:
    """Each code's display name from GetActivitySetting, or why it is not a custom activity.
    Goes through the same limiter as the deletes: these calls spend the same budget."""
    limiter = SlidingWindowLimiter(spec.rate, clock=clock, share=spec.share, on_notice=on_notice)
    client = LeadSquaredClient(session, host_of(spec), credentials, auth=spec.auth)
    if spec.preflight:
        await preflight(client, limiter, clock, rng=rng, give_up_after=spec.give_up_after)
    retry = retry_policy(spec)
    names: dict[str, str] = {}
    for code in codes:
        with recording.calling("setting"):
            answer, body = await call_once(
                limiter, partial(client.activity_setting, code), retry=retry, clock=clock, rng=rng
            )
        if body:
            names[code] = str(body.get("DisplayName") or body.get("Name") or "(no name)")
        elif answer.verdict is Verdict.FAILED:
            names[code] = f"UNKNOWN: not a custom activity here ({answer.message})"
        else:
            names[code] = f"not checked ({answer.message})"
    return names


def daily_estimate(
    spec: RunSpec, requests: int, credentials: Credentials | None, clock: Clock
) -> DailyEstimate | None:
    """With --daily-limit: whether the run crosses today's allowance, less what runs on this
    machine already spent today (the ledger, when the keys are known), and its ETA across days."""
    if spec.daily_limit is None:
        return None
    used = 0
    if credentials is not None and spec.host:
        used = calls_today(require_host(spec.host), credentials.access_key, wall=clock.wall)
    now = utc(clock)
    return across_days(requests, spec.effective_rate, spec.daily_limit, now=now, used_today=used)
