"""The backup file: what each request is about to delete, on disk before it is sent.

Gzip-compressed JSON Lines, one fsync'd gzip member per request, its header naming the request
and the member's length; a torn tail (a write killed half way) is set aside, any other damage
is named and stops a reader. The first member marks the file as one checkpoint's, and the
writer holds a lock on it. Format, reasons and figures: docs/design/backup.md.

    with BackupWriter.open(path, owner) as writer:
        writer.write(seq, lead, activities)      # durable when it returns
    for row in read_backup(path): ...
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import struct
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..errors import BulkDeleteError, DamagedBackup, InputError, NotABackup, StorageError
from ..files import lock_open_file, make_folders, real


class FileBytes(Protocol):
    """What a reader needs of a file's bytes: ``bytes`` itself, or ``_File``."""

    def __len__(self) -> int: ...
    def __getitem__(self, part: slice, /) -> bytes: ...
    def find(self, sub: bytes, start: int, /) -> int: ...


FILE_MODE = 0o600  # like the checkpoint: a backup holds the account's data
_READ_CHUNK = 1 << 16

# The gzip framing of a member (RFC 1952): magic, deflate, flags FEXTRA | FHCRC, no mtime,
# XFL 2 (best compression), OS 255; then the ``BD`` field: request and member length.
_MAGIC = b"\x1f\x8b\x08"
_FHCRC, _FEXTRA = 0x02, 0x04
_FRAME = struct.Struct("<QQ")  # request, the whole member's length in bytes
_FIXED = (  # … what comes before them: every framed header starts so
    _MAGIC
    + bytes([_FEXTRA | _FHCRC])
    + b"\0\0\0\0\x02\xff"
    + struct.pack("<H2sH", 4 + _FRAME.size, b"BD", _FRAME.size)  # XLEN, subfield id, length
)
_HEADER_SIZE = len(_FIXED) + _FRAME.size + 2  # … and the header's CRC-16 after them
_TRAILER = struct.Struct("<II")  # CRC-32 and length of the text


@dataclass(frozen=True, slots=True)
class Member:
    """One whole member: its request, its activity rows, and where it is in the file."""

    request: int
    rows: list[dict[str, Any]]
    start: int
    end: int
    number: int = 0  # its place in the file, from 1
    mark: str = ""  # a mark's checkpoint (request 0)
    checkpoint: str = ""  # … and that checkpoint's file, for people


@dataclass(frozen=True, slots=True)
class Damage:
    """Bytes that are no whole member and are not a torn tail: a copy that is lost."""

    number: int  # the member's place in the file, from 1
    start: int
    end: int  # where reading went on: the next whole member, or the end of the file
    why: str
    request: int | None = None  # as the member's own header names it, when that reads
    after: int | None = None  # the request of the whole member before it …
    before: int | None = None  # … and after it

    def __str__(self) -> str:
        return (
            f"member {self.number} (bytes {self.start:,}–{self.end:,}, {self._which()}) {self.why}"
        )

    def _which(self) -> str:
        if self.request == 0:
            return "the checkpoint's mark"
        if self.request is not None:
            return f"request {self.request}"
        around = [f"after request {self.after}"] if self.after is not None else []
        around += [f"before request {self.before}"] if self.before is not None else []
        return "request unknown" + (f": {' and '.join(around)}" if around else "")


@dataclass(frozen=True, slots=True)
class Torn:
    """The file's last bytes: a member whose write was killed half way (never sent)."""

    start: int
    size: int
    request: int | None = None  # as its header names it, when the header was written
    number: int = 0  # its place in the file, from 1


@dataclass(frozen=True, slots=True)
class Scan:
    """A backup file read through: the requests it holds, its marks, what is damaged, and the
    torn bytes at its end."""

    requests: list[int]  # each whole member's request, in order (marks left out)
    end: int  # where the torn tail starts (the file's size without one)
    torn: int  # bytes of the torn tail (a write killed half way); 0 without one
    spans: dict[int, list[tuple[int, int]]]  # each request's members: (start, end) in the file
    marks: list[tuple[str, str]] = field(default_factory=list)  # (mark, checkpoint file)
    damage: list[Damage] = field(default_factory=list)
    tail: Torn | None = None


# ---------------------------------------------------------------- writing members


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
    """One request's lines, sealed, as one framed gzip member."""
    rows = [activity_row(seq, lead, activity) for activity in activities]
    lines = [json.dumps(row, ensure_ascii=False) for row in rows]
    lines.append(json.dumps({"Request": seq, "Saved": len(rows)}))
    return _framed(seq, ("\n".join(lines) + "\n").encode())


