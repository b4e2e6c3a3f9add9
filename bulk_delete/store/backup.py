"""The backup: what each request is about to delete, on disk before the request is sent.

**Format: gzip-compressed JSON Lines, one gzip member per request.** Why not Parquet:

- *Durable per request.* A request may be sent only once its activities are on disk, so the
  file must grow by one small, complete, fsync'd unit per request. A gzip member is exactly
  that: ``write`` compresses the request's lines into one member, appends it with a single
  ``os.write`` and fsyncs before returning. Parquet writes its footer (the schema and where
  every row group is) at close: a file killed before ``close`` is unreadable, and durable row
  groups would mean one file per request.
- *Append-only across resumes.* Concatenated gzip members are one valid gzip file (RFC 1952),
  so a resumed run opens the same file and appends; nothing already written is rewritten.
- *A kill -9 mid-write corrupts nothing before it.* The last member may be torn; every member
  before it is complete and carries its own CRC. Readers stop at the torn member and ignore it;
  the writer, on reopening, moves the torn bytes aside (``PATH.torn-OFFSET``, kept, never
  deleted) and appends after the last whole member. A torn member's request was never sent (its
  write had not returned), so the resumed run fetches and writes it again.
- *Readable by people and programs.* ``zcat backup.jsonl.gz | jq .`` works with no tool of
  ours; Python's gzip/json, pandas (``lines=True``) and DuckDB read it too. Fields stay exactly
  as LeadSquared returned them (strings stay strings; ``Data`` stays a list of Key/Value
  pairs), which a columnar schema would have to guess at. ``export_backup`` gives spreadsheet
  users a flat .xlsx or .csv.

**Lines.** Each member holds one line per activity of its request::

    {"Request": 12, "ProspectId": "…", "ProspectActivityId": "…", "ActivityEvent": "201",
     "CreatedOn": "…", "ModifiedOn": "…", "Activity": {…every field as returned…}}

and ends with a seal line ``{"Request": 12, "Saved": N}``. The seal says the request is saved
(even with no activity at all: a request whose window holds nothing still gets a member), and
``N`` lets a reader check the member holds every line it was written with.

**A request may have more than one member.** A resumed run reads a saved-but-unsent request
again (send/backup_step.py) and appends what was created since as a further member of the same
request (``BackupWriter.add``): its activities are the union of its members' rows, each id
once. Members are never rewritten.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import threading
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import InputError, StorageError

FILE_MODE = 0o600  # like the checkpoint: a backup holds the account's data
_READ_CHUNK = 1 << 16


@dataclass(frozen=True, slots=True)
class Member:
    """One whole member: its request, its activity rows, and where it ends in the file."""

    request: int
    rows: list[dict[str, Any]]
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Scan:
    """A backup file read through: the requests it holds, and the torn bytes after them."""

    requests: list[int]
    end: int  # where the last whole member ends
    torn: int  # bytes after it that do not make a whole member (a write killed half way)
    spans: dict[int, list[tuple[int, int]]]  # each request's members: (start, end) in the file


class NotABackup(InputError):
    """A file that holds something other than whole members of ours and torn bytes after."""


def activity_id(activity: dict[str, Any]) -> str:
    """The activity's id, as a Retrieve row (``Id``) or a listing row names it."""
    return str(activity.get("Id") or activity.get("ProspectActivityId") or "")


def activity_row(seq: int, lead: str, activity: dict[str, Any]) -> dict[str, Any]:
    """One activity as a backup line: the columns everyone needs, then the whole activity
    (a Retrieve row, or a listing row, which names the same things otherwise)."""
    return {
        "Request": seq,
        "ProspectId": lead,
        "ProspectActivityId": activity_id(activity),
        "ActivityEvent": str(activity.get("EventCode") or activity.get("ActivityEvent") or ""),
        "CreatedOn": str(activity.get("CreatedOn") or ""),
        "ModifiedOn": str(activity.get("ModifiedOn") or ""),
        "Activity": activity,
    }


def encode_member(seq: int, lead: str, activities: Iterable[dict[str, Any]]) -> bytes:
    """One request's lines, sealed, as one gzip member."""
    rows = [activity_row(seq, lead, activity) for activity in activities]
    lines = [json.dumps(row, ensure_ascii=False) for row in rows]
    lines.append(json.dumps({"Request": seq, "Saved": len(rows)}))
    return gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0)


def scan(path: Path) -> Scan:
    """The requests of every whole member, and how many torn bytes follow the last one."""
    requests: list[int] = []
    spans: dict[int, list[tuple[int, int]]] = {}
    end = 0
    with path.open("rb") as handle:
        for member in members(handle, path):
            requests.append(member.request)
            spans.setdefault(member.request, []).append((member.start, member.end))
            end = member.end
        size = handle.seek(0, os.SEEK_END)
    return Scan(requests, end, size - end, spans)


