"""Files the job writes: private, whole or absent, and locked where two processes must not
share them.

Checkpoints, exports, logs and summaries hold lead IDs and webhook URLs, so every file we
write is 0600 (owner only) and every folder we create 0700, whatever the umask and whatever
mode a file had before. A table or summary is written to a temporary file beside its target
and renamed over it when complete: an interrupted export never leaves a truncated file that
looks whole. Locks are ``flock``: the kernel drops them when the process dies, kill -9
included. A file is its inode, not its name: a symlink, a ``..`` or a hard link to a
checkpoint names the same checkpoint, so the lock is taken on the file itself.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import glob
import os
import sqlite3
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Any

from .errors import InputError, LockHeld

PRIVATE = 0o600
PRIVATE_FOLDER = 0o700
PID_WAIT = 2.0  # the holder writes its pid right after taking the lock

# What a full or failing disk looks like, from the OS and from SQLite.
_STORAGE_ERRNOS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EIO: "input/output error",
    errno.EROFS: "read-only file system",
}
_SQLITE_STORAGE = {
    "database or disk is full": "no space left on device (database or disk is full)",
    "disk i/o error": "input/output error (disk I/O error)",
    "attempt to write a readonly database": "the file cannot be written (read-only)",
}


def storage_cause(error: BaseException) -> str | None:
    """The disk's fault behind ``error`` in a person's words, or None when it is not one (then
    it is ours to fix, and stays a bug)."""
    if isinstance(error, OSError):
        return _STORAGE_ERRNOS.get(error.errno or 0)
    if isinstance(error, sqlite3.OperationalError):
        text = str(error).lower()
        return next((cause for key, cause in _SQLITE_STORAGE.items() if key in text), None)
    return None


def real(path: Path) -> Path:
    """The path with every symlink and ``..`` resolved (the file need not exist)."""
    return Path(os.path.realpath(path))


def same_file(a: Path, b: Path) -> bool:
    """Whether two names reach one file: same real path, or same device and inode."""
    if real(a) == real(b):
        return True
    try:
        first, second = os.stat(a), os.stat(b)
    except OSError:
        return False
    return (first.st_dev, first.st_ino) == (second.st_dev, second.st_ino)


def make_folders(folder: Path) -> None:
    """Create ``folder`` and its missing parents, each 0700 (``mkdir -p`` would follow the
    umask, and ``Path.mkdir(mode=…)`` applies the mode to the last one only)."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for each in reversed(missing):
        os.mkdir(each, PRIVATE_FOLDER)
        os.chmod(each, PRIVATE_FOLDER)


def create_private(path: Path) -> None:
    """Create ``path`` as an empty 0600 file if it does not exist, and make it 0600 if it does
    (callers then open it; SQLite gives a checkpoint's -wal and -shm the file's own mode)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE)
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            os.fchmod(fd, PRIVATE)
    finally:
        os.close(fd)


def open_private(path: Path, mode: str = "w", **kwargs: object) -> IO[str]:
    """``open`` for text files we write in place (an appended log), 0600 even when it existed."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if "a" in mode else os.O_TRUNC)
    fd = os.open(path, flags, PRIVATE)
    if stat.S_ISREG(os.fstat(fd).st_mode):
        os.fchmod(fd, PRIVATE)
    return os.fdopen(fd, mode, **kwargs)  # type: ignore[call-overload,no-any-return]


_NOT_FILES = {
    stat.S_IFDIR: "is a directory",
    stat.S_IFIFO: "is a named pipe (FIFO)",
    stat.S_IFCHR: "is a device",
    stat.S_IFBLK: "is a device",
    stat.S_IFSOCK: "is a socket",
}


