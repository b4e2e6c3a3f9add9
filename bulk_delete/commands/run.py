"""`run`: plan (or resume) → checkpoint → confirm → senders → outcomes → summary.

It takes a RunSpec, and the clock, RNG and HTTP session from outside; it returns a typed
RunSummary and never prints: what a person sees is the CLI's business, told through
``RunHooks``. The order is the point of this module, because a purge cannot be undone: the
plan is saved before anything is sent, an open window is refused and the plan confirmed before
the first call, and an abort or a stop is raised only once the checkpoint is up to date.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from ..clock import Clock
from ..config import Credentials, RateLimit
from ..errors import NotConfirmed, OpenWindow
from ..send import recording
from ..send.client import LeadSquaredClient
from ..send.pool import OutcomeCallback, Pool, ProgressCallback, SendReport, StopSwitch
from ..store.checkpoint import Checkpoint
from ..summary import RunFigures, RunResult, RunSummary
from . import backups, discover, outputs, resend
from .account import JOB_FILE, remember_user
from .common import (
    checkpoint_path_of,
    ended,
    ended_as,
    failures_of,
    fingerprint_of,
    host_of,
    ignore,
    input_of,
    source_of,
    spending,
    utc_now,
    window_of,
)
from .discover import list_codes, store_discovered
from .preflight import preflight
from .spec import RunSpec

if TYPE_CHECKING:  # (the client imports aiohttp when a session is first opened)
    import aiohttp

    from ..plan.build import PlanSummary


@dataclass(frozen=True)
class Confirmation:
    """What the user is asked to confirm before the first call."""

    requests: int
    leads: int
    host: str


@dataclass(frozen=True, kw_only=True)
class RunHooks:
    """How the core talks to whoever runs it. It never prints; the CLI decides."""

    confirm: Callable[[Confirmation], bool]
    on_plan: Callable[[PlanSummary], None] = ignore  # a new plan was saved in the checkpoint
    on_resume: Callable[[Path], None] = ignore  # the checkpoint already had a plan
    on_progress: ProgressCallback | None = None
    on_outcome: OutcomeCallback | None = None
    on_limit_learned: Callable[[RateLimit], None] = ignore  # LeadSquared named a lower limit
    on_discovery: Callable[[discover.Discovery], None] = ignore  # --discover's listing ended
    on_listing: Callable[[str, int, int], None] = ignore  # a listing page: code, read, of
    on_notice: Callable[[str], None] = ignore  # something worth one line (a long Retry-After)


async def run(
    spec: RunSpec,
    credentials: Credentials,
    *,
    session: aiohttp.ClientSession,
    hooks: RunHooks,
    clock: Clock,
    rng: random.Random,
    stop: StopSwitch | None = None,
) -> RunSummary:
    """Plan (or resume), confirm, send, and sum up. Raises UsageError before anything is
    sent; AbortedError/Interrupted, carrying the summary, once the checkpoint is up to date."""
    host = host_of(spec)
    path = checkpoint_path_of(spec)
    outputs.check_spec(spec)  # before the plan is built or anything sent
    started = utc_now(clock)
    fingerprint = fingerprint_of(spec)
    client = LeadSquaredClient(session, host, credentials, auth=spec.auth)
    calling = spending(spec, credentials, path, clock, hooks.on_notice, bind=True)
    with (
        calling as (checkpoint, limiter, ledger),
        backups.opened(spec, checkpoint, client.retrieve, hooks.on_notice) as backup,
    ):
        preflight_due = spec.preflight  # once per run, before the first call that needs it
        check = partial(
            preflight, client, limiter, clock, rng=rng, give_up_after=spec.give_up_after, stop=stop
        )
        refusing = partial(
            resend.refuse_resend, spec, credentials, checkpoint.location, hooks.on_notice
        )
        # A new plan: not one this machine sent under another (its sheet and options now, its
        # requests once built; a memory that cannot be read is said once).
        refuse = refusing if checkpoint.has_plan or refusing() else None
        if checkpoint.has_plan:
            checkpoint.check_input(
                source=source_of(spec), fingerprint=fingerprint, options=spec.plan_options.as_dict()
            )
            hooks.on_resume(path)
        elif spec.discover:  # the listing first, saved page by page, before any delete
            if preflight_due:
                remember_user(checkpoint, await check())
                preflight_due = False
            found = await list_codes(
                client,
                limiter,
                checkpoint.found,
                spec,
                clock,
                rng,
                stop,
                hooks.on_listing,
                checkpoint=checkpoint,
                on_limit_learned=hooks.on_limit_learned,
            )
            hooks.on_discovery(found)
            hooks.on_plan(store_discovered(checkpoint, spec, fingerprint, found.warnings))
        else:
            hooks.on_plan(_store_plan(checkpoint, spec, fingerprint, refuse))
        _remember_run(checkpoint, spec)
        todo, leads = checkpoint.todo_counts(retry_failed=spec.retry_failed)
        report: SendReport | None = None
        if todo:
            _refuse_open_windows(checkpoint, spec)
            if not hooks.confirm(Confirmation(todo, leads, host)):
                raise NotConfirmed(
                    f"not confirmed, nothing sent; the plan is saved in {path} "
                    "(rerun with --yes to send)"
                )
            if preflight_due:
                remember_user(checkpoint, await check())
            resend.record_sent(
                spec,
                credentials,
                checkpoint.location,
                fingerprint,
                requests=checkpoint.meta.get(resend.REQUESTS_FINGERPRINT, ""),
                wall=clock.wall,
                on_notice=hooks.on_notice,
            )
            pool = Pool(
                checkpoint,
                client,
                spec.send_settings(),
                clock=clock,
                rng=rng,
                stop=stop,
                on_progress=hooks.on_progress,
                on_outcome=hooks.on_outcome,
                on_limit_learned=hooks.on_limit_learned,
                limiter=limiter,
                before_send=backup.before_send if backup else None,
            )
            report = await _send(checkpoint, pool, spec, todo)
        summary = _summary(checkpoint, spec, report, started, limiter.effective, clock)
        if ledger is not None:  # the other runs on this machine that spent the same budget
            summary = dataclasses.replace(summary, shared_with=ledger.shared_with())
        if backup is not None and backup.writer.set_aside is not None:  # said on stderr too
            summary = dataclasses.replace(summary, backup_set_aside=str(backup.writer.set_aside))
    return ended(
        report,
        summary,
        "interrupted; every answer received is saved. Rerun the same command to resume.",
    )


def _remember_run(checkpoint: Checkpoint, spec: RunSpec) -> None:
    """What the report and `verify` need to know of this run: the job file (for the command
    that resumes) and where its results go (verify writes them again)."""
    paths = outputs.results_paths(spec)
    wanted = {
        JOB_FILE: spec.source,
        outputs.RESULTS_META: json.dumps([str(p.resolve()) for p in paths]) if paths else "",
    }
    meta = checkpoint.meta
    for key, value in wanted.items():
        if meta.get(key, "") != value:
            checkpoint.set_meta(key, value)


def _refuse_open_windows(checkpoint: Checkpoint, spec: RunSpec) -> None:
    """An open side of a window deletes every activity of those codes on that side, back to
    the lead's creation or up to the moment LeadSquared runs the delete: never by accident."""
    if spec.open_window:
        return
    no_from, no_to = checkpoint.open_windows(retry_failed=spec.retry_failed)
    if not (no_from or no_to):
        return
    sides = []
    if no_from:
        sides.append(f"{no_from:,} without FromDate (every activity before ToDate, for all time)")
    if no_to:
        sides.append(f"{no_to:,} without ToDate (every activity after FromDate, up to the delete)")
    flag = spec.name_of("open_window") + (" = true" if spec.source else "")
    raise OpenWindow(
        f"nothing sent: {' and '.join(sides)} request(s) have an open window. Give the sheet "
        f"FromDate/ToDate (or {spec.name_of('from_date')}/{spec.name_of('to_date')}), or, if "
        f"that is what you mean, {flag}. The plan is saved in {checkpoint.location}."
    )


