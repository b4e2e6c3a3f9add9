"""`verify`: ask LeadSquared what is left of a checkpoint's queued requests.

What it runs (commands/verify.py, the client) is imported in its body: `bulk-delete --help`
declares the command and runs none of it.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..clock import SystemClock
from ..commands.spec import RunSpec
from ..config import Credentials
from ..errors import BulkDeleteError, exit_codes_help
from .exits import exit_code_of
from .notify import notify_from
from .options import notify_options, spec_option
from .show_plan import notice
from .summary_json import summary_target
from .summary_text import choice_text, verify_text

if TYPE_CHECKING:
    from ..summary import RunSummary, VerifySummary


@click.command(epilog=exit_codes_help((0, 1, 2, 3, 70, 75, 130)))
@click.argument("checkpoint", type=click.Path(path_type=Path, dir_okay=False))
@spec_option("sample")
@spec_option("host", envvar="LSQ_HOST")
@spec_option("rate")
@spec_option("share")
@spec_option("auth", type=click.Choice(["header", "query"]))
@spec_option("concurrency")
@spec_option("preflight")
@spec_option("daily_limit")
@notify_options[0]
@notify_options[1]
def verify(checkpoint: Path, **values: Any) -> VerifySummary:
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
    ctx = click.get_current_context()
    target = summary_target(ctx, None, None, checkpoint)
    target.spec = spec
    notify_from(ctx, spec)
    credentials = Credentials.from_env()
    summary = asyncio.run(_verify(spec, credentials))
    click.echo(verify_text(summary))
    refresh_results(checkpoint)
    if "notify" in ctx.meta:  # the checkpoint's summary, for the notification
        target.write(_checkpoint_summary(checkpoint, exit_code_of(summary)))
    return summary


def _checkpoint_summary(checkpoint: Path, exit_code: int) -> RunSummary:
    """What the checkpoint says after verify, as `status` and --summary-json say it."""
    from ..commands import status as status_command

    return asyncio.run(status_command.status(checkpoint)).ended(exit_code, "")


def refresh_results(checkpoint: Path) -> None:
    """The results workbook and report the checkpoint's last run wrote, written again with
    what verify found. A failure is said, not raised: verify's own exit code counts."""
    from ..commands.results import plan_window, write_workbook, written_results
    from .report_cmd import write_page

    try:
        paths = written_results(checkpoint)
        if paths is None:
            return
        write_workbook(checkpoint, paths[0], plan_window(checkpoint))
        write_page(checkpoint, paths[1])
    except (BulkDeleteError, OSError) as error:
        click.echo(f"warning: results not written again: {error}", err=True)
        return
    click.echo(f"Results written again: {paths[0]} (HTML report: {paths[1]})", err=True)


async def _verify(spec: RunSpec, credentials: Credentials) -> VerifySummary:
    from ..commands import verify as verify_command
    from .signals import SignalStop

    signals = SignalStop()
    async with signals.session(spec.send_settings()) as session:
        return await verify_command.verify(
            spec,
            credentials,
            session=session,
            on_choice=lambda choice, rate: click.echo(choice_text(choice, rate)),
            on_notice=notice,
            clock=SystemClock(),
            rng=random.Random(),
            stop=signals.stop,
        )
