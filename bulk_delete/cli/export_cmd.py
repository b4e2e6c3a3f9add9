"""`export`: a checkpoint's requests and invalid rows with their outcomes, or a --backup
file's saved activities, as CSV or .xlsx (the writers are imported when they write)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..errors import OptionError, exit_codes_help


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
        done = backups.backup_as_sheet(backup, out)
        count = done.rows
        click.echo(f"Wrote {count:,} saved activit{'y' if count == 1 else 'ies'} to {out}")
        for note in done.notes:
            click.echo(f"note: {note}", err=True)
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