def members(handle: BinaryIO, path: Path) -> Iterator[Member]:
    """The file's whole members in order, read in chunks (one member in memory at a time).
    A member that does not end, or bytes that are not gzip, end the file: a write killed half
    way, or what a crash left after it. A member that ends but is not ours raises NotABackup."""
    pending, start = b"", 0
    while True:
        inflater = zlib.decompressobj(wbits=31)  # gzip framing: header and CRC-32 checked
        parts: list[bytes] = []
        fed = 0
        chunk = pending or handle.read(_READ_CHUNK)
        try:
            while chunk:
                parts.append(inflater.decompress(chunk))
                fed += len(chunk)
                if inflater.eof:
                    break
                chunk = handle.read(_READ_CHUNK)
        except zlib.error:
            return
        if not inflater.eof:
            return
        pending = inflater.unused_data
        end = start + fed - len(pending)
        yield _parsed(b"".join(parts), start, end, path)
        start = end


def _parsed(text: bytes, start: int, end: int, path: Path) -> Member:
    """One whole member's lines, checked against its seal."""
    problem = f"{path} is not a bulk-delete backup (the gzip member at byte {start:,} "
    try:
        lines = [json.loads(line) for line in text.decode().split("\n") if line]
    except (UnicodeDecodeError, ValueError):
        raise NotABackup(problem + "is not JSON Lines)") from None
    seal = lines[-1] if lines and isinstance(lines[-1], dict) else {}
    rows = lines[:-1]
    if not isinstance(seal.get("Saved"), int) or not isinstance(seal.get("Request"), int):
        raise NotABackup(problem + "does not end with a request's seal)")
    if seal["Saved"] != len(rows) or any(row.get("Request") != seal["Request"] for row in rows):
        raise NotABackup(problem + f"should hold {seal['Saved']:,} rows of its request)")
    return Member(seal["Request"], rows, start, end)


