"""The pipeline wired together: file → rows → plan → checkpoint → senders → outcomes → export.

Each public coroutine here is what one CLI command awaits. They take a RunSpec, and the clock,
RNG and HTTP session from outside; they return typed results and never print: what a person
sees is the CLI's business, told through ``RunHooks``. The dry run is this same pipeline with
the send step left out, never a separate code path.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from . import checkpoint as checkpoints
from . import discover
from . import verify as verifying
from .checkpoint import Checkpoint, FoundStore, RunRecord
from .client import LeadSquaredClient
from .clock import Clock, SystemClock
from .config import Credentials, RateLimit, achieved_rate, require_host
from .errors import (
    EXIT_INCOMPLETE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    InputError,
    Interrupted,
    NotConfirmed,
    OptionError,
    ServiceDownError,
    WrongHost,
)
from .export import EXPORT_COLUMNS, PREVIEW_COLUMNS, open_table, preview_row, write_invalid
from .limiter import SlidingWindowLimiter
from .outcomes import Verdict
from .plan import PlanSummary, RequestTally, build_plan, plan_fingerprint, plan_summary, summarise
from .retry import RetryPolicy
from .senders import (
    LEARNED_LIMIT,
    OutcomeCallback,
    Pool,
    ProgressCallback,
    SendReport,
    StopSwitch,
    call_once,
)
from .sheet import SheetInfo
from .spec import RunSpec
from .summary import Failure, RunStats, RunSummary, VerifySummary

if TYPE_CHECKING:  # (the client imports aiohttp when a session is first opened)
    import aiohttp

# ---------------------------------------------------------------- plan


def _ignore(*_: object) -> None:
    return None


@dataclass(frozen=True, kw_only=True)
class PlanReport:
    """What `plan` found: the summary, and each code's name when --check-codes asked."""

    summary: PlanSummary
    code_names: dict[str, str] | None = None
    discovery: discover.Discovery | None = None
    host: str = ""
    out: Path | None = None
    invalid_out: Path | None = None


async def plan(
    spec: RunSpec,
    *,
    credentials: Credentials | None = None,
    session: aiohttp.ClientSession | None = None,
    clock: Clock | None = None,
    on_listing: Callable[[str, int, int], None] = _ignore,
) -> PlanReport:
    """The dry run: plan the sheet (or list what --discover finds), write the preview files,
    and (with --check-codes) name each code. ``credentials`` and ``session`` are needed only
    for --discover and --check-codes."""
    found = None
    if spec.discover:
        if credentials is None or session is None:
            raise OptionError("--discover needs LeadSquared keys and a session")
        found, summary = await _plan_discovered(
            spec, credentials, session, clock or SystemClock(), on_listing
        )
    else:
        summary = _plan_and_write(spec)
    names = None
    if spec.check_codes:
        if credentials is None or session is None:
            raise OptionError("--check-codes needs LeadSquared keys and a session")
        codes = sorted(summary.tally.code_counts, key=int)
        names = await check_codes(codes, spec, credentials, session, clock or SystemClock())
    return PlanReport(
        summary=summary,
        code_names=names,
        discovery=found,
        host=spec.host,
        out=spec.out,
        invalid_out=spec.invalid_out,
    )


async def _plan_discovered(
    spec: RunSpec,
    credentials: Credentials,
    session: aiohttp.ClientSession,
    clock: Clock,
    on_listing: Callable[[str, int, int], None],
) -> tuple[discover.Discovery, PlanSummary]:
    """The dry run of --discover: the same listing, kept in memory; nothing is deleted."""
    client = LeadSquaredClient(session, require_host(spec.host), credentials, auth=spec.auth)
    limiter = SlidingWindowLimiter(spec.rate, clock=clock, share=spec.share)
    if spec.preflight:
        await preflight(client, limiter, clock)
    store = FoundStore.in_memory()
    found = await _list(client, limiter, store, spec, clock, random.Random(), None, on_listing)
    tally = RequestTally()
    planned = discover.requests(store, spec.plan_options)
    if spec.out is not None:
        with open_table(spec.out, (*PREVIEW_COLUMNS, "activities")) as write:
            for request, activities in planned:
                tally.add(request)
                write((*preview_row(request), activities))
    else:
        for request, _ in planned:
            tally.add(request)
    return found, _discovered_summary(found.leads, tally, spec, found.warnings)


