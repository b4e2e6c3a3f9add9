"""What several commands need alike: where calls may go, which checkpoint and plan, what pace.

`plan`, `run` and `verify` each check the host, name the checkpoint, identify a plan, start a
limiter, retry and show a window. Each of these is decided here once, so that the commands
cannot drift apart on one of them: ``--rate off`` is refused off loopback by all three, and a
resumed `run` and a `verify` both start from the limit an earlier run learned.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from ..clock import Clock, utc
from ..config import Credentials, RateLimit, require_host
from ..errors import AllowanceUsed, Interrupted, OptionError
from ..files import real, require_file
from ..plan.rules import PlanOptions, discovered_fingerprint, fingerprint_file, plan_fingerprint
from ..send import recording
from ..send.limiter import SlidingWindowLimiter
from ..send.pool import LEARNED_LIMIT, SendReport
from ..send.retry import RetryPolicy
from ..store import checkpoint as checkpoints
from ..store.calls import CallLog
from ..store.checkpoint import Checkpoint
from ..store.ledger import WindowLedger, shared_window
from ..summary import Failure, RunFigures, RunResult, RunSummary, Window
from ..timetext import to_local, zone_aliases
from .account import Bound, keep_to_account
from .spec import RunSpec


def ignore(*_: object) -> None:
    return None


def retry_policy(spec: RunSpec) -> RetryPolicy:
    return RetryPolicy(max_attempts=spec.max_attempts, give_up_after=spec.give_up_after)


def host_of(spec: RunSpec) -> str:
    """The host calls go to. ``--rate off`` (no limiter at all) is a test setting for the local
    emulator: against LeadSquared it would burst into refusals and spend the budget that the
    account's live integrations need."""
    host = require_host(spec.host)
    only_on_loopback(spec, host, "rate")
    return host


def only_on_loopback(spec: RunSpec, host: str, name: str) -> None:
    """A limit of ``off`` (``rate``, a restore's ``bulk_rate``) only for the local emulator."""
    if getattr(spec, name).unlimited and not _loopback(urlsplit(host).hostname or ""):
        raise OptionError(
            f"{spec.name_of(name)} off is a test setting for the local emulator (127.0.0.1); "
            f"against {host} give the account's limit (25/5s, or a plan name such as pro)"
        )


def _loopback(name: str) -> bool:
    """This machine by address (127.0.0.0/8, ::1) or by the name ``localhost``, never by a
    name that merely starts with 127."""
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def checkpoint_path_of(spec: RunSpec) -> Path:
    if spec.checkpoint is None:
        raise OptionError("--checkpoint is required to send")
    return spec.checkpoint


def input_of(spec: RunSpec) -> Path:
    if spec.input is None:
        raise OptionError("give an INPUT sheet, or --discover to list the leads from LeadSquared")
    return spec.input


def source_of(spec: RunSpec) -> str:
    """What a plan was made from, as checkpoints and summaries name it."""
    if spec.discover:
        codes = ",".join(spec.codes)
        return f"LeadSquared listing of codes {codes}, {spec.from_date} to {spec.to_date} {spec.tz}"
    return str(input_of(spec).resolve())


def fingerprint_of(spec: RunSpec) -> str:
    """What identifies a plan: the file's bytes and the plan options (a discovered plan: its
    options, the window included)."""
    return discovered_fingerprint(spec.plan_options) if spec.discover else _fingerprint(spec)


def fingerprints_of(spec: RunSpec) -> frozenset[str]:
    """The plan's fingerprint under every name of its time zone (Asia/Calcutta is Asia/Kolkata,
    UTC is Etc/UTC): what a copy of the same job, its zone spelt another way, holds."""
    names = zone_aliases(spec.tz)
    if spec.discover:
        return frozenset(discovered_fingerprint(_in_zone(spec, name)) for name in names)
    path = input_of(spec)
    file_digest = fingerprint_file(path)
    return frozenset(plan_fingerprint(path, _in_zone(spec, name), file_digest) for name in names)


def _in_zone(spec: RunSpec, tz: str) -> PlanOptions:
    return dataclasses.replace(spec.plan_options, tz=tz)


def _fingerprint(spec: RunSpec) -> str:
    path = input_of(spec)
    require_file(path, "sheet")  # read whole here, before the plan is
    return plan_fingerprint(path, spec.plan_options)


