"""The `report` command's data: what the HTML page shows of a checkpoint or a job's folder.

The page is filled from the checkpoint alone, read-only: the headline from its tables, the
charts' data from its call log (every run in it, so a resumed run shows its whole history). A
checkpoint from before the call log gets the headline numbers and no charts. A folder (a
job's state directory) gets one line per night, one per checkpoint in it. Drawing the page is
the CLI's (cli/report_page.py); nothing here draws.
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from pathlib import Path

from ..errors import BulkDeleteError, InputError
from ..store.calls import CallLog
from ..store.checkpoint import Checkpoint
from ..store.report_data import Night, ReportData, report_data
from ..store.restore_checkpoint import RestoreCheckpoint
from ..timetext import plan_tz
from . import restore_results

_DATED = re.compile(r"-(\d{4}-\d{2}-\d{2})\.sqlite$")


def report(source: Path, now: dt.datetime) -> ReportData:
    """What the page shows of ``source`` (a checkpoint, a restore's, or a job's state folder),
    generated at ``now``."""
    if source.is_dir():
        return folder_data(source, now)
    if RestoreCheckpoint.is_one(source):
        return restore_results.report(source, now)
    return checkpoint_data(source, now)


def checkpoint_data(path: Path, now: dt.datetime) -> ReportData:
    with Checkpoint.open_existing(path) as checkpoint:
        tz = plan_tz(checkpoint.meta, f"checkpoint {path}")
        counts = checkpoint.counts()
        found = checkpoint.verification()
        headline = [
            ("Requests", f"{counts.requests:,}"),
            ("Queued", f"{counts.queued:,} of {counts.requests:,}"),
            ("Failed", f"{counts.failed:,}"),
            ("Pending", f"{counts.pending:,}"),
            ("Invalid rows", f"{counts.invalid_rows:,}"),
            ("Refused (429)", f"{counts.rate_limited_429:,}"),
        ]
        verification = (
            [
                ("confirmed", found.confirmed),
                ("remaining", found.remaining_requests),
                ("unverified", found.unverified),
            ]
            if found.checked
            else []
        )
        title = f"Bulk delete: {checkpoint.meta.get('label') or path.name}"
        generated = now
        log = checkpoint.calls
        if log is None:
            return ReportData(
                title=title,
                tz=tz,
                headline=headline,
                notes=["This checkpoint is from before calls were recorded: no charts."],
                verification=verification,
                generated_at=generated,
            )
        return report_data(
            _readable_calls(path, log),
            title=title,
            tz=tz,
            headline=headline,
            verification=verification,
            generated_at=generated,
        )


def folder_data(folder: Path, now: dt.datetime) -> ReportData:
    """One line per night: each checkpoint in the folder (a job's state directory)."""
    nights = [night for path in sorted(folder.glob("*.sqlite")) if (night := _night(path))]
    tz = "UTC"
    headline = [
        ("Nights", f"{len(nights):,}"),
        ("Requests", f"{sum(n.requests for n in nights):,}"),
        ("Queued", f"{sum(n.queued for n in nights):,}"),
        ("Refused (429)", f"{sum(n.refused for n in nights):,}"),
        ("Left", f"{sum(n.left for n in nights):,}"),
    ]
    return ReportData(
        title=f"Bulk delete: {folder.name}",
        tz=tz,
        headline=headline,
        nights=nights,
        generated_at=now,
    )


def _night(path: Path) -> Night | None:
    try:
        checkpoint = Checkpoint.open_existing(path)
    except (
        BulkDeleteError,
        sqlite3.Error,
    ):  # another file in the folder, or an empty one: not a night
        return None
    with checkpoint:
        counts = checkpoint.counts()
        found = checkpoint.verification()
        dated = _DATED.search(path.name)
        created = checkpoint.meta.get("created_at", "")[:10]
        day = dated.group(1) if dated else created
        try:
            date = dt.date.fromisoformat(day)
        except ValueError:
            return None
        return Night(
            date=date,
            requests=counts.requests,
            queued=counts.queued,
            refused=counts.rate_limited_429,
            verified=found.confirmed if found.checked else None,
            left=counts.pending + counts.failed,
        )


# The last second a datetime holds: a call stamped later (or before 1970) was not made by a run.
_LAST_SECOND = dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC).timestamp()


def _readable_calls(path: Path, log: CallLog) -> CallLog:
    """The call log, when its times are ones a run wrote; InputError (exit 2) otherwise."""
    span = log.span()
    if span is not None:
        for moment in span:
            if not 0 <= moment < _LAST_SECOND:
                year = 1970 + int(moment // 31_556_952)
                raise InputError(
                    f"checkpoint {path}: its call log holds a call stamped in the year {year:,}, "
                    "which no run made: it was changed outside bulk-delete. Its outcomes can "
                    "still be exported with `bulk-delete export`."
                )
    return log
