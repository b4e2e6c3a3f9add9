"""What a checkpoint says was purged and how its last run ended, for the people who read the
report and the results workbook rather than the run's own output.

The codes of the plan (from the sheet or the options) with their names where the account told
them (the listing's rows, the backup's), the dates the requests' windows span, the activities
a listing or a backup counted, the backups read through, the exit code the last run ended with,
and the command that resumes it. Read-only, from the checkpoint (and its backup files) alone.
"""

from __future__ import annotations

import contextlib
import re
import shlex
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import DEFAULT_MAX_CODES_PER_REQUEST, DEFAULT_TZ
from ..errors import (
    EXIT_ABORTED,
    EXIT_INCOMPLETE,
    EXIT_INTERRUPTED,
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_SOFTWARE,
    EXIT_USAGE,
    AllowanceUsed,
    BulkDeleteError,
)
from ..store.backup_file import Damage, Member, walk
from ..store.checkpoint import Checkpoint
from ..store.report_data import Section
from ..summary import Counts, RunFigures, RunResult
from ..timetext import is_utc, plan_options, to_local
from .account import ACCOUNT_USER, HOST_META, JOB_FILE
from .outputs import backup_files

DATED = re.compile(r"^(.*)-(\d{4}-\d{2}-\d{2})\.sqlite$")  # a relative window's checkpoint

# An exit code in words, for someone who reads the page rather than a scheduler's log.
EXIT_WORDS = {
    EXIT_OK: "finished: every request queued, no invalid rows",
    EXIT_INCOMPLETE: "finished, with work left for a person: some requests failed or rows "
    "were invalid (below)",
    EXIT_USAGE: "stopped before sending: nothing was sent",
    EXIT_ABORTED: "aborted: LeadSquared refused or did not answer; a rerun resumes",
    EXIT_SOFTWARE: "crashed (a bug); every outcome recorded before is safe",
    EXIT_LOCKED: "stopped: the lock was held, or the day's allowance used; a rerun resumes",
    EXIT_INTERRUPTED: "interrupted by a signal; every answer received is saved",
}


@dataclass(frozen=True)
class Backups:
    """The checkpoint's backups read through: activities saved, the codes' names, problems."""

    files: list[str]
    activities: int
    names: dict[str, str]
    problems: list[str]


def read_backups(meta: dict[str, str]) -> Backups | None:
    files = backup_files(meta)
    if not files:
        return None
    saved, names, problems = 0, dict[str, str](), list[str]()
    for name in files:
        try:
            saved += _read_backup(Path(name), names)
        except FileNotFoundError:
            problems.append(f"{name} is missing")
        except (OSError, BulkDeleteError, ValueError) as error:
            problems.append(f"{name} cannot be read: {error}")
    return Backups(files, saved, names, problems)


def _read_backup(path: Path, names: dict[str, str]) -> int:
    """Activities saved in one backup file; each code's name as its rows give it."""
    saved = 0
    for item in walk(path):
        if isinstance(item, Damage):
            raise ValueError(str(item))
        if isinstance(item, Member) and item.request:
            saved += len(item.rows)
            for row in item.rows[:1]:
                _name_from(row, names)
    return saved


def _name_from(row: dict[str, Any], names: dict[str, str]) -> None:
    code = str(row.get("ActivityEvent") or "")
    activity = row.get("Activity")
    name = activity.get("EventName") if isinstance(activity, dict) else None
    if code and code not in names and isinstance(name, str) and name.strip():
        names[code] = name.strip()


def plan_codes(checkpoint: Checkpoint) -> list[str]:
    """The plan's codes: the requests', else the options' (a plan of no request)."""
    codes = checkpoint.plan_codes()
    if codes:
        return codes
    options = plan_options(checkpoint.meta, f"checkpoint {checkpoint.path}")
    return [str(code) for code in options.get("codes", [])]


def code_names(checkpoint: Checkpoint, backup: Backups | None) -> dict[str, str]:
    """Each code's name where the account told us: the listing's rows, the backup's."""
    names = dict(backup.names) if backup else {}
    with contextlib.suppress(sqlite3.OperationalError):  # a checkpoint from before listings
        names.update(checkpoint.found.event_names())
    return names


def window_facts(checkpoint: Checkpoint, tz: str) -> list[tuple[str, str]]:
    """The window in the run's zone and in UTC: one window, or the span the sheet's rows
    cover, with any open side named."""
    span = checkpoint.plan_span()
    if not (span.earliest or span.latest):
        if span.no_from or span.no_to:
            return [("Window", "open: no FromDate and no ToDate (the whole history)")]
        return []
    label = "Window" if span.one_window else "Dates span"
    start = to_local(span.earliest, tz) or "(no FromDate)"
    end = to_local(span.latest, tz) or "(no ToDate)"
    facts = [(f"{label} ({tz})", f"{start} → {end}")]
    if not is_utc(tz):
        utc = f"{span.earliest or '(no FromDate)'} → {span.latest or '(no ToDate)'}"
        facts.append((f"{label} (UTC, as sent)", utc))
    if span.no_from or span.no_to:
        facts.append(
            ("Open windows", f"{span.no_from:,} without FromDate, {span.no_to:,} without ToDate")
        )
    return facts


def activity_facts(checkpoint: Checkpoint, backup: Backups | None) -> list[tuple[str, str]]:
    """Activities, where something counted them: the listing, the backup."""
    facts = []
    try:
        listed = sum(activities for _, activities, _, _, _ in checkpoint.found.by_code())
    except sqlite3.OperationalError:
        listed = 0
    if listed:
        facts.append(("Activities", f"{listed:,} found by the listing in the window"))
    if backup is not None and not backup.problems:
        facts.append(
            ("Activities saved", f"{backup.activities:,} in the backup before their deletes")
        )
    if not facts:
        facts.append(
            ("Activities", "not counted (no listing, no backup): LeadSquared does not say")
        )
    return facts