def encode_mark(mark: str, checkpoint: str) -> bytes:
    """The checkpoint's mark as a member: a seal of request 0 that names the checkpoint."""
    seal = {"Request": 0, "Saved": 0, "Checkpoint": mark, "CheckpointFile": checkpoint}
    return _framed(0, (json.dumps(seal, ensure_ascii=False) + "\n").encode())


def _framed(seq: int, text: bytes) -> bytes:
    """A gzip member whose header names its request and its own length (see the docstring)."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = deflate.compress(text) + deflate.flush()
    trailer = _TRAILER.pack(zlib.crc32(text), len(text) & 0xFFFFFFFF)
    head = _FIXED + _FRAME.pack(seq, _HEADER_SIZE + len(body) + len(trailer))
    return head + struct.pack("<H", zlib.crc32(head) & 0xFFFF) + body + trailer


# ---------------------------------------------------------------- reading members


@dataclass(frozen=True, slots=True)
class _Unread:
    """Bytes at a place in the file that are no whole member of ours, and why."""

    why: str
    request: int | None = None  # the header's request, when the header reads
    end: int | None = None  # where the member ends, when its header says so
    cut: bool = False  # a prefix of a member that runs to the end of the file


def _frame(data: FileBytes, pos: int) -> tuple[int, int] | _Unread | None:
    """(request, length) from a framed header at ``pos``; None for a member without the
    framing (from before it); _Unread when the header is cut or does not check. A header is
    framed by its flags or by its ``BD`` field: one changed byte cannot unframe it."""
    head = data[pos : pos + _HEADER_SIZE]
    if not _MAGIC.startswith(head[:3]):
        return _Unread("is not a gzip member")
    if len(head) < 4:
        return _Unread("is cut short in its gzip header", cut=True)
    if head[3] != _FIXED[3] and head[10:16] != _FIXED[10:16]:
        return None
    if len(head) < _HEADER_SIZE and head[: len(_FIXED)] == _FIXED[: len(head)]:
        return _Unread("is cut short in its gzip header", cut=True)
    if len(head) < _HEADER_SIZE or head[: len(_FIXED)] != _FIXED:
        return _Unread("has a damaged gzip header")
    (check,) = struct.unpack_from("<H", head, _HEADER_SIZE - 2)
    if check != zlib.crc32(head[: _HEADER_SIZE - 2]) & 0xFFFF:
        return _Unread("has a damaged gzip header (its header CRC does not match)")
    request, total = _FRAME.unpack_from(head, len(_FIXED))
    if total < _HEADER_SIZE + _TRAILER.size:
        return _Unread("has a damaged gzip header (it gives an impossible length)")
    return request, total


def _member_at(data: FileBytes, pos: int, number: int = 0) -> Member | _Unread:
    """The whole member at ``pos`` (the file's ``number``-th), or why there is none."""
    frame = _frame(data, pos)
    if isinstance(frame, _Unread):
        return frame
    if frame is None:  # from before the framing: its end is where its stream ends
        return _unframed(data, pos, number)
    request, end = frame[0], pos + frame[1]
    text, used, problem = _inflate(data, pos, min(end, len(data)))
    if problem == "cut" and end > len(data):  # the header was written, the rest was not
        have = f"{len(data) - pos:,} of {frame[1]:,} bytes"
        return _Unread(f"is cut short ({have})", request, end, cut=True)
    if problem == "cut" or (not problem and pos + used != end):
        return _Unread("does not end where its header says", request, end)
    if problem:
        return _Unread(problem, request, end)
    return _parsed(text, (pos, end, number), request)


def _unframed(data: FileBytes, pos: int, number: int) -> Member | _Unread:
    """A member from before the framing. Cut short, it is a torn write only if it does not
    already hold a request's lines up to its seal (then its end was damaged, not cut)."""
    text, used, problem = _inflate(data, pos, len(data))
    if problem == "cut":
        return _Unread("is cut short", cut=not _whole_lines(text))
    if problem:
        return _Unread(problem)
    return _parsed(text, (pos, pos + used, number), None)


def _inflate(data: FileBytes, pos: int, limit: int) -> tuple[bytes, int, str]:
    """The text of the gzip member at ``pos`` (read up to ``limit``), the bytes it took, and
    what went wrong: "" (whole, CRC-32 checked), "cut" (the bytes end first), or zlib's
    complaint."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip: header and CRC-32 checked
    parts: list[bytes] = []
    at = pos
    try:
        while at < limit and not inflater.eof:
            chunk = data[at : min(limit, at + _READ_CHUNK)]
            parts.append(inflater.decompress(chunk))
            at += len(chunk)
    except zlib.error as error:
        return b"".join(parts), at - pos, _zlib_words(str(error))
    if not inflater.eof:
        return b"".join(parts), at - pos, "cut"
    return b"".join(parts), at - pos - len(inflater.unused_data), ""


def _zlib_words(message: str) -> str:
    if "incorrect data check" in message or "incorrect length check" in message:
        return "fails its CRC-32 check"
    if "header" in message:
        return "has a damaged gzip header"
    return f"has damaged compressed data ({message.split(': ', 1)[-1]})"


def _whole_lines(text: bytes) -> bool:
    """Whether inflated bytes already hold a request's lines up to its seal: a member that far
    is whole, and bytes after it that keep the stream going are damage, not a torn write."""
    for line in text.split(b"\n")[:-1]:
        with contextlib.suppress(ValueError):
            if isinstance(seal := json.loads(line), dict) and "Saved" in seal:
                return True
    return False


def _parsed(text: bytes, place: tuple[int, int, int], request: int | None) -> Member | _Unread:
    """One whole member's lines, checked against its seal (and its header's request);
    ``place``: its start, end and number in the file."""
    start, end, number = place
    try:
        lines = [json.loads(line) for line in text.decode().split("\n") if line]
    except (UnicodeDecodeError, ValueError):
        return _Unread("is not JSON Lines", request, end)
    seal = lines[-1] if lines and isinstance(lines[-1], dict) else {}
    rows = lines[:-1]
    seq, saved = seal.get("Request"), seal.get("Saved")
    if not isinstance(saved, int) or not isinstance(seq, int):
        return _Unread("does not end with a request's seal", request, end)
    if request is not None and seq != request:
        return _Unread(f"names request {request} in its header, {seq} in its seal", request, end)
    if saved != len(rows) or any(not isinstance(r, dict) or r.get("Request") != seq for r in rows):
        return _Unread(f"should hold {saved:,} rows of request {seq}", seq, end)
    mark = str(seal.get("Checkpoint") or "") if seq == 0 else ""
    checkpoint = str(seal.get("CheckpointFile") or "")
    return Member(seq, rows, start, end, number, mark=mark, checkpoint=checkpoint)


def _next_whole(data: FileBytes, after: int) -> int | None:
    """Where the next whole member of ours starts after ``after`` (None: there is none)."""
    at = data.find(_MAGIC, after)
    while at >= 0:
        if isinstance(_member_at(data, at), Member):
            return at
        at = data.find(_MAGIC, at + 1)
    return None


def _walk(data: FileBytes) -> Iterator[Member | Damage | Torn]:
    """Every whole member in order, each damaged place, and the torn tail if the file ends in
    one. Reading goes on past damage, at the next whole member."""
    pos, number, last = 0, 0, None
    while pos < len(data):
        number += 1
        found = _member_at(data, pos, number)
        if isinstance(found, Member):
            yield found
            pos, last = found.end, found.request
            continue
        following = _next_whole(data, pos + 1)
        if found.cut and following is None:
            yield Torn(pos, len(data) - pos, found.request, number)
            return
        if found.end is not None and found.end <= len(data) and not found.cut:
            following = found.end  # the header says where the next member starts
        resume = len(data) if following is None else following
        after_it = _member_at(data, resume) if resume < len(data) else None
        before = after_it.request if isinstance(after_it, Member) else None
        yield Damage(number, pos, resume, found.why, found.request, last, before)
        pos = resume


class _File:
    """A file's bytes up to its size when it was opened, read where asked (``os.pread``): a
    member at a time, never the whole file, and a writer that cuts the file meanwhile only
    shortens what is read (a mapping would die of SIGBUS)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._size = os.fstat(fd).st_size

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, part: slice) -> bytes:
        start, stop, _ = part.indices(self._size)
        return os.pread(self._fd, max(0, stop - start), start)

    def find(self, sub: bytes, start: int) -> int:
        at = start
        while at < self._size:
            hit = self[at : at + _READ_CHUNK + len(sub) - 1].find(sub)
            if hit >= 0:
                return at + hit
            at += _READ_CHUNK
        return -1


