"""`restore`: a backup's activities posted back, with the shape of `run`: backup → selection →
its own checkpoint → plan → confirm → read each lead → post → outcomes → summary.

It takes a RunSpec (``input``: the backup), and the clock, RNG and HTTP session from outside;
it returns a RunSummary (its ``restore`` says what came of the activities) and never prints.
The backup is read whole first; only what is gone from a lead is posted, and never twice. Calls
go through the one pool, limiter, breaker, retry loop, daily allowance and signals.

Why: docs/design/restore.md.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from ..api import BULK_MAX_ACTIVITIES
from ..clock import Clock, utc
from ..config import Credentials, RateLimit
from ..errors import CheckpointMismatch, NotConfirmed, OptionError
from ..records import Restorable, Restored
from ..send import recording
from ..send.client import LeadSquaredClient
from ..send.limiter import SlidingWindowLimiter
from ..send.pool import LEARNED_LIMIT, Pool, Progress, ProgressCallback, SendReport, StopSwitch
from ..send.post_step import PostStep
from ..send.posting import BulkWindows
from ..store.restore_checkpoint import FINGERPRINT, TODO, Item, RestoreCheckpoint
from ..summary import Failure, RestoreFigures, RunFigures, RunResult, RunSummary
from . import outputs
from .account import remember_user
from .common import (
    checkpoint_path_of,
    ended,
    ended_as,
    host_of,
    ignore,
    only_on_loopback,
    spending_on,
    window_of,
)
from .preflight import preflight
from .restore_plan import (
    READS_FIRST,
    BackupRead,
    Mode,
    RestorePlan,
    Selection,
    chosen,
    fingerprint,
    price,
    read_whole,
    selection_of,
)
from .spec import RunSpec

if TYPE_CHECKING:
    import aiohttp

LEARNED_BULK = "learned_bulk_limit"  # meta: the bulk add's limit, as LeadSquared said it
MEASURED = {Mode.SINGLE: "measured_single", Mode.BULK: "measured_bulk"}  # meta: activities/s


@dataclass(frozen=True, kw_only=True)
class RestoreHooks:
    """How the core talks to whoever runs it. It never prints; the CLI decides."""

    confirm: Callable[[RestorePlan], bool]
    on_plan: Callable[[RestorePlan], None] = ignore  # the plan, before the confirmation
    on_resume: Callable[[Path], None] = ignore  # the checkpoint already had a selection
    on_progress: ProgressCallback | None = None
    on_limit_learned: Callable[[RateLimit], None] = (
        ignore  # the account's limit, as LeadSquared said
    )
    on_bulk_learned: Callable[[RateLimit], None] = ignore  # the bulk add's own
    on_notice: Callable[[str], None] = ignore


def backup_of(spec: RunSpec) -> Path:
    if spec.input is None:
        raise OptionError("give the BACKUP file to restore from (a `run --backup` file)")
    return spec.input


def dry_run(spec: RunSpec) -> RestorePlan:
    """The plan of a restore, made offline: the backup read whole, the selection, the price
    at --rate and the bulk add's limit. No keys, no checkpoint, no call."""
    backup = read_whole(backup_of(spec))
    taken = chosen(backup, selection_of(spec))
    return price(
        ((activity, Restored.UNCHECKED) for activity in taken),
        spec=spec,
        account=spec.effective_rate,
        bulk=spec.bulk_rate,
        backup=backup,
    )