ALLOWANCE_WORDS = (
    "the account's daily allowance was used: LeadSquared refused further calls until it resets "
    "(00:00 UTC for a daily one); rerun the same command then to resume"
)


def last_exit(checkpoint: Checkpoint) -> int | None:
    """The exit code the checkpoint's last run ended with, as its record tells (None: no
    run yet, or one killed before it could say)."""
    last = checkpoint.last_run()
    if last is not None and last.result is RunResult.RUNNING:
        return None
    return exit_of(last, checkpoint.counts())


@dataclass(frozen=True, kw_only=True)
class Ending:
    """How the run that wrote the page ended, as the CLI knows it: its exit code, the error
    it stopped on, and the command that resumes it, as typed. Without one (`report` on its
    own), the checkpoint's last run tells."""

    exit_code: int | None = None
    error: str = ""
    resume: str = ""


def account_line(meta: dict[str, str]) -> str:
    """The host and the keys' user the checkpoint's calls went to ("": none yet)."""
    host = meta.get(HOST_META, "")
    user = meta.get(ACCOUNT_USER, "")
    if not host:
        return ""
    return f"Account {host}" + (f", keys of {user}" if user else "")


@dataclass(frozen=True, kw_only=True)
class Left:
    """What a rerun has to do: how much (``count``, in words: "3 request(s)"), and the command."""

    count: int
    words: str
    resume: str
    nothing: str  # said when nothing is left


def how_it_ended(
    last: RunFigures | None,
    code: int | None,
    ending: Ending | None,
    left: Left,
    *,
    runs: int,
    exit_words: dict[int, str],
) -> Section:
    """How it ended: the exit status in words, interrupted or not, the command that resumes
    (a purge's page and a restore's)."""
    told = ending is not None and ending.exit_code is not None
    status = (
        "not sent yet: the plan is saved"
        if code is None
        else f"{code}: " + (exit_words.get(code, "ended"))
    )
    if last is not None and last.result is RunResult.RUNNING and not told:
        status = "unknown: the last run was killed before it could say (kill -9, power loss)"
    facts = [("Exit status", status)]
    if ending and ending.error:
        facts.append(("Stopped on", ending.error))
    elif last is not None and last.result is RunResult.ALLOWANCE_USED:  # (read later)
        facts.append(("Stopped on", ALLOWANCE_WORDS))
    interrupted = code == EXIT_INTERRUPTED or (
        last is not None and last.result is RunResult.INTERRUPTED
    )
    facts.append(
        ("Interrupted", "yes: stopped by a signal before it was done" if interrupted else "no")
    )
    facts.append(("Runs", f"{runs:,}"))
    if left.count or interrupted:
        resume = (ending.resume if ending and ending.resume else "") or left.resume
        facts.append(("To resume", f"{left.words} left: {resume}"))
    else:
        facts.append(("To resume", left.nothing))
    tone = "good" if code == EXIT_OK else "warn" if code in (EXIT_INCOMPLETE, None) else "bad"
    return Section(title="How it ended", facts=facts, tone=tone)


def exit_of(last: RunFigures | None, counts: Counts) -> int | None:
    """The exit code the checkpoint's last run ended with, as its record tells."""
    if last is None:
        return None
    by_result = {
        RunResult.INTERRUPTED: EXIT_INTERRUPTED,
        RunResult.ABORTED: EXIT_ABORTED,
        RunResult.ALLOWANCE_USED: AllowanceUsed.exit_code,
        RunResult.CRASHED: EXIT_SOFTWARE,
    }
    if last.result in by_result:
        return by_result[last.result]
    return EXIT_OK if counts.complete else EXIT_INCOMPLETE


def resume_command(checkpoint: Checkpoint, path: Path) -> str:
    """The command that resumes: the job's, or `run` with the plan's own options."""
    meta = checkpoint.meta
    if meta.get(JOB_FILE):
        words = ["bulk-delete", "job", meta[JOB_FILE]]
        dated = DATED.match(path.name)
        words += ["--as-of", dated.group(2)] if dated else []
        return shlex.join(words)
    options = plan_options(meta, f"checkpoint {path}")
    words = ["bulk-delete", "run"]
    if meta.get("discover") == "1":
        words.append("--discover")
    else:
        words.append(meta.get("input", "SHEET"))
    words += ["--checkpoint", str(path)]
    for key, flag in _FLAGS:
        value = options.get(key)
        values = value if isinstance(value, list) else [value]
        if key == "codes" and values:
            words += [flag, ",".join(str(code) for code in values)]
            continue
        for each in values:
            if each not in (None, "", []) and _DEFAULTS.get(key) != each:
                words += [flag, str(each)]
    span = checkpoint.plan_span()
    if span.no_from or span.no_to:
        words.append("--open-window")
    return shlex.join(words)


_DEFAULTS: dict[str, object] = {
    "tz": DEFAULT_TZ,
    "max_codes_per_request": DEFAULT_MAX_CODES_PER_REQUEST,
}

# The plan options a checkpoint keeps, and the flags that give them again.
_FLAGS = (
    ("codes", "--codes"),
    ("from", "--from"),
    ("to", "--to"),
    ("tz", "--tz"),
    ("webhook", "--webhook"),
    ("sheet", "--sheet"),
    ("max_codes_per_request", "--max-codes-per-request"),
    ("ignore_columns", "--ignore-column"),
)


def listed(checkpoint: Checkpoint) -> int | None:
    try:
        counted = checkpoint.found.by_code()
    except sqlite3.OperationalError:
        return None
    return sum(activities for _, activities, _, _, _ in counted) if counted else None
