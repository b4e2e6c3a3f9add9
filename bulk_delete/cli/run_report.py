"""checkpoint → HTML report (and the results written after `run`/`job`): what `report` draws.

The page's data comes from commands/report.py (a checkpoint, or a job's state folder night by
night). The page's writer (Jinja2) and the workbook's (XlsxWriter) are imported when they
write: `report` writes no workbook, and `--help` neither.
"""

from __future__ import annotations

from pathlib import Path

from ..commands.common import window_of
from ..commands.outputs import results_paths
from ..commands.report import checkpoint_data, folder_data
from ..spec import RunSpec
from ..summary import RunSummary


def write_run_results(spec: RunSpec, summary: RunSummary | None) -> list[Path]:
    """The results of a run (workbook and HTML report), as ``results_paths`` names them;
    none when --no-results or nothing was planned. Returns the files written."""
    from ..commands.results import write_workbook

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
