"""A restore's checkpoint → its results workbook and its HTML report's data, read-only, after
every run that selected something (as a purge's are: commands/results.py, commands/report.py).
The workbook's writer (XlsxWriter) is imported when a workbook is written: `report` needs none.
"""

from __future__ import annotations

import datetime as dt
import json
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import EXIT_INCOMPLETE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from ..store.reasons import REASONS_SHOWN
from ..store.report_data import ReportData, Section, report_data
from ..store.restore_checkpoint import Item, RestoreCheckpoint, Span, Tally
from ..summary import RunSummary
from .purged import EXIT_WORDS, Ending, Left, account_line, exit_of, how_it_ended

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


# A restore's exit code in words (README, section 12): activities, not requests, are its unit.
RESTORE_EXIT_WORDS = EXIT_WORDS | {
    EXIT_OK: "finished: every selected activity posted, or already on its lead",
    EXIT_INCOMPLETE: "finished, with work left: some activities still present (their deletes "
    "not carried out yet), refused, or not posted yet (below)",
    EXIT_USAGE: "stopped before posting: nothing was posted",
    EXIT_INTERRUPTED: "interrupted by a signal; every answer received is saved, and a post "
    "whose answer did not come is looked for on its lead first",
}
FOOTER = (
    '"Posted" means LeadSquared created the activity again, with a new id (the results '
    'workbook has it beside the old one). "Still present" means its delete was not carried '
    "out yet: nothing of it was posted, and a rerun reads its lead again."
)


def report(path: Path, now: dt.datetime, ending: Ending | None = None) -> ReportData:
    """The HTML report's data for a restore checkpoint, in the order a purge's page tells:
    what was restored, how it ended, why activities failed, then its calls."""
    with RestoreCheckpoint.open_existing(path) as checkpoint:
        meta, tally = checkpoint.meta, checkpoint.tally()
        last = checkpoint.last_run()
        counts = tally.as_counts(last.rate_limited_429 if last else 0)
        code = (
            ending.exit_code if ending and ending.exit_code is not None else exit_of(last, counts)
        )
        left = Left(
            count=tally.todo,
            words=f"{tally.todo:,} activit{'y' if tally.todo == 1 else 'ies'}",
            resume=resume_command(meta, path),
            nothing="nothing left to post",
        )
        ended = how_it_ended(
            last, code, ending, left, runs=checkpoint.run_count(), exit_words=RESTORE_EXIT_WORDS
        )
        return report_data(
            checkpoint.calls,
            title=f"Restore: {_name(meta.get('backup', path.name))}",
            account=account_line(meta),
            tz="UTC",
            headline=_headline(tally),
            purged=[_restored(meta, tally, checkpoint.span()), ended],
            failures=checkpoint.failure_groups(),
            more_failures=max(0, len(checkpoint.failure_reasons(limit=-1)) - REASONS_SHOWN),
            failed="activities",
            footer=FOOTER,
            kind="post",
            generated_at=now,
        )


def _headline(tally: Tally) -> list[tuple[str, str]]:
    return [
        ("Activities", f"{tally.activities:,}"),
        ("Posted", f"{tally.posted:,} of {tally.activities:,}"),
        ("Already there", f"{tally.already:,}"),
        ("Still present", f"{tally.present:,}"),
        ("Failed", f"{tally.failed + tally.lead_missing:,}"),
        ("To do", f"{tally.todo:,}"),
    ]


def _restored(meta: dict[str, str], tally: Tally, span: Span) -> Section:
    """What was restored: from which backup and purge, the selection, how much, codes, dates."""
    codes = ", ".join(f"{code} ({count:,})" for code, count in span.codes)
    facts = [
        ("Backup", _name(meta.get("backup", ""))),
        ("The purge's checkpoint", _name(meta.get("backup_of", "")) or "not named"),
        ("Selection", meta.get("selection", "")),
        (
            "Activities",
            f"{tally.activities:,} on {tally.leads:,} lead(s), deleted by {span.requests:,} "
            "request(s) of the purge",
        ),
        ("Activity codes", codes or "none"),
        ("Dates", f"{span.first} to {span.last} UTC" if span.first else "none"),
        ("Posted", f"{tally.posted:,}, {tally.found:,} of them found after a lost answer"),
        ("Owner's email in the backup", f"{tally.owners_known:,}"),
    ]
    return Section(title="What was restored", facts=facts)


def resume_command(meta: dict[str, str], path: Path) -> str:
    """The command that resumes: `restore` from the same backup, with the same selection."""
    words = ["bulk-delete", "restore", meta.get("backup", "BACKUP"), "--checkpoint", str(path)]
    chosen = json.loads(meta.get("selected") or "{}")
    for key, flag in (("requests", "--request"), ("codes", "--codes")):
        if chosen.get(key):
            words += [flag, ",".join(str(each) for each in chosen[key])]
    for lead in chosen.get("leads", ()):
        words += ["--lead", lead]
    for key, flag in (("from", "--from"), ("to", "--to")):
        if chosen.get(key):
            words += [flag, chosen[key]]
    if chosen.get("from") or chosen.get("to"):
        words += ["--tz", "UTC"]
    return shlex.join(words)
