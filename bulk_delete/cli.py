"""The command line: the only place that parses options, prints, runs the event loop, installs
signal handlers and turns errors into exit codes (``Cli.invoke``).

Each command fills a RunSpec from its options, awaits one pipeline coroutine under
``asyncio.run``, and prints what comes back.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import os
import signal
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from . import __version__, pipeline
from .client import open_session
from .config import Credentials, RateLimit
from .errors import (
    EXIT_CODES_HELP,
    EXIT_INTERRUPTED,
    EXIT_SOFTWARE,
    BulkDeleteError,
    NotConfirmed,
    OptionError,
    exit_code_for,
)
from .export import OutcomeLog
from .files import open_private
from .jobs import load_job
from .outcomes import redact
from .progress import ProgressDisplay
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
from .senders import StopSwitch
from .spec import RunSpec, click_flag, flag_of, option_of
from .summary import RunSummary, VerifySummary

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
            ctx.exit(exit_code_for(error))
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except Exception as error:  # a bug: exit 70, never 0 or 1
            report = _crash_report(error)
            click.echo(
                f"bulk-delete: internal error ({type(error).__name__}); this is a bug. "
                f"Every recorded outcome is safe; the traceback is in {report}",
                err=True,
            )
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


@click.group(
    cls=Cli,
    epilog="\b\n" + EXIT_CODES_HELP,  # \b: click keeps the table's lines as written
    context_settings={"max_content_width": 100},
)
@click.version_option(__version__, prog_name="bulk-delete")
def cli() -> None:
    """Purge custom activities from LeadSquared leads listed in a CSV or Excel sheet.

    Start with `plan` (a dry run: nothing is sent, no keys needed), then `run`.
    LeadSquared answers a delete with "queued": it deletes later, on its side.
    """


# ---------------------------------------------------------------- options, declared in the spec


def spec_option(name: str, **click_kwargs: Any) -> Callable[[F], F]:
    """A click option for a RunSpec field: its flag and help come from the spec, and it passes
    None when not given, so the spec's default (shown in the help) applies."""
    declared = option_of(name)
    default = RunSpec.__dataclass_fields__[name].default
    shown = "" if default in (None, "", (), False) else f"  [default: {default}]"
    kwargs: dict[str, Any] = {"default": None, "help": declared.help + shown}
    if isinstance(default, bool):
        kwargs.update(is_flag=True, default=default, help=declared.help)
    return click.option(click_flag(name), name, **(kwargs | click_kwargs))


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


def send_options(command: F) -> F:
    """Options of every command that sends: run and job."""
    return _apply(
        command,
        [
            click.option(
                "--yes", is_flag=True, help="Send without asking (for scripts and schedulers)."
            ),
            click.option("--dry-run", is_flag=True, help="Only plan: exactly `bulk-delete plan`."),
            click.option("--quiet", is_flag=True, help="No progress display."),
            spec_option("summary_json", type=click.Path(dir_okay=False)),
            spec_option("log_file", type=click.Path(dir_okay=False)),
        ],
    )


# ---------------------------------------------------------------- plan


@cli.command()
@plan_options
@spec_option("out", type=click.Path())
@spec_option("invalid_out", type=click.Path())
@spec_option("check_codes")
@spec_option("host", envvar="LSQ_HOST")
@spec_option("auth", type=click.Choice(["header", "query"]))
@spec_option("preflight")
def plan(**values: Any) -> None:
    """Dry run: read, validate and coalesce INPUT (or list what --discover finds), and show
    what would be sent.

    Sends nothing and needs no keys (except with --check-codes). Exits 0 when the
    file could be planned, even with invalid rows; 2 when it could not.
    """
    _print_plan(RunSpec.from_values(values))


def _print_plan(spec: RunSpec, credentials: Credentials | None = None) -> None:
    click.echo(plan_report_text(asyncio.run(_plan(spec, credentials))))


async def _plan(spec: RunSpec, credentials: Credentials | None) -> pipeline.PlanReport:
    if not (spec.check_codes or spec.discover):
        return await pipeline.plan(spec)
    credentials = credentials or Credentials.from_env()
    async with open_session(spec) as session:
        return await pipeline.plan(
            spec, credentials=credentials, session=session, on_listing=_listing_progress(False)
        )


# ---------------------------------------------------------------- run and job


@cli.command()
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
@send_options
def run(yes: bool, dry_run: bool, quiet: bool, **values: Any) -> None:
    """Plan INPUT, show the plan, confirm, and send the deletes.

    Keys come from LSQ_ACCESS_KEY and LSQ_SECRET_KEY. The plan and every outcome are kept
    in --checkpoint; running the same command again resumes where it stopped.
    """
    spec = RunSpec.from_values(values)
    if dry_run:
        _print_plan(spec.replace(out=None, invalid_out=None, check_codes=False))
        return
    _send_and_exit(spec, Credentials.from_env(), yes=yes, quiet=quiet)


