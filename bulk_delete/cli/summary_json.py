"""--summary-json on every exit: what `run` and `job` write, whether the run finished, failed
before it started, or stopped on an error.

commands/run.py (which loads pandas) and commands/status.py are imported only when a summary
is written: every command's error path comes through here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from ..clock import SystemClock
from ..commands.outputs import checkpoint_files, spec_reads, write_summary
from ..commands.spec import RunSpec
from ..errors import EXIT_OK, BulkDeleteError, StorageError
from ..files import same_file
from ..summary import RunFigures, RunResult, RunSummary, VerifySummary


@dataclass
class SummaryTarget:
    """Where `run`/`job` write their summary, and what is known of the run so far. The
    summary is written on every exit, so monitoring sees the nights that need a look."""

    path: Path | None
    reads: tuple[Path, ...] = ()  # what the command reads: never written over, even here
    spec: RunSpec | None = None
    previous: VerifySummary | None = None
    written: bool = False
    summary: RunSummary | None = None  # what was (or would be) written: --notify sends it

    def write(self, summary: RunSummary) -> StorageError | None:
        """Write it once, whole or not at all; a failure is returned for the caller to show.
        A path that is a file the run reads is left alone (that mistake is the error)."""
        if self.written:
            return None
        self.written = True
        self.summary = with_previous(summary, self.previous)
        if self.path is None:
            return None
        reads = list(self.reads)
        if self.spec is not None:
            reads += [named.path for named in spec_reads(self.spec)]
        if any(same_file(self.path, read) for read in reads):
            return None
        return write_summary(self.path, with_previous(summary, self.previous))


def dry_run_summary(target: SummaryTarget) -> None:
    """A dry run's --summary-json: exit 0, nothing sent (monitoring of a scheduled dry run
    sees the night too)."""
    from ..commands.common import summary_before_start

    summary = summary_before_start(target.spec, SystemClock())
    problem = target.write(
        dataclasses.replace(
            summary, exit_code=EXIT_OK, this_run=RunFigures(result=RunResult.DRY_RUN)
        )
    )
    if problem is not None:
        raise problem


def summary_target(
    ctx: click.Context, raw: Any, read: Any, checkpoint: Any = None
) -> SummaryTarget:
    """``read``: the file the command reads (sheet or job file); ``checkpoint``: if any."""
    reads = [Path(read)] if read else []
    reads += [named.path for named in checkpoint_files(Path(checkpoint))] if checkpoint else []
    target = SummaryTarget(Path(raw) if raw else None, tuple(reads))
    ctx.meta["summary"] = target
    return target


def write_failed(ctx: click.Context, error: BaseException, exit_code: int, message: str) -> None:
    """The summary of a run that ended in an error: the run's own when sending began, else
    one that says why it never started. A summary that cannot be written is said, not
    raised: the run's own exit code is the one that counts."""
    target: SummaryTarget | None = ctx.meta.get("summary")
    if target is None or target.written or (target.path is None and "notify" not in ctx.meta):
        return
    from ..commands.common import summary_before_start

    carried = getattr(error, "summary", None)
    summary = (
        carried.ended(exit_code, message)
        if isinstance(carried, RunSummary)
        else _with_saved_totals(
            summary_before_start(target.spec, SystemClock()).ended(exit_code, message)
        )
    )
    problem = target.write(summary)
    if problem is not None:
        click.echo(f"error: {problem}", err=True)


def _with_saved_totals(summary: RunSummary) -> RunSummary:
    """A run that stopped before its first call still reports what its checkpoint holds
    (pending, queued…), read-only, when there is one; otherwise the summary as it is."""
    if not summary.checkpoint or not Path(summary.checkpoint).is_file():
        return summary
    from ..commands import status as status_command

    try:
        saved = asyncio.run(status_command.status(Path(summary.checkpoint)))
    except (BulkDeleteError, OSError, sqlite3.Error):
        return summary
    return dataclasses.replace(
        summary,
        runs=saved.runs,
        totals=saved.totals,
        failures=saved.failures,
        verification=saved.verification,
    )


def with_previous(summary: RunSummary, previous: VerifySummary | None) -> RunSummary:
    """The run's summary, carrying what verify_previous found in the previous run."""
    if previous is None:
        return summary
    return dataclasses.replace(
        summary,
        previous_checkpoint=previous.checkpoint,
        previous_verification=previous.verification,
    )