@contextlib.contextmanager
def spending(
    spec: RunSpec,
    credentials: Credentials,
    path: Path,
    clock: Clock,
    on_notice: Callable[[str], None] = ignore,
    *,
    bind: bool = False,
) -> Iterator[tuple[Checkpoint, SlidingWindowLimiter, WindowLedger | None]]:
    """What a command holds while it calls LeadSquared for a checkpoint: the checkpoint,
    locked against a second process, every call recorded in its call log, the limiter, and
    the machine's ledger for this account (None when it cannot be used: said on stderr, or,
    with --daily-limit, LedgerUnusable before the first call). Every stamp and the ledger's
    times come from ``clock.wall``: a test's ManualClock takes the same path as a run.

    The limiter paces on the machine's window ledger for this account (store/ledger.py):
    every `run` and `verify` with the same keys and host spends one budget and one
    --daily-limit. A resume starts from the limit an earlier run learned. A checkpoint goes on
    with the host and keys its requests went to (account.py); ``bind``: a `run`, whose host
    and keys become the checkpoint's."""
    with (
        Checkpoint.open(path) as checkpoint,
        spending_on(checkpoint, spec, credentials, path, clock, on_notice, bind=bind) as paced,
    ):
        yield (checkpoint, *paced)


@contextlib.contextmanager
def spending_on(
    checkpoint: Spender,
    spec: RunSpec,
    credentials: Credentials,
    path: Path,
    clock: Clock,
    on_notice: Callable[[str], None] = ignore,
    *,
    bind: bool = False,
) -> Iterator[tuple[SlidingWindowLimiter, WindowLedger | None]]:
    """``spending`` for a checkpoint already open (a purge's, or a restore's): its lock, its
    account, its call log, the limiter (from the limit it learned) and the machine's ledger."""
    account = shared_window(
        host_of(spec),
        credentials.access_key,
        wall=clock.wall,
        name=spec.label or str(real(path)),  # one name for the checkpoint, however typed
        daily_limit=spec.daily_limit,
        on_notice=on_notice,
    )
    with checkpoints.lock(path), account as ledger:
        checkpoint.wall = clock.wall
        keep_to_account(checkpoint, host_of(spec), credentials, bind=bind, on_notice=on_notice)
        log = checkpoint.calls
        recorder = None if log is None else recording.CallRecorder(log, wall=clock.wall)
        with recording.recording(recorder):
            limiter = SlidingWindowLimiter(
                spec.rate, clock=clock, share=spec.share, on_notice=on_notice, shared=ledger
            )
            learned = checkpoint.meta.get(LEARNED_LIMIT)
            if learned:
                limiter.learn(RateLimit.parse(learned))
            yield limiter, ledger


class Spender(Bound, Protocol):
    """What ``spending_on`` needs of a checkpoint: its account, its clock, its call log."""

    wall: Callable[[], float]

    @property
    def calls(self) -> CallLog | None: ...


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


def ended(report: SendReport | None, summary: RunSummary, stopped: str) -> RunSummary:
    """A command's summary once its pool has ended (and the checkpoint is up to date): raised
    with the error that stopped the pool, or as Interrupted (``stopped``) after a signal, each
    carrying it; else returned."""
    if report is not None and report.error is not None:
        report.error.summary = summary
        raise report.error
    if report is not None and report.stopped:
        error = Interrupted(stopped)
        error.summary = summary
        raise error
    return summary


def failures_of(checkpoint: Checkpoint) -> tuple[Failure, ...]:
    return tuple(
        Failure(error=error, count=count, transient=transient)
        for error, count, transient in checkpoint.failure_reasons()
    )


def ended_as(*, stopped: bool, error: BaseException | None) -> RunResult:
    """How a send ended, as its runs row records it: a signal's stop, the account's
    allowance, another error, or none."""
    if stopped:
        return RunResult.INTERRUPTED
    if isinstance(error, AllowanceUsed):
        return RunResult.ALLOWANCE_USED
    return RunResult.ABORTED if error else RunResult.FINISHED


def summary_before_start(spec: RunSpec | None, clock: Clock, error: str = "") -> RunSummary:
    """The summary of a run that stopped before its first call (a bad option or file, a lock
    held, no confirmation), so that monitoring sees the nights that need a look."""
    now = utc_now(clock)
    if spec is None:
        return RunSummary(
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
        return source_of(spec)
    except OptionError:
        return ""


def utc_now(clock: Clock) -> str:
    """The clock's wall time as a summary's ``started_at`` shows it."""
    return utc(clock).isoformat(timespec="seconds")
