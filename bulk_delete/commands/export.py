"""checkpoint → CSV/.xlsx: `export`, one line per request and per invalid row.

It reads the checkpoint only. Dates are shown in the plan's --tz beside the UTC that was sent,
and an output that would overwrite the checkpoint or its side files is refused before anything
is written.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TextIO

from ..config import DEFAULT_TZ
from ..errors import InputError
from ..store.checkpoint import Checkpoint
from ..store.row_files import RowWriter, export_columns, export_row, open_table, stream_table
from ..timetext import plan_tz
from . import outputs

EXPORT_STATUSES = ("queued", "failed", "invalid", "pending")


def export_to(path: Path, stream: TextIO, statuses: tuple[str, ...] = EXPORT_STATUSES) -> int:
    """The export as CSV on a stream (``export -o -``). Returns the count."""
    return _export(path, lambda columns: stream_table(stream, columns), statuses)


def export(path: Path, out: Path, statuses: tuple[str, ...] = EXPORT_STATUSES) -> int:
    """One line per request and per invalid row, CSV or .xlsx by the name. Returns the count."""
    outputs.check([outputs.Named("--out", out)], outputs.checkpoint_reads(path))
    return _export(path, lambda columns: open_table(out, columns, "Requests"), statuses)


def _export(
    path: Path,
    table: Callable[[tuple[str, ...]], AbstractContextManager[RowWriter]],
    statuses: tuple[str, ...],
) -> int:
    count = 0
    with Checkpoint.open_existing(path) as checkpoint:
        tz = _export_tz(checkpoint)
        with table(export_columns(tz)) as write:
            for row in checkpoint.export_rows(statuses):
                write(export_row(row, tz))
                count += 1
    return count


def _export_tz(checkpoint: Checkpoint) -> str:
    """The plan's --tz, whose dates the export shows beside UTC; UTC alone when the checkpoint
    names none that is known here (changed by hand): the outcomes are exported all the same."""
    try:
        return plan_tz(checkpoint.meta)
    except InputError:
        return DEFAULT_TZ
