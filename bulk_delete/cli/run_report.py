"""checkpoint → HTML report (and the results written after `run`/`job`): what `report` draws.

The page is filled from the checkpoint alone, read-only: the headline from its tables, the
charts from its call log (every run in it, so a resumed run shows its whole history). A
checkpoint from before the call log gets the headline numbers and no charts. A folder (a
job's state directory) gets one line per night, one per checkpoint in it.

html_report imports matplotlib, which takes a second or two to import: it is imported here
only when a page is drawn. The data the page is filled with (store/report_data.py) needs none.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
from pathlib import Path
from typing import Any

from ..commands.common import window_of
from ..commands.outputs import results_paths
from ..commands.results import write_workbook
from ..errors import BulkDeleteError
from ..spec import RunSpec
from ..store.checkpoint import Checkpoint
from ..store.report_data import Night, ReportData, report_data
from ..summary import RunSummary

_DATED = re.compile(r"-(\d{4}-\d{2}-\d{2})\.sqlite$")


def write_run_results(spec: RunSpec, summary: RunSummary | None) -> list[Path]:
    """The results of a run (workbook and HTML report), as ``results_paths`` names them;
    none when --no-results or nothing was planned. Returns the files written."""
    paths = results_paths(spec)
    if paths is None or spec.checkpoint is None:
        return []
    workbook, page = paths
    window = summary.window if summary is not None else window_of(spec)
    if not write_workbook(spec.checkpoint, workbook, window, summary, share=spec.share):
        return []
    write_page(spec.checkpoint, page)
    return [workbook, page]


def write_page(source: Path, out: Path) -> None:
    """The HTML report of a checkpoint, or of every checkpoint in a job's state folder."""
    from .html_report import write_report

    write_report(out, folder_data(source) if source.is_dir() else checkpoint_data(source))


def checkpoint_data(path: Path) -> ReportData:
    with Checkpoint.open_existing(path) as checkpoint:
        tz = _tz(checkpoint)
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
        generated = dt.datetime.now(dt.UTC)
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
            log,
            title=title,
            tz=tz,
            headline=headline,
            verification=verification,
            generated_at=generated,
        )


def folder_data(folder: Path) -> ReportData:
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
        generated_at=dt.datetime.now(dt.UTC),
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


def _tz(checkpoint: Checkpoint) -> str:
    options: dict[str, Any] = json.loads(checkpoint.meta.get("options", "{}"))
    return str(options.get("tz") or "UTC")
