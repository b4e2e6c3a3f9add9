"""The command line: the only place that parses options, prints, runs the event loop, installs
signal handlers and turns errors into exit codes (``Cli.invoke``).

Each command fills a RunSpec from its options, awaits one coroutine of commands/ under
``asyncio.run``, and prints what comes back.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import errno
import os
import shlex
import signal
import sqlite3
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from .. import __version__
from ..commands import backups, outputs
from ..commands import export as export_command
from ..commands import plan as plan_command
from ..commands import run as run_command
from ..commands import status as status_command
from ..commands import verify as verify_command
from ..commands.common import fingerprint_of
from ..commands.jobs import Job, load_job
from ..commands.outputs import check_spec, checkpoint_files, spec_reads, write_summary
from ..config import Credentials
from ..emulator.config import Knob, config_of, knobs
from ..errors import (
    EXIT_ABORTED,
    EXIT_CODES_HELP,
    EXIT_INCOMPLETE,
    EXIT_INTERRUPTED,
    EXIT_LOCKED,
    EXIT_MEANINGS,
    EXIT_OK,
    EXIT_SOFTWARE,
    EXIT_USAGE,
    BulkDeleteError,
    CredentialsError,
    InputError,
    Interrupted,
    NotConfirmed,
    OptionError,
    SameRequests,
    StorageError,
    UsageError,
    exit_code_for,
    exit_codes_help,
)
from ..files import same_file
from ..send.answers import redact
from ..send.client import open_session
from ..send.pool import StopSwitch
from ..spec import RunSpec, click_flag, flag_of, option_of
from ..store.export import OutcomeLog
from ..summary import RunFigures, RunResult, RunSummary, VerifySummary
from .progress import ProgressDisplay, log_line
from .report import (
    choice_text,
    discovery_text,
    learned_text,
    plan_report_text,
    question,
    run_text,
    saved_plan_text,
    summary_line,
    verify_text,
)
from .run_report import write_page, write_run_results

F = TypeVar("F", bound=Callable[..., Any])
_SECRET_NAMES = ("KEY", "SECRET", "TOKEN", "PASSWORD")


class Cli(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except BulkDeleteError as error:
            click.echo(f"error: {error}", err=True)
            _failed(ctx, error, exit_code_for(error), str(error))
            ctx.exit(exit_code_for(error))
        except BrokenPipeError as error:  # `bulk-delete plan … | head`: the reader went away
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            _failed(ctx, error, EXIT_INTERRUPTED, "the output pipe was closed")
            ctx.exit(EXIT_INTERRUPTED)
        except KeyboardInterrupt as error:
            click.echo("interrupted", err=True)
            _failed(ctx, error, EXIT_INTERRUPTED, "interrupted")
            ctx.exit(EXIT_INTERRUPTED)
        except Exception as error:  # a bug: exit 70, never 0 or 1
            report = _crash_report(error)
            click.echo(
                f"bulk-delete: internal error ({type(error).__name__}); this is a bug. "
                f"Every recorded outcome is safe; the traceback is in {report}",
                err=True,
            )
            _failed(ctx, error, EXIT_SOFTWARE, f"internal error ({type(error).__name__})")
            ctx.exit(EXIT_SOFTWARE)


def _crash_report(error: Exception) -> str:
    """The traceback in a private file, with anything that looks like a key blanked out."""
    secrets = tuple(
        value
        for name, value in os.environ.items()
        if any(word in name.upper() for word in _SECRET_NAMES) and len(value) >= 6
    )
    text = redact("".join(traceback.format_exception(error)), secrets)
    fd, path = tempfile.mkstemp(prefix="bulk-delete-crash-", suffix=".txt")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


# ---------------------------------------------------------------- --summary-json on every exit


@dataclass
class SummaryTarget:
    """Where `run`/`job` write their summary, and what is known of the run so far. The
    summary is written on every exit, so monitoring sees the nights that need a look."""

    path: Path | None
    reads: tuple[Path, ...] = ()  # what the command reads: never written over, even here
    spec: RunSpec | None = None
    previous: VerifySummary | None = None
    written: bool = False

    def write(self, summary: RunSummary) -> StorageError | None:
        """Write it once, whole or not at all; a failure is returned for the caller to show.
        A path that is a file the run reads is left alone (that mistake is the error)."""
        if self.path is None or self.written:
            return None
        self.written = True
        reads = list(self.reads)
        if self.spec is not None:
            reads += [named.path for named in spec_reads(self.spec)]
        if any(same_file(self.path, read) for read in reads):
            return None
        return write_summary(self.path, with_previous(summary, self.previous))


def _dry_run_summary(target: SummaryTarget) -> None:
    """A dry run's --summary-json: exit 0, nothing sent (monitoring of a scheduled dry run
    sees the night too)."""
    summary = run_command.summary_before_start(target.spec, EXIT_OK, "")
    problem = target.write(
        dataclasses.replace(summary, this_run=RunFigures(result=RunResult.DRY_RUN))
    )
    if problem is not None:
        raise problem


def _summary_target(
    ctx: click.Context, raw: Any, read: Any, checkpoint: Any = None
) -> SummaryTarget:
    """``read``: the file the command reads (sheet or job file); ``checkpoint``: if any."""
    reads = [Path(read)] if read else []
    reads += [named.path for named in checkpoint_files(Path(checkpoint))] if checkpoint else []
    target = SummaryTarget(Path(raw) if raw else None, tuple(reads))
    ctx.meta["summary"] = target
    return target


def _failed(ctx: click.Context, error: BaseException, exit_code: int, message: str) -> None:
    """The summary of a run that ended in an error: the run's own when sending began, else
    one that says why it never started. A summary that cannot be written is said, not
    raised: the run's own exit code is the one that counts."""
    target: SummaryTarget | None = ctx.meta.get("summary")
    if target is None or target.path is None or target.written:
        return
    carried = getattr(error, "summary", None)
    summary = (
        carried.ended(exit_code, message)
        if isinstance(carried, RunSummary)
        else _with_saved_totals(run_command.summary_before_start(target.spec, exit_code, message))
    )
    problem = target.write(summary)
    if problem is not None:
        click.echo(f"error: {problem}", err=True)


