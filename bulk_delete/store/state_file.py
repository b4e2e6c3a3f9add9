"""The machine's own state: small SQLite files in ``$XDG_STATE_HOME/bulk-delete/``.

Each file (the ledger, the memory of sent plans) is private (folder 0700, file 0600), carries
bulk-delete's mark (SQLite's application_id) and holds no secret. One that cannot be used
(a folder that cannot be made, a file that cannot be written, is damaged or is another
program's) is never passed over in silence: the error names the file and how to mend it, and
the caller decides whether that stops it or is a warning.

    db = LEDGER.open(LEDGER.path(), timeout=5.0)   # LedgerUnusable, named, when it cannot be
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..files import not_a_file

APP = "bulk-delete"
_SQLITE_MAGIC = b"SQLite format 3\x00"


def state_dir(environ: dict[str, str] | None = None) -> Path:
    """``$XDG_STATE_HOME/bulk-delete``, else ``~/.local/state/bulk-delete``."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / APP


@dataclass(frozen=True)
class StateFile:
    """One kind of state file: its name, mark and tables, and the error that names it."""

    file_name: str
    application_id: int
    schema: str
    tables: frozenset[str]
    unusable: Callable[[Path, str, str], InputError]  # (file, what is wrong, how to mend it)
    lost_when_new: str  # what a new file starts without, said when one is moved aside

    def path(self, folder: Path | None = None) -> Path:
        return (state_dir() if folder is None else folder) / self.file_name

    def open(self, path: Path, *, timeout: float) -> sqlite3.Connection:
        """The file at ``path``, made if absent (WAL, its tables). ``unusable`` when its
        folder cannot be made or written, or the file is damaged or not ours."""
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            path.parent.chmod(0o700)
        except OSError as error:
            raise self.folder_unusable(path, error) from None
        self.check_file(path)
        try:
            os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
            path.chmod(0o600)
        except OSError as error:
            raise self.unwritable(path, error.strerror or str(error)) from None
        with contextlib.ExitStack() as closing:
            try:
                db = sqlite3.connect(path, timeout=timeout, isolation_level=None)
                closing.callback(db.close)
                if not self.check_mark(path, db):  # new, or from before the mark: before WAL
                    db.execute(f"PRAGMA application_id = {self.application_id}")
                db.execute("PRAGMA journal_mode = WAL")
                db.execute("PRAGMA synchronous = NORMAL")
                db.executescript(self.schema)
            except sqlite3.DatabaseError as error:
                raise self.sqlite_problem(path, error) from None
            closing.pop_all()
        return db

    def read_only(self, path: Path) -> sqlite3.Connection | None:
        """The file opened read-only for a dry run, which never creates it: None when absent
        (after checking that its folder could be made). ``unusable`` as ``open`` says."""
        if not path.exists():
            self.check_folder_can_be_made(path)
            return None
        self.check_file(path)
        try:
            db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
        except sqlite3.DatabaseError as error:
            raise self.sqlite_problem(path, error) from None
        try:
            self.check_mark(path, db)
        except BaseException:
            db.close()
            raise
        return db

    def check_file(self, path: Path) -> None:
        """A file that exists is a regular file holding a SQLite database, or empty (a run
        made it and died before the first write): anything else is not ours."""
        problem = not_a_file(path)
        if problem == "no such file":
            return
        if problem is not None:
            raise self.not_ours(path, problem)
        try:
            with open(path, "rb") as file:
                header = file.read(100)
        except OSError as error:
            raise self.unwritable(path, error.strerror or str(error)) from None
        if header and not (len(header) == 100 and header.startswith(_SQLITE_MAGIC)):
            raise self.not_ours(path, "not a SQLite database")
        if header and int.from_bytes(header[68:72], "big") not in (0, self.application_id):
            raise self.not_ours(path, "another program's SQLite database")

    def check_mark(self, path: Path, db: sqlite3.Connection) -> bool:
        """Our mark (True), or no mark and only our tables (False: new, or from before the
        mark); and whole. Anything else is ``unusable``."""
        try:
            (application_id,) = db.execute("PRAGMA application_id").fetchone()
            tables = {
                name
                for (name,) in db.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND name NOT LIKE 'sqlite_%'"
                )
            }
            if application_id not in (0, self.application_id) or not tables <= self.tables:
                raise self.not_ours(path, "another program's SQLite database")
            (check,) = db.execute("PRAGMA quick_check").fetchone()
        except sqlite3.DatabaseError as error:
            raise self.sqlite_problem(path, error) from None
        if check != "ok":
            raise self.damaged(path, check)
        return bool(application_id)

    def check_folder_can_be_made(self, path: Path) -> None:
        """What a dry run can tell without writing: the nearest folder that exists can hold
        the file's folder."""
        folder = path.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not folder.is_dir():
            raise self.folder_unusable(path, NotADirectoryError(errno.ENOTDIR, "Not a directory"))
        if not os.access(folder, os.W_OK | os.X_OK):
            raise self.folder_unusable(path, PermissionError(errno.EACCES, "Permission denied"))

    def sqlite_problem(self, path: Path, error: sqlite3.DatabaseError) -> InputError:
        """SQLite's complaint as the user's problem: a file it cannot write (read-only,
        locked, no room for its journal) or one whose bytes are not a whole database."""
        if isinstance(error, sqlite3.OperationalError):
            return self.unwritable(path, str(error))
        return self.damaged(path, str(error))

    def folder_unusable(self, path: Path, error: OSError) -> InputError:
        return self.unusable(
            path,
            f"its folder cannot be made or written ({error.strerror or error})",
            f"make {path.parent} a folder this user can write, or point XDG_STATE_HOME at one.",
        )

    def unwritable(self, path: Path, why: str) -> InputError:
        return self.unusable(
            path,
            f"it cannot be written ({why})",
            f"let this user write {path} and its folder (chmod u+rw), or point XDG_STATE_HOME "
            "at another folder.",
        )

    def not_ours(self, path: Path, why: str) -> InputError:
        kind = self.file_name.removesuffix(".sqlite")
        return self.unusable(path, f"it is not a bulk-delete {kind} ({why})", self._aside(path))

    def damaged(self, path: Path, why: str) -> InputError:
        return self.unusable(path, f"it is damaged ({why})", self._aside(path))

    def _aside(self, path: Path) -> str:
        new = f"the next run starts a new one, {self.lost_when_new}"
        return f"move it aside (mv {path} {path}.bad); {new}."