@cli.command()
@click.argument("job_file", type=click.Path(path_type=Path, dir_okay=False))
@send_options
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Use this state directory instead of the job file's state_dir.",
)
def job(
    job_file: Path, yes: bool, dry_run: bool, quiet: bool, state_dir: Path | None, **values: Any
) -> None:
    """Run a scheduled cleanup described by a TOML job file (see jobs/).

    Never asks: the file needs confirm = true, or pass --yes. One checkpoint per run date
    in the state directory; a second instance of the same job exits 75 at once.
    """
    loaded = load_job(job_file, state_dir=state_dir)
    now = dt.datetime.now(dt.UTC)
    if dry_run:  # a discovering job's dry run lists, so it needs the host and keys
        if loaded.spec.discover:
            _print_plan(loaded.run_spec(now, os.environ), loaded.credentials(os.environ))
        else:
            _print_plan(loaded.run_spec(now))
        return
    if not (yes or loaded.confirm):
        raise NotConfirmed(
            f"job {loaded.name}: nothing sent; set confirm = true in {job_file} or pass --yes"
        )
    spec = loaded.run_spec(now, os.environ).with_values(values)
    credentials = loaded.credentials(os.environ)
    with loaded.lock():
        previous = None
        earlier = loaded.previous_checkpoint(now)
        if loaded.verify_previous and earlier is not None:
            click.echo(f"Verifying the previous run first: {earlier}")
            previous = asyncio.run(_verify(spec.replace(checkpoint=earlier), credentials))
            click.echo(verify_text(previous))
        _send_and_exit(spec, credentials, yes=True, quiet=quiet, previous=previous)


def _send_and_exit(
    spec: RunSpec,
    credentials: Credentials,
    *,
    yes: bool,
    quiet: bool,
    previous: VerifySummary | None = None,
) -> None:
    display = ProgressDisplay(quiet=quiet, calls_per_second=spec.rate.per_second)
    try:
        with OutcomeLog.open(spec.log_file) as log:
            hooks = pipeline.RunHooks(
                confirm=_confirm(yes),
                on_plan=lambda summary: click.echo(saved_plan_text(summary, spec.checkpoint)),
                on_resume=lambda path: click.echo(f"Resuming from checkpoint {path}"),
                on_limit_learned=lambda limit: click.echo(learned_text(limit), err=True),
                on_discovery=lambda found: click.echo(discovery_text(found)),
                on_listing=_listing_progress(quiet),
                on_progress=display,
                on_outcome=log,
            )
            summary = asyncio.run(_run(spec, credentials, hooks))
    except BulkDeleteError as error:
        display.close()
        if error.summary is not None:
            _report(spec, with_previous(error.summary, previous), err=True)
        raise
    finally:
        display.close()
    _report(spec, with_previous(summary, previous))
    sys.exit(summary.exit_code)


def with_previous(summary: RunSummary, previous: VerifySummary | None) -> RunSummary:
    """The run's summary, carrying what verify_previous found in the previous run."""
    if previous is None:
        return summary
    return dataclasses.replace(
        summary,
        previous_checkpoint=previous.checkpoint,
        previous_verification=previous.verification,
    )


def _listing_progress(quiet: bool) -> Callable[[str, int, int], None]:
    """--discover's listing, page by page on stderr, before the deletes' progress."""

    def show(code: str, seen: int, total: int) -> None:
        if not quiet:
            click.echo(f"listing code {code}: {seen:,} of {total:,} activities read", err=True)

    return show


async def _run(spec: RunSpec, credentials: Credentials, hooks: pipeline.RunHooks) -> RunSummary:
    stop = StopSwitch()
    with _signals_stop(stop):
        async with open_session(spec) as session:
            return await pipeline.run(spec, credentials, session=session, hooks=hooks, stop=stop)


@contextmanager
def _signals_stop(stop: StopSwitch) -> Iterator[None]:
    """First SIGINT/SIGTERM: stop starting calls and drain. Second: leave at once (every
    committed outcome is already safe in the checkpoint)."""
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
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

    installed = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, on_signal, signum)
            installed.append(signum)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread (tests)
            pass
    try:
        yield
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)


def _confirm(yes: bool) -> Callable[[pipeline.Confirmation], bool]:
    def confirm(confirmation: pipeline.Confirmation) -> bool:
        if yes:
            return True
        if not sys.stdin.isatty():
            raise NotConfirmed(
                "nothing sent: no terminal to confirm on; pass --yes to send without asking"
            )
        return click.confirm(question(confirmation), default=False, err=True)

    return confirm