async def restore(
    spec: RunSpec,
    credentials: Credentials,
    *,
    session: aiohttp.ClientSession,
    hooks: RestoreHooks,
    clock: Clock,
    rng: random.Random,
    stop: StopSwitch | None = None,
) -> RunSummary:
    """Select, plan, confirm, read and post, and sum up. Raises UsageError before anything is
    sent; AbortedError/Interrupted, carrying the summary, once the checkpoint is up to date."""
    host, path, source = host_of(spec), checkpoint_path_of(spec), backup_of(spec)
    only_on_loopback(spec, host, "bulk_rate")
    check_outputs(spec)
    backup, selection = read_whole(source), selection_of(spec)  # before any call: exit 2
    taken = chosen(backup, selection)
    started = utc(clock).isoformat(timespec="seconds")
    client = LeadSquaredClient(session, host, credentials, auth=spec.auth)
    with (
        RestoreCheckpoint.open(path) as checkpoint,
        spending_on(checkpoint, spec, credentials, path, clock, hooks.on_notice, bind=True) as (
            limiter,
            ledger,
        ),
    ):
        _keep(checkpoint, backup, selection, taken, hooks)
        plan = _plan(checkpoint, spec, limiter, backup)
        hooks.on_plan(plan)
        report, step = None, None
        if plan.activities:
            if not hooks.confirm(plan):
                raise NotConfirmed(
                    f"not confirmed, nothing posted; the selection is saved in {path} "
                    "(rerun with --yes to post)"
                )
            if spec.preflight:
                user = await preflight(
                    client, limiter, clock, rng=rng, give_up_after=spec.give_up_after, stop=stop
                )
                remember_user(checkpoint, user)
            pool = Pool(
                None,
                None,
                spec.send_settings(),
                clock=clock,
                rng=rng,
                stop=stop,
                on_progress=hooks.on_progress,
                on_limit_learned=partial(
                    _learned, checkpoint, LEARNED_LIMIT, hooks.on_limit_learned
                ),
                limiter=limiter,
            )
            bulk = _bulk(plan, checkpoint, pool, hooks)
            step = PostStep(checkpoint, client, spec.max_attempts, bulk)
            binding = plan.binding(limiter.effective)
            step.figures.window = binding.period if binding else 0.0
            report = await _send(checkpoint, pool, step, spec, plan)
        summary = _summary(checkpoint, spec, plan, step, started, limiter.effective, clock)
        if ledger is not None:
            summary = dataclasses.replace(summary, shared_with=ledger.shared_with())
    return ended(
        report,
        summary,
        "interrupted; every answer received is saved, and a post whose answer did not come "
        "is looked for on its lead first. Rerun the same command to resume.",
    )


def check_outputs(spec: RunSpec) -> None:
    """Every output, before the backup is read: none may be the backup or the checkpoint."""
    reads = [outputs.Named("the backup", backup_of(spec))]
    reads += outputs.checkpoint_files(checkpoint_path_of(spec))
    outputs.check(outputs.spec_outputs(spec) + outputs.results_outputs(spec), reads)


def _keep(
    checkpoint: RestoreCheckpoint,
    backup: BackupRead,
    selection: Selection,
    taken: list[Restorable],
    hooks: RestoreHooks,
) -> None:
    """A new checkpoint takes the selection, whole; an old one must be of the same."""
    made_of = fingerprint(backup, selection, taken)
    if checkpoint.has_selection:
        if checkpoint.meta.get(FINGERPRINT) != made_of:
            raise CheckpointMismatch(
                f"checkpoint {checkpoint.path} was made from {checkpoint.meta.get('backup')} "
                f"with {checkpoint.meta.get('selection')}, not from {backup.path} with "
                f"{selection.words()} (or the backup has changed since); nothing posted. Use "
                "another --checkpoint for another restore."
            )
        hooks.on_resume(checkpoint.path)
    else:
        meta = {
            FINGERPRINT: made_of,
            "backup": str(backup.path.resolve()),
            "backup_of": backup.checkpoint,
            "selection": selection.words(),
            "selected": json.dumps(selection.as_dict()),  # the resume command's (report)
        }
        checkpoint.store_selection(taken, meta)
    checkpoint.retry_given_up()


def _plan(
    checkpoint: RestoreCheckpoint, spec: RunSpec, limiter: SlidingWindowLimiter, backup: BackupRead
) -> RestorePlan:
    meta = checkpoint.meta
    bulk = spec.bulk_rate
    if learned := meta.get(LEARNED_BULK):
        bulk = min(bulk, RateLimit.parse(learned), key=lambda limit: limit.per_second)
    measured = {mode: float(meta[key]) for mode, key in MEASURED.items() if meta.get(key)}
    todo = [(item.activity, item.status) for item in checkpoint.items(TODO)]
    return price(
        todo,
        spec=spec,
        account=limiter.effective,
        bulk=bulk,
        measured=measured,
        backup=backup,
        done=checkpoint.tally().posted,
    )


def _bulk(
    plan: RestorePlan, checkpoint: RestoreCheckpoint, pool: Pool, hooks: RestoreHooks
) -> BulkWindows | None:
    """The bulk add's windows, when the plan posts in bulk (None: Create); a limit its
    refusals teach is kept apart from the account's."""
    if plan.mode is Mode.SINGLE:
        return None
    own = SlidingWindowLimiter(plan.bulk, clock=pool.clock)
    said = partial(_learned, checkpoint, LEARNED_BULK, hooks.on_bulk_learned)
    return BulkWindows(pool.limiter, own, said)


def _learned(
    checkpoint: RestoreCheckpoint, key: str, say: Callable[[RateLimit], None], limit: RateLimit
) -> None:
    """A limit LeadSquared named: kept for the next run (``key``), and said."""
    checkpoint.set_meta(key, f"{limit.calls}/{limit.period:g}s")
    say(limit)