def not_a_file(path: Path) -> str | None:
    """Why ``path`` cannot be read as a file, found without opening it ("no such file", "is a
    named pipe (FIFO)" …), or None for a regular file (through symlinks). A pipe or a device
    is never opened as an input: a FIFO without a writer blocks the open for ever, /dev/zero
    never ends, and a read blocked in the kernel holds the process past every signal."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "no such file"
    except OSError as error:
        return f"cannot be read ({error.strerror})"
    if stat.S_ISREG(mode):
        return None
    return _NOT_FILES.get(stat.S_IFMT(mode), "is not a regular file")


def require_file(path: Path, what: str, *, missing: str = "no such file") -> None:
    """InputError (exit 2) unless ``path`` is a regular file: the one check before an input
    (a sheet, a job file, a checkpoint) is opened. ``what`` names it ("sheet")."""
    problem = not_a_file(path)
    if problem == "no such file":
        raise InputError(f"{path}: {missing}")
    if problem is not None:
        raise InputError(f"{path}: {problem}, not a {what}")


def is_special(path: Path) -> bool:
    """A device or pipe (/dev/stdout, /dev/null): written in place, never replaced."""
    try:
        return not stat.S_ISREG(os.stat(path).st_mode) and not path.is_dir()
    except OSError:
        return False


@contextmanager
def replacing(path: Path, mode: str = "w", **kwargs: object) -> Iterator[IO[Any]]:
    """A handle on a private temporary file beside ``path``, renamed over it when the block
    ends normally and removed when it does not: readers see the old file or the whole new one.
    A symlink is written through: the file it points to is replaced, the link stays."""
    path = real(path)
    if is_special(path):
        with open(path, mode, **kwargs) as handle:  # type: ignore[call-overload]
            yield handle
        return
    make_folders(path.parent)
    # This process's temporaries carry its pid: a stop (a signal raised at any byte, inside
    # mkstemp itself) can leave one whose name was never returned, and it is found by that.
    prefix = f".{path.name}.{os.getpid()}."
    try:
        fd, temporary = tempfile.mkstemp(prefix=prefix, suffix=".part", dir=path.parent)
        with os.fdopen(fd, mode, **kwargs) as handle:  # type: ignore[call-overload]
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        for leftover in path.parent.glob(glob.escape(prefix) + "*.part"):
            with contextlib.suppress(OSError):
                leftover.unlink()
        raise


@contextmanager
def hold_lock(lock_path: Path, what: str, *, target: Path | None = None) -> Iterator[None]:
    """Hold an exclusive lock for the block; if another process has it, LockHeld (exit 75).

    ``lock_path`` holds the holder's pid for the message. With a ``target``, the target file
    itself is locked too, so a second name for it (a symlink, a hard link) is refused as well."""
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, PRIVATE)
    except OSError as error:  # a read-only file system, a folder that is not ours
        raise InputError(
            f"{what}: cannot create its lock file {lock_path}: {error.strerror}; nothing sent"
        ) from None
    with os.fdopen(fd, "r+") as handle, ExitStack() as stack:
        if not _try_flock(handle.fileno()):
            raise LockHeld(
                f"{what} is in use: pid {_holder(handle)} holds {lock_path}; not starting"
            )
        if target is not None:
            file = os.open(target, os.O_RDONLY | os.O_CREAT, PRIVATE)
            stack.callback(os.close, file)
            if not _try_flock(file):
                raise LockHeld(
                    f"{what} is in use: pid {_inode_holder(file)} holds it under "
                    f"another name ({_second_name(file)} of {real(target)}); not starting"
                )
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        try:
            yield
        finally:
            handle.truncate(0)  # closing the handles releases the locks


def _second_name(fd: int) -> str:
    """What the holder's name is: with one link, the file has one name, so the other
    reached it through a symlink (or ``..``); with more, it may be either."""
    return "a symlink" if os.fstat(fd).st_nlink == 1 else "a symlink or a hard link"


def lock_open_file(fd: int, what: str) -> None:
    """An exclusive lock on a file this process has open (a backup it appends to), held until
    the file is closed; LockHeld (exit 75) naming the holder when another process has it."""
    if not _try_flock(fd):
        raise LockHeld(f"{what} is in use: pid {_inode_holder(fd)} holds it; not starting")


def being_written(path: Path) -> bool:
    """Whether another process holds the file's lock (``lock_open_file``): a run writing it.
    A shared lock, let go at once, so a writer is never kept out longer than that."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as error:
        return error.errno in (errno.EAGAIN, errno.EACCES)
    finally:
        os.close(fd)  # and the lock with it
    return False


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        if error.errno not in (errno.EAGAIN, errno.EACCES):
            raise
        return False
    return True


def _holder(handle: IO[str]) -> str:
    """The pid in the lock file. The holder may have just locked it and not written yet."""
    deadline = time.monotonic() + PID_WAIT
    while True:
        handle.seek(0)
        pid = handle.read().strip()
        if pid or time.monotonic() > deadline:
            return pid or "unknown"
        time.sleep(0.02)


def _inode_holder(fd: int) -> str:
    """Who holds a flock on this file, from the kernel's table (Linux), or "unknown"."""
    info = os.fstat(fd)
    inode = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    try:
        table = Path("/proc/locks").read_text()
    except OSError:
        return "unknown"
    for line in table.splitlines():
        fields = line.split()
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == inode:
            return fields[4]
    return "unknown"
