"""`job`: a scheduled cleanup described by a TOML job file, its steps run by commands/job.py
under one event loop, and its dry run.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import random
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..clock import Clock, SystemClock, utc
from ..commands.spec import RunSpec, flag_of
from ..errors import EXIT_MEANINGS, NotConfirmed, OptionError, exit_codes_help
from ..summary import RunSummary, VerifySummary
from .notify import notify_from
from .options import send_options
from .run_cmd import (
    command_words,
    finished,
    finished_before,
    notify_note,
    open_window_needed,
    sending,
)
from .show_plan import notice, print_plan
from .summary_json import SummaryTarget, dry_run_summary, summary_target
from .summary_text import choice_text, verify_text

if TYPE_CHECKING:
    from ..commands.job_file import Job


@click.command(epilog=exit_codes_help(tuple(EXIT_MEANINGS)))
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
) -> RunSummary | None:
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
    from ..commands.job import job_spec
    from ..commands.job_file import load_job

    target = summary_target(click.get_current_context(), values.get("summary_json"), job_file)
    values = {name: value for name, value in values.items() if value is not False}  # the file's
    clock = SystemClock()
    loaded = load_job(job_file, state_dir=state_dir, wall=clock.wall)
    if as_of is not None and as_of.date() > loaded.run_date(utc(clock)):
        raise OptionError(
            f"--as-of {as_of.date()} is after today: a later date would move the job's window "
            "into what it is meant to keep; --as-of catches up a missed night or tries a job "
            "on older data"
        )
    now = loaded.moment(as_of.date() if as_of else None, utc(clock))
    target.spec = loaded.run_spec(now).with_values(values)
    if dry_run:  # a discovering job's dry run lists, so it needs the host and keys
        _dry_run(loaded, now, values, target)
        return None
    notify_from(click.get_current_context(), target.spec)
    if not (yes or loaded.confirm):
        raise NotConfirmed(
            f"job {loaded.name}: nothing sent; set confirm = true in {job_file} or pass --yes"
        )
    spec = target.spec = job_spec(loaded, now, os.environ, values)
    summary = asyncio.run(
        _job(loaded, now, spec, values, clock, force=force, quiet=quiet, target=target)
    )
    return finished(spec, summary, target)


def _dry_run(loaded: Job, now: dt.datetime, values: dict[str, Any], target: SummaryTarget) -> None:
    from ..commands.job import same_requests

    if loaded.spec.discover:
        spec = loaded.run_spec(now, os.environ).with_values(values)
        report = print_plan(spec, loaded.credentials(os.environ))
    else:
        assert target.spec is not None
        spec = target.spec
        report = print_plan(spec)
    for path in same_requests(loaded, spec):
        click.echo(
            f"warning: {path} (another job) holds these same requests; `job` refuses to send "
            "them again unless --force"
        )
    if (unfinished := loaded.unfinished(now)) is not None:
        click.echo(f"First: the {unfinished[2]:,} pending request(s) of {unfinished[0]}")
    needed, why = open_window_needed(spec, report)  # (or open_window = true in the file)
    own = spec.checkpoint.resolve() if spec.checkpoint else None
    mine = any(Path(each.checkpoint) == own for each in report.sent_before)  # it goes on there
    if report.sent_before and not mine and not spec.again:  # a job cannot take another's
        sent = report.sent_before[-1]
        needed.append(flag_of("again"))
        why += f", again ({flag_of('again')}: it was sent on {sent.when} under {sent.checkpoint})"
    ctx = click.get_current_context()
    command = shlex.join([*command_words(ctx), *needed]) + notify_note(ctx)
    click.echo(f"Dry run: nothing was sent. To send it{why}:\n  {command}")
    dry_run_summary(target)


async def _job(
    loaded: Job,
    now: dt.datetime,
    spec: RunSpec,
    values: dict[str, Any],
    clock: Clock,
    *,
    force: bool,
    quiet: bool,
    target: SummaryTarget,
) -> RunSummary:
    """The job's steps under one event loop, one session and one stop switch."""
    from ..commands.job import JobHooks, job
    from .signals import SignalStop

    signals = SignalStop()

    def verified(summary: VerifySummary) -> None:
        target.previous = summary
        click.echo(verify_text(summary))

    hooks = JobHooks(
        sending=lambda spec: sending(
            spec, clock, quiet=quiet, yes=True, signals=signals, target=target
        ),
        on_verifying=lambda path: click.echo(f"Verifying the previous run first: {path}"),
        on_choice=lambda choice, rate: click.echo(choice_text(choice, rate)),
        on_verified=verified,
        on_finishing=lambda path: click.echo(f"Finishing the previous run first: {path}"),
        on_finished=lambda spec, summary: finished_before(spec, summary, target),
        on_notice=notice,
    )
    async with signals.session(spec.send_settings()) as session:
        return await job(
            loaded,
            now,
            env=os.environ,
            values=values,
            force=force,
            session=session,
            hooks=hooks,
            clock=clock,
            rng=random.Random(),
            stop=signals.stop,
        )
