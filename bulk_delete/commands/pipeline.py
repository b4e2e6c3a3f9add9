"""The pipeline wired together: file → rows → plan → checkpoint → senders → outcomes → export.

Each public coroutine here is what one CLI command awaits. They take a RunSpec, and the clock,
RNG and HTTP session from outside; they return typed results and never print: what a person
sees is the CLI's business, told through ``RunHooks``. The dry run is this same pipeline with
the send step left out, never a separate code path.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import json
import random
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, TextIO
from urllib.parse import urlsplit

from ..allowance import DailyEstimate, across_days
from ..clock import Clock, SystemClock
from ..config import DEFAULT_GIVE_UP_AFTER, Credentials, RateLimit, require_host
from ..errors import (
    EXIT_INCOMPLETE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    InputError,
    Interrupted,
    NotConfirmed,
    OpenWindow,
    OptionError,
    ServiceDownError,
    WrongHost,
)
from ..plan.build import (
    PlanSummary,
    RequestTally,
    build_plan,
    plan_fingerprint,
    plan_summary,
    summarise,
)
from ..send import recording
from ..send.answers import Verdict
from ..send.client import LeadSquaredClient
from ..send.limiter import SlidingWindowLimiter
from ..send.pool import (
    LEARNED_LIMIT,
    OutcomeCallback,
    Pool,
    ProgressCallback,
    SendReport,
    StopSwitch,
    call_once,
)
from ..send.retry import RetryPolicy
from ..sheet.read import SheetInfo
from ..spec import RunSpec
from ..store import checkpoint as checkpoints
from ..store.checkpoint import Checkpoint
from ..store.export import (
    RowWriter,
    export_columns,
    export_row,
    open_table,
    preview_columns,
    preview_row,
    stream_table,
    write_invalid,
)
from ..store.found import FoundStore
from ..store.ledger import calls_today, shared_window
from ..summary import Failure, RunFigures, RunResult, RunSummary, VerifySummary, Window
from ..timetext import plan_tz, to_local
from . import backups, discover, outputs
from . import verify as verifying

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
    daily: DailyEstimate | None = None  # with --daily-limit: how the run spreads over days
    backup: backups.BackupPrice | None = None  # --backup: its calls, time and activities


async def plan(
    spec: RunSpec,
    *,
    credentials: Credentials | None = None,
    session: aiohttp.ClientSession | None = None,
    clock: Clock | None = None,
    on_listing: Callable[[str, int, int], None] = _ignore,
    on_notice: Callable[[str], None] = _ignore,
) -> PlanReport:
    """The dry run: plan the sheet (or list what --discover finds), write the preview files,
    and (with --check-codes) name each code. ``credentials`` and ``session`` are needed only
    for --discover and --check-codes."""
    outputs.check_spec(spec)  # before the sheet is read or a listing call is made
    found, backup = None, _backup_price(spec)
    if spec.discover:
        if credentials is None or session is None:
            raise OptionError("--discover needs LeadSquared keys and a session")
        found, summary, backup = await _plan_discovered(
            spec, credentials, session, clock or SystemClock(), on_listing, on_notice
        )
    else:
        summary = _plan_and_write(spec)
    names = None
    if spec.check_codes:
        if credentials is None or session is None:
            raise OptionError("--check-codes needs LeadSquared keys and a session")
        codes = sorted(summary.tally.code_counts, key=int)
        names = await check_codes(
            codes, spec, credentials, session, clock or SystemClock(), on_notice=on_notice
        )
    return PlanReport(
        summary=summary,
        code_names=names,
        discovery=found,
        daily=daily_estimate(spec, summary.requests, credentials),
        host=spec.host,
        out=spec.out,
        invalid_out=spec.invalid_out,
        backup=backup,
    )


def _backup_price(spec: RunSpec) -> backups.BackupPrice | None:
    """The sheet's plan, read again for the price of --backup (a discovered plan: its own)."""
    if spec.backup is None or spec.discover:
        return None
    return backups.price(spec, build_plan(_input(spec), spec.plan_options).requests())


