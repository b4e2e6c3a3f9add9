"""`status`: what a checkpoint holds, as `run` prints it at the end (read-only, no keys)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..errors import exit_codes_help
from .summary_text import run_text

if TYPE_CHECKING:
    from ..summary import RunSummary


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
