"""--backup for the commands: open the run's backup file, and price it in the dry run.

The step itself (read, save, then send) is send/backup_step.py. Here: ``opened`` ties the file
to the checkpoint by a mark (another checkpoint's file: exit 2; its lock held: exit 75; damaged:
exit 3; a torn tail moved aside and said); ``price`` and ``discovered_price`` give the dry run
the Retrieve calls the backup adds and their time; ``verified`` reads every file the runs wrote
for ``verify``; ``backup_as_sheet`` exports one.

Why: docs/design/backup.md.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from ..config import RateLimit
from ..errors import DamagedBackup, InputError, StorageError
from ..files import being_written, require_file
from ..records import Request
from ..send import backup_fetch
from ..send.backup_step import BackupStep, BodySelection, Retriever
from ..store.backup_file import (
    BackupWriter,
    Damage,
    Exported,
    Member,
    Owner,
    Torn,
    export_backup,
    scan,
    walk,
)
from ..store.checkpoint import Checkpoint
from ..store.found import FoundStore
from ..summary import BackupVerified
from . import discover, outputs
from .outputs import BACKUP_FILES, BACKUP_META, backup_files
from .spec import RunSpec

BACKUP_MARK = "backup_mark"  # the mark its runs put first in each of them
DAMAGED = (
    "Nothing sent. Those members were written before their requests' deletes were sent: that "
    "copy of what they deleted is lost. Keep the file; restore it from a copy and rerun, or "
    "rerun with a new --backup file (`verify` then names the queued requests no backup holds)"
)


@dataclass(frozen=True, kw_only=True)
class BackupPrice:
    """What --backup adds to a run, shown before anything is sent."""

    path: Path
    calls: int  # Retrieve calls expected (one per code per request, more for big leads)
    seconds: float  # what they add at the effective rate (0 without a limiter)
    activities: int | None = None  # expected to be saved, where a listing counted them


def price(
    spec: RunSpec, requests: Iterable[Request], activities: int | None = None
) -> BackupPrice | None:
    """The dry run's price of the backup for these requests; None without --backup."""
    if spec.backup is None:
        return None
    calls = backup_fetch.expected_total(requests)
    return BackupPrice(
        path=spec.backup,
        calls=calls,
        seconds=_seconds(calls, spec.effective_rate),
        activities=activities,
    )


def discovered_price(spec: RunSpec, found: FoundStore) -> BackupPrice | None:
    """A discovered plan's backup: no call for a request whose listing rows carry the fields
    (they are saved as listed), a Retrieve per code for the others."""
    if spec.backup is None:
        return None
    fetched: list[Request] = []
    activities = 0
    for request, listed in discover.requests(found, spec.plan_options):
        activities += listed
        if found.listed_rows(request.prospect_id, request.codes) is None:
            fetched.append(request)
    calls = backup_fetch.expected_total(fetched)
    return BackupPrice(
        path=spec.backup,
        calls=calls,
        seconds=_seconds(calls, spec.effective_rate),
        activities=activities,
    )


def _seconds(calls: int, rate: RateLimit) -> float:
    return 0.0 if rate.unlimited else calls / rate.per_second


@contextlib.contextmanager
def opened(
    spec: RunSpec,
    checkpoint: Checkpoint,
    retrieve: Retriever,
    on_notice: Callable[[str], None] = lambda _: None,
) -> Iterator[BackupStep | None]:
    """The run's backup step, its file open (created 0600, or reopened to append) and locked
    for as long as the run needs it; None without --backup. Raises before the first call: a
    file of another checkpoint or not a backup (exit 2), one another process writes (75), a
    damaged one (StorageError, exit 3)."""
    if spec.backup is None:
        yield None
        return
    try:
        writer = BackupWriter.open(spec.backup, _owner(checkpoint, spec.backup))
    except DamagedBackup as error:
        raise StorageError(f"{error}. {DAMAGED}.") from None
    with writer:
        _remember(checkpoint, spec.backup)
        if writer.torn is not None and writer.set_aside is not None:
            on_notice(torn_text(writer.path, writer.torn.size, writer.set_aside))
        listed = partial(_listed, checkpoint.found) if spec.discover else None
        yield BackupStep(writer, retrieve, listed=listed)


def torn_text(path: Path, size: int, aside: Path) -> str:
    return (
        f"the backup {path} ended in {size:,} bytes of a member cut mid-write (a run killed "
        f"while saving a request, before its delete was sent): moved to {aside}; that "
        "request is read and saved again"
    )


def _owner(checkpoint: Checkpoint, path: Path) -> Owner:
    """The checkpoint's mark (made, and committed to the checkpoint, before any file carries
    it), and whether it names this file as its backup already (a file from before marks)."""
    mark = checkpoint.meta.get(BACKUP_MARK)
    if not mark:
        mark = uuid.uuid4().hex
        checkpoint.set_meta(BACKUP_MARK, mark)
    wrote = str(path.resolve()) in backup_files(checkpoint.meta)
    return Owner(
        mark=mark, checkpoint=checkpoint.location, wrote_before=wrote, was_sent=checkpoint.was_sent
    )