def _store_plan(
    checkpoint: Checkpoint,
    spec: RunSpec,
    fingerprint: str,
    refuse: Callable[..., bool] | None,
) -> PlanSummary:
    """Build the sheet's plan and keep it in the checkpoint. ``refuse`` (resend.refuse_resend,
    None when the memory could not be read) sees its requests first: a plan sent before from
    another copy of the sheet, or with options to the same effect, is stored nowhere."""
    # pandas only where a sheet is read: a resume (a kill loop's, a job's next night) does not
    from ..plan.build import build_plan, nothing_to_send, plan_summary

    plan_ = build_plan(input_of(spec), spec.plan_options)
    if (empty := nothing_to_send(plan_)) is not None:
        raise empty  # before the checkpoint holds it: a corrected sheet is a new plan there
    requests = plan_.fingerprint()
    if refuse is not None:
        refuse(requests=requests)
    checkpoint.store_plan(
        plan_.requests(),
        plan_.invalid,
        source=source_of(spec),
        fingerprint=fingerprint,
        options=spec.plan_options.as_dict(),
        extra={
            "leads": str(plan_.leads),
            "rows_read": str(plan_.rows_read),
            "label": spec.label,
            "extra_columns": json.dumps(list(plan_.source.ignored) if plan_.extra else []),
            resend.REQUESTS_FINGERPRINT: requests,
        },
    )
    return plan_summary(plan_, plan_.tally(), spec.effective_rate)


async def _send(checkpoint: Checkpoint, pool: Pool, spec: RunSpec, todo: int) -> SendReport:
    run_id = checkpoint.start_run(host=spec.host, rate=str(pool.limiter.effective))
    result = RunResult.CRASHED  # a bug, or the caller's own cancellation
    recorder, _ = recording.current()
    if recorder is not None:  # the deletes' calls are this runs row's
        recorder.run = run_id
    try:
        planned = int(checkpoint.meta.get("requests", todo))  # a resume counts the whole plan
        report = await pool.run(todo, already_done=max(0, planned - todo))
        result = ended_as(stopped=report.stopped, error=report.error)
        return report
    finally:
        if recorder is not None:
            recorder.run = recording.NO_RUN
        checkpoint.finish_run(run_id, pool.figures(result), str(pool.limiter.effective))


def _summary(
    checkpoint: Checkpoint,
    spec: RunSpec,
    report: SendReport | None,
    started: str,
    rate: RateLimit,
    clock: Clock,
) -> RunSummary:
    counts = checkpoint.counts()
    record = checkpoint.last_run() if report is not None else None
    return RunSummary(
        checkpoint=checkpoint.location,
        input=source_of(spec),
        host=spec.host,
        rate_limit=str(rate),
        label=spec.label,
        window=window_of(spec),
        started_at=started,
        finished_at=utc_now(clock),
        runs=checkpoint.run_count(),
        this_run=record or RunFigures(result=RunResult.NOTHING_TO_SEND),
        totals=counts,
        failures=failures_of(checkpoint),
        verification=checkpoint.verification(),
    )
