"""The base every part of a checkpoint builds on: its connection, its metadata, and a full
disk named as such rather than passed off as a bug.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..clock import system_wall, utc_text
from ..errors import InputError, StorageError
from ..files import storage_cause


class Tables:
    """A checkpoint's connection and what every group of its tables needs."""

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self.location = str(path.resolve())  # as summaries show it
        self._db = connection
        self.wall: Callable[[], float] = system_wall  # a command sets its clock's ``wall``

    def now_text(self) -> str:
        """Now, by ``wall``, as the checkpoint's stamps are written (UTC)."""
        return utc_text(self.wall())

    @contextmanager
    def _storing(self, what: str, *, sending: bool = True) -> Iterator[None]:
        """A full or failing disk named as such, not passed off as a bug: before sending an
        InputError (exit 2), after an AbortedError (exit 3) that says what is safe."""
        try:
            yield
        except (sqlite3.Error, OSError) as error:
            cause = storage_cause(error)
            if cause is None:
                raise
            if not sending:
                message = f"cannot {what} in checkpoint {self.path}: {cause}; nothing sent"
                raise InputError(message) from None
            raise StorageError(
                f"cannot {what} in checkpoint {self.path}: {cause}. Every outcome recorded "
                "before is safe; free some space and rerun the same command to resume."
            ) from None

    def _columns(self, table: str) -> set[str]:
        return {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}

    @property
    def meta(self) -> dict[str, str]:
        return dict(self._db.execute("SELECT key, value FROM meta").fetchall())
