"""The pipeline wired together: file → rows → plan → checkpoint → senders → outcomes → export.

Each public function here is what one CLI command calls. The dry run is this same pipeline
with the send step left out, never a separate code path.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import random
import signal
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from .checkpoint import Checkpoint, Outcome, Pending
from .client import AuthMode, LeadSquaredClient
from .clock import Clock, SystemClock
from .config import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_TIMEOUT,
    Credentials,
    RateLimit,
    auto_concurrency,
)
from .errors import (
    EXIT_INCOMPLETE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    BulkDeleteError,
    InputError,
    Interrupted,
    NotConfirmed,
)
from .export import EXPORT_COLUMNS, PREVIEW_COLUMNS, open_table, preview_row, write_invalid
from .plan import (
    PlanOptions,
    PlanSummary,
    RequestTally,
    build_plan,
    plan_fingerprint,
    plan_summary,
    summarise,
)
from .report import plan_text, run_text
from .retry import RetryPolicy
from .senders import Pool, Progress, SendConfig, SendReport


@dataclass(frozen=True, kw_only=True)
class PreviewConfig:
    input: Path
    options: PlanOptions
    rate: RateLimit
    out: Path | None = None
    invalid_out: Path | None = None
    check_codes_host: str | None = None  # set (with credentials) to ask LeadSquared
    credentials: Credentials | None = field(default=None, repr=False)


def plan_and_summarise(config: PreviewConfig) -> PlanSummary:
    plan = build_plan(config.input, config.options)
    if config.out is not None:
        with open_table(config.out, PREVIEW_COLUMNS) as write:
            summary = summarise(plan, config.rate, sink=lambda request: write(preview_row(request)))
    else:
        summary = summarise(plan, config.rate)
    if config.invalid_out is not None:
        write_invalid(config.invalid_out, plan.invalid)
    return summary


def preview(config: PreviewConfig) -> str:
    """The dry run: plan the sheet, write the preview files, return the summary text."""
    summary = plan_and_summarise(config)
    text = plan_text(summary)
    if config.check_codes_host and config.credentials is not None:
        codes = sorted(summary.tally.code_counts, key=int)
        names = asyncio.run(
            check_codes(codes, config.check_codes_host, config.credentials, config.rate)
        )
        text += (
            f"\nActivity codes at {config.check_codes_host} "
            f"({len(codes)} call(s) of the rate budget):"
        )
        text += "".join(f"\n  {code:>6}  {names[code]}" for code in codes)
    if config.out is not None:
        text += f"\nPreview of every request: {config.out}"
    if config.invalid_out is not None:
        text += f"\nInvalid rows with reasons: {config.invalid_out}"
    return text + "\nDry run: nothing was sent."


async def check_codes(
    codes: list[str], host: str, credentials: Credentials, rate: RateLimit
) -> dict[str, str]:
    """Each code's display name from GetActivitySetting, or why it is not a custom activity.
    Goes through the same limiter as the deletes: these calls spend the same budget."""
    from .limiter import SlidingWindowLimiter
    from .outcomes import Verdict, fatal_error

    limiter = SlidingWindowLimiter(rate, clock=SystemClock())
    names: dict[str, str] = {}
    timeout = aiohttp.ClientTimeout(total=DEFAULT_TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        client = LeadSquaredClient(session, host, credentials)
        for code in codes:
            await limiter.acquire()
            answer, body = await client.activity_setting(code)
            if answer.verdict is Verdict.FATAL:
                raise fatal_error(answer)
            if answer.http_status == 200 and body:
                names[code] = str(body.get("DisplayName") or body.get("Name") or "(no name)")
            elif answer.verdict is Verdict.FAILED:
                names[code] = f"UNKNOWN: not a custom activity here ({answer.message})"
            else:
                names[code] = f"not checked ({answer.message})"
    return names


# ---------------------------------------------------------------- run


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    input: Path
    options: PlanOptions
    checkpoint: Path
    host: str
    credentials: Credentials = field(repr=False)
    rate: RateLimit
    concurrency: int | None = None
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    timeout: float = DEFAULT_TIMEOUT
    auth: AuthMode = "header"
    retry_failed: bool = False
    summary_json: Path | None = None
    log_file: Path | None = None  # one JSON line per request outcome
    label: str = ""  # the job's name, for scheduled runs

    @property
    def workers(self) -> int:
        return self.concurrency or auto_concurrency(self.rate, self.timeout)


@dataclass
class RunResult:
    exit_code: int
    text: str
    facts: dict[str, Any]


Confirm = Callable[[str], bool]


def run(
    config: RunConfig,
    *,
    confirm: Confirm,
    echo: Callable[[str], None],
    on_progress: Callable[[Progress], None] | None = None,
    clock: Clock | None = None,
    rng: random.Random | None = None,
) -> RunResult:
    """Plan (or resume), show the plan, ask, send, and report. Raises UsageError before
    anything is sent, AbortedError/Interrupted after the checkpoint has been brought up to date."""
    started = _utc_now()
    fingerprint = _fingerprint(config.input, config.options)
    with Checkpoint.open(config.checkpoint) as checkpoint:
        if checkpoint.has_plan:
            checkpoint.check_input(
                input_path=config.input, fingerprint=fingerprint, options=config.options.as_dict()
            )
            echo(f"Resuming from checkpoint {config.checkpoint}")
        else:
            echo(_store_plan(checkpoint, config, fingerprint))
        todo, leads = checkpoint.todo_counts(retry_failed=config.retry_failed)
        report: SendReport | None = None
        if todo:
            question = (
                f"Send {todo:,} delete request(s) for {leads:,} lead(s) to {config.host}? "
                "LeadSquared queues each delete; it cannot be undone."
            )
            if not confirm(question):
                raise NotConfirmed(
                    "not confirmed, nothing sent; the plan is saved in "
                    f"{config.checkpoint} (rerun with --yes to send)"
                )
            report = asyncio.run(
                _send(
                    checkpoint,
                    config,
                    todo,
                    clock or SystemClock(),
                    rng or random.Random(),
                    on_progress,
                )
            )
        else:
            echo("Nothing left to send in this checkpoint.")
        result = _result(checkpoint, config, report, started)
    _write_summary_json(config.summary_json, result.facts)
    if report is not None and report.error is not None:
        report.error.args = (f"{report.error}\n{result.text}",)
        raise report.error
    if report is not None and report.stopped:
        raise Interrupted(
            f"interrupted; every answer received is saved.\n{result.text}\n"
            "Rerun the same command to resume."
        )
    return result


def _fingerprint(path: Path, options: PlanOptions) -> str:
    options.row_defaults()  # a bad option fails here, before any file work
    try:
        return plan_fingerprint(path, options)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not a sheet") from None


def _store_plan(checkpoint: Checkpoint, config: RunConfig, fingerprint: str) -> str:
    plan = build_plan(config.input, config.options)
    tally = RequestTally()
    checkpoint.store_plan(
        tally.observe(plan.requests()),
        plan.invalid,
        input_path=config.input,
        fingerprint=fingerprint,
        options=config.options.as_dict(),
        extra={"leads": str(plan.leads), "rows_read": str(plan.rows_read), "label": config.label},
    )
    summary = plan_summary(plan, tally, config.rate)
    return plan_text(summary) + f"\nPlan saved in checkpoint {config.checkpoint}"


async def _send(
    checkpoint: Checkpoint,
    config: RunConfig,
    todo: int,
    clock: Clock,
    rng: random.Random,
    on_progress: Callable[[Progress], None] | None,
) -> SendReport:
    run_id = checkpoint.start_run(host=config.host, rate=str(config.rate))
    connector = aiohttp.TCPConnector(limit=config.workers, ttl_dns_cache=300)
    timeout = aiohttp.ClientTimeout(total=config.timeout, connect=min(10.0, config.timeout))
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        client = LeadSquaredClient(session, config.host, config.credentials, auth=config.auth)
        pool = Pool(
            checkpoint,
            client,
            SendConfig(
                rate=config.rate,
                concurrency=config.workers,
                retry=RetryPolicy(max_attempts=config.max_attempts),
                retry_failed=config.retry_failed,
            ),
            clock=clock,
            rng=rng,
            on_progress=on_progress,
        )
        restore = _install_signal_handlers(pool)
        try:
            with _outcome_log(config.log_file) as log:
                pool.on_outcome = log
                report = await pool.run(todo)
        finally:
            restore()
    progress = report.progress
    result = "interrupted" if report.stopped else "aborted" if report.error else "finished"
    checkpoint.finish_run(
        run_id,
        calls=progress.calls,
        queued=progress.queued,
        failed=progress.failed,
        rate_limited=progress.rate_limited,
        send_seconds=report.send_seconds,
        result=result,
    )
    return report


@contextlib.contextmanager
def _outcome_log(path: Path | None) -> Iterator[Callable[[Pending, Outcome], None] | None]:
    """`--log-file`: one JSON line per outcome, flushed as written. No body, no keys."""
    if path is None:
        yield None
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("a", encoding="utf-8")
    except OSError as error:
        raise BulkDeleteError(f"cannot write {path}: {error.strerror}") from None

    def write(item: Pending, outcome: Outcome) -> None:
        handle.write(
            json.dumps(
                {
                    "time": _utc_now(),
                    "seq": outcome.seq,
                    "ProspectId": item.prospect_id,
                    "status": outcome.status,
                    "transient": outcome.transient,
                    "attempts": outcome.attempts,
                    "rate_limited": outcome.rate_limited,
                    "http_status": outcome.http_status,
                    "error": outcome.error,
                }
            )
            + "\n"
        )
        handle.flush()

    with handle:
        yield write


def _install_signal_handlers(pool: Pool) -> Callable[[], None]:
    """First SIGINT/SIGTERM: stop starting calls and drain. Second: leave at once (every
    committed outcome is already safe in the checkpoint)."""
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)

    def on_signal(signum: int) -> None:
        if pool.stopping.is_set() and pool.stopped_by_signal:
            sys.stderr.write("\nstopped at once; rerun the same command to resume\n")
            sys.stderr.flush()
            os._exit(EXIT_INTERRUPTED)
        sys.stderr.write(
            f"\n{signal.Signals(signum).name}: no new calls; waiting for "
            f"{pool.progress.in_flight} in flight (at most {pool.config.drain_seconds:g} s). "
            "Press Ctrl-C again to quit at once.\n"
        )
        sys.stderr.flush()
        pool.stop()

    installed = []
    for signum in signals:
        try:
            loop.add_signal_handler(signum, on_signal, signum)
            installed.append(signum)
        except (NotImplementedError, RuntimeError):  # not the main thread (tests)
            pass

    def restore() -> None:
        for signum in installed:
            loop.remove_signal_handler(signum)

    return restore


def _result(
    checkpoint: Checkpoint, config: RunConfig, report: SendReport | None, started: str
) -> RunResult:
    counts = checkpoint.counts()
    progress = report.progress if report else Progress()
    exit_code = EXIT_OK if counts.complete else EXIT_INCOMPLETE
    if report is not None and report.error is not None:
        exit_code = report.error.exit_code
    elif report is not None and report.stopped:
        exit_code = EXIT_INTERRUPTED
    limit = config.rate.per_second
    achieved = progress.calls_per_second
    facts: dict[str, Any] = {
        "exit_code": exit_code,
        "checkpoint": str(config.checkpoint.resolve()),
        "input": str(config.input.resolve()),
        "host": config.host,
        "rate_limit": str(config.rate),
        "started_at": started,
        "finished_at": _utc_now(),
        "this_run": {
            "calls": progress.calls,
            "queued": progress.queued,
            "failed": progress.failed,
            "rate_limited_429": progress.rate_limited,
            "send_seconds": round(report.send_seconds, 3) if report else 0.0,
            "calls_per_second": round(achieved, 3),
            "share_of_limit": round(achieved / limit, 4)
            if achieved and limit != float("inf")
            else None,
        },
        "totals": counts.totals(),
    }
    text = run_text(facts, checkpoint.failure_reasons())
    return RunResult(exit_code=exit_code, text=text, facts=facts)


def summary_line(facts: dict[str, Any]) -> str:
    """One line for a scheduler's log."""
    totals, run = facts["totals"], facts["this_run"]
    share = run.get("share_of_limit")
    return (
        f"bulk-delete: exit={facts['exit_code']} queued={totals['queued']}/{totals['requests']} "
        f"failed={totals['failed']} pending={totals['pending']} invalid={totals['invalid_rows']} "
        f"calls={run['calls']} 429={run['rate_limited_429']} "
        f"rate={run['calls_per_second']:.2f}/s"
        + (f" ({share:.0%} of limit)" if share else "")
        + f" checkpoint={facts['checkpoint']}"
    )


