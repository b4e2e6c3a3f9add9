"""backup → the activities to post back, and what posting them costs: a restore's plan.

The backup is read whole first (damaged, foreign or two checkpoints' joined: exit 2; a torn
tail is left out). The selection is ``--request``, ``--lead``, ``--sheet``, ``--codes``,
``--from``/``--to`` (in ``--tz``), all of which must hold. The price is one Retrieve per lead and
code, then the posts by Create or the bulk add, whichever is faster; the plan says which.

Why: docs/design/restore.md.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from ..api import BULK_MAX_ACTIVITIES
from ..config import RateLimit
from ..errors import DamagedBackup, InputError, NotABackup
from ..files import being_written, require_file
from ..records import Restorable, Restored
from ..send.posting import restorable
from ..store.backup_file import Damage, Member, Torn, walk
from .backups import WRITING, sends_held
from .spec import GUID, RunSpec

READS_FIRST = (Restored.UNCHECKED, Restored.PRESENT, Restored.POSTING)
TIE = 0.02  # two ways within 2 % of each other post as fast


class Mode(StrEnum):
    """How activities are posted: Create (one a call) or the bulk add (25 a call)."""

    SINGLE = "single"
    BULK = "bulk"


@dataclass(frozen=True, kw_only=True)
class Selection:
    """Which of the backup's activities to post back; an empty part selects all."""

    requests: frozenset[int] = frozenset()
    leads: frozenset[str] = frozenset()
    codes: frozenset[str] = frozenset()
    from_date: str = ""  # UTC, on the activity's date
    to_date: str = ""

    def takes(self, activity: Restorable) -> bool:
        return (
            (not self.requests or activity.request in self.requests)
            and (not self.leads or activity.prospect_id in self.leads)
            and (not self.codes or activity.code in self.codes)
            and (not self.from_date or activity.date >= self.from_date)
            and (not self.to_date or activity.date <= self.to_date)
        )

    def words(self) -> str:
        """The selection as people read it: "every activity", or each part given."""
        parts = []
        if self.requests:
            parts.append(f"request(s) {', '.join(map(str, sorted(self.requests)))}")
        if self.leads:
            parts.append(f"lead(s) {', '.join(sorted(self.leads))}")
        if self.codes:
            parts.append(f"code(s) {', '.join(sorted(self.codes, key=int))}")
        if self.from_date and self.to_date:
            parts.append(f"dated {self.from_date} to {self.to_date} UTC")
        elif self.from_date:
            parts.append(f"dated from {self.from_date} UTC")
        elif self.to_date:
            parts.append(f"dated up to {self.to_date} UTC")
        return "; ".join(parts) or "every activity"

    def as_dict(self) -> dict[str, object]:
        return {
            "requests": sorted(self.requests),
            "leads": sorted(self.leads),
            "codes": sorted(self.codes, key=int),
            "from": self.from_date,
            "to": self.to_date,
        }


def selection_of(spec: RunSpec) -> Selection:
    """The spec's selection; --from/--to in --tz become UTC as a purge's window does."""
    window = spec.plan_options.row_defaults()
    leads = set(spec.restore_leads)
    if spec.lead_sheet is not None:
        leads |= sheet_leads(spec.lead_sheet, spec.header_row)
    return Selection(
        requests=frozenset(spec.restore_requests),
        leads=frozenset(leads),
        codes=frozenset(spec.codes),
        from_date=window.from_date,
        to_date=window.to_date,
    )


def chosen(backup: BackupRead, selection: Selection) -> list[Restorable]:
    """The backup's activities the selection takes. InputError (exit 2) when it takes none: a
    mistyped lead or code, or a window the backup does not reach, must not read as "every
    selected activity is settled"."""
    taken = [activity for activity in backup.activities if selection.takes(activity)]
    if taken:
        return taken
    if not backup.activities:
        if being_written(backup.path):  # its purge has saved nothing yet
            raise InputError(f"{WRITING.format(path=backup.path)}; nothing would be restored")
        raise InputError(f"{backup.path} holds no activity; nothing would be restored")
    raise InputError(
        f"the selection ({selection.words()}) matches none of the {_held(backup)}; "
        "nothing would be restored"
    )


def _held(backup: BackupRead) -> str:
    """What the backup holds, to set a selection that matched nothing beside it."""
    activities = backup.activities
    dates = sorted(a.date for a in activities)
    codes = ", ".join(sorted({a.code for a in activities}, key=int))
    leads = len({a.prospect_id for a in activities})
    return (
        f"{len(activities):,} activities of the backup (on {leads:,} lead(s), code(s) {codes}, "
        f"dated {dates[0]} to {dates[-1]} UTC)"
    )


