"""`report`: the HTML run report of a checkpoint, or of a job's state folder night by night.

The page's data comes from commands/report.py; the page is drawn by report_page.py (Jinja2 and
the charts of charts/), imported when it writes.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..errors import InputError, exit_codes_help

if TYPE_CHECKING:
    from ..commands.purged import Ending


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
    """Write the HTML run report of CHECKPOINT, for someone who did not run it: what was
    purged (codes, window, leads, requests, activities), how it ended and the command that
    resumes, failures and invalid rows by reason with their sheet rows, verification, the
    backup; then charts of the calls (rate and refusals against the limit, outcomes by HTTP
    status, latency, verification).

    Given a folder (a job's state directory), one line per night in date order, with its
    job: requests, activities, queued, refused, verified, left, how it ended; and a chart per
    night. Reads the checkpoint only; `run` and `job` also write this page after every run
    (see --results), and `verify` writes it again.

    \b
    Examples:
      bulk-delete report q1.sqlite -o q1-report.html
      bulk-delete report state/ -o nights.html
    """
    from ..commands import outputs

    if not source.exists():
        raise InputError(f"{source}: no such checkpoint or folder")
    reads = [] if source.is_dir() else outputs.checkpoint_reads(source)
    outputs.check([outputs.Named("--out", out)], reads)
    write_page(source, out)
    click.echo(f"Report written to {out}")


def write_page(source: Path, out: Path, ending: Ending | None = None) -> None:
    """The HTML report of a checkpoint, or of every checkpoint in a job's state folder;
    ``ending``: how the run that writes it ended, when a run does."""
    from ..commands import report as report_command
    from .report_page import write_report

    write_report(out, report_command.report(source, dt.datetime.now(dt.UTC), ending))