async def _plan_discovered(
    spec: RunSpec,
    credentials: Credentials,
    session: aiohttp.ClientSession,
    clock: Clock,
    on_listing: Callable[[str, int, int], None],
    on_notice: Callable[[str], None] = _ignore,
) -> tuple[discover.Discovery, PlanSummary, backups.BackupPrice | None]:
    """The dry run of --discover: the same listing, kept in memory; nothing is deleted."""
    client = LeadSquaredClient(session, _host(spec), credentials, auth=spec.auth)
    limiter = SlidingWindowLimiter(spec.rate, clock=clock, share=spec.share, on_notice=on_notice)
    if spec.preflight:
        await preflight(client, limiter, clock, give_up_after=spec.give_up_after)
    store = FoundStore.in_memory()
    found = await _list(client, limiter, store, spec, clock, random.Random(), None, on_listing)
    tally = RequestTally()
    planned = discover.requests(store, spec.plan_options)
    if spec.out is not None:
        with open_table(spec.out, (*preview_columns(spec.tz), "activities")) as write:
            for request, activities in planned:
                tally.add(request)
                write((*preview_row(request, spec.tz), activities))
    else:
        for request, _ in planned:
            tally.add(request)
    summary = _discovered_summary(found.leads, tally, spec, found.warnings)
    return found, summary, backups.discovered_price(spec, store)


def _plan_and_write(spec: RunSpec) -> PlanSummary:
    plan_ = build_plan(_input(spec), spec.plan_options)
    rate = spec.effective_rate
    if spec.out is not None:
        with open_table(spec.out, preview_columns(spec.tz)) as write:
            summary = summarise(
                plan_, rate, sink=lambda request: write(preview_row(request, spec.tz))
            )
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
    *,
    on_notice: Callable[[str], None] = _ignore,
) -> dict[str, str]:
    """Each code's display name from GetActivitySetting, or why it is not a custom activity.
    Goes through the same limiter as the deletes: these calls spend the same budget."""
    limiter = SlidingWindowLimiter(spec.rate, clock=clock, share=spec.share, on_notice=on_notice)
    client = LeadSquaredClient(session, _host(spec), credentials, auth=spec.auth)
    if spec.preflight:
        await preflight(client, limiter, clock, give_up_after=spec.give_up_after)
    retry, rng = _retry(spec), random.Random()
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


PREFLIGHT_ATTEMPTS = 3


def _retry(spec: RunSpec) -> RetryPolicy:
    return RetryPolicy(max_attempts=spec.max_attempts, give_up_after=spec.give_up_after)


async def preflight(
    client: LeadSquaredClient,
    limiter: SlidingWindowLimiter,
    clock: Clock,
    *,
    give_up_after: float = DEFAULT_GIVE_UP_AFTER,
) -> None:
    """One call before the first delete (UserByAccessKey.Get, which answers on every regional
    host): wrong keys stop here, and so does a --host that is not the account's own. An
    outage is ridden out for ``give_up_after`` seconds, as the deletes would; a host name
    that does not exist stops it at once."""
    retry = RetryPolicy(max_attempts=PREFLIGHT_ATTEMPTS, cap=2.0, give_up_after=give_up_after)
    with recording.calling("preflight"):
        answer, body = await call_once(
            limiter, client.user_by_access_key, retry=retry, clock=clock, rng=random.Random()
        )
    if body:
        _check_host(client.host, body)
    elif answer.verdict is Verdict.TRANSIENT:
        raise ServiceDownError(
            f"the API did not answer the preflight check ({answer.message}); rerun later"
        )
    # Any other answer we cannot read says nothing against the keys or the host: go on.


