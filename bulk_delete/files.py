"""Files the job writes: private, and locked where two processes must not share them.

Checkpoints, exports, logs and summaries hold lead IDs and webhook URLs, so every file we
create is 0600 (owner only), whatever the umask. Locks are ``flock`` on a ``.lock`` file that
names the holder's pid; the kernel drops the lock when the process dies, kill -9 included.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from .errors import LockHeld

PRIVATE = 0o600
PID_WAIT = 2.0  # the holder writes its pid right after taking the lock


def create_private(path: Path) -> None:
    """Create ``path`` as an empty 0600 file if it does not exist (callers then open it)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE)
    os.close(fd)


def open_private(path: Path, mode: str = "w", **kwargs: object) -> IO[str]:
    """``open`` for text files we write, created 0600."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if "a" in mode else os.O_TRUNC)
    fd = os.open(path, flags, PRIVATE)
    return os.fdopen(fd, mode, **kwargs)  # type: ignore[call-overload,no-any-return]


@contextmanager
def hold_lock(lock_path: Path, what: str) -> Iterator[None]:
    """Hold an exclusive lock for the block; if another process has it, LockHeld (exit 75)."""
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, PRIVATE)
    with os.fdopen(fd, "r+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            raise LockHeld(
                f"{what} is in use: pid {_holder(handle)} holds {lock_path}; not starting"
            ) from None
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        try:
            yield
        finally:
            handle.truncate(0)  # closing the handle releases the lock


def _holder(handle: IO[str]) -> str:
    """The pid in the lock file. The holder may have just locked it and not written yet."""
    deadline = time.monotonic() + PID_WAIT
    while True:
        handle.seek(0)
        pid = handle.read().strip()
        if pid or time.monotonic() > deadline:
            return pid or "unknown"
        time.sleep(0.02)