def sheet_leads(path: Path, header_row: int | None = None) -> set[str]:
    """The ProspectIds of a sheet (CSV or Excel, read as a purge's sheet is); a cell that is
    no GUID is named by its row, and nothing is posted (exit 2)."""
    from ..sheet.read import open_sheet  # (pandas: only when a sheet is given)

    leads: set[str] = set()
    with open_sheet(path, header_row=header_row) as sheet:
        for row in sheet:
            cell = "" if row is None or row.cells[0] is None else str(row.cells[0]).strip()
            if row is None or not cell:
                continue
            if not GUID.fullmatch(cell):
                raise InputError(f"{path} row {row.row}: {cell[:60]!r} is not a ProspectId")
            leads.add(cell.lower())
    if not leads:
        raise InputError(f"{path}: no ProspectId in it; nothing would be restored")
    return leads


# ---------------------------------------------------------------- the backup, read whole


@dataclass(frozen=True)
class BackupRead:
    """A backup read through: its activities (each once, in the order saved), the checkpoint
    it belongs to, what could not be posted, and the torn bytes left out."""

    path: Path
    activities: list[Restorable]
    mark: str = ""  # the purge checkpoint's mark ("": a file from before marks)
    checkpoint: str = ""  # … and its file, for people
    unusable: int = 0  # lines without a lead, an id, a code or a date
    torn: int = 0  # a torn tail's bytes, its request known never sent
    notes: tuple[str, ...] = ()  # what the file cannot tell of itself (backups.sends_held)


def read_whole(path: Path) -> BackupRead:
    """Every activity of the backup at ``path``. InputError (exit 2) for a file that is not
    one, one that cannot be read whole (each damaged member named), or two backups in one."""
    require_file(path, "backup file", missing="no such backup file")
    damage: list[Damage] = []
    marks: dict[str, str] = {}
    activities: dict[str, Restorable] = {}
    held: set[int] = set()
    unusable, tail = 0, None
    ours = False
    for item in walk(path):
        if isinstance(item, Damage):
            damage.append(item)
        elif isinstance(item, Torn):
            tail = item
        elif item.request == 0:
            ours = True
            marks.setdefault(item.mark, item.checkpoint)
        else:
            ours = True
            held.add(item.request)
            unusable += _add(item, activities)
    _refuse(path, damage, ours, marks)
    mark, checkpoint = next(iter(marks.items()), ("", ""))
    notes = sends_held(path, held, tail, mark, checkpoint, nothing="nothing posted")
    torn = tail.size if tail is not None and not notes else 0  # else a note says it
    chosen = list(activities.values())
    return BackupRead(path, chosen, mark, checkpoint, unusable, torn, tuple(notes))


def _add(member: Member, activities: dict[str, Restorable]) -> int:
    """The member's activities, each id once (a resumed purge may save one twice); returns
    how many lines could not be posted."""
    unusable = 0
    for row in member.rows:
        activity = restorable(row)
        if activity is None:
            unusable += 1
        else:
            activities.setdefault(activity.old_id, activity)
    return unusable


def _refuse(path: Path, damage: list[Damage], ours: bool, marks: dict[str, str]) -> None:
    if not ours:
        why = f" ({damage[0]})" if damage else " (it holds no member of one)"
        raise NotABackup(f"{path} is not a bulk-delete backup{why}; nothing posted")
    if damage:
        raise InputError(
            f"{DamagedBackup(path, damage)}; nothing posted. A restore reads a backup whole "
            "or not at all: restore the file from a copy, or restore from the members before "
            "the damage by hand (`zcat` stops at it)"
        )
    if len(marks) > 1:
        named = ", ".join(name or mark for mark, name in marks.items())
        raise InputError(
            f"{path} holds the backups of {len(marks)} purges ({named}), joined into one file: "
            "their request numbers overlap. Restore each purge's own backup; nothing posted."
        )