def _plan_and_write(spec: RunSpec) -> PlanSummary:
    plan_ = build_plan(_input(spec), spec.plan_options)
    rate = spec.effective_rate
    if spec.out is not None:
        with open_table(spec.out, PREVIEW_COLUMNS) as write:
            summary = summarise(plan_, rate, sink=lambda request: write(preview_row(request)))
    else:
        summary = summarise(plan_, rate)
    if spec.invalid_out is not None:
        write_invalid(spec.invalid_out, plan_.invalid)
    return summary


async def check_codes(
    codes: list[str],
    spec: RunSpec,
    credentials: Credentials,
    session: aiohttp.ClientSession,
    clock: Clock,
) -> dict[str, str]:
    """Each code's display name from GetActivitySetting, or why it is not a custom activity.
    Goes through the same limiter as the deletes: these calls spend the same budget."""
    limiter = SlidingWindowLimiter(spec.rate, clock=clock, share=spec.share)
    client = LeadSquaredClient(session, require_host(spec.host), credentials, auth=spec.auth)
    if spec.preflight:
        await preflight(client, limiter, clock)
    retry, rng = RetryPolicy(max_attempts=spec.max_attempts), random.Random()
    names: dict[str, str] = {}
    for code in codes:
        answer, body = await call_once(
            limiter,
            partial(client.activity_setting, code),
            retry=retry,
            clock=clock,
            rng=rng,
        )
        if body:
            names[code] = str(body.get("DisplayName") or body.get("Name") or "(no name)")
        elif answer.verdict is Verdict.FAILED:
            names[code] = f"UNKNOWN: not a custom activity here ({answer.message})"
        else:
            names[code] = f"not checked ({answer.message})"
    return names


PREFLIGHT_ATTEMPTS = 3


async def preflight(client: LeadSquaredClient, limiter: SlidingWindowLimiter, clock: Clock) -> bool:
    """One call before the first delete (UserByAccessKey.Get, which answers on every regional
    host): wrong keys stop here, and so does a --host that is not the account's own."""
    answer, body = await call_once(
        limiter,
        client.user_by_access_key,
        retry=RetryPolicy(max_attempts=PREFLIGHT_ATTEMPTS, cap=2.0),
        clock=clock,
        rng=random.Random(),
    )
    if body:
        _check_host(client.host, body)
    elif answer.verdict is Verdict.TRANSIENT:
        raise ServiceDownError(
            f"the API did not answer the preflight check ({answer.message}); rerun later, or "
            "pass --no-preflight to skip it"
        )
    return True  # an answer we cannot read says nothing against the keys or the host


def _check_host(host: str, user: dict[str, object]) -> None:
    urls = user.get("LSQCommonServiceURLs")
    api = urls.get("api") if isinstance(urls, dict) else None
    if not isinstance(api, str) or not api.strip():
        return
    account = api.strip().lower().removeprefix("https://").removeprefix("http://").rstrip("/")
    if account != (urlsplit(host).netloc or "").lower():
        raise WrongHost(
            f"stopped before any delete: this account's API host is {account}, not "
            f"{urlsplit(host).netloc}: use --host https://{account}",
            http_status=200,
        )