def _host(spec: RunSpec) -> str:
    """The host calls go to. ``--rate off`` (no limiter at all) is a test setting for the local
    emulator: against LeadSquared it would burst into refusals and spend the budget that the
    account's live integrations need."""
    host = require_host(spec.host)
    if spec.rate.unlimited and not _loopback(urlsplit(host).hostname or ""):
        raise OptionError(
            f"{spec.name_of('rate')} off is a test setting for the local emulator (127.0.0.1); "
            f"against {host} give the account's limit (25/5s, or a plan name such as pro)"
        )
    return host


def _loopback(name: str) -> bool:
    """This machine by address (127.0.0.0/8, ::1) or by the name ``localhost``, never by a
    name that merely starts with 127."""
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


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
    on_notice: Callable[[str], None] = _ignore  # something worth one line (a long Retry-After)


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
    host = _host(spec)
    path = _checkpoint_path(spec)
    outputs.check_spec(spec)  # before the plan is built or anything sent
    started = _utc_now()
    fingerprint = fingerprint_of(spec)
    # One budget with the other runs on this machine (store/ledger.py); its times are the
    # wall's, so only in real time: a test's ManualClock paces alone.
    account = shared_window(
        host,
        credentials.access_key,
        enabled=clock is None,
        name=spec.label or str(path),
        daily_limit=spec.daily_limit,
    )
    clock = clock or SystemClock()
    rng = rng or random.Random()
    client = LeadSquaredClient(session, host, credentials, auth=spec.auth)
    with (
        Checkpoint.open(path) as checkpoint,
        checkpoints.lock(path),
        account as ledger,
        _recording(checkpoint),
        backups.opened(spec, checkpoint, client.retrieve) as backup,
    ):
        limiter = _limiter(checkpoint, spec, clock, hooks.on_notice)
        limiter.shared = ledger
        preflight_due = spec.preflight  # once per run, before the first call that needs it
        if checkpoint.has_plan:
            checkpoint.check_input(
                source=_source(spec), fingerprint=fingerprint, options=spec.plan_options.as_dict()
            )
            hooks.on_resume(path)
        elif spec.discover:  # the listing first, saved page by page, before any delete
            if preflight_due:
                await preflight(client, limiter, clock, give_up_after=spec.give_up_after)
                preflight_due = False
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
            _refuse_open_windows(checkpoint, spec)
            if not hooks.confirm(Confirmation(todo, leads, host)):
                raise NotConfirmed(
                    f"not confirmed, nothing sent; the plan is saved in {path} "
                    "(rerun with --yes to send)"
                )
            if preflight_due:
                await preflight(client, limiter, clock, give_up_after=spec.give_up_after)
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
        summary = _summary(checkpoint, spec, report, started, limiter.effective)
        if ledger is not None:  # the other runs on this machine that spent the same budget
            summary = dataclasses.replace(summary, shared_with=ledger.shared_with())
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


def daily_estimate(
    spec: RunSpec, requests: int, credentials: Credentials | None
) -> DailyEstimate | None:
    """With --daily-limit: whether the run crosses today's allowance, less what runs on this
    machine already spent today (the ledger, when the keys are known), and its ETA across days."""
    if spec.daily_limit is None:
        return None
    used = 0
    if credentials is not None and spec.host:
        used = calls_today(require_host(spec.host), credentials.access_key)
    now = dt.datetime.now(dt.UTC)
    return across_days(requests, spec.effective_rate, spec.daily_limit, now=now, used_today=used)


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


def _limiter(
    checkpoint: Checkpoint,
    spec: RunSpec,
    clock: Clock,
    on_notice: Callable[[str], None] = _ignore,
) -> SlidingWindowLimiter:
    """The run's limiter; a resume starts from the limit an earlier run learned."""
    limiter = SlidingWindowLimiter(spec.rate, clock=clock, share=spec.share, on_notice=on_notice)
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
    pool = Pool.for_reads(spec.send_settings(), clock=clock, rng=rng, limiter=limiter, stop=stop)
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