def walk(path: str | Path) -> Iterator[Member | Damage | Torn]:
    """The file's members, damage and torn tail in order (see ``_walk``)."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise InputError(f"cannot read the backup {path}: {exc.strerror or exc}") from None
    try:
        yield from _walk(_File(fd))
    finally:
        os.close(fd)


def scan(path: str | Path) -> Scan:
    """The file read through: requests, marks, damage and torn tail (see ``Scan``)."""
    return _scanned(walk(path))


def _scanned(items: Iterable[Member | Damage | Torn]) -> Scan:
    requests: list[int] = []
    spans: dict[int, list[tuple[int, int]]] = {}
    marks: list[tuple[str, str]] = []
    damage: list[Damage] = []
    tail, end = None, 0
    for item in items:
        if isinstance(item, Torn):
            tail = item
        elif isinstance(item, Damage):
            damage.append(item)
            end = item.end
        elif item.request == 0:
            marks.append((item.mark, item.checkpoint))
            end = item.end
        else:
            requests.append(item.request)
            spans.setdefault(item.request, []).append((item.start, item.end))
            end = item.end
    torn = tail.size if tail else 0
    return Scan(requests, end, torn, spans, marks, damage, tail)


def members(path: str | Path) -> Iterator[Member]:
    """The file's whole members in order (marks left out); a torn tail is skipped (its request
    was never sent). DamagedBackup once the whole file is read, if any member is damaged;
    NotABackup for a file with no member of ours."""
    path = Path(path)
    damage: list[Damage] = []
    ours = False
    for item in walk(path):
        if isinstance(item, Damage):
            damage.append(item)
        elif isinstance(item, Member):
            ours = True
            if item.request and not damage:
                yield item
    if damage and not ours:
        raise NotABackup(f"{path} is not a bulk-delete backup ({damage[0]})")
    if damage:
        raise DamagedBackup(path, damage)


def read_backup(path: str | Path) -> Iterator[dict[str, Any]]:
    """Every activity row of the backup, in the order written; a torn last member (a run
    killed while writing it) is left out, as its request was never sent. A damaged member
    raises DamagedBackup, naming it: never a short read."""
    for member in members(path):
        yield from member.rows


# ---------------------------------------------------------------- the writer


@dataclass(frozen=True, slots=True)
class Owner:
    """The checkpoint a run writes the backup for: its mark, and whether the checkpoint
    already names this file as its backup (how a file from before marks is known as its)."""

    mark: str
    checkpoint: str  # its path, for people
    wrote_before: bool = False
    was_sent: Callable[[int], bool] = lambda _: False  # a delete of this request went out

    def check(self, path: Path, found: Scan) -> None:
        """InputError (exit 2) when the file is another checkpoint's backup."""
        others = [name for mark, name in found.marks if mark != self.mark]
        if not others and (found.marks or self.wrote_before or not found.requests):
            return
        whose = f" ({others[0]})" if others and others[0] else ""
        raise InputError(
            f"{path} holds the backup of another checkpoint's run{whose}: a backup belongs to "
            "one checkpoint, whose requests it numbers from 1. Choose a new file for this "
            "plan; nothing sent."
        )