# ---------------------------------------------------------------- run


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
    on_plan: Callable[[PlanSummary], None] = _ignore  # a new plan was saved in the checkpoint
    on_resume: Callable[[Path], None] = _ignore  # the checkpoint already had a plan
    on_progress: ProgressCallback | None = None
    on_outcome: OutcomeCallback | None = None
    on_limit_learned: Callable[[RateLimit], None] = _ignore  # LeadSquared named a lower limit
    on_discovery: Callable[[discover.Discovery], None] = _ignore  # --discover's listing ended
    on_listing: Callable[[str, int, int], None] = _ignore  # a listing page: code, read, of


async def run(
    spec: RunSpec,
    credentials: Credentials,
    *,
    session: aiohttp.ClientSession,
    hooks: RunHooks,
    clock: Clock | None = None,
    rng: random.Random | None = None,
    stop: StopSwitch | None = None,
) -> RunSummary:
    """Plan (or resume), confirm, send, and sum up. Raises UsageError before anything is
    sent; AbortedError/Interrupted, carrying the summary, once the checkpoint is up to date."""
    host = require_host(spec.host)
    path = _checkpoint_path(spec)
    started = _utc_now()
    fingerprint = discover.fingerprint(spec.plan_options) if spec.discover else _fingerprint(spec)
    clock = clock or SystemClock()
    rng = rng or random.Random()
    client = LeadSquaredClient(session, host, credentials, auth=spec.auth)
    with Checkpoint.open(path) as checkpoint, checkpoints.lock(path):
        limiter = _limiter(checkpoint, spec, clock)
        checked = not spec.preflight
        if checkpoint.has_plan:
            checkpoint.check_input(
                source=_source(spec), fingerprint=fingerprint, options=spec.plan_options.as_dict()
            )
            hooks.on_resume(path)
        elif spec.discover:  # the listing first, saved page by page, before any delete
            checked = checked or await preflight(client, limiter, clock)
            found = await _list(
                client, limiter, checkpoint.found, spec, clock, rng, stop, hooks.on_listing
            )
            hooks.on_discovery(found)
            hooks.on_plan(_store_discovered(checkpoint, spec, fingerprint, found.warnings))
        else:
            hooks.on_plan(_store_plan(checkpoint, spec, fingerprint))
        todo, leads = checkpoint.todo_counts(retry_failed=spec.retry_failed)
        report: SendReport | None = None
        if todo:
            if not hooks.confirm(Confirmation(todo, leads, host)):
                raise NotConfirmed(
                    f"not confirmed, nothing sent; the plan is saved in {path} "
                    "(rerun with --yes to send)"
                )
            checked = checked or await preflight(client, limiter, clock)
            pool = Pool(
                checkpoint,
                client,
                spec,
                clock=clock,
                rng=rng,
                stop=stop,
                on_progress=hooks.on_progress,
                on_outcome=hooks.on_outcome,
                on_limit_learned=hooks.on_limit_learned,
                limiter=limiter,
            )
            report = await _send(checkpoint, pool, spec, todo)
        summary = _summary(checkpoint, spec, report, started, limiter.effective)
    if report is not None and report.error is not None:
        report.error.summary = summary
        raise report.error
    if report is not None and report.stopped:
        error = Interrupted(
            "interrupted; every answer received is saved. Rerun the same command to resume."
        )
        error.summary = summary
        raise error
    return summary


def _limiter(checkpoint: Checkpoint, spec: RunSpec, clock: Clock) -> SlidingWindowLimiter:
    """The run's limiter; a resume starts from the limit an earlier run learned."""
    limiter = SlidingWindowLimiter(spec.rate, clock=clock, share=spec.share)
    learned = checkpoint.meta.get(LEARNED_LIMIT)
    if learned:
        limiter.learn(RateLimit.parse(learned))
    return limiter


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

    found = await discover.list_found(
        client,
        limiter,
        store,
        spec.plan_options,
        clock=clock,
        rng=rng,
        retry=RetryPolicy(max_attempts=spec.max_attempts),
        until=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S"),
        on_page=between_pages,
    )
    discover.guard(found, spec.max_leads)
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
    )