def _report(spec: RunSpec, summary: RunSummary, *, err: bool = False) -> None:
    """The summary as text, as the scheduler's one line, and as --summary-json."""
    click.echo(run_text(summary), err=err)
    if not sys.stderr.isatty():  # a scheduler's log gets one line it can grep
        click.echo(summary_line(summary), err=True)
    if spec.summary_json is not None:
        try:
            spec.summary_json.parent.mkdir(parents=True, exist_ok=True)
            with open_private(spec.summary_json, "w", encoding="utf-8") as handle:
                handle.write(json.dumps(summary.to_json(), indent=2) + "\n")
        except OSError as error:
            raise OptionError(
                f"{flag_of('summary_json')}: cannot write {spec.summary_json}: {error.strerror}"
            ) from None


# ---------------------------------------------------------------- verify


@cli.command()
@click.argument("checkpoint", type=click.Path(path_type=Path, dir_okay=False))
@spec_option("sample")
@spec_option("host", envvar="LSQ_HOST")
@spec_option("rate")
@spec_option("share")
@spec_option("auth", type=click.Choice(["header", "query"]))
@spec_option("concurrency")
@spec_option("preflight")
def verify(checkpoint: Path, **values: Any) -> None:
    """Ask LeadSquared what is left of each queued request in CHECKPOINT, and record it.

    "Queued" is a promise; this checks it. Each checked request becomes confirmed (nothing
    left), remaining (n left) or unverified, in the checkpoint, status and export. Exits 0
    when every checked request is confirmed, 1 when any remain.
    """
    spec = RunSpec.from_values({**values, "checkpoint": checkpoint})
    credentials = Credentials.from_env()
    summary = asyncio.run(_verify(spec, credentials))
    click.echo(verify_text(summary))
    sys.exit(summary.exit_code)


async def _verify(spec: RunSpec, credentials: Credentials) -> VerifySummary:
    stop = StopSwitch()
    with _signals_stop(stop):
        async with open_session(spec) as session:
            return await pipeline.verify(
                spec,
                credentials,
                session=session,
                on_choice=lambda choice, rate: click.echo(choice_text(choice, rate)),
                stop=stop,
            )


# ---------------------------------------------------------------- status and export


@cli.command()
@click.argument("checkpoint", type=click.Path(path_type=Path, dir_okay=False))
def status(checkpoint: Path) -> None:
    """Print the summary of a checkpoint: queued, failed (by reason), pending, invalid.

    Exits 0 when every request is queued and no row was invalid, 1 otherwise.
    """
    summary = asyncio.run(pipeline.status(checkpoint))
    click.echo(run_text(summary, title="Checkpoint status"))
    sys.exit(summary.exit_code)


@cli.command()
@click.argument("checkpoint", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Output file: .xlsx for a workbook, anything else for CSV.",
)
@click.option(
    "--status",
    "statuses",
    default="queued,failed,invalid,pending",
    show_default=True,
    help="Which outcomes to include, comma-separated.",
)
def export(checkpoint: Path, out: Path, statuses: str) -> None:
    """Write one line per request and per invalid row, with its outcome."""
    wanted = tuple(s.strip().lower() for s in statuses.split(",") if s.strip())
    unknown = sorted(set(wanted) - set(pipeline.EXPORT_STATUSES))
    if unknown or not wanted:
        raise OptionError(f"--status takes {', '.join(pipeline.EXPORT_STATUSES)}; got {statuses!r}")
    count = pipeline.export(checkpoint, out, wanted)
    click.echo(f"Wrote {count:,} line(s) to {out}")


# ---------------------------------------------------------------- the emulator


@cli.command()
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
@click.option(
    "--rate", default="25/5s", show_default=True, help="Strict sliding window: N/Ws or a plan name."
)
@click.option("--access-key", default=None, help="Accepted access key (default: the demo key).")
@click.option("--secret-key", default=None, help="Accepted secret key (default: the demo key).")
@click.option(
    "--latency", type=float, default=0.0, show_default=True, help="Median seconds per answer."
)
@click.option(
    "--jitter", type=float, default=0.0, show_default=True, help="± seconds around --latency."
)
@click.option(
    "--transient-rate", type=float, default=0.0, help="Share of calls answered 500, non-MX."
)
@click.option("--html-rate", type=float, default=0.0, help="Share of calls answered 502 with HTML.")
@click.option(
    "--drop-rate", type=float, default=0.0, help="Share of connections dropped unanswered."
)
@click.option(
    "--slow-rate", type=float, default=0.0, help="Share of calls answered after --slow-seconds."
)
@click.option(
    "--slow-seconds",
    type=float,
    default=30.0,
    show_default=True,
    help="How late a slow answer comes.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for faults and latency.")