def _with_saved_totals(summary: RunSummary) -> RunSummary:
    """A run that stopped before its first call still reports what its checkpoint holds
    (pending, queued…), read-only, when there is one; otherwise the summary as it is."""
    if not summary.checkpoint or not Path(summary.checkpoint).is_file():
        return summary
    try:
        saved = asyncio.run(status_command.status(Path(summary.checkpoint)))
    except (BulkDeleteError, OSError, sqlite3.Error):
        return summary
    return dataclasses.replace(
        summary,
        runs=saved.runs,
        totals=saved.totals,
        failures=saved.failures,
        verification=saved.verification,
    )


@click.group(
    cls=Cli,
    epilog=EXIT_CODES_HELP,
    context_settings={"max_content_width": 100, "help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="bulk-delete")
def cli() -> None:
    """Purge custom activities from LeadSquared leads listed in a CSV or Excel sheet.

    Start with `plan` (a dry run: nothing is sent, no keys needed), then `run`.
    LeadSquared answers a delete with "queued": it deletes later, on its side.

    \b
    Examples:
      bulk-delete plan leads.xlsx --tz Asia/Kolkata
      bulk-delete run leads.xlsx --tz Asia/Kolkata --checkpoint q1.sqlite
      bulk-delete job jobs/nightly-discover-purge.toml --dry-run
      bulk-delete COMMAND --help
    """


# ---------------------------------------------------------------- options, declared in the spec

_METAVARS = {
    "codes": "CODES",
    "from_date": "DATE",
    "to_date": "DATE",
    "tz": "ZONE",
    "rate": "N/Ws|PLAN",
    "share": "FRACTION",
    "webhook": "URL",
    "host": "URL",
    "sheet": "NAME",
    "checkpoint": "FILE",
    "out": "FILE",
    "invalid_out": "FILE",
    "summary_json": "FILE",
    "log_file": "FILE",
    "results": "FILE",
}
_SHORT = {"out": "-o"}


def _metavar(name: str) -> str:
    """What --help shows for an option's value: INTEGER and FLOAT for numbers, as click does."""
    if name in _METAVARS:
        return _METAVARS[name]
    kind = str(RunSpec.__dataclass_fields__[name].type)
    if kind.startswith("int"):
        return "INTEGER"
    if kind.startswith("float"):
        return "FLOAT"
    return "TEXT"


def spec_option(name: str, **click_kwargs: Any) -> Callable[[F], F]:
    """A click option for a RunSpec field: its flag and help come from the spec, and it passes
    None when not given, so the spec's default (shown in the help) applies."""
    declared = option_of(name)
    default = RunSpec.__dataclass_fields__[name].default
    shown = "" if default in (None, "", (), False) else f"  [default: {default}]"
    kwargs: dict[str, Any] = {
        "default": None,
        "help": declared.help + shown,
        "metavar": _metavar(name),
    }
    if isinstance(default, bool):
        kwargs = {"is_flag": True, "default": default, "help": declared.help}
    flags = [click_flag(name)] + ([_SHORT[name]] if name in _SHORT else [])
    return click.option(*flags, name, **(kwargs | click_kwargs))


def _apply(command: F, decorators: list[Callable[[F], F]]) -> F:
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def plan_options(command: F) -> F:
    """The options that decide which requests a sheet becomes; shared by plan and run."""
    return _apply(
        command,
        [
            click.argument(
                "input", required=False, type=click.Path(path_type=Path, dir_okay=False)
            ),
            spec_option("discover"),
            spec_option("max_leads"),
            spec_option("sheet"),
            spec_option("ignore_columns", multiple=True, callback=lambda _c, _p, v: v or None),
            spec_option("codes"),
            spec_option("from_date"),
            spec_option("to_date"),
            spec_option("webhook"),
            spec_option("tz"),
            spec_option("max_codes_per_request"),
            spec_option("rate"),
            spec_option("share"),
        ],
    )


def preview_options(command: F) -> F:
    """What the dry run writes and asks besides the plan; shared by plan and run --dry-run."""
    return _apply(
        command,
        [
            spec_option("out", type=click.Path()),
            spec_option("invalid_out", type=click.Path()),
            spec_option("check_codes"),
            spec_option("backup", type=click.Path(dir_okay=False)),
        ],
    )


def send_options(command: F) -> F:
    """Options of every command that sends: run and job."""
    return _apply(
        command,
        [
            click.option(
                "-y",
                "--yes",
                is_flag=True,
                help="Send without asking (for scripts and schedulers).",
            ),
            click.option(
                "--dry-run",
                is_flag=True,
                help="Only plan: exactly `bulk-delete plan`; sends nothing.",
            ),
            click.option("--quiet", "-q", is_flag=True, help="No progress display."),
            spec_option("open_window"),
            spec_option("summary_json", type=click.Path(dir_okay=False)),
            spec_option("log_file", type=click.Path(dir_okay=False)),
            spec_option("results", type=click.Path(dir_okay=False)),
            spec_option("no_results"),
        ],
    )


# ---------------------------------------------------------------- plan

_PLAN_EXIT_CODES = (EXIT_OK, EXIT_USAGE, EXIT_ABORTED, EXIT_SOFTWARE, EXIT_INTERRUPTED)
_SEND_EXIT_CODES = tuple(EXIT_MEANINGS)


@cli.command(epilog=exit_codes_help(_PLAN_EXIT_CODES))
@plan_options
@preview_options
@spec_option("host", envvar="LSQ_HOST")
@spec_option("auth", type=click.Choice(["header", "query"]))
@spec_option("preflight")
@spec_option("daily_limit")
def plan(**values: Any) -> None:
    """Dry run: read, validate and coalesce INPUT (or list what --discover finds), and show
    what would be sent, ending with the command that sends it.

    Sends nothing and needs no keys (except with --discover or --check-codes). Exits 0
    when the file could be planned, even with invalid rows; 2 when it could not. INPUT
    may be - for standard input (CSV, or an Excel workbook).

    \b
    Examples:
      bulk-delete plan leads.xlsx
      bulk-delete plan leads.csv --tz Asia/Kolkata --codes 201,202 -o preview.csv
      bulk-delete plan --discover --codes 201 --from 2025-01-01 --to 2025-03-31
      cat leads.csv | bulk-delete plan - --codes 201
    """
    with _stdin_sheet(values) as (values, shown):
        spec = RunSpec.from_values(values)
        _print_plan(spec, shown=shown)
    click.echo(_next_command(click.get_current_context(), spec))


@contextmanager
def _stdin_sheet(
    values: dict[str, Any],
) -> Iterator[tuple[dict[str, Any], Callable[[str], str]]]:
    """INPUT "-": standard input, kept in a private temporary file while it is planned (a
    workbook is recognised by its first bytes). Yields the values and how to show a text
    about it: the temporary file is named "standard input" in the plan and in errors."""
    if str(values.get("input") or "") != "-":
        yield values, str
        return
    data = sys.stdin.buffer.read()
    suffix = ".xlsx" if data.startswith(b"PK\x03\x04") else ".csv"
    with tempfile.TemporaryDirectory(prefix="bulk-delete-stdin-") as folder:
        path = Path(folder) / f"stdin{suffix}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)

        def shown(text: str) -> str:
            return text.replace(str(path), "standard input")

        try:
            yield {**values, "input": path}, shown
        except BulkDeleteError as error:
            error.args = (shown(str(error)),)
            raise


def _next_command(ctx: click.Context, spec: RunSpec) -> str:
    """The exact command that sends this plan, quoted for the shell: the plan's own options
    as typed, and a checkpoint beside the sheet."""
    if spec.input is not None and spec.input.name.startswith("stdin"):
        return "Dry run: nothing was sent. To send it, save the sheet to a file and run it."
    words = [_program(), "run"]
    if spec.input is not None:
        words.append(str(ctx.params["input"]))
    sends = {param.name for param in run.params}
    words += _typed(ctx, lambda name: name in sends and name not in _PREVIEW_ONLY)
    words += ["--checkpoint", str(spec.checkpoint or _suggested_checkpoint(spec))]
    text = "Dry run: nothing was sent. To send it:\n  " + shlex.join(words)
    if spec.discover:
        text += "\n(the run lists again: what it finds then is what it deletes)"
    return text


# Not carried into the command that sends: what only the dry run writes, and the dry run itself.
_PREVIEW_ONLY = frozenset(
    {"out", "invalid_out", "check_codes", "input", "checkpoint", "dry_run", "summary_json"}
)


def _long(param: click.Option) -> str:
    return next((opt for opt in param.opts if opt.startswith("--")), param.opts[0])


def _program() -> str:
    """How this program was called, so the printed command runs as shown."""
    called = Path(sys.argv[0]).name if sys.argv else ""
    if called == "bulk-delete":
        return sys.argv[0]
    return "bulk-delete"


def _suggested_checkpoint(spec: RunSpec) -> Path:
    if spec.input is not None:
        return spec.input.with_suffix(".sqlite")
    codes = "-".join(spec.codes)
    return Path(f"discover-{codes}-{spec.from_date[:10]}-{spec.to_date[:10]}.sqlite")


def _print_plan(
    spec: RunSpec, credentials: Credentials | None = None, *, shown: Callable[[str], str] = str
) -> None:
    click.echo(shown(plan_report_text(asyncio.run(_plan(spec, credentials)))))


async def _plan(spec: RunSpec, credentials: Credentials | None) -> plan_command.PlanReport:
    if not (spec.check_codes or spec.discover):
        return await plan_command.plan(spec, credentials=credentials or _keys_if_set(spec))
    credentials = credentials or Credentials.from_env()
    async with open_session(spec.send_settings()) as session:
        return await plan_command.plan(
            spec,
            credentials=credentials,
            session=session,
            on_listing=_listing_progress(False),
            on_notice=_notice,
        )


def _keys_if_set(spec: RunSpec) -> Credentials | None:
    """The keys, when set, for a dry run with --daily-limit: what runs on this machine spent
    today is counted under them. Without them the dry run counts from zero."""
    if spec.daily_limit is None:
        return None
    try:
        return Credentials.from_env()
    except CredentialsError:
        return None


# ---------------------------------------------------------------- run and job


@cli.command(epilog=exit_codes_help(_SEND_EXIT_CODES))
@plan_options
@spec_option("checkpoint", required=True, type=click.Path(dir_okay=False))
@spec_option("host", envvar="LSQ_HOST")
@spec_option("concurrency")
@spec_option("max_attempts")
@spec_option("timeout")
@spec_option("give_up_after")
@spec_option("preflight")
@spec_option("auth", type=click.Choice(["header", "query"]))
@spec_option("retry_failed")
@spec_option("daily_limit")
@preview_options
@send_options
def run(yes: bool, dry_run: bool, quiet: bool, **values: Any) -> None:
    """Plan INPUT, show the plan, confirm, and send the deletes.

    Keys come from LSQ_ACCESS_KEY and LSQ_SECRET_KEY. The plan and every outcome are kept
    in --checkpoint; running the same command again resumes where it stopped.
    `run --dry-run` is exactly `plan` (it takes -o, --invalid-out and --check-codes).

    \b
    Examples:
      bulk-delete run leads.xlsx --checkpoint q1.sqlite
      bulk-delete run leads.csv --tz Asia/Kolkata --checkpoint q1.sqlite --rate pro
      bulk-delete run leads.csv --checkpoint q1.sqlite -y --summary-json s.json
      bulk-delete run --discover --codes 201 --from 2025-01-01 --to 2025-03-31 \\
          --checkpoint q1.sqlite
    """
    ctx = click.get_current_context()
    target = _summary_target(
        ctx, values.get("summary_json"), values.get("input"), values.get("checkpoint")
    )
    if str(values.get("input") or "") == "-":
        raise OptionError("run reads INPUT again to resume: give a file, not - (standard input)")
    spec = RunSpec.from_values(values)
    target.spec = spec
    if dry_run:
        _print_plan(spec)
        click.echo(_next_command(ctx, spec))
        _dry_run_summary(target)
        return
    given = [flag_of(name) for name in ("out", "invalid_out") if values.get(name)]
    given += [flag_of("check_codes")] if values.get("check_codes") else []
    if given:
        raise OptionError(
            f"{', '.join(given)} belong to the dry run: add --dry-run (or use `bulk-delete plan`); "
            "a run's outcomes come from `bulk-delete export CHECKPOINT -o FILE`"
        )
    _send_and_exit(spec, Credentials.from_env(), yes=yes, quiet=quiet, target=target)


@cli.command(epilog=exit_codes_help(_SEND_EXIT_CODES))
@click.argument("job_file", type=click.Path(path_type=Path, dir_okay=False))
@send_options
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path, file_okay=False),
    metavar="DIR",
    help="Use this state directory instead of the job file's state_dir.",
)
@click.option(
    "--as-of",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    metavar="YYYY-MM-DD",
    help="Run as if on this date (its window and its checkpoint): to catch up a missed "
    "night, or to try a job on data from another time.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Send even though another job's checkpoint in the state directory holds the same "
    "requests (a copy of this job file under another name).",
)
def job(
    job_file: Path,
    yes: bool,
    dry_run: bool,
    quiet: bool,
    state_dir: Path | None,
    as_of: dt.datetime | None,
    force: bool,
    **values: Any,
) -> None:
    """Run a scheduled cleanup described by a TOML job file (see jobs/).

    Never asks: the file needs confirm = true, or pass --yes. A relative window gets one
    checkpoint per run date in the state directory, an absolute one a single checkpoint
    that every run resumes; a second instance of the same job exits 75 at once.

    \b
    Examples:
      bulk-delete job jobs/nightly-discover-purge.toml --dry-run
      bulk-delete job jobs/nightly-discover-purge.toml --as-of 2025-03-01 --dry-run
      bulk-delete job jobs/nightly-webinar-purge.toml --summary-json /var/log/nightly.json
    """
    target = _summary_target(click.get_current_context(), values.get("summary_json"), job_file)
    values = {name: value for name, value in values.items() if value is not False}  # the file's
    loaded = load_job(job_file, state_dir=state_dir)
    if as_of is not None and as_of.date() > loaded.run_date(loaded.moment()):
        raise OptionError(
            f"--as-of {as_of.date()} is after today: a later date would move the job's window "
            "into what it is meant to keep; --as-of catches up a missed night or tries a job "
            "on older data"
        )
    now = loaded.moment(as_of.date() if as_of else None)
    target.spec = loaded.run_spec(now).with_values(values)
    if dry_run:  # a discovering job's dry run lists, so it needs the host and keys
        if loaded.spec.discover:
            spec = loaded.run_spec(now, os.environ).with_values(values)
            _print_plan(spec, loaded.credentials(os.environ))
        else:
            spec = target.spec
            _print_plan(spec)
        _warn_same_requests(loaded, spec)
        if (unfinished := loaded.unfinished(now)) is not None:
            click.echo(f"First: the {unfinished[2]:,} pending request(s) of {unfinished[0]}")
        command = _job_command(click.get_current_context())
        click.echo(f"Dry run: nothing was sent. To send it:\n  {command}")
        _dry_run_summary(target)
        return
    if not (yes or loaded.confirm):
        raise NotConfirmed(
            f"job {loaded.name}: nothing sent; set confirm = true in {job_file} or pass --yes"
        )
    spec = loaded.run_spec(now, os.environ).with_values(values)
    target.spec = spec
    credentials = loaded.credentials(os.environ)
    with loaded.lock():
        if not force:
            _refuse_same_requests(loaded, spec)
        earlier = loaded.previous_checkpoint(now)
        if loaded.verify_previous and earlier is not None:
            click.echo(f"Verifying the previous run first: {earlier}")
            target.previous = asyncio.run(_verify(spec.replace(checkpoint=earlier), credentials))
            click.echo(verify_text(target.previous))
        if (unfinished := loaded.unfinished(now)) is not None:  # its pending requests first
            click.echo(f"Finishing the previous run first: {unfinished[0]}")
            previous = loaded.run_spec(unfinished[1], os.environ).with_values(values)
            _send_and_exit(previous, credentials, yes=True, quiet=quiet, target=target, then=True)
        _send_and_exit(spec, credentials, yes=True, quiet=quiet, target=target)


