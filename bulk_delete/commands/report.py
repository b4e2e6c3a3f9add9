"""The `report` command's data: what the HTML page shows of a checkpoint or a job's folder.

``report(source, now)`` reads a checkpoint (``checkpoint_data``) or a job's state folder
(``folder_data``, one line per night) read-only into a ``ReportData``: what was purged, how it
ended, why requests failed and rows were invalid, what `verify` found, where the backup is, and
the charts from the call log (none for a checkpoint from before it). Drawing is the CLI's
(cli/report_page.py).

Why: docs/design/report.md.
"""

from __future__ import annotations

import datetime as dt
import shlex
import sqlite3
from pathlib import Path
from typing import Any

from ..errors import (
    BulkDeleteError,
    InputError,
)
from ..store.calls import CallLog
from ..store.checkpoint import Checkpoint
from ..store.report_data import Night, ReportData, Section, report_data
from ..store.restore_checkpoint import RestoreCheckpoint
from ..summary import Counts, Verification
from ..timetext import plan_tz
from . import restore_results
from .purged import (
    DATED,
    EXIT_WORDS,
    Backups,
    Ending,
    Left,
    account_line,
    activity_facts,
    code_names,
    exit_of,
    how_it_ended,
    listed,
    plan_codes,
    read_backups,
    resume_command,
    window_facts,
)


def report(source: Path, now: dt.datetime, ending: Ending | None = None) -> ReportData:
    """What the page shows of ``source`` (a checkpoint, or a job's state folder), generated
    at ``now``."""
    if source.is_dir():
        return folder_data(source, now)
    if RestoreCheckpoint.is_one(source):
        return restore_results.report(source, now, ending)
    return checkpoint_data(source, now, ending)


def checkpoint_data(path: Path, now: dt.datetime, ending: Ending | None = None) -> ReportData:
    with Checkpoint.open_existing(path) as checkpoint:
        tz = plan_tz(checkpoint.meta, f"checkpoint {path}")
        counts = checkpoint.counts()
        found = checkpoint.verification()
        backup = read_backups(checkpoint.meta)
        rest: dict[str, Any] = {
            "title": _title(checkpoint, path),
            "tz": tz,
            "account": account_line(checkpoint.meta),
            "headline": _headline(counts),
            "purged": [
                _what(checkpoint, counts, tz, backup),
                _how(checkpoint, path, counts, ending),
            ],
            "failures": checkpoint.failure_groups(),
            "more_failures": max(0, checkpoint.failure_reason_count() - 10),
            "invalid": checkpoint.invalid_groups(),
            "checked": [_verified(checkpoint, path, found), *_backup_section(backup)],
            "verification": _verification_bars(found),
            "generated_at": now,
        }
        log = checkpoint.calls
        if log is None:
            notes = ["This checkpoint is from before calls were recorded: no charts."]
            return ReportData(notes=notes, **rest)
        return report_data(_readable_calls(path, log), **rest)


def _title(checkpoint: Checkpoint, path: Path) -> str:
    """The job's name, else the sheet's, else what the discovery listed."""
    meta = checkpoint.meta
    if meta.get("label"):
        return f"Purge: job {meta['label']}"
    if meta.get("discover") == "1":
        codes = ", ".join(checkpoint.plan_codes())
        return f"Purge: activities of code {codes} found by a listing"
    source = meta.get("input", "")
    return f"Purge: {Path(source).name}" if source else f"Purge: {path.name}"


def _headline(counts: Counts) -> list[tuple[str, str]]:
    return [
        ("Requests", f"{counts.requests:,}"),
        ("Queued", f"{counts.queued:,} of {counts.requests:,}"),
        ("Failed", f"{counts.failed:,}"),
        ("Pending", f"{counts.pending:,}"),
        ("Invalid rows", f"{counts.invalid_rows:,}"),
        ("Refused (429)", f"{counts.rate_limited_429:,}"),
    ]


def _what(checkpoint: Checkpoint, counts: Counts, tz: str, backup: Backups | None) -> Section:
    """What was purged: codes, window, how much."""
    names = code_names(checkpoint, backup)
    codes = ", ".join(
        f"{code} ({names[code]})" if code in names else code for code in plan_codes(checkpoint)
    )
    facts = [("Activity codes", codes or "none")]
    facts += window_facts(checkpoint, tz)
    source = checkpoint.meta.get("input", "")
    if checkpoint.meta.get("discover") == "1":
        facts.append(("Leads from", "a listing of the account (RetrieveByActivityEvent)"))
    elif source:
        facts.append(("Sheet", Path(source).name))
    facts += [
        ("Leads", f"{counts.leads:,}"),
        (
            "Requests",
            f"{counts.requests:,} DeleteActivities calls planned, {counts.queued:,} queued",
        ),
    ]
    facts += activity_facts(checkpoint, backup)
    return Section(title="What was purged", facts=facts)


