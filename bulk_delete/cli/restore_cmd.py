"""`restore`: a backup's activities posted back, shown and confirmed as `run` is; it ends as a
run ends (the results workbook and HTML report, --summary-json, the text), through run_cmd's
``finished`` and ``ended_in``.

What it runs (commands/restore.py, the client) is imported in its body, when it runs.
"""

from __future__ import annotations

import asyncio
import random
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..clock import Clock, SystemClock
from ..commands.spec import POST_MODES, RunSpec
from ..config import Credentials
from ..errors import EXIT_MEANINGS, OptionError, exit_codes_help
from ..summary import RunSummary
from .notify import notify_from
from .options import call_options, notify_options, spec_option
from .progress import ProgressDisplay
from .run_cmd import ending, finished, notify_note, program, typed
from .show_plan import notice
from .summary_json import SummaryTarget, dry_run_summary, summary_target
from .summary_text import learned_text

if TYPE_CHECKING:
    from ..commands.restore import RestoreHooks
    from .signals import SignalStop

_SELECTION_HELP = {
    "codes": "Only activities of these codes (e.g. 201,202); repeatable: their union.",
    "from_date": "Only activities dated from DATE (YYYY-MM-DD [HH:MM:SS], in --tz): the "
    "activity's own date, as the delete selected it.",
    "to_date": "Only activities dated up to DATE (a date alone: its end, 23:59:59).",
    "date_order": "How --from and --to are written when not YYYY-MM-DD: DMY (31/01/2025), "
    "MDY (01/31/2025) or YMD (2025/01/31). Without it such a date exits 2 naming its readings.",
    "header_row": "--sheet: the row that holds its header, as Excel numbers it (default: row "
    "1, or the first of rows 1-10 with ProspectId and another column).",
}


@click.command(epilog=exit_codes_help(tuple(EXIT_MEANINGS)))
@click.argument("input", metavar="BACKUP", type=click.Path(path_type=Path, dir_okay=False))
@spec_option("checkpoint", type=click.Path(dir_okay=False))
@spec_option("restore_requests", multiple=True, callback=lambda _c, _p, v: v or None)
@spec_option("restore_leads", multiple=True, callback=lambda _c, _p, v: v or None)
@spec_option("lead_sheet", type=click.Path(dir_okay=False))
@spec_option("header_row", help=_SELECTION_HELP["header_row"])
@spec_option(
    "codes", help=_SELECTION_HELP["codes"], multiple=True, callback=lambda _c, _p, v: v or None
)
@spec_option("from_date", help=_SELECTION_HELP["from_date"])
@spec_option("to_date", help=_SELECTION_HELP["to_date"])
@spec_option("tz")
@spec_option("date_order", help=_SELECTION_HELP["date_order"])
@spec_option("post", type=click.Choice(POST_MODES))
@spec_option("bulk_rate")
@spec_option("rate")
@spec_option("share")
@spec_option("daily_limit")
@call_options
@click.option("-y", "--yes", is_flag=True, help="Post without asking (for scripts).")
@click.option(
    "--dry-run", is_flag=True, help="Only show the plan: read the backup, post nothing, no keys."
)
@click.option("--quiet", "-q", is_flag=True, help="No progress display.")
@spec_option("summary_json", type=click.Path(dir_okay=False))
@spec_option("results", type=click.Path(dir_okay=False))
@spec_option("no_results")
@notify_options[0]
@notify_options[1]
def restore(yes: bool, dry_run: bool, quiet: bool, **values: Any) -> RunSummary | None:
    """Post the activities of a `run --backup` file back to their leads.

    Each lead is read first: only activities gone from it are posted (a delete not carried
    out yet would remove them again); the rest are held and named. A post whose answer was
    lost is looked for on its lead before anything is posted again, so nothing is posted
    twice, after a kill -9 too. The activity's id, CreatedOn/CreatedBy and history cannot
    come back, and "Activity created" automations fire again. Keys come from LSQ_ACCESS_KEY
    and LSQ_SECRET_KEY; the outcomes (new ids beside the old) go in --checkpoint, its own.

    \b
    Examples:
      bulk-delete restore q1-backup.jsonl.gz --dry-run
      bulk-delete restore q1-backup.jsonl.gz --lead 3aee22bd-8419-422a-8242-c510df9af021 \\
          --checkpoint restore-sample.sqlite
      bulk-delete restore q1-backup.jsonl.gz --checkpoint restore-q1.sqlite -y
    """
    ctx = click.get_current_context()
    target = summary_target(
        ctx, values.get("summary_json"), values.get("input"), values.get("checkpoint")
    )
    spec = RunSpec.from_values(values)
    target.spec = spec
    if dry_run:
        from ..commands import restore as restore_command
        from .restore_text import plan_text

        click.echo(plan_text(restore_command.dry_run(spec)))
        click.echo(_next_command(ctx, spec))
        dry_run_summary(target)
        return None
    if spec.checkpoint is None:
        raise OptionError(
            "--checkpoint is required to post: a file of the restore's own, where each "
            "activity's outcome and new id are kept (rerun with it to resume)"
        )
    notify_from(ctx, spec)
    return _post(spec, Credentials.from_env(), quiet=quiet, yes=yes, target=target)