def _job_command(ctx: click.Context) -> str:
    """The job's command as typed, without --dry-run: what sends what the dry run showed."""
    words = [_program(), "job", str(ctx.params["job_file"])]
    return shlex.join(words + _typed(ctx, lambda name: name != "dry_run"))


def _typed(ctx: click.Context, keep: Callable[[str], bool]) -> list[str]:
    """The options given on this command line (those ``keep`` takes), as words to type again:
    flags as given, repeated options repeated, dates as YYYY-MM-DD."""
    words: list[str] = []
    for param in ctx.command.params:
        name = param.name or ""
        if not isinstance(param, click.Option) or not keep(name):
            continue
        if ctx.get_parameter_source(name) is not click.core.ParameterSource.COMMANDLINE:
            continue
        value = ctx.params[name]
        if param.is_flag and param.secondary_opts:
            words.append(param.opts[0] if value else param.secondary_opts[0])
        elif param.is_flag:
            words += [_long(param)] if value else []
        else:
            values = value if param.multiple else (value,)  # --ignore-column A --ignore-column B
            for item in values:
                shown = item.date().isoformat() if isinstance(item, dt.datetime) else str(item)
                words += [_long(param), shown]
    return words


def _same_requests(loaded: Job, spec: RunSpec) -> list[Path]:
    try:
        return loaded.holding(fingerprint_of(spec))
    except BulkDeleteError:
        return []  # the plan itself fails, and says why


