"""A restore's checkpoint → its results workbook and its HTML report's data, read-only, after
every run that selected something (as a purge's are: commands/results.py, commands/report.py).
The workbook's writer (XlsxWriter) is imported when a workbook is written: `report` needs none.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ..store.report_data import ReportData, report_data
from ..store.restore_checkpoint import Item, RestoreCheckpoint, Tally
from ..summary import RunSummary

if TYPE_CHECKING:
    from ..store.restore_workbook import ActivityRow


def write_workbook(checkpoint_path: Path, out: Path, summary: RunSummary | None) -> bool:
    """The workbook of the restore checkpoint at ``out``; False when it selected nothing."""
    from ..store.restore_workbook import write_restore_results

    with RestoreCheckpoint.open_existing(checkpoint_path) as checkpoint:
        if not checkpoint.has_selection:
            return False
        write_restore_results(out, _summary(checkpoint, summary), _rows(checkpoint))
    return True


def _summary(checkpoint: RestoreCheckpoint, summary: RunSummary | None) -> list[tuple[str, object]]:
    meta, tally = checkpoint.meta, checkpoint.tally()
    last = checkpoint.last_run()
    pairs: list[tuple[str, object]] = [
        ("Backup", _name(meta.get("backup", ""))),
        ("The purge's checkpoint", _name(meta.get("backup_of", ""))),
        ("Selection", meta.get("selection", "")),
        *_outcomes(tally),
        ("Runs", checkpoint.run_count()),
        ("Calls (last run)", last.calls if last else 0),
        ("Refusals (HTTP 429, last run)", last.rate_limited_429 if last else 0),
    ]
    restore = summary.restore if summary is not None else None
    if restore is not None and restore.activities_per_second is not None:
        pairs += [
            (f"Posted per second, busiest window ({restore.mode})", restore.activities_per_second),
            ("… the limit allows", restore.limit_activities_per_second),
        ]
    pairs += [
        ("Not restored, ever", "ids, CreatedOn, CreatedBy, ModifiedOn, history"),
        ("Fired again", 'LeadSquared\'s "Activity created" automations, lead-score rules'),
    ]
    if summary is not None and summary.exit_code is not None:
        pairs.append(("Exit code", summary.exit_code))
    return pairs


def _name(path: str) -> str:
    """A file by its name: the workbook is forwarded, and a local path means nothing there."""
    return Path(path).name if path else ""


def _outcomes(tally: Tally) -> list[tuple[str, object]]:
    return [
        ("Activities selected", tally.activities),
        ("Leads", tally.leads),
        ("Posted", tally.posted),
        ("… found after a lost answer", tally.found),
        ("Already on the lead (not posted)", tally.already),
        ("Still present (not posted)", tally.present),
        ("Not read yet", tally.unchecked),
        ("Gone, not posted yet", tally.gone + tally.posting),
        ("Lead no longer exists", tally.lead_missing),
        ("Failed", tally.failed),
        ("Owner's email in the backup", tally.owners_known),
    ]


def _rows(checkpoint: RestoreCheckpoint) -> Iterator[ActivityRow]:
    for item in checkpoint.items():
        yield _row(item)


def _row(item: Item) -> ActivityRow:
    from ..store.restore_workbook import ActivityRow

    activity = item.activity
    return ActivityRow(
        prospect_id=activity.prospect_id,
        code=int(activity.code),
        date=_moment(activity.date),
        outcome=item.status,
        new_id=item.new_id,
        old_id=activity.old_id,
        request=activity.request,
        note=activity.note,
        owner=activity.owner,
        owner_email=activity.owner_email,
        posts=item.attempts,
        http_status=item.http_status,
        reason=item.error,
        updated=_moment(item.updated_at),
    )


def _moment(text: str) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(text).replace(tzinfo=None)
    except ValueError:
        return None


def report(path: Path, now: dt.datetime) -> ReportData:
    """The HTML report's data for a restore checkpoint: its headline, then its calls."""
    with RestoreCheckpoint.open_existing(path) as checkpoint:
        tally = checkpoint.tally()
        headline = [
            ("Activities", f"{tally.activities:,}"),
            ("Posted", f"{tally.posted:,} of {tally.activities:,}"),
            ("Already there", f"{tally.already:,}"),
            ("Still present", f"{tally.present:,}"),
            ("Failed", f"{tally.failed + tally.lead_missing:,}"),
            ("To do", f"{tally.todo:,}"),
        ]
        return report_data(
            checkpoint.calls,
            title=f"Restore: {Path(checkpoint.meta.get('backup', path.name)).name}",
            tz="UTC",
            headline=headline,
            kind="post",
            generated_at=now,
        )