def _utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _write_summary_json(path: Path | None, facts: dict[str, Any]) -> None:
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(facts, indent=2) + "\n")
    except OSError as error:
        raise BulkDeleteError(f"cannot write {path}: {error.strerror}") from None


# ---------------------------------------------------------------- status and export


def status(path: Path) -> RunResult:
    """The summary of a checkpoint, as `run` prints it at the end."""
    with Checkpoint.open_existing(path) as checkpoint:
        counts = checkpoint.counts()
        runs = checkpoint.runs()
        meta = checkpoint.meta
        last = runs[-1] if runs else {}
        calls = int(last.get("calls", 0))
        seconds = float(last.get("send_seconds", 0.0))
        facts: dict[str, Any] = {
            "checkpoint": str(path.resolve()),
            "input": meta.get("input", ""),
            "host": last.get("host", ""),
            "rate_limit": last.get("rate", ""),
            "runs": len(runs),
            "this_run": {
                "calls": calls,
                "queued": last.get("queued", 0),
                "failed": last.get("failed", 0),
                "rate_limited_429": last.get("rate_limited", 0),
                "send_seconds": seconds,
                "calls_per_second": round((calls - 1) / seconds, 3) if calls > 1 and seconds else 0,
                "share_of_limit": None,
                "result": last.get("result", "never run"),
            },
            "totals": counts.totals(),
        }
        text = run_text(facts, checkpoint.failure_reasons(), title="Checkpoint status")
    exit_code = EXIT_OK if counts.complete else EXIT_INCOMPLETE
    return RunResult(exit_code=exit_code, text=text, facts=facts)


EXPORT_STATUSES = ("queued", "failed", "invalid", "pending")


def export(path: Path, out: Path, statuses: tuple[str, ...] = EXPORT_STATUSES) -> int:
    """One line per request and per invalid row, CSV or .xlsx by the name. Returns the count."""
    count = 0
    with Checkpoint.open_existing(path) as checkpoint, open_table(out, EXPORT_COLUMNS) as write:
        for row in checkpoint.export_rows(statuses):
            write(row)
            count += 1
    return count