def read_backup(path: str | Path) -> Iterator[dict[str, Any]]:
    """Every activity row of the backup, in the order written; a torn last member (a run
    killed while writing it) is ignored, as its request was never sent."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            for member in members(handle, path):
                yield from member.rows
    except OSError as exc:
        raise InputError(f"cannot read the backup {path}: {exc.strerror or exc}") from None


class BackupWriter:
    """Appends one durable member per request. Open it with ``BackupWriter.open(path)``."""

    def __init__(
        self, path: Path, fd: int, spans: dict[int, list[tuple[int, int]]], end: int
    ) -> None:
        self.path = path
        self._fd = fd
        self._saved = set(spans)
        self._spans = spans  # where each saved request's members are (to read them back)
        self._end = end  # the file's size after the last whole member
        self._failed = ""  # why an earlier write failed: no write is trusted after one
        # Writes come from worker threads: one at a time, so each member's place is known.
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path: str | Path) -> BackupWriter:
        """Create the file (0600), or reopen it to append: a torn tail is moved aside first,
        so new members follow the last whole one."""
        path = Path(path)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, FILE_MODE)
        except OSError as exc:
            raise InputError(f"cannot open the backup {path}: {exc.strerror or exc}") from None
        try:
            found = scan(path)
            if found.torn and not found.requests and not _starts_as_gzip(path):
                raise NotABackup(f"{path} is not a bulk-delete backup; choose a new file")
            os.fchmod(fd, FILE_MODE)
            if found.torn:
                _set_aside(path, fd, found)
            _sync_directory(path)
        except OSError as exc:
            os.close(fd)
            raise InputError(f"cannot open the backup {path}: {exc.strerror or exc}") from None
        except NotABackup:
            os.close(fd)
            raise
        return cls(path, fd, found.spans, found.end)

    def saved_requests(self) -> set[int]:
        """The requests (checkpoint seqs) whose activities are already on disk."""
        return set(self._saved)

    def write(self, seq: int, lead: str, activities: list[dict[str, Any]]) -> None:
        """Save one request's activities; on return they are on disk (fsync'd). Raises
        StorageError naming the file if they are not: that request must not be sent. A request
        already saved is not written again: its first copy was taken before any delete."""
        if seq in self._saved:
            return
        self._append(seq, lead, activities)

    def saved_ids(self, seq: int) -> set[str]:
        """The ids of the activities already saved for a request (read back from its
        members; empty for a request not saved)."""
        ids: set[str] = set()
        with self.path.open("rb") as handle:
            for start, end in self._spans.get(seq, ()):
                handle.seek(start)
                for member in members(io.BytesIO(handle.read(end - start)), self.path):
                    ids.update(str(row.get("ProspectActivityId") or "") for row in member.rows)
        return ids

    def add(self, seq: int, lead: str, activities: list[dict[str, Any]]) -> int:
        """Save, for a request already saved, the activities its members do not hold yet
        (by id), as one more member; returns how many. Nothing is written when none is new.
        On return they are on disk; raises StorageError as ``write`` does."""
        if seq not in self._saved:
            self.write(seq, lead, activities)
            return len(activities)
        held = self.saved_ids(seq)
        new = [activity for activity in activities if activity_id(activity) not in held]
        if new:
            self._append(seq, lead, new)
        return len(new)

    def _append(self, seq: int, lead: str, activities: list[dict[str, Any]]) -> None:
        """One member on disk (fsync'd), or StorageError and the file as it was."""
        member = encode_member(seq, lead, activities)
        with self._lock:
            if self._failed:
                raise StorageError(
                    f"the backup {self.path} failed earlier ({self._failed}); "
                    f"request {seq} was not sent"
                )
            left = memoryview(member)
            try:
                while left:
                    left = left[os.write(self._fd, left) :]
                os.fsync(self._fd)
            except OSError as exc:
                self._failed = exc.strerror or str(exc)
                with contextlib.suppress(OSError):  # leave no torn member for the next run
                    os.ftruncate(self._fd, self._end)
                raise StorageError(
                    f"cannot write the backup {self.path}: {self._failed}; "
                    f"request {seq} was not sent"
                ) from None
            self._spans.setdefault(seq, []).append((self._end, self._end + len(member)))
            self._end += len(member)
            self._saved.add(seq)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> BackupWriter:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _starts_as_gzip(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(2) == b"\x1f\x8b"


def _set_aside(path: Path, fd: int, found: Scan) -> None:
    """Copy the torn bytes to PATH.torn-OFFSET (kept for a human to look at), then cut them."""
    with path.open("rb") as handle:
        handle.seek(found.end)
        torn = handle.read()
    aside, n = path.with_name(f"{path.name}.torn-{found.end}"), 0
    while aside.exists():  # an earlier tear at the same place: keep both
        n += 1
        aside = path.with_name(f"{path.name}.torn-{found.end}.{n}")
    aside_fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        os.write(aside_fd, torn)
        os.fsync(aside_fd)
    finally:
        os.close(aside_fd)
    os.ftruncate(fd, found.end)
    os.fsync(fd)


def _sync_directory(path: Path) -> None:
    """A new file survives a power cut only once its directory entry is on disk too."""
    with contextlib.suppress(OSError):  # some file systems cannot open a directory
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


# ---------------------------------------------------------------- export for spreadsheets

FIXED_COLUMNS = (
    "Request",
    "ProspectId",
    "ProspectActivityId",
    "ActivityEvent",
    "CreatedOn",
    "ModifiedOn",
)


def export_columns(path: Path) -> tuple[list[str], list[str]]:
    """The activity's own top-level fields and the Data keys seen anywhere in the backup."""
    fields: dict[str, None] = {}
    keys: dict[str, None] = {}
    for row in read_backup(path):
        activity = row.get("Activity") or {}
        fields.update(dict.fromkeys(k for k in activity if k != "Data"))
        keys.update(dict.fromkeys(str(pair.get("Key")) for pair in _pairs(activity)))
    return sorted(fields), sorted(keys)


def _pairs(activity: dict[str, Any]) -> list[dict[str, Any]]:
    data = activity.get("Data")
    return [pair for pair in data if isinstance(pair, dict)] if isinstance(data, list) else []


def flat_row(row: dict[str, Any], fields: list[str], keys: list[str]) -> list[Any]:
    """One spreadsheet row: the fixed columns, the activity's fields, then its Data values
    (empty where this activity has no such key)."""
    activity = row.get("Activity") or {}
    data = {str(pair.get("Key")): pair.get("Value") for pair in _pairs(activity)}
    values = [row.get(column, "") for column in FIXED_COLUMNS]
    values += [_cell(activity.get(name)) for name in fields]
    values += [_cell(data.get(key)) for key in keys]
    return values


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return value


def export_headers(fields: list[str], keys: list[str]) -> list[str]:
    """Activity fields as LeadSquared names them; Data keys as ``Data.KEY`` (so that a custom
    field named like a top-level one stays apart)."""
    return [*FIXED_COLUMNS, *(f"Activity.{f}" for f in fields), *(f"Data.{k}" for k in keys)]


def export_backup(path: str | Path, out: str | Path) -> int:
    """Write the backup as a spreadsheet (``out`` ending .xlsx) or a CSV; returns the rows.
    The table lands under its name only when complete (export.open_table)."""
    from .export import open_table  # the project's table writer: formulas defused, atomic

    path = Path(path)
    fields, keys = export_columns(path)
    count = 0
    with open_table(out, export_headers(fields, keys)) as write:
        for row in read_backup(path):
            write(flat_row(row, fields, keys))
            count += 1
    return count
