"""The commands that read a checkpoint: verify (which also asks LeadSquared), status, export
and report.

Each command imports what it runs (commands/, the client, the workbook and page writers) in
its body: `bulk-delete --help` declares them all and runs none.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..config import Credentials
from ..errors import InputError, OptionError, exit_codes_help
from ..spec import RunSpec
from .options import spec_option
from .report import choice_text, run_text, verify_text
from .show_plan import notice

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
    credentials = Credentials.from_env()
    summary = asyncio.run(_verify(spec, credentials))
    click.echo(verify_text(summary))
    return summary


async def _verify(spec: RunSpec, credentials: Credentials) -> VerifySummary:
    from ..commands import verify as verify_command
    from ..send.client import open_session
    from .signals import SignalStop

    signals = SignalStop()
    with signals.installed():
        async with open_session(spec.send_settings()) as session:
            return await verify_command.verify(
                spec,
                credentials,
                session=session,
                on_choice=lambda choice, rate: click.echo(choice_text(choice, rate)),
                on_notice=notice,
                stop=signals.stop,
            )


# ---------------------------------------------------------------- status and export


@click.command(epilog=exit_codes_help((0, 1, 2, 70)))
@click.argument("checkpoint", type=click.Path(path_type=Path, dir_okay=False))
def status(checkpoint: Path) -> RunSummary:
    """Print the summary of a checkpoint: queued, failed (by reason), pending, invalid.

    Exits 0 when every request is queued and no row was invalid, 1 otherwise.

    \b
    Example:
      bulk-delete status q1.sqlite
    """
    from ..commands import status as status_command

    summary = asyncio.run(status_command.status(checkpoint))
    click.echo(run_text(summary, title="Checkpoint status"))
    return summary


@click.command(epilog=exit_codes_help((0, 2, 70)))
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
    from ..commands import backups
    from ..commands import export as export_command

    if (checkpoint is None) == (backup is None):
        raise OptionError("give a CHECKPOINT, or --backup BACKUP, to export (one of them)")
    if backup is not None:
        if str(out) == "-":
            raise OptionError("--backup exports to a file (.xlsx or .csv), not - (standard output)")
        done = backups.export(backup, out)
        count = done.rows
        click.echo(f"Wrote {count:,} saved activit{'y' if count == 1 else 'ies'} to {out}")
        if done.torn is not None:  # a run killed mid-write: that request was never sent
            click.echo(
                f"note: {backup} ends in {done.torn.size:,} bytes of a member cut mid-write "
                "(a run killed while saving a request, before its delete was sent): left out; "
                "the next run on this file moves them aside",
                err=True,
            )
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


@click.command(epilog=exit_codes_help((0, 2, 70)))
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
    from ..commands import outputs
    from .run_report import write_page

    if not source.exists():
        raise InputError(f"{source}: no such checkpoint or folder")
    reads = [] if source.is_dir() else outputs.checkpoint_reads(source)
    outputs.check([outputs.Named("--out", out)], reads)
    write_page(source, out)
    click.echo(f"Report written to {out}")