def _remember(checkpoint: Checkpoint, path: Path) -> None:
    name = str(path.resolve())
    files = backup_files(checkpoint.meta)
    checkpoint.set_meta(BACKUP_FILES, json.dumps(files if name in files else [*files, name]))
    checkpoint.set_meta(BACKUP_META, name)


def _listed(found: FoundStore, request: BodySelection) -> list[dict[str, Any]] | None:
    """A discovered request's activities as its listing rows, when they carry the fields."""
    rows = found.listed_rows(request.prospect_id, request.codes)
    return None if rows is None else [json.loads(row) for row in rows]


def backup_as_sheet(backup: Path, out: Path) -> Exported:
    """`export --backup`: the backup as a spreadsheet; never written over the backup itself.
    A backup that cannot be read whole is an input error (exit 2): never a short export."""
    require_file(backup, "backup file", missing="no such backup file")
    outputs.check([outputs.Named("--out", out)], [outputs.Named("the backup", backup)])
    found = scan(backup)
    notes: list[str] = []
    if not found.damage:  # (damage: the export names it)
        mark, named = found.marks[0] if found.marks else ("", "")
        nothing = f"nothing exported ({out} not written)"
        notes = sends_held(backup, set(found.spans), found.tail, mark, named, nothing=nothing)
    try:
        done = export_backup(backup, out)
    except DamagedBackup as error:
        raise InputError(
            f"{error}; nothing exported ({out} not written). The members before the damage "
            "still read (`zcat` stops at it); restore the file from a copy if you have one"
        ) from None
    return dataclasses.replace(done, torn=None, notes=tuple(notes)) if notes else done


# ---------------------------------------------------------------- a backup against its purge


def sends_held(
    path: Path, held: set[int], tail: Torn | None, mark: str, named: str, *, nothing: str
) -> list[str]:
    """Whether the file holds a copy of every request its purge sent, which its members alone
    cannot say: a copy cut short at a member's edge, or missing a whole member, reads clean.
    With the purge's checkpoint (``named`` in the mark, and still marked ``mark``) readable,
    each request it records as sent with no member here, nor in a later file of its own (a
    run moved to a new --backup), is damage: InputError (exit 2) naming them. Without it, a
    torn tail or a gap in the request numbers is returned as a note saying what cannot be
    known. ``nothing``: what the refusal left undone ("nothing posted")."""
    writing = [WRITING.format(path=path)] if being_written(path) else []
    checkpoint, why = _purge_of(mark, named)
    if checkpoint is None:  # the guard cannot work: said, whatever the file looks like
        return writing + (
            _unknowable(path, held, tail, why)
            or [f"{why}, so whether {path} holds every request its purge sent cannot be checked"]
        )
    with checkpoint:
        others = _other_files(checkpoint, path, held)
        lost = [seq for seq in checkpoint.sent_requests() if seq not in held]
    moved_to = set().union(*(spans for spans, copy in others.values() if not copy))
    if lost := [seq for seq in lost if seq not in moved_to]:
        copies = [name for name, (spans, copy) in others.items() if copy and lost[0] in spans]
        lost_text = _lost_text(path, lost, tail, named, copies)
        raise InputError(f"{writing[0] if writing else lost_text}; {nothing}")
    return writing


def _other_files(
    checkpoint: Checkpoint, path: Path, held: set[int]
) -> dict[str, tuple[set[int], bool]]:
    """The checkpoint's other backup files: the requests each holds, and whether it is the
    file this one was copied from (this one is none of the purge's own files, and that one
    holds every request this one does). A copy's requests are not this file's; another of the
    purge's files holds its own (a run resumed with a new --backup re-saves what it had not
    sent yet, so a later file may hold all of an earlier one)."""
    names = backup_files(checkpoint.meta)
    own = path.resolve() in {Path(name) for name in names}
    found: dict[str, tuple[set[int], bool]] = {}
    for name in names:
        if Path(name) == path.resolve() or not Path(name).is_file():
            continue
        with contextlib.suppress(InputError):
            spans = set(scan(name).spans)
            found[name] = (spans, not own and bool(held) and held <= spans)
    return found


WRITING = (
    "{path} is still being written by its purge (a run holds its lock): it holds the requests "
    "saved so far, and a later one may be sent before this is read through. Rerun once the "
    "purge has ended"
)