def _warn_same_requests(loaded: Job, spec: RunSpec) -> None:
    for path in _same_requests(loaded, spec):
        click.echo(
            f"warning: {path} (another job) holds these same requests; `job` refuses to send "
            "them again unless --force"
        )


def _refuse_same_requests(loaded: Job, spec: RunSpec) -> None:
    held = _same_requests(loaded, spec)
    if held:
        raise SameRequests(
            f"job {loaded.name}: nothing sent; {held[0]} already holds these requests (same "
            "sheet, codes and window: a copy of this job under another name?). Resume that "
            "job instead, or pass --force to send them again."
        )


def _send_and_exit(
    spec: RunSpec,
    credentials: Credentials,
    *,
    yes: bool,
    quiet: bool,
    target: SummaryTarget,
    then: bool = False,
) -> None:
    """Send, report and exit with the run's code; ``then``: return instead when it finished
    (exit 0 or 1), for a job that goes on to its own window (which writes the summary)."""
    check_spec(spec)  # the outputs, before the log is opened or anything sent
    display = ProgressDisplay(quiet=quiet, calls_per_second=spec.rate.per_second)
    signals = SignalStop()
    try:
        with OutcomeLog.open(spec.log_file) as log:
            hooks = run_command.RunHooks(
                confirm=_confirm(yes, signals),
                on_plan=lambda summary: click.echo(saved_plan_text(summary, spec.checkpoint)),
                on_resume=lambda path: click.echo(f"Resuming from checkpoint {path}"),
                on_limit_learned=lambda limit: click.echo(learned_text(limit), err=True),
                on_discovery=lambda found: click.echo(discovery_text(found, spec.tz)),
                on_listing=_listing_progress(quiet),
                on_notice=_notice,
                on_progress=display,
                on_outcome=log,
            )
            summary = asyncio.run(_run(spec, credentials, hooks, signals))
    except BulkDeleteError as error:
        display.close()
        if error.exit_code != EXIT_LOCKED:  # (another process holds the checkpoint)
            _results(spec, error.summary)
        if error.summary is not None:
            _report(with_previous(error.summary, target.previous), err=True)
        raise
    finally:
        display.close()
    _results(spec, summary)
    if then and summary.exit_code in (EXIT_OK, EXIT_INCOMPLETE):
        _report(with_previous(summary, target.previous))
        return  # finished: the job's own run writes --summary-json
    failed = target.write(summary)  # first: if the disk refuses it, the text says exit 3
    if failed is not None:
        _report(with_previous(summary.ended(failed.exit_code, str(failed)), target.previous))
        raise failed
    _report(with_previous(summary, target.previous))
    sys.exit(summary.exit_code)