def fingerprint_of(spec: RunSpec) -> str:
    """What identifies a plan: the file's bytes and the plan options (a discovered plan: its
    options, the window included)."""
    return discover.fingerprint(spec.plan_options) if spec.discover else _fingerprint(spec)


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
        extra={
            "leads": str(plan_.leads),
            "rows_read": str(plan_.rows_read),
            "label": spec.label,
            "extra_columns": json.dumps(list(plan_.source.ignored) if plan_.extra else []),
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
        result = (
            RunResult.INTERRUPTED
            if report.stopped
            else RunResult.ABORTED
            if report.error
            else RunResult.FINISHED
        )
        return report
    finally:
        if recorder is not None:
            recorder.run = recording.NO_RUN
        checkpoint.finish_run(run_id, _figures_of(pool, result))


def _recording(checkpoint: Checkpoint) -> AbstractContextManager[object]:
    """Every call of this command recorded in the checkpoint's call log (send/recording.py)."""
    log = checkpoint.calls
    return recording.recording(None if log is None else recording.CallRecorder(log))


def _figures_of(pool: Pool, result: RunResult) -> RunFigures:
    """The pool's figures, with how the run ended and the limit it ran under."""
    effective = pool.limiter.effective
    return dataclasses.replace(
        pool.progress.figures,
        result=result,
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
        window=window_of(spec),
        started_at=started,
        finished_at=_utc_now(),
        runs=checkpoint.run_count(),
        this_run=record or RunFigures(result=RunResult.NOTHING_TO_SEND),
        totals=counts,
        failures=_failures(checkpoint),
        verification=checkpoint.verification(),
    )


def window_of(spec: RunSpec) -> Window:
    """The run's window in its tz and in UTC; empty ends stay empty (and so does a window
    that does not parse: the error that says so is the run's)."""
    try:
        defaults = spec.plan_options.row_defaults()
    except OptionError:
        return Window(tz=spec.tz)
    return Window(
        tz=spec.tz,
        from_local=to_local(defaults.from_date, spec.tz),
        to_local=to_local(defaults.to_date, spec.tz),
        from_utc=defaults.from_date,
        to_utc=defaults.to_date,
    )


def summary_before_start(spec: RunSpec | None, exit_code: int, error: str) -> RunSummary:
    """The summary of a run that stopped before its first call (a bad option or file, a lock
    held, no confirmation), so that monitoring sees the nights that need a look."""
    now = _utc_now()
    if spec is None:
        return RunSummary(
            exit_code=exit_code,
            checkpoint="",
            input="",
            host="",
            rate_limit="",
            error=error,
            started_at=now,
            finished_at=now,
            this_run=RunFigures(result=RunResult.NOT_STARTED),
        )
    source = "" if spec.input is None and not spec.discover else _source_or_blank(spec)
    return RunSummary(
        exit_code=exit_code,
        checkpoint=str(spec.checkpoint.resolve()) if spec.checkpoint else "",
        input=source,
        host=spec.host,
        rate_limit=str(spec.effective_rate),
        error=error,
        label=spec.label,
        window=window_of(spec),
        started_at=now,
        finished_at=now,
        this_run=RunFigures(result=RunResult.NOT_STARTED),
    )


def _source_or_blank(spec: RunSpec) -> str:
    try:
        return _source(spec)
    except OptionError:
        return ""


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
        host, rate = checkpoint.last_run_target()
        meta = checkpoint.meta
        options = json.loads(meta.get("options", "{}"))
        tz = str(options.get("tz") or "UTC")
        return RunSummary(
            exit_code=EXIT_OK if counts.complete else EXIT_INCOMPLETE,
            checkpoint=checkpoint.location,
            window=_saved_window(options, tz),
            input=meta.get("input", ""),
            host=host,
            rate_limit=rate,
            label=meta.get("label", ""),
            runs=checkpoint.run_count(),
            this_run=record or RunFigures(),
            totals=counts,
            failures=_failures(checkpoint),
            verification=checkpoint.verification(),
        )


def _saved_window(options: dict[str, object], tz: str) -> Window:
    """The window a checkpoint's plan options name (for `status`)."""
    try:
        spec = RunSpec.from_values(
            {
                "from_date": options.get("from") or None,
                "to_date": options.get("to") or None,
                "tz": tz,
            }
        )
    except OptionError:
        return Window(tz=tz)
    return window_of(spec)


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
    host = _host(spec)
    path = _checkpoint_path(spec)
    if not path.is_file():
        raise InputError(f"{path}: no such checkpoint")
    # Verify's calls spend the account's budget like the run's: the machine's ledger, one
    # limiter for the preflight and the pool, and --daily-limit counts them.
    account = shared_window(
        host,
        credentials.access_key,
        enabled=clock is None,
        name=spec.label or str(path),
        daily_limit=spec.daily_limit,
    )
    clock, rng = clock or SystemClock(), rng or random.Random()
    client = LeadSquaredClient(session, host, credentials, auth=spec.auth)
    with (
        Checkpoint.open(path) as checkpoint,
        checkpoints.lock(path),
        account as ledger,
        _recording(checkpoint),
    ):
        if not checkpoint.has_plan:
            raise InputError(f"{path}: the checkpoint holds no plan")
        limiter = _limiter(checkpoint, spec, clock)
        limiter.shared = ledger
        items = checkpoint.to_verify(spec.sample, rng)
        if items and spec.preflight:
            await preflight(client, limiter, clock, give_up_after=spec.give_up_after)
        pool = Pool.for_reads(  # after the preflight: its breaker's clocks start now
            spec.send_settings(),
            clock=clock,
            rng=rng,
            limiter=limiter,
            stop=stop,
            checkpoint=checkpoint,
            drain_seconds=0.0,  # a read has nothing to drain: a signal stops verify at once
        )
        choice = None
        if items:
            until = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
            with recording.calling("verify"):
                choice, firsts = await verifying.choose(pool, client, items, until)
                on_choice(choice, limiter.effective)
                await verifying.check(pool, client, checkpoint, items, choice, firsts, until)
        found = checkpoint.verification()
        summary = VerifySummary(
            exit_code=EXIT_OK
            if not (found.remaining_requests or found.unverified)
            else EXIT_INCOMPLETE,
            checkpoint=checkpoint.location,
            strategy=choice.strategy if choice else None,
            calls=pool.progress.figures.calls,
            checked_now=len(items),
            verification=found,
            unverified_notes=tuple(checkpoint.unverified_notes()),
            backup=backups.verified(checkpoint),
        )
    if stop is not None and stop.is_set():
        error = Interrupted("interrupted; every check made is saved. Rerun to go on.")
        raise error
    return summary


EXPORT_STATUSES = ("queued", "failed", "invalid", "pending")


def export_to(path: Path, stream: TextIO, statuses: tuple[str, ...] = EXPORT_STATUSES) -> int:
    """The export as CSV on a stream (``export -o -``). Returns the count."""
    return _export(path, lambda columns: stream_table(stream, columns), statuses)


def export(path: Path, out: Path, statuses: tuple[str, ...] = EXPORT_STATUSES) -> int:
    """One line per request and per invalid row, CSV or .xlsx by the name. Returns the count."""
    outputs.check([outputs.Named("--out", out)], outputs.checkpoint_files(path))
    return _export(path, lambda columns: open_table(out, columns), statuses)


def _export(
    path: Path,
    table: Callable[[tuple[str, ...]], AbstractContextManager[RowWriter]],
    statuses: tuple[str, ...],
) -> int:
    count = 0
    with Checkpoint.open_existing(path) as checkpoint:
        tz = plan_tz(checkpoint.meta)  # the plan's --tz: its dates are shown in it too
        with table(export_columns(tz)) as write:
            for row in checkpoint.export_rows(statuses):
                write(export_row(row, tz))
                count += 1
    return count
