"""`run`: the command that sends; what `job` shares of it (``send``, ``sending``,
``finished``); and the command line a dry run prints to send what it showed.

What a command runs (commands/, the client, the outcome log, the results writers) is imported
in its body, when it runs: planning loads pandas, and `bulk-delete --help` declares these
commands without running them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import shlex
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..clock import Clock, SystemClock
from ..commands.spec import RunSpec, flag_of
from ..config import Credentials
from ..errors import (
    EXIT_MEANINGS,
    BulkDeleteError,
    Interrupted,
    LockHeld,
    OptionError,
    exit_codes_help,
)
from ..summary import RunSummary
from .exits import exit_code_of, with_exit_code
from .notify import notify_from
from .options import call_options, plan_options, preview_options, send_options, spec_option
from .progress import ProgressDisplay
from .show_plan import listing_progress, notice, print_plan
from .summary_json import SummaryTarget, dry_run_summary, summary_target, with_previous
from .summary_text import discovery_text, learned_text, run_text, saved_plan_text, summary_line

if TYPE_CHECKING:
    from ..commands.plan import PlanReport
    from ..commands.purged import Ending
    from ..commands.run import RunHooks
    from .signals import SignalStop

_SEND_EXIT_CODES = tuple(EXIT_MEANINGS)


@click.command(epilog=exit_codes_help(_SEND_EXIT_CODES))
@plan_options
@spec_option("checkpoint", required=True, type=click.Path(dir_okay=False))
@call_options
@spec_option("retry_failed")
@spec_option("daily_limit")
@preview_options
@send_options
def run(yes: bool, dry_run: bool, quiet: bool, **values: Any) -> RunSummary | None:
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
        click.echo(next_command(ctx, spec, print_plan(spec)))
        dry_run_summary(target)
        return None
    given = [flag_of(name) for name in ("out", "invalid_out") if values.get(name)]
    given += [flag_of("check_codes")] if values.get("check_codes") else []
    if given:
        raise OptionError(
            f"{', '.join(given)} belong to the dry run: add --dry-run (or use `bulk-delete plan`); "
            "a run's outcomes come from `bulk-delete export CHECKPOINT -o FILE`"
        )
    notify_from(ctx, spec)
    return send(spec, Credentials.from_env(), quiet=quiet, yes=yes, target=target)


def typed(ctx: click.Context, keep: Callable[[str], bool]) -> list[str]:
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
                if name == "notify":  # its path may hold a token: see notify_note
                    continue
                shown = item.date().isoformat() if isinstance(item, dt.datetime) else str(item)
                words += [_long(param), shown]
    return words


def notify_note(ctx: click.Context) -> str:
    """What a command shown for copying leaves out: a --notify URL may hold a token (a Slack
    webhook's, a healthchecks ping's), and one cut short would notify the wrong place. Said
    as a shell comment, so the line still runs as printed."""
    if not ctx.params.get("notify"):
        return ""
    return f"  # {flag_of('notify')} left out: its URL may hold a token; add it to be told"


def send(
    spec: RunSpec, credentials: Credentials, *, quiet: bool, yes: bool, target: SummaryTarget
) -> RunSummary:
    """Send, and show what the run did: the results written, --summary-json, the text."""
    from .signals import SignalStop

    signals, clock = SignalStop(), SystemClock()
    with sending(spec, clock, quiet=quiet, yes=yes, signals=signals, target=target) as hooks:
        summary = asyncio.run(_run(spec, credentials, hooks, signals, clock))
    return finished(spec, summary, target)


@contextmanager
def sending(
    spec: RunSpec,
    clock: Clock,
    *,
    quiet: bool,
    yes: bool,
    signals: SignalStop,
    target: SummaryTarget,
) -> Iterator[RunHooks]:
    """A run's hooks while it sends (the progress line, the outcome log, the prompt). A run
    that ends in an error has its results written and its summary shown before the error
    goes on up to the one exit."""
    from ..commands.outputs import check_spec
    from ..commands.run import RunHooks
    from ..store.row_files import OutcomeLog
    from .signals import confirm_hook

    check_spec(spec)  # the outputs, before the log is opened or anything sent
    display = ProgressDisplay(quiet=quiet, calls_per_second=spec.rate.per_second)
    with ending(spec, target, display), OutcomeLog.open(spec.log_file, clock.wall) as log:
        yield RunHooks(
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


@contextmanager
def ending(spec: RunSpec, target: SummaryTarget, display: ProgressDisplay) -> Iterator[None]:
    """While a command sends: its progress display closed at the end, and an error it ends
    in shown as its end (``ended_in``) before it goes on up to the one exit."""
    try:
        yield
    except BulkDeleteError as error:
        display.close()
        ended_in(spec, error, target)
        raise
    finally:
        display.close()


def ended_in(spec: RunSpec, error: BulkDeleteError, target: SummaryTarget) -> None:
    """A command that ends in an error: its results written and its summary shown, before the
    error goes on up to the one exit."""
    if error.summary is not None:
        error.summary = with_exit_code(error.summary, error)
    if not isinstance(error, LockHeld):  # (another process holds the checkpoint)
        _results(spec, error.summary, error)
    if error.summary is not None:
        _report(with_previous(error.summary, target.previous), err=True)


def finished(spec: RunSpec, summary: RunSummary, target: SummaryTarget) -> RunSummary:
    """A run that ended without an error: its results, its --summary-json, its text."""
    summary = with_exit_code(summary)
    _results(spec, summary)
    failed = target.write(summary)  # first: if the disk refuses it, the text says exit 3
    if failed is not None:
        _report(with_previous(summary.ended(exit_code_of(failed), str(failed)), target.previous))
        raise failed
    _report(with_previous(summary, target.previous))
    return summary


def finished_before(spec: RunSpec, summary: RunSummary, target: SummaryTarget) -> None:
    """A run a job finished before its own (the job's run writes --summary-json)."""
    summary = with_exit_code(summary)
    _results(spec, summary)
    _report(with_previous(summary, target.previous))


def _results(spec: RunSpec, summary: RunSummary | None, error: BaseException | None = None) -> None:
    """The results workbook and HTML report, after every run that planned something. A
    failure to write them is said, not raised: the run's own exit code is the one that counts."""
    from .signals import interrupting

    try:
        with interrupting("the results"):
            written = write_run_results(spec, summary, error)
    except Interrupted:
        raise  # a stop signal: exit 130, as Ctrl-C
    except (BulkDeleteError, OSError) as error:
        click.echo(f"warning: results not written: {error}", err=True)
        return
    if written:
        click.echo(f"Results: {written[0]} (HTML report: {written[1]})", err=True)


def write_run_results(
    spec: RunSpec, summary: RunSummary | None, error: BaseException | None = None
) -> list[Path]:
    """The results of a run (workbook and HTML report), as ``results_paths`` names them;
    none when --no-results or nothing was planned. ``error``: what the run stopped on.
    Returns the files written."""
    from ..commands.common import window_of
    from ..commands.outputs import results_paths
    from ..commands.results import write_workbook
    from ..store.restore_checkpoint import RestoreCheckpoint
    from .report_cmd import write_page

    paths = results_paths(spec)
    if paths is None or spec.checkpoint is None:
        return []
    workbook, page = paths
    window = summary.window if summary is not None else window_of(spec)
    if RestoreCheckpoint.is_one(spec.checkpoint):
        from ..commands import restore_results

        if not restore_results.write_workbook(spec.checkpoint, workbook, summary):
            return []
    elif not write_workbook(spec.checkpoint, workbook, window, summary, share=spec.share):
        return []
    write_page(spec.checkpoint, page, ending_of(summary, error))
    return [workbook, page]


def ending_of(summary: RunSummary | None, error: BaseException | None = None) -> Ending:
    """How the run ended, for its report: the exit code, the error, the command as typed."""
    from ..commands.purged import Ending

    ctx = click.get_current_context(silent=True)
    resume = command_again(ctx) if ctx is not None else ""
    if error is not None:
        return Ending(exit_code=exit_code_of(error), error=str(error), resume=resume)
    exit_code = summary.exit_code if summary is not None else None
    return Ending(exit_code=exit_code, error=summary.error if summary else "", resume=resume)


def command_again(ctx: click.Context) -> str:
    """This command as typed (its arguments, and the options given on the command line),
    without --dry-run: what sends what a dry run showed, and what resumes a run."""
    return shlex.join(command_words(ctx)) + notify_note(ctx)


def command_words(ctx: click.Context) -> list[str]:
    """``command_again``'s words, without its note."""
    arguments = [
        str(ctx.params[param.name])
        for param in ctx.command.params
        if isinstance(param, click.Argument) and param.name and ctx.params.get(param.name)
    ]
    words = [program(), ctx.info_name or "", *arguments]
    return words + typed(ctx, lambda name: name != "dry_run")


def next_command(ctx: click.Context, spec: RunSpec, report: PlanReport) -> str:
    """The exact command that sends this plan, quoted for the shell: the plan's own options
    as typed, and a checkpoint beside the sheet. It runs as printed: what the plan needs
    besides (--open-window for its open windows) is in it, and the line above says why."""
    if spec.input is not None and spec.input.name.startswith("stdin"):
        return "Dry run: nothing was sent. To send it, save the sheet to a file and run it."
    words = [program(), "run"]
    if spec.input is not None:
        words.append(str(ctx.params["input"]))
    sends = {param.name for param in run.params}
    words += typed(ctx, lambda name: name in sends and name not in _PREVIEW_ONLY)
    needed, why = open_window_needed(spec, report)
    words += needed
    checkpoint = spec.checkpoint or _suggested_checkpoint(spec)
    if report.sent_before and not spec.again:  # sent before: resume it there, or say --again
        resumable = [  # (a checkpoint takes no other sheet: only one sent with this very file)
            each
            for each in report.sent_before
            if each.same_file and Path(each.checkpoint).is_file()
        ]
        mine = [each for each in resumable if Path(each.checkpoint) == checkpoint.resolve()]
        sent = (mine or resumable or list(report.sent_before))[-1]
        if sent in resumable:
            checkpoint = Path(sent.checkpoint)
            why += f", going on under the checkpoint it was sent under on {sent.when}"
        else:
            words.append(flag_of("again"))
            why += (
                f", again ({flag_of('again')}: it was sent on {sent.when} under {sent.checkpoint})"
            )
    words += ["--checkpoint", str(checkpoint)]
    text = f"Dry run: nothing was sent. To send it{why}:\n  " + shlex.join(words) + notify_note(ctx)
    if spec.discover:
        text += "\n(the run lists again: what it finds then is what it deletes)"
    return text


def open_window_needed(spec: RunSpec, report: PlanReport) -> tuple[list[str], str]:
    """What a printed command needs for the plan's open windows (run and job refuse them
    without it), and the words that say why."""
    tally = report.summary.tally
    opened = tally.without_dates + tally.open_start + tally.open_end
    if not opened or spec.open_window:
        return [], ""
    flag = flag_of("open_window")
    return [flag], f", with {flag} for the {opened:,} request(s) above whose window is open"


# Not carried into the command that sends: what only the dry run writes, and the dry run itself.
_PREVIEW_ONLY = frozenset(
    {"out", "invalid_out", "check_codes", "input", "checkpoint", "dry_run", "summary_json"}
)


def _long(param: click.Option) -> str:
    return next((opt for opt in param.opts if opt.startswith("--")), param.opts[0])


def program() -> str:
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
    spec: RunSpec, credentials: Credentials, hooks: RunHooks, signals: SignalStop, clock: Clock
) -> RunSummary:
    from ..commands import run as run_command

    async with signals.session(spec.send_settings()) as session:
        rng = random.Random()
        return await run_command.run(
            spec, credentials, session=session, hooks=hooks, clock=clock, rng=rng, stop=signals.stop
        )


def _report(summary: RunSummary, *, err: bool = False) -> None:
    """The summary as text, and as the scheduler's one line."""
    from .restore_text import restore_text

    click.echo(run_text(summary) if summary.restore is None else restore_text(summary), err=err)
    if not sys.stderr.isatty():  # a scheduler's log gets one line it can grep
        click.echo(summary_line(summary), err=True)