def _source(spec: RunSpec) -> str:
    """What a plan was made from, as checkpoints and summaries name it."""
    if spec.discover:
        codes = ",".join(spec.codes)
        return f"LeadSquared listing of codes {codes}, {spec.from_date} to {spec.to_date} {spec.tz}"
    return str(_input(spec).resolve())


def _input(spec: RunSpec) -> Path:
    if spec.input is None:
        raise OptionError("give an INPUT sheet, or --discover to list the leads from LeadSquared")
    return spec.input


def _checkpoint_path(spec: RunSpec) -> Path:
    if spec.checkpoint is None:
        raise OptionError("--checkpoint is required to send")
    return spec.checkpoint


def _fingerprint(spec: RunSpec) -> str:
    path = _input(spec)
    try:
        return plan_fingerprint(path, spec.plan_options)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not a sheet") from None


def _store_plan(checkpoint: Checkpoint, spec: RunSpec, fingerprint: str) -> PlanSummary:
    plan_ = build_plan(_input(spec), spec.plan_options)
    checkpoint.store_plan(
        plan_.requests(),
        plan_.invalid,
        source=_source(spec),
        fingerprint=fingerprint,
        options=spec.plan_options.as_dict(),
        extra={"leads": str(plan_.leads), "rows_read": str(plan_.rows_read), "label": spec.label},
    )
    return plan_summary(plan_, plan_.tally(), spec.effective_rate)


async def _send(checkpoint: Checkpoint, pool: Pool, spec: RunSpec, todo: int) -> SendReport:
    run_id = checkpoint.start_run(host=spec.host, rate=str(pool.limiter.effective))
    result = "crashed"  # a bug, or the caller's own cancellation
    try:
        report = await pool.run(todo)
        result = "interrupted" if report.stopped else "aborted" if report.error else "finished"
        return report
    finally:
        checkpoint.finish_run(run_id, _record_of(pool, spec, result))


def _record_of(pool: Pool, spec: RunSpec, result: str) -> RunRecord:
    progress = pool.progress
    effective = pool.limiter.effective
    return RunRecord(
        host=spec.host,
        rate=str(effective),
        result=result,
        calls=progress.calls,
        queued=progress.queued,
        failed=progress.failed,
        rate_limited=progress.rate_limited,
        send_seconds=progress.send_seconds,
        start_span=progress.start_span,
        limit_per_second=None if effective.unlimited else effective.per_second,
    )


def _summary(
    checkpoint: Checkpoint,
    spec: RunSpec,
    report: SendReport | None,
    started: str,
    rate: RateLimit,
) -> RunSummary:
    counts = checkpoint.counts()
    exit_code = EXIT_OK if counts.complete else EXIT_INCOMPLETE
    if report is not None and report.error is not None:
        exit_code = report.error.exit_code
    elif report is not None and report.stopped:
        exit_code = EXIT_INTERRUPTED
    record = checkpoint.last_run() if report is not None else None
    return RunSummary(
        exit_code=exit_code,
        checkpoint=checkpoint.location,
        input=_source(spec),
        host=spec.host,
        rate_limit=str(rate),
        label=spec.label,
        started_at=started,
        finished_at=_utc_now(),
        runs=checkpoint.run_count(),
        this_run=_stats(record) if record else RunStats(result="nothing to send"),
        totals=counts,
        failures=_failures(checkpoint),
        verification=checkpoint.verification(),
    )


def _stats(record: RunRecord) -> RunStats:
    """A run's figures as the summary shows them; `run` and `status` both come through here,
    so they cannot disagree on the achieved rate."""
    rate = achieved_rate(record.calls, record.start_span)
    share = rate / record.limit_per_second if rate and record.limit_per_second else None
    return RunStats(
        result=record.result,
        calls=record.calls,
        queued=record.queued,
        failed=record.failed,
        rate_limited_429=record.rate_limited,
        send_seconds=round(record.send_seconds, 3),
        calls_per_second=None if rate is None else round(rate, 3),
        share_of_limit=None if share is None else round(share, 4),
    )