@click.option(
    "--system-codes",
    default="1-30",
    show_default=True,
    help="Codes refused as system activities (e.g. 1-30,99).",
)
@click.option(
    "--leads",
    "leads_file",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="File of ProspectIds (one per line); others get an MX error.",
)
@click.option(
    "--webhook-delay",
    type=float,
    default=1.0,
    show_default=True,
    help="Seconds before a queued delete is carried out (its activities leave Retrieve and "
    "the listing) and its StatusWebhookURL posted.",
)
@click.option(
    "--log",
    "log_path",
    type=click.Path(path_type=Path),
    help="Append each queued delete as a JSON line.",
)
@click.option(
    "--dataset-leads",
    type=int,
    default=0,
    show_default=True,
    help="Hold this many leads (from --seed) for RetrieveByActivityEvent to list.",
)
@click.option(
    "--page-cap",
    type=int,
    default=500,
    show_default=True,
    help="The most rows one RetrieveByActivityEvent page holds, whatever was asked.",
)
@click.option(
    "--ignore-page-index",
    is_flag=True,
    help="Fault: every RetrieveByActivityEvent page is page 1.",
)
@click.option(
    "--offset-from-asked-size",
    is_flag=True,
    help="Page P starts at (P-1) x the PageSize asked, before --page-cap cuts it.",
)
@click.option(
    "--record-count",
    type=int,
    default=None,
    help="Fault: RetrieveByActivityEvent says RecordCount N, whatever it lists.",
)
@click.option(
    "--rows-without-ids",
    type=int,
    default=0,
    help="Fault: the first N rows of each code's listing have no ProspectActivityId.",
)
@click.option(
    "--bad-lead-ids",
    type=int,
    default=0,
    help="Fault: the first N rows of each code's listing have a RelatedProspectId not a GUID.",
)
@click.option(
    "--retrieve-record-count",
    type=int,
    default=None,
    help="Fault: Retrieve says each lead holds N activities of a code (old ones past its own).",
)
@click.option(
    "--limit-status",
    type=int,
    default=429,
    show_default=True,
    help="HTTP status of a rate refusal (some tenants answer 403).",
)
@click.option(
    "--stated-rate",
    default="",
    help="The limit the refusal message names, N/Ws (default: the enforced --rate).",
)
@click.option(
    "--background",
    default="",
    help="Another integration spending N/Ws of the same window (its refusals are in stats).",
)
@click.option(
    "--account-host",
    default="",
    help="The API host UserByAccessKey.Get names (default: this emulator's own).",
)
@click.option(
    "--outage-after",
    type=float,
    default=-1.0,
    help="Seconds after the first call when an outage (503 pages) starts; -1: none.",
)
@click.option("--outage-seconds", type=float, default=0.0, help="How long the outage lasts.")
@click.option(
    "--redirect-to",
    default="",
    help="Answer every API call 307 to this base URL, as a hostile or wrong host would.",
)
def emulator(
    port: int,
    port_file: Path | None,
    rate: str,
    access_key: str | None,
    secret_key: str | None,
    system_codes: str,
    leads_file: Path | None,
    log_path: Path | None,
    stated_rate: str,
    background: str,
    **knobs: Any,
) -> None:
    """Run the local LeadSquared emulator on 127.0.0.1 until Ctrl-C.

    Point the job at it with LSQ_HOST=http://127.0.0.1:PORT and the demo keys (see the README).
    """
    # Imported here: its aiohttp web server would add a fifth of a second to every command.
    from .emulator import DEMO_ACCESS_KEY, DEMO_SECRET_KEY, EmulatorConfig, parse_code_ranges, serve

    leads = None
    if leads_file is not None:
        leads = frozenset(
            line.strip().lower() for line in leads_file.read_text().splitlines() if line.strip()
        )
    config = EmulatorConfig(
        access_key=access_key or DEMO_ACCESS_KEY,
        secret_key=secret_key or DEMO_SECRET_KEY,
        rate=RateLimit.parse(rate),
        stated_rate=RateLimit.parse(stated_rate) if stated_rate else None,
        background=RateLimit.parse(background) if background else None,
        system_codes=parse_code_ranges(system_codes),
        leads=leads,
        log_path=log_path,
        **knobs,
    )
    asyncio.run(
        serve(
            config, port=port, port_file=port_file, announce=lambda line: click.echo(line, err=True)
        )
    )


def main() -> None:
    cli(prog_name="bulk-delete")