class BackupWriter:
    """Appends one durable member per request. Open it with ``BackupWriter.open(path)``."""

    def __init__(self, path: Path, fd: int, found: Scan, end: int, set_aside: Path | None) -> None:
        self.path = path
        self.torn = found.tail  # the torn tail found at opening …
        self.set_aside = set_aside  # … and where it went (None: there was none)
        self._fd = fd
        self._saved = set(found.spans)
        self._spans = found.spans  # where each saved request's members are (to read them back)
        self._end = end  # the file's size after the last whole member
        self._failed = ""  # why an earlier write failed: no write is trusted after one
        # Writes come from worker threads: one at a time, so each member's place is known.
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path: str | Path, owner: Owner | None = None) -> BackupWriter:
        """Open the file to append, locked (flock) until closed: created 0600 (its folders
        0700) or reopened. Refused, untouched: anything but a regular file (InputError), a
        file another process writes (LockHeld), a file that is no backup (NotABackup) or
        another checkpoint's (``Owner.check``), a damaged one (DamagedBackup). Then a torn
        tail is moved aside, and the owner's mark written if the file lacks it."""
        path = Path(path)
        fd = _open_regular(path)
        try:
            lock_open_file(fd, f"the backup {path}")
            found = _scanned(_walk(_File(fd)))
            ours = found.requests or found.marks or (owner is not None and owner.wrote_before)
            if found.damage and not ours:
                raise NotABackup(
                    f"{path} is not a bulk-delete backup ({found.damage[0]}); choose a new file"
                )
            if owner is not None:
                owner.check(path, found)
            damage = found.damage + _cut_after_its_send(found, owner)
            if damage:
                raise DamagedBackup(path, damage)
            os.fchmod(fd, FILE_MODE)
            aside = _set_aside(path, fd, found) if found.tail else None
            if owner is not None and owner.mark not in {mark for mark, _ in found.marks}:
                _append_all(fd, encode_mark(owner.mark, owner.checkpoint))
            _sync_directory(path)
            end = os.fstat(fd).st_size
        except OSError as exc:
            os.close(fd)
            raise InputError(f"cannot open the backup {path}: {exc.strerror or exc}") from None
        except BulkDeleteError:
            os.close(fd)
            raise
        return cls(path, fd, found, end, aside)

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
        members; empty for a request not saved). StorageError if one no longer reads."""
        ids: set[str] = set()
        with self.path.open("rb") as handle:
            for start, end in self._spans.get(seq, ()):
                handle.seek(start)
                found = _member_at(handle.read(end - start), 0)
                if not isinstance(found, Member) or found.request != seq:
                    raise StorageError(
                        f"the backup {self.path} changed under the run: the member of request "
                        f"{seq} at byte {start:,} no longer reads; request {seq} was not sent"
                    )
                ids.update(str(row.get("ProspectActivityId") or "") for row in found.rows)
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
            try:
                _append_all(self._fd, member)
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
            os.close(self._fd)  # and the lock with it
            self._fd = -1

    def __enter__(self) -> BackupWriter:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _cut_after_its_send(found: Scan, owner: Owner | None) -> list[Damage]:
    """A torn tail is a write killed half way, so its request was never sent, unless the
    checkpoint says it was: then the file was cut after the fact (a copy cut short, bytes lost)
    and the only copy of that request is lost. (A further member of a request, added on a
    resume, may be torn after its send: its first member holds the copy.)"""
    tail = found.tail
    if tail is None or owner is None or not tail.request or tail.request in found.spans:
        return []
    if not owner.was_sent(tail.request):
        return []
    why = "is cut short, and the checkpoint records its delete as sent: its copy is lost"
    return [Damage(tail.number, tail.start, tail.start + tail.size, why, tail.request)]


def _open_regular(path: Path) -> int:
    """The file opened to append (created 0600, its folders 0700, as every output): only a
    regular file. A device or a pipe is refused before and after opening (a name can change
    between the two), and never has its mode changed."""
    what = f"--backup {path} is not a regular file (a device, a pipe or a folder)"
    advice = "; a backup is read back and appended to: give a file name. Nothing sent."
    try:
        if path.exists() and not path.is_file():
            raise InputError(what + advice)
        make_folders(real(path).parent)
        flags = os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
        fd = os.open(path, flags, FILE_MODE)
    except OSError as exc:
        raise InputError(f"cannot open the backup {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise InputError(what + advice)
    return fd


def _append_all(fd: int, data: bytes) -> None:
    """``data`` at the end of the file, then fsync: on return it is on disk."""
    left = memoryview(data)
    while left:
        left = left[os.write(fd, left) :]
    os.fsync(fd)


def _set_aside(path: Path, fd: int, found: Scan) -> Path:
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
    return aside


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


@dataclass(frozen=True, slots=True)
class Exported:
    """What `export --backup` wrote: its rows, and a torn tail it left out (never sent)."""

    rows: int
    torn: Torn | None = None
    notes: tuple[str, ...] = ()  # what the file cannot tell of itself (commands/backups.py)


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


def export_backup(path: str | Path, out: str | Path) -> Exported:
    """Write the backup as a spreadsheet (``out`` ending .xlsx) or a CSV. A damaged backup
    raises DamagedBackup before anything is written (the columns are read from the whole file
    first); the table lands under its name only when complete (export.open_table)."""
    from .row_files import open_table  # the project's table writer: formulas defused, atomic

    path = Path(path)
    fields, keys = export_columns(path)
    count = 0
    with open_table(out, export_headers(fields, keys)) as write:
        for row in read_backup(path):
            write(flat_row(row, fields, keys))
            count += 1
    return Exported(count, scan(path).tail)