def _how(checkpoint: Checkpoint, path: Path, counts: Counts, ending: Ending | None) -> Section:
    """How it ended: the exit status in words, interrupted or not, the command that resumes."""
    last = checkpoint.last_run()
    code = ending.exit_code if ending and ending.exit_code is not None else exit_of(last, counts)
    count = counts.pending + counts.failed_transient
    left = Left(
        count=count,
        words=f"{count:,} request(s)",
        resume=resume_command(checkpoint, path),
        nothing="nothing left to send",
    )
    return how_it_ended(
        last, code, ending, left, runs=checkpoint.run_count(), exit_words=EXIT_WORDS
    )


def _verified(checkpoint: Checkpoint, path: Path, found: Verification) -> Section:
    if not found.checked:
        facts = [("Checked", "not yet: LeadSquared has not been asked what is left")]
        facts.append(("To verify", shlex.join(["bulk-delete", "verify", str(path)])))
        return Section(title="Verification", facts=facts)
    facts = [
        ("Checked", f"{found.checked:,} of {checkpoint.counts().queued:,} queued request(s)"),
        ("Confirmed", f"{found.confirmed:,}: nothing left in their windows"),
    ]
    if found.remaining_requests:
        facts.append(
            (
                "Still there",
                f"{found.remaining_activities:,} activities on {found.remaining_leads:,} lead(s) "
                f"({found.remaining_requests:,} request(s)); LeadSquared may still be processing",
            )
        )
    for note, count in checkpoint.unverified_notes():
        facts.append(("Unverified", f"{count:,} × {note}"))
    tone = "good" if found.confirmed == found.checked else "warn"
    return Section(title="Verification", facts=facts, tone=tone)


def _verification_bars(found: Verification) -> list[tuple[str, int]]:
    if not found.checked:
        return []
    return [
        ("confirmed", found.confirmed),
        ("remaining", found.remaining_requests),
        ("unverified", found.unverified),
    ]


def _backup_section(backup: Backups | None) -> list[Section]:
    if backup is None:
        return [
            Section(
                title="Backup", facts=[("Backup", "none: the deleted activities were not saved")]
            )
        ]
    facts = [("File" if len(backup.files) == 1 else "Files", ", ".join(backup.files))]
    if backup.problems:
        facts += [("Problem", problem) for problem in backup.problems]
    else:
        facts.append(("Holds", f"{backup.activities:,} activities, saved before their deletes"))
    facts.append(("To read it", "bulk-delete export --backup FILE -o deleted.xlsx"))
    return [Section(title="Backup", facts=facts, tone="bad" if backup.problems else "")]


def folder_data(folder: Path, now: dt.datetime) -> ReportData:
    """One line per night: each checkpoint in the folder (a job's state directory), in date
    order, with the job it belongs to."""
    nights = sorted(
        (night for path in sorted(folder.glob("*.sqlite")) if (night := _night(path))),
        key=lambda night: (night.date, night.job),
    )
    jobs = sorted({night.job for night in nights if night.job})
    headline = [
        ("Nights", f"{len(nights):,}"),
        ("Jobs", f"{len(jobs):,}"),
        ("Requests", f"{sum(n.requests for n in nights):,}"),
        ("Queued", f"{sum(n.queued for n in nights):,}"),
        ("Refused (429)", f"{sum(n.refused for n in nights):,}"),
        ("Left", f"{sum(n.left for n in nights):,}"),
    ]
    title = f"Purges in {folder.name}: " + (", ".join(jobs) if jobs else "no job")
    return ReportData(title=title, tz="UTC", headline=headline, nights=nights, generated_at=now)


def _night(path: Path) -> Night | None:
    try:
        checkpoint = Checkpoint.open_existing(path)
    except (BulkDeleteError, sqlite3.Error):  # another file in the folder, or an empty one
        return None
    with checkpoint:
        meta = checkpoint.meta
        dated = DATED.match(path.name)
        if dated and path.stem == meta.get("label"):  # a job named with a date: not its night
            dated = None
        day = dated.group(2) if dated else meta.get("created_at", "")[:10]
        try:
            date = dt.date.fromisoformat(day)
        except ValueError:
            return None
        counts = checkpoint.counts()
        found = checkpoint.verification()
        last = checkpoint.last_run()
        code = exit_of(last, counts)
        return Night(
            date=date,
            job=meta.get("label") or (dated.group(1) if dated else path.stem),
            requests=counts.requests,
            queued=counts.queued,
            refused=counts.rate_limited_429,
            verified=found.confirmed if found.checked else None,
            left=counts.pending + counts.failed,
            activities=listed(checkpoint),
            ended="not sent" if code is None else f"exit {code}",
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