def _purge_of(mark: str, named: str) -> tuple[Checkpoint | None, str]:
    """The purge's checkpoint the mark names, read-only; or None and why it cannot be used."""
    if not mark or not named:
        return None, "the file names no purge checkpoint (a backup from before the mark)"
    try:
        checkpoint = Checkpoint.open_existing(named)
    except InputError as error:
        return None, f"its purge's checkpoint cannot be read ({error})"
    if checkpoint.meta.get(BACKUP_MARK) != mark:
        checkpoint.close()
        return None, f"its purge's checkpoint {named} is now another checkpoint's file"
    return checkpoint, ""


def _lost_text(
    path: Path, lost: list[int], tail: Torn | None, named: str, copies: list[str]
) -> str:
    cut = (
        f"; it ends in a member cut short at byte {tail.start:,} (a copy cut short)" if tail else ""
    )
    whole = f"the purge's own backup {copies[0]} holds them" if copies else "use a whole copy"
    return (
        f"{path} holds no copy of {len(lost):,} request(s) its purge's checkpoint {named} "
        f"records as sent: {_numbers(lost)}{cut}. What their deletes took cannot come back "
        f"from this file ({whole})"
    )


def _unknowable(path: Path, held: set[int], tail: Torn | None, why: str) -> list[str]:
    notes = []
    last = max(held, default=0)
    if tail is not None:
        notes.append(
            f"{path} ends early: its last {tail.size:,} bytes are a member cut short"
            + (f" (request {tail.request})" if tail.request else "")
            + ". A write killed half way was never sent; a copy cut short has lost that "
            f"request and any after request {last}. {why}, so which cannot be known"
        )
    if gaps := sorted(set(range(1, last)) - held):
        notes.append(
            f"{path} has no member for request(s) {_numbers(gaps)}: never sent (not backed "
            f"up, or the run stopped first), or lost from the file. {why}, so which cannot "
            "be known"
        )
    return notes


def _numbers(seqs: list[int], shown: int = 10) -> str:
    more = f" and {len(seqs) - shown:,} more" if len(seqs) > shown else ""
    return ", ".join(str(seq) for seq in seqs[:shown]) + more


def verified(checkpoint: Checkpoint, shown: int = 5) -> BackupVerified | None:
    """The backups the checkpoint's runs wrote, against what `verify` found still present:
    per request, activities saved before its delete and activities left in its window (an
    activity created in the window after the backup counts as present too); then what could
    not be read, and the queued requests no backup holds."""
    names = backup_files(checkpoint.meta)
    if not names:
        return None
    left = checkpoint.verified_remaining()
    held: dict[int, set[str]] = {}  # request → the ids saved for it, over every file
    damaged: list[str] = []
    mark = checkpoint.meta.get(BACKUP_MARK, "")
    for name in names:
        damaged += _read_into(Path(name), held, left, mark)
    saved = {seq: len(held[seq]) for seq in sorted(held) if seq in left}
    unsaved = [(seq, lead) for seq, lead in checkpoint.queued_leads().items() if seq not in held]
    uneven = tuple((seq, saved[seq], left[seq]) for seq in saved if left[seq] > 0)
    result = BackupVerified(
        file=", ".join(name if Path(name).is_file() else f"{name} (missing)" for name in names),
        requests=len(saved),
        saved=sum(saved.values()),
        present=sum(left[seq] for seq in saved),
        uneven=uneven[:shown],
        damaged=tuple(damaged),
        unsaved=len(unsaved),
        unsaved_shown=tuple(unsaved[:shown]),
    )
    checkpoint.set_meta(
        "backup_verified",
        f"saved={result.saved} present={result.present} unsaved={result.unsaved}",
    )
    return result


def _read_into(path: Path, held: dict[int, set[str]], left: dict[int, int], mark: str) -> list[str]:
    """Add the ids each request's members hold in ``path`` (kept for verified requests only)
    to ``held``; returns what could not be read, named. Members after another checkpoint's
    mark are that checkpoint's (the file was replaced, or backups were joined with ``cat``):
    its requests are numbered from 1 too, so they are named and never counted as ours."""
    if not path.is_file():
        return []
    damaged = []
    owner = ""  # the mark the members so far come after ("": a file from before marks)
    try:
        for item in walk(path):
            if isinstance(item, Damage):
                damaged.append(f"{path} cannot be read whole: {item}")
            elif isinstance(item, Member) and item.request == 0:
                if (owner := item.mark) != mark:
                    damaged.append(_not_ours(path, item))
            elif isinstance(item, Member) and owner in ("", mark):
                ids = held.setdefault(item.request, set())
                if item.request in left:
                    ids.update(str(row.get("ProspectActivityId") or "") for row in item.rows)
    except InputError as error:
        damaged.append(str(error))
    return damaged


def _not_ours(path: Path, mark: Member) -> str:
    whose = f" ({mark.checkpoint})" if mark.checkpoint else ""
    return (
        f"{path} holds another checkpoint's backup{whose} from byte {mark.start:,}: "
        "its members are not counted"
    )