def _results(spec: RunSpec, summary: RunSummary | None) -> None:
    """The results workbook and HTML report, after every run that planned something. A
    failure to write them is said, not raised: the run's own exit code is the one that counts."""
    try:
        written = write_run_results(spec, summary)
    except (BulkDeleteError, OSError) as error:
        click.echo(f"warning: results not written: {error}", err=True)
        return
    if written:
        click.echo(f"Results: {written[0]} (HTML report: {written[1]})", err=True)


def with_previous(summary: RunSummary, previous: VerifySummary | None) -> RunSummary:
    """The run's summary, carrying what verify_previous found in the previous run."""
    if previous is None:
        return summary
    return dataclasses.replace(
        summary,
        previous_checkpoint=previous.checkpoint,
        previous_verification=previous.verification,
    )


def _notice(text: str) -> None:
    click.echo(f"note: {text}", err=True)


def _listing_progress(quiet: bool) -> Callable[[str, int, int], None]:
    """--discover's listing, page by page on stderr, before the deletes' progress."""

    def show(code: str, seen: int, total: int) -> None:
        if not quiet:
            text = f"listing code {code}: {seen:,} of {total:,} activities read"
            click.echo(log_line(text), err=True)

    return show


async def _run(
    spec: RunSpec, credentials: Credentials, hooks: run_command.RunHooks, signals: SignalStop
) -> RunSummary:
    with signals.installed():
        async with open_session(spec.send_settings()) as session:
            return await run_command.run(
                spec, credentials, session=session, hooks=hooks, stop=signals.stop
            )


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # SIGHUP: the ssh session dropped


