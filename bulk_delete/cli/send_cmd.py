"""`run` and `job`: the commands that send, and the command line a dry run prints to send
what it showed.

What a command runs (commands/, the client, the outcome log, the results writers) is imported
in its body, when it runs: planning loads pandas, and `bulk-delete --help` declares these
commands without running them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..config import Credentials
from ..errors import (
    EXIT_INCOMPLETE,
    EXIT_LOCKED,
    EXIT_MEANINGS,
    EXIT_OK,
    BulkDeleteError,
    Interrupted,
    NotConfirmed,
    OptionError,
    SameRequests,
    exit_codes_help,
)
from ..spec import RunSpec, flag_of
from ..summary import RunSummary
from .checkpoint_cmd import verify_checkpoint
from .options import plan_options, preview_options, send_options, spec_option
from .progress import ProgressDisplay
from .report import (
    discovery_text,
    learned_text,
    run_text,
    saved_plan_text,
    summary_line,
    verify_text,
)
from .show_plan import listing_progress, notice, print_plan
from .summary_json import SummaryTarget, dry_run_summary, summary_target, with_previous

if TYPE_CHECKING:
    from ..commands.jobs import Job
    from ..commands.run import RunHooks
    from .signals import SignalStop

_SEND_EXIT_CODES = tuple(EXIT_MEANINGS)


@click.command(epilog=exit_codes_help(_SEND_EXIT_CODES))
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
    target = summary_target(
        ctx, values.get("summary_json"), values.get("input"), values.get("checkpoint")
    )
    if str(values.get("input") or "") == "-":
        raise OptionError("run reads INPUT again to resume: give a file, not - (standard input)")
    spec = RunSpec.from_values(values)
    target.spec = spec
    if dry_run:
        print_plan(spec)
        click.echo(next_command(ctx, spec))
        dry_run_summary(target)
        return
    given = [flag_of(name) for name in ("out", "invalid_out") if values.get(name)]
    given += [flag_of("check_codes")] if values.get("check_codes") else []
    if given:
        raise OptionError(
            f"{', '.join(given)} belong to the dry run: add --dry-run (or use `bulk-delete plan`); "
            "a run's outcomes come from `bulk-delete export CHECKPOINT -o FILE`"
        )
    _send_and_exit(spec, Credentials.from_env(), yes=yes, quiet=quiet, target=target)


@click.command(epilog=exit_codes_help(_SEND_EXIT_CODES))
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
    from ..commands.jobs import load_job

    target = summary_target(click.get_current_context(), values.get("summary_json"), job_file)
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
            print_plan(spec, loaded.credentials(os.environ))
        else:
            spec = target.spec
            print_plan(spec)
        _warn_same_requests(loaded, spec)
        if (unfinished := loaded.unfinished(now)) is not None:
            click.echo(f"First: the {unfinished[2]:,} pending request(s) of {unfinished[0]}")
        command = _job_command(click.get_current_context())
        click.echo(f"Dry run: nothing was sent. To send it:\n  {command}")
        dry_run_summary(target)
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
            target.previous = asyncio.run(
                verify_checkpoint(spec.replace(checkpoint=earlier), credentials)
            )
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
    from ..commands.common import fingerprints_of

    try:
        return loaded.holding(fingerprints_of(spec))
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
    from ..commands.outputs import check_spec
    from ..commands.run import RunHooks
    from ..store.export import OutcomeLog
    from .signals import SignalStop, confirm_hook

    check_spec(spec)  # the outputs, before the log is opened or anything sent
    display = ProgressDisplay(quiet=quiet, calls_per_second=spec.rate.per_second)
    signals = SignalStop()
    try:
        with OutcomeLog.open(spec.log_file) as log:
            hooks = RunHooks(
                confirm=confirm_hook(yes, signals),
                on_plan=lambda summary: click.echo(saved_plan_text(summary, spec.checkpoint)),
                on_resume=lambda path: click.echo(f"Resuming from checkpoint {path}"),
                on_limit_learned=lambda limit: click.echo(learned_text(limit), err=True),
                on_discovery=lambda found: click.echo(discovery_text(found, spec.tz)),
                on_listing=listing_progress(quiet),
                on_notice=notice,
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
    from .run_report import write_run_results
    from .signals import interrupting

    try:
        with interrupting("the results"):
            written = write_run_results(spec, summary)
    except Interrupted:
        raise  # a stop signal: exit 130, as Ctrl-C
    except (BulkDeleteError, OSError) as error:
        click.echo(f"warning: results not written: {error}", err=True)
        return
    if written:
        click.echo(f"Results: {written[0]} (HTML report: {written[1]})", err=True)


def next_command(ctx: click.Context, spec: RunSpec) -> str:
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


async def _run(
    spec: RunSpec, credentials: Credentials, hooks: RunHooks, signals: SignalStop
) -> RunSummary:
    from ..commands import run as run_command
    from ..send.client import open_session

    with signals.installed():
        async with open_session(spec.send_settings()) as session:
            return await run_command.run(
                spec, credentials, session=session, hooks=hooks, stop=signals.stop
            )


def _report(summary: RunSummary, *, err: bool = False) -> None:
    """The summary as text, and as the scheduler's one line."""
    click.echo(run_text(summary), err=err)
    if not sys.stderr.isatty():  # a scheduler's log gets one line it can grep
        click.echo(summary_line(summary), err=True)