def _post(
    spec: RunSpec, credentials: Credentials, *, quiet: bool, yes: bool, target: SummaryTarget
) -> RunSummary:
    from ..commands.restore import check_outputs
    from .signals import SignalStop

    check_outputs(spec)  # before anything is read or sent
    signals, clock = SignalStop(), SystemClock()
    display = ProgressDisplay(
        quiet=quiet, calls_per_second=spec.rate.per_second, done_word="posted"
    )
    with ending(spec, target, display):
        hooks = _hooks(spec, signals, display, yes=yes)
        summary = asyncio.run(_run(spec, credentials, hooks, signals, clock))
    return finished(spec, summary, target)


def _hooks(
    spec: RunSpec, signals: SignalStop, display: ProgressDisplay, *, yes: bool
) -> RestoreHooks:
    from ..commands.restore import RestoreHooks
    from .restore_text import bulk_learned_text, plan_text, question
    from .signals import ask_hook

    return RestoreHooks(
        confirm=ask_hook(yes, signals, lambda plan: question(plan, spec.host)),
        on_plan=lambda plan: click.echo(plan_text(plan)),
        on_resume=lambda path: click.echo(f"Resuming from checkpoint {path}"),
        on_progress=display,
        on_limit_learned=lambda limit: click.echo(learned_text(limit), err=True),
        on_bulk_learned=lambda limit: click.echo(bulk_learned_text(limit), err=True),
        on_notice=notice,
    )


async def _run(
    spec: RunSpec, credentials: Credentials, hooks: RestoreHooks, signals: SignalStop, clock: Clock
) -> RunSummary:
    from ..commands import restore as restore_command

    async with signals.session(spec.send_settings()) as session:
        return await restore_command.restore(
            spec,
            credentials,
            session=session,
            hooks=hooks,
            clock=clock,
            rng=random.Random(),
            stop=signals.stop,
        )


def _next_command(ctx: click.Context, spec: RunSpec) -> str:
    """The command that posts what the dry run showed, quoted for the shell."""
    words = [program(), "restore", str(ctx.params["input"])]
    words += typed(ctx, lambda name: name not in {"dry_run", "summary_json", "checkpoint"})
    stem = Path(str(ctx.params["input"])).name.split(".")[0]
    checkpoint = spec.checkpoint or Path(f"restore-{stem}.sqlite")
    words += ["--checkpoint", str(checkpoint)]
    return "Dry run: nothing was posted. To post it:\n  " + shlex.join(words) + notify_note(ctx)