def _failures(checkpoint: Checkpoint) -> tuple[Failure, ...]:
    return tuple(
        Failure(error=error, count=count, transient=transient)
        for error, count, transient in checkpoint.failure_reasons()
    )


def _utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


# ---------------------------------------------------------------- status and export


async def status(path: Path) -> RunSummary:
    """The summary of a checkpoint, as `run` prints it at the end (read-only)."""
    with Checkpoint.open_existing(path) as checkpoint:
        counts = checkpoint.counts()
        record = checkpoint.last_run()
        meta = checkpoint.meta
        return RunSummary(
            exit_code=EXIT_OK if counts.complete else EXIT_INCOMPLETE,
            checkpoint=checkpoint.location,
            input=meta.get("input", ""),
            host=record.host if record else "",
            rate_limit=record.rate if record else "",
            label=meta.get("label", ""),
            runs=checkpoint.run_count(),
            this_run=_stats(record) if record else RunStats(),
            totals=counts,
            failures=_failures(checkpoint),
            verification=checkpoint.verification(),
        )


# ---------------------------------------------------------------- verify


async def verify(
    spec: RunSpec,
    credentials: Credentials,
    *,
    session: aiohttp.ClientSession,
    on_choice: Callable[[verifying.Choice, RateLimit], None] = _ignore,
    clock: Clock | None = None,
    rng: random.Random | None = None,
    stop: StopSwitch | None = None,
) -> VerifySummary:
    """Ask LeadSquared what is left of each queued request (or a sample) and record it."""
    host = require_host(spec.host)
    path = _checkpoint_path(spec)
    if not path.is_file():
        raise InputError(f"{path}: no such checkpoint")
    clock, rng = clock or SystemClock(), rng or random.Random()
    client = LeadSquaredClient(session, host, credentials, auth=spec.auth)
    with Checkpoint.open(path) as checkpoint, checkpoints.lock(path):
        if not checkpoint.has_plan:
            raise InputError(f"{path}: the checkpoint holds no plan")
        limiter = _limiter(checkpoint, spec, clock)
        items = checkpoint.to_verify(spec.sample, rng)
        caller = verifying.Caller(
            client, limiter, RetryPolicy(max_attempts=spec.max_attempts), clock, rng, stop=stop
        )
        choice = None
        if items:
            if spec.preflight:
                await preflight(client, limiter, clock)
            until = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
            choice, firsts = await verifying.choose(caller, items, until)
            on_choice(choice, limiter.effective)
            await verifying.check(
                caller, checkpoint, items, choice, firsts, until, spec.workers, stop
            )
        found = checkpoint.verification()
        summary = VerifySummary(
            exit_code=EXIT_OK
            if not (found.remaining_requests or found.unverified)
            else EXIT_INCOMPLETE,
            checkpoint=checkpoint.location,
            strategy=choice.strategy if choice else "",
            calls=caller.calls,
            checked_now=len(items),
            verification=found,
            unverified_notes=tuple(checkpoint.unverified_notes()),
        )
    if stop is not None and stop.is_set():
        error = Interrupted("interrupted; every check made is saved. Rerun to go on.")
        raise error
    return summary


EXPORT_STATUSES = ("queued", "failed", "invalid", "pending")


def export(path: Path, out: Path, statuses: tuple[str, ...] = EXPORT_STATUSES) -> int:
    """One line per request and per invalid row, CSV or .xlsx by the name. Returns the count."""
    count = 0
    with Checkpoint.open_existing(path) as checkpoint, open_table(out, EXPORT_COLUMNS) as write:
        for row in checkpoint.export_rows(statuses):
            write(row)
            count += 1
    return count