class SignalStop:
    """First SIGINT/SIGTERM/SIGHUP: stop starting calls and drain. Second: leave at once
    (every committed outcome is already safe in the checkpoint). At the confirmation prompt
    nothing is running yet, so a signal ends the command at once (exit 130)."""

    def __init__(self) -> None:
        self.stop = StopSwitch()
        self._installed: list[signal.Signals] = []

    @contextmanager
    def installed(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        for signum in _STOP_SIGNALS:
            try:
                loop.add_signal_handler(signum, self._on_signal, signum)
                self._installed.append(signum)
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread (tests)
                pass
        try:
            yield
        finally:
            for signum in self._installed:
                loop.remove_signal_handler(signum)
            self._installed = []

    def _on_signal(self, signum: int) -> None:
        stop = self.stop
        if stop.is_set() and stop.by_signal:
            sys.stderr.write("\nstopped at once; rerun the same command to resume\n")
            sys.stderr.flush()
            os._exit(EXIT_INTERRUPTED)
        sys.stderr.write(
            f"\n{signal.Signals(signum).name}: no new calls; waiting for the calls in flight "
            "(at most 10 s). Press Ctrl-C again to quit at once.\n"
        )
        sys.stderr.flush()
        stop.stop()

    @contextmanager
    def prompting(self) -> Iterator[None]:
        """While the prompt waits for a key, a signal interrupts it (the event loop's
        handlers would only note it, and the prompt would swallow Ctrl-C)."""
        loop = asyncio.get_running_loop()
        installed = list(self._installed)
        previous: dict[signal.Signals, Any] = {}
        for signum in installed:
            loop.remove_signal_handler(signum)
        for signum in _STOP_SIGNALS:
            previous[signum] = signal.signal(signum, _interrupt_prompt)
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            for signum in installed:
                loop.add_signal_handler(signum, self._on_signal, signum)


def _interrupt_prompt(signum: int, frame: object) -> None:
    raise Interrupted(f"{signal.Signals(signum).name} at the prompt: not confirmed, nothing sent")


def _confirm(yes: bool, signals: SignalStop) -> Callable[[run_command.Confirmation], bool]:
    def confirm(confirmation: run_command.Confirmation) -> bool:
        if yes:
            return True
        if not sys.stdin.isatty():
            raise NotConfirmed(
                "nothing sent: no terminal to confirm on; pass --yes to send without asking"
            )
        with signals.prompting():
            return _ask(question(confirmation))

    return confirm


def _ask(text: str) -> bool:
    """y/N on the terminal. Ctrl-D (end of input) is not a yes: exit 2, nothing sent."""
    click.echo(f"{text} [y/N]: ", nl=False, err=True)
    answer = sys.stdin.readline()
    if not answer:
        click.echo("", err=True)
        raise NotConfirmed("not confirmed (end of input), nothing sent")
    return answer.strip().lower() in ("y", "yes")


def _report(summary: RunSummary, *, err: bool = False) -> None:
    """The summary as text, and as the scheduler's one line."""
    click.echo(run_text(summary), err=err)
    if not sys.stderr.isatty():  # a scheduler's log gets one line it can grep
        click.echo(summary_line(summary), err=True)


# ---------------------------------------------------------------- verify


@cli.command(epilog=exit_codes_help((0, 1, 2, 3, 70, 75, 130)))
@click.argument("checkpoint", type=click.Path(path_type=Path, dir_okay=False))
@spec_option("sample")
@spec_option("host", envvar="LSQ_HOST")
@spec_option("rate")
@spec_option("share")
@spec_option("auth", type=click.Choice(["header", "query"]))
@spec_option("concurrency")
@spec_option("preflight")
@spec_option("daily_limit")
def verify(checkpoint: Path, **values: Any) -> None:
    """Ask LeadSquared what is left of each queued request in CHECKPOINT, and record it.

    "Queued" is a promise; this checks it. Each checked request becomes confirmed (nothing
    left), remaining (n left) or unverified, in the checkpoint, status and export. Exits 0
    when every checked request is confirmed, 1 when any remain.

    \b
    Examples:
      bulk-delete verify q1.sqlite
      bulk-delete verify q1.sqlite --sample 100 --share 0.5
    """
    spec = RunSpec.from_values({**values, "checkpoint": checkpoint})
    credentials = Credentials.from_env()
    summary = asyncio.run(_verify(spec, credentials))
    click.echo(verify_text(summary))
    sys.exit(summary.exit_code)


async def _verify(spec: RunSpec, credentials: Credentials) -> VerifySummary:
    signals = SignalStop()
    with signals.installed():
        async with open_session(spec.send_settings()) as session:
            return await verify_command.verify(
                spec,
                credentials,
                session=session,
                on_choice=lambda choice, rate: click.echo(choice_text(choice, rate)),
                stop=signals.stop,
            )


# ---------------------------------------------------------------- status and export


@cli.command(epilog=exit_codes_help((0, 1, 2, 70)))
@click.argument("checkpoint", type=click.Path(path_type=Path, dir_okay=False))
def status(checkpoint: Path) -> None:
    """Print the summary of a checkpoint: queued, failed (by reason), pending, invalid.

    Exits 0 when every request is queued and no row was invalid, 1 otherwise.

    \b
    Example:
      bulk-delete status q1.sqlite
    """
    summary = asyncio.run(status_command.status(checkpoint))
    click.echo(run_text(summary, title="Checkpoint status"))
    sys.exit(summary.exit_code)


@cli.command(epilog=exit_codes_help((0, 2, 70)))
@click.argument("checkpoint", required=False, type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--backup",
    "backup",
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="BACKUP",
    help="Export this --backup file (one row per saved activity, every field a column) "
    "instead of a checkpoint.",
)
@click.option(
    "--out",
    "-o",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
    metavar="FILE",
    help="Output file: .xlsx for a workbook, anything else for CSV; - for standard output.",
)
@click.option(
    "--status",
    "statuses",
    default="queued,failed,invalid,pending",
    show_default=True,
    metavar="LIST",
    help="Which outcomes to include, comma-separated.",
)
def export(checkpoint: Path | None, backup: Path | None, out: Path, statuses: str) -> None:
    """Write one line per request and per invalid row, with its outcome; or, with --backup,
    one line per activity a run saved before deleting it.

    \b
    Examples:
      bulk-delete export q1.sqlite -o outcomes.xlsx
      bulk-delete export q1.sqlite -o - --status failed,invalid | less
      bulk-delete export --backup q1-backup.jsonl.gz -o deleted.xlsx
      bulk-delete export --backup q1-backup.jsonl.gz -o deleted.csv
    """
    if (checkpoint is None) == (backup is None):
        raise OptionError("give a CHECKPOINT, or --backup BACKUP, to export (one of them)")
    if backup is not None:
        if str(out) == "-":
            raise OptionError("--backup exports to a file (.xlsx or .csv), not - (standard output)")
        count = backups.export(backup, out)
        click.echo(f"Wrote {count:,} saved activit{'y' if count == 1 else 'ies'} to {out}")
        return
    assert checkpoint is not None
    wanted = tuple(s.strip().lower() for s in statuses.split(",") if s.strip())
    unknown = sorted(set(wanted) - set(export_command.EXPORT_STATUSES))
    if unknown or not wanted:
        known = ", ".join(export_command.EXPORT_STATUSES)
        raise OptionError(f"--status takes {known}; got {statuses!r}")
    if str(out) == "-":
        export_command.export_to(checkpoint, sys.stdout, wanted)
        return
    count = export_command.export(checkpoint, out, wanted)
    click.echo(f"Wrote {count:,} line(s) to {out}")


@cli.command(epilog=exit_codes_help((0, 2, 70)))
@click.argument("source", metavar="CHECKPOINT", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "-o",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    metavar="FILE",
    help="The HTML file to write (one self-contained page: no network needed to open it).",
)
def report(source: Path, out: Path) -> None:
    """Write the HTML run report of CHECKPOINT: headline numbers, then charts of the calls
    (rate and refusals against the limit, outcomes by HTTP status, latency,
    verification).

    Given a folder (a job's state directory), one line per night: requests, queued,
    refused, verified, left. Reads the checkpoint only; `run` and `job` also write this
    page after every run (see --results).

    \b
    Examples:
      bulk-delete report q1.sqlite -o q1-report.html
      bulk-delete report state/nightly/ -o nights.html
    """
    if not source.exists():
        raise InputError(f"{source}: no such checkpoint or folder")
    reads = [] if source.is_dir() else outputs.checkpoint_files(source)
    outputs.check([outputs.Named("--out", out)], reads)
    write_page(source, out)
    click.echo(f"Report written to {out}")


# ---------------------------------------------------------------- the emulator


def _knob_option(name: str, default: Any, declared: Knob) -> Callable[[F], F]:
    """A click option for an EmulatorConfig field, from its knob (as spec_option does for
    RunSpec): None when not given, so the config's default applies."""
    flag = "--" + (declared.flag or name).replace("_", "-")
    if isinstance(default, bool):
        flags = f"{flag}/--no-{flag[2:]}" if default else flag  # a knob on by default: --no-…
        return click.option(flags, name, is_flag=True, default=None, help=declared.help)
    kind: Any = declared.kind or (None if declared.parse or default is None else type(default))
    if declared.path:
        kind = click.Path(path_type=Path, exists=name == "leads", dir_okay=name != "leads")
    shown = declared.shown or ("" if default is None or isinstance(default, str) else str(default))
    help_text = declared.help + (f"  [default: {shown}]" if declared.show and shown else "")
    return click.option(flag, name, type=kind, default=None, help=help_text)


def emulator_options(command: F) -> F:
    """Every emulator knob as an option, generated from EmulatorConfig's fields."""
    return _apply(command, [_knob_option(*each) for each in knobs()])


_EMULATOR_EXIT_CODES = """\b
Exit codes:
  0    stopped with Ctrl-C (its stats printed)
  2    a bad option, or the port is in use
  70   a bug: one line on stderr names a file with the traceback"""


@cli.command(epilog=_EMULATOR_EXIT_CODES)
@click.option(
    "--port",
    type=int,
    default=8765,
    show_default=True,
    help="Port on 127.0.0.1; 0 picks a free one.",
)
@click.option(
    "--port-file", type=click.Path(path_type=Path), help="Write the bound port here (for scripts)."
)
@emulator_options
def emulator(port: int, port_file: Path | None, **values: Any) -> None:
    """Run the local LeadSquared emulator on 127.0.0.1 until Ctrl-C.

    Point the job at it with LSQ_HOST=http://127.0.0.1:PORT and the demo keys (see the README).
    On Ctrl-C it prints its stats (calls, outcomes, refusals per caller) and exits 0.

    \b
    Examples:
      bulk-delete emulator --dataset-leads 500
      bulk-delete emulator --rate 10/5s --latency 0.15 --jitter 0.05
      bulk-delete emulator --background 10/5s,burst=5 --no-count-refusals
      bulk-delete emulator --port 0 --port-file emulator.port
    """
    # Imported here: its aiohttp web server would add a fifth of a second to every command.
    from ..emulator.server import serve

    config = config_of(values)
    try:
        asyncio.run(
            serve(
                config,
                port=port,
                port_file=port_file,
                announce=lambda line: click.echo(line, err=True),
            )
        )
    except OSError as error:
        if error.errno != errno.EADDRINUSE:
            raise
        raise UsageError(
            f"port {port} on 127.0.0.1 is in use (another emulator?): stop it, or pick "
            "another with --port (0 picks a free one)"
        ) from None


def main() -> None:
    cli(prog_name="bulk-delete")