async def _send(
    checkpoint: RestoreCheckpoint, pool: Pool, step: PostStep, spec: RunSpec, plan: RestorePlan
) -> SendReport:
    """Read the leads in question, post what is gone; again for the leads of posts whose
    answer was lost (up to --max-attempts rounds). One runs row for it all."""
    run_id = checkpoint.start_run(host=spec.host, rate=str(pool.limiter.effective))
    recorder, _ = recording.current()
    if recorder is not None:
        recorder.run = run_id
    pool.progress = Progress(total=plan.activities, already_done=plan.done)
    report, result = SendReport(progress=pool.progress), RunResult.CRASHED
    try:
        for round_ in range(spec.max_attempts + 1):
            leads = checkpoint.leads_to_read(READS_FIRST if round_ == 0 else (Restored.POSTING,))
            if leads:
                report = await pool.each(leads, partial(step.read_lead, pool))
                if report.stopped or report.error:
                    break
            report = await pool.each(_batches(checkpoint, step), partial(step.post, pool))
            if report.stopped or report.error or not checkpoint.leads_to_read([Restored.POSTING]):
                break
        result = _result(report)
        return report
    finally:
        if recorder is not None:
            recorder.run = recording.NO_RUN
        checkpoint.finish_run(run_id, pool.figures(result), str(pool.limiter.effective))
        _measured(checkpoint, step, plan.mode)


def _result(report: SendReport) -> RunResult:
    return ended_as(stopped=report.stopped, error=report.error)


def _batches(checkpoint: RestoreCheckpoint, step: PostStep) -> Iterator[list[Item]]:
    """What is gone and not posted, in batches of what one call carries."""
    size = 1 if step.bulk is None else BULK_MAX_ACTIVITIES
    batch: list[Item] = []
    for item in checkpoint.items((Restored.GONE,)):
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _measured(checkpoint: RestoreCheckpoint, step: PostStep, mode: Mode) -> None:
    """What this run's posting achieved, for the next run's choice (``restore_plan.price``)."""
    rate = _rate(step)
    if rate is not None:
        checkpoint.set_meta(MEASURED[mode], f"{rate:.4f}")


def _rate(step: PostStep) -> float | None:
    """Activities created per second while posting, as a run's rate is measured: what the
    posts before the last created, over the span from the first answer to the last (n - 1
    gaps for n posts; the last batch may be a short one)."""
    figures = step.figures
    span = (figures.last_answer or 0.0) - (figures.first_answer or 0.0)
    if figures.accepted < 2 or span <= 0 or not figures.created:
        return None
    return max(0, figures.created - figures.last_created) / span


def _summary(
    checkpoint: RestoreCheckpoint,
    spec: RunSpec,
    plan: RestorePlan,
    step: PostStep | None,
    started: str,
    rate: RateLimit,
    clock: Clock,
) -> RunSummary:
    tally = checkpoint.tally()
    record = checkpoint.last_run() if step is not None else None
    busiest = _busiest(plan, step, rate)
    limit = plan.limit_per_second(rate)
    return RunSummary(
        checkpoint=checkpoint.location,
        input=str(backup_of(spec).resolve()),
        host=spec.host,
        rate_limit=str(rate),
        label=spec.label,
        window=window_of(spec),
        started_at=started,
        finished_at=utc(clock).isoformat(timespec="seconds"),
        runs=checkpoint.run_count(),
        this_run=record or RunFigures(result=RunResult.NOTHING_TO_SEND),
        totals=tally.as_counts(record.rate_limited_429 if record else 0),
        failures=tuple(
            Failure(error=error, count=count, transient=transient)
            for error, count, transient in checkpoint.failure_reasons()
        ),
        restore=RestoreFigures(
            backup=str(backup_of(spec).resolve()),
            mode=plan.mode if step is not None else "",
            activities=tally.activities,
            leads=tally.leads,
            posted=tally.posted,
            found_after_lost_answer=tally.found,
            already_there=tally.already,
            still_present=tally.present,
            unchecked=tally.unchecked,
            to_post=tally.gone + tally.posting,
            lead_missing=tally.lead_missing,
            failed=tally.failed,
            owners_known=tally.owners_known,
            held_requests=checkpoint.held_requests(),
            activities_per_second=busiest[0],
            limit_activities_per_second=limit,
            share_of_limit=busiest[1],
        ),
    )


def _busiest(
    plan: RestorePlan, step: PostStep | None, account: RateLimit
) -> tuple[float | None, float | None]:
    """(activities per second, share of what the limit allows) as a purge's rate is told:
    the busiest window of the limit that binds, so a kept limit never reads above 100 %.
    (None, None) without a limit, or below two posts."""
    binding = plan.binding(account)
    if step is None or binding is None or step.figures.posts < 2:
        return None, None
    busiest = step.figures.busiest
    return round(busiest / binding.period, 3), round(busiest / (binding.calls * plan.carried), 4)