def fingerprint(backup: BackupRead, selection: Selection, chosen: list[Restorable]) -> str:
    """What a restore checkpoint was made from: the backup's purge, the selection and the
    activities it chose. Another backup, or the same one grown, is another restore."""
    text = json.dumps(
        {
            "mark": backup.mark,
            "selection": selection.as_dict(),
            "activities": [activity.old_id for activity in chosen],
        },
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()


# ---------------------------------------------------------------- the price


@dataclass(frozen=True, kw_only=True)
class RestorePlan:
    """What the restore will do, shown before anything is sent."""

    backup: str
    activities: int  # still to do (a resume: what earlier runs left)
    leads: int
    requests: int
    codes: tuple[tuple[str, int], ...]  # (code, activities)
    first: str  # the oldest activity date, UTC
    last: str
    owners_known: int
    mode: Mode
    why: str  # the choice, in numbers
    reads: int  # Retrieve calls: one per lead and code at least
    posts: int  # post calls
    preflight: int
    seconds: float  # at least, at the limits
    account: RateLimit
    bulk: RateLimit
    done: int = 0  # posted by earlier runs
    held: int = 0  # found still present by an earlier run (read again)
    unusable: int = 0
    torn: int = 0
    notes: tuple[str, ...] = ()  # what the backup cannot tell of itself

    @property
    def calls(self) -> int:
        return self.preflight + self.reads + self.posts

    @property
    def carried(self) -> int:
        """The most activities one post carries."""
        return 1 if self.mode is Mode.SINGLE else BULK_MAX_ACTIVITIES

    def binding(self, account: RateLimit) -> RateLimit | None:
        """The limit that holds the posting back, in calls: the account's for Create; for the
        bulk add, the slower of its own window and the account's. None: no limit."""
        limits = [account] if self.mode is Mode.SINGLE else [self.bulk, account]
        kept = [limit for limit in limits if not limit.unlimited]
        return min(kept, key=lambda limit: limit.per_second) if kept else None

    def limit_per_second(self, account: RateLimit) -> float | None:
        """The most the limit in force lets the restore post, in activities per second."""
        binding = self.binding(account)
        return None if binding is None else round(binding.per_second * self.carried, 4)


def price(
    todo: Iterable[tuple[Restorable, Restored]],
    *,
    spec: RunSpec,
    account: RateLimit,
    bulk: RateLimit,
    measured: dict[Mode, float] | None = None,
    backup: BackupRead | None = None,
    done: int = 0,
) -> RestorePlan:
    """The plan of ``todo`` (each activity and where it stands) at these limits."""
    todo = list(todo)
    activities = [activity for activity, _ in todo]
    reads = len({(a.prospect_id, a.code) for a, status in todo if status in READS_FIRST})
    owners = sum(1 for a in activities if a.owner_email)
    mode, why, rate = _choose(spec.post, owners, account, bulk, measured or {})
    posts = len(activities)
    posts = posts if mode is Mode.SINGLE else math.ceil(posts / BULK_MAX_ACTIVITIES)
    dates = sorted(a.date for a in activities)
    return RestorePlan(
        backup=str(spec.backup or (backup.path if backup else "")),
        activities=len(activities),
        leads=len({a.prospect_id for a in activities}),
        requests=len({a.request for a in activities}),
        codes=tuple(sorted(Counter(a.code for a in activities).items(), key=lambda c: int(c[0]))),
        first=dates[0] if dates else "",
        last=dates[-1] if dates else "",
        owners_known=owners,
        mode=mode,
        why=why,
        reads=reads,
        posts=posts,
        preflight=int(spec.preflight) if activities else 0,
        seconds=_seconds(reads, account) + (len(activities) / rate if rate else 0.0),
        account=account,
        bulk=bulk,
        done=done,
        held=sum(1 for _, status in todo if status is Restored.PRESENT),
        unusable=backup.unusable if backup else 0,
        torn=backup.torn if backup else 0,
        notes=backup.notes if backup else (),
    )


def _seconds(calls: int, limit: RateLimit) -> float:
    return 0.0 if limit.unlimited else calls / limit.per_second


def _choose(
    asked: str,
    owners: int,
    account: RateLimit,
    bulk: RateLimit,
    measured: dict[Mode, float],
) -> tuple[Mode, str, float]:
    """(mode, why, activities per second): as asked, else the faster; as fast, the bulk add
    when it carries owners back, else Create (a lost answer then leaves one activity in
    doubt, not 25)."""
    per_second = math.inf if account.unlimited else account.per_second
    bulk_calls = per_second if bulk.unlimited else min(bulk.per_second, per_second)
    rates = {
        Mode.SINGLE: measured.get(Mode.SINGLE) or per_second,
        Mode.BULK: measured.get(Mode.BULK) or bulk_calls * BULK_MAX_ACTIVITIES,
    }
    said = {
        Mode.SINGLE: f"Create: 1 a call at {account}, {_rate(rates[Mode.SINGLE])}",
        Mode.BULK: f"the bulk add: {BULK_MAX_ACTIVITIES} a call at {bulk}, "
        f"{_rate(rates[Mode.BULK])}",
    }
    for mode in Mode:
        if mode in measured:
            said[mode] += " (measured by an earlier run)"
    if asked in (Mode.SINGLE, Mode.BULK):
        mode = Mode(asked)
        reason = f"--post {asked}"
    elif _as_fast(rates[Mode.BULK], rates[Mode.SINGLE]):
        mode = Mode.BULK if owners else Mode.SINGLE
        reason = (
            "as fast; it alone carries back the owners the backup names"
            if owners
            else "as fast; a lost answer then leaves one activity in doubt, not 25"
        )
    else:
        mode = max(rates, key=lambda each: rates[each])
        reason = "faster"
    other = Mode.BULK if mode is Mode.SINGLE else Mode.SINGLE
    return mode, f"{said[mode]} ({reason}); {said[other]}", rates[mode]


def _as_fast(one: float, other: float) -> bool:
    if math.isinf(one) or math.isinf(other):
        return one == other
    return abs(one - other) <= TIE * max(one, other)


def _rate(activities_per_second: float) -> str:
    if math.isinf(activities_per_second):
        return "no limit"
    return f"{activities_per_second:.2f} activities/s"
