"""--backup for the commands: open the run's backup file, and price it in the dry run.

The step itself (read, save, then send) lives in send/backup_step.py; this module decides
what the commands need around it: the writer opened under the checkpoint's lock (so two runs
never append to one file), the checkpoint told where the backup is (``verify`` and ``status``
find it there), and the dry run's figures: the Retrieve calls the backup adds (fetch.py's
``expected_total``) and the time they take at the run's rate.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from ..config import RateLimit
from ..errors import InputError
from ..records import Request
from ..send import fetch
from ..send.backup_step import BackupStep, Retriever, Selection
from ..spec import RunSpec
from ..store.backup import BackupWriter, export_backup, members
from ..store.checkpoint import Checkpoint
from ..store.found import FoundStore
from ..summary import BackupVerified
from . import discover, outputs

BACKUP_META = "backup"  # checkpoint meta: the backup file of this plan (its real path)


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
    calls = fetch.expected_total(requests)
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
    calls = fetch.expected_total(fetched)
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
    spec: RunSpec, checkpoint: Checkpoint, retrieve: Retriever
) -> Iterator[BackupStep | None]:
    """The run's backup step, its file open (created 0600, or reopened to append) for as
    long as the caller holds the checkpoint's lock; None without --backup."""
    if spec.backup is None:
        yield None
        return
    with BackupWriter.open(spec.backup) as writer:
        _check_written_here(checkpoint, spec.backup, writer)
        checkpoint.set_meta(BACKUP_META, str(spec.backup.resolve()))
        listed = partial(_listed, checkpoint.found) if spec.discover else None
        yield BackupStep(writer, retrieve, listed=listed)


def _check_written_here(checkpoint: Checkpoint, path: Path, writer: BackupWriter) -> None:
    """A file holding another checkpoint's members is refused: members name their request by
    the checkpoint's number, and a new plan numbers from 1 again, so its requests would be
    taken for saved ones and verify would count the other plan's rows as this one's."""
    wrote = checkpoint.meta.get(BACKUP_META)
    if writer.saved_requests() and wrote != str(path.resolve()):
        raise InputError(
            f"{path} holds the backup of another checkpoint's run; choose a new file for this "
            + (f"plan (this checkpoint's backup is {wrote})" if wrote else "plan")
        )


def _listed(found: FoundStore, request: Selection) -> list[dict[str, Any]] | None:
    """A discovered request's activities as its listing rows, when they carry the fields."""
    rows = found.listed_rows(request.prospect_id, request.codes)
    return None if rows is None else [json.loads(row) for row in rows]


def export(backup: Path, out: Path) -> int:
    """`export --backup`: the backup as a spreadsheet; never written over the backup itself."""
    if not backup.is_file():
        raise InputError(f"{backup}: no such backup file")
    outputs.check([outputs.Named("--out", out)], [outputs.Named("the backup", backup)])
    return export_backup(backup, out)


def verified(checkpoint: Checkpoint, shown: int = 5) -> BackupVerified | None:
    """The backup the checkpoint's runs wrote, against what `verify` found still present:
    per request, activities saved before its delete and activities left in its window. (An
    activity created in the window after the backup counts as present too.)"""
    name = checkpoint.meta.get(BACKUP_META)
    if not name:
        return None
    path = Path(name)
    if not path.is_file():
        return BackupVerified(file=f"{name} (missing)")
    left = checkpoint.verified_remaining()
    saved: dict[int, int] = {}
    with path.open("rb") as handle:
        for member in members(handle, path):
            if member.request in left:  # a resume may have added a member to a request
                saved[member.request] = saved.get(member.request, 0) + len(member.rows)
    uneven = tuple((seq, saved[seq], left[seq]) for seq in sorted(saved) if left[seq] > 0)
    result = BackupVerified(
        file=name,
        requests=len(saved),
        saved=sum(saved.values()),
        present=sum(left[seq] for seq in saved),
        uneven=uneven[:shown],
    )
    checkpoint.set_meta("backup_verified", f"saved={result.saved} present={result.present}")
    return result
