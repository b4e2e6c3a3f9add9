"""Where a command writes, checked before its first call: every output can be written, and
none is a file the run reads or another output.

Without this, `plan X.csv --out X.csv` overwrote its own input, `export CK --out CK` the
checkpoint, and a `--summary-json` in a missing folder failed only after every delete was
sent. Files are compared as files, not names (real path, or device and inode), so a symlink or
a hard link cannot slip past. A new output (`--results`, `--backup`) joins by being listed in
``OUTPUT_FIELDS``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import BulkDeleteError, OptionError, StorageError
from ..files import is_special, real, replacing, same_file, storage_cause
from ..store.checkpoint import Checkpoint
from .spec import flag_of

if TYPE_CHECKING:
    from ..summary import RunSummary
    from .spec import RunSpec

# RunSpec fields naming files a command writes; the appended ones are opened, not replaced.
OUTPUT_FIELDS = ("out", "invalid_out", "summary_json", "log_file", "backup")
APPENDED = frozenset({"log_file", "backup"})  # a backup grows across resumes
REGULAR = frozenset({"backup"})  # read back and appended to: never a device or a pipe
# What SQLite and our lock keep beside a checkpoint.
CHECKPOINT_COMPANIONS = ("-wal", "-shm", "-journal", ".lock")
BACKUP_META = "backup"  # checkpoint meta: its backup file (backups.py writes it) …
RESULTS_META = "results"  # checkpoint meta: [workbook, report] its last run wrote ("": none)
BACKUP_FILES = "backup_files"  # … and every file its runs wrote to, in order (a JSON list)


@dataclass(frozen=True)
class Named:
    """A file and how the user knows it: ``--out``, "the input sheet", "the checkpoint"."""

    what: str
    path: Path
    append: bool = False
    regular: bool = False  # a regular file only (a backup): never /dev/null or a pipe
    backup: bool = False  # --backup, or a backup the checkpoint's runs wrote: a run appends to it

    def __str__(self) -> str:
        return f"{self.what} {self.path}"


def spec_outputs(spec: RunSpec) -> list[Named]:
    return [
        Named(
            flag_of(name),
            path,
            append=name in APPENDED,
            regular=name in REGULAR,
            backup=name == "backup",
        )
        for name in OUTPUT_FIELDS
        if (path := getattr(spec, name)) is not None
    ]


def spec_reads(spec: RunSpec) -> list[Named]:
    reads = [] if spec.input is None else [Named("the input sheet", spec.input)]
    if spec.checkpoint is not None:  # a resume's summary must not land on an earlier backup
        reads += checkpoint_reads(spec.checkpoint)
    return reads


def checkpoint_files(path: Path) -> list[Named]:
    """The checkpoint and what SQLite keeps beside it, under its given and its real name."""
    names = {path, Path(os.path.realpath(path))}
    return [Named("the checkpoint", path)] + [
        Named("the checkpoint's", name.with_name(name.name + suffix))
        for name in sorted(names)
        for suffix in CHECKPOINT_COMPANIONS
    ]


def checkpoint_reads(path: Path) -> list[Named]:
    """The checkpoint's files and the ones its plan names: the input sheet the plan was made
    from and every backup its runs wrote (the only copy of what they deleted), which no
    output may overwrite either (only a run's --backup appends to one)."""
    named = checkpoint_files(path)
    try:
        with Checkpoint.open_existing(path) as checkpoint:
            meta = checkpoint.meta
    except (BulkDeleteError, sqlite3.Error):
        return named  # a new checkpoint, or not one: the command says so when it opens it
    sheet = meta.get("input", "")
    if sheet and Path(sheet).is_absolute():  # (a discovered plan's input is a listing)
        named.append(Named("the checkpoint's input sheet", Path(sheet)))
    return named + [Named("its backup", Path(name), backup=True) for name in backup_files(meta)]


def backup_files(meta: dict[str, str]) -> list[str]:
    """Every backup file the checkpoint's runs wrote to (real paths), in order."""
    files = list(json.loads(meta.get(BACKUP_FILES) or "[]"))
    latest = meta.get(BACKUP_META)
    return [*files, latest] if latest and latest not in files else files


def check_spec(spec: RunSpec) -> None:
    """Every output the spec names, checked before anything is planned or sent."""
    check(spec_outputs(spec) + results_outputs(spec), spec_reads(spec))


def results_outputs(spec: RunSpec) -> list[Named]:
    """The results workbook and HTML report a run writes (by default beside the checkpoint)."""
    paths = results_paths(spec)
    what = flag_of("results")
    return [] if paths is None else [Named(what, paths[0]), Named(f"{what} report", paths[1])]


def check(outputs: Sequence[Named], reads: Iterable[Named]) -> None:
    """Exit 2, naming both files, when an output is a file the command reads or another
    output; exit 2 when an output cannot be written. Writes nothing but a probe file."""
    reads = list(reads)
    for index, output in enumerate(outputs):
        if str(output.path) == "-":  # (only `export -o -` writes to standard output)
            raise OptionError(
                f"{output.what} -: this command prints its report on standard output; give a "
                "file name"
            )
        if output.path.is_dir():
            raise OptionError(f"{output} is a folder; give a file name")
        if output.regular and is_special(output.path):
            raise OptionError(
                f"{output} is not a regular file (a device or a pipe): it is read back and "
                "appended to; give a file name. Nothing sent."
            )
        for other in [*reads, *outputs[:index]]:
            if output.backup and other.backup:
                continue  # a run appends to its checkpoint's backup (the writer checks its mark)
            if same_file(output.path, other.path):
                raise OptionError(
                    f"{output} is {other}: writing it would overwrite what this command "
                    "reads or writes; give another file name. Nothing sent."
                )
        _check_writable(output)


def _check_writable(output: Named) -> None:
    path = real(output.path)  # a symlink is written through, so its target's folder counts
    if is_special(path) or (output.append and path.exists()):
        if not os.access(path, os.W_OK):
            raise OptionError(f"{output}: cannot write it (permission denied); nothing sent")
        return
    folder = path.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise OptionError(f"{output}: cannot write it: {folder} is not a folder; nothing sent")
    if folder != path.parent:  # created when written; what exists must let us
        if not os.access(folder, os.W_OK | os.X_OK):
            raise OptionError(f"{output}: cannot create folders in {folder}; nothing sent")
        return
    try:  # the one sure test: make a file there (written outputs are renamed into place)
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=folder)
    except OSError as error:
        cause = storage_cause(error) or error.strerror
        raise OptionError(f"{output}: cannot write in {folder}: {cause}; nothing sent") from None
    os.close(fd)
    os.unlink(probe)


def write_summary(path: Path, summary: RunSummary) -> StorageError | None:
    """``--summary-json``, whole or not at all. It is written after sending began, so a failure
    is a StorageError (exit 3), returned for the caller to raise once it has shown the summary."""
    output = Named(flag_of("summary_json"), path)
    try:
        with replacing(output.path, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(summary.to_json(), indent=2) + "\n")
    except OSError as error:
        cause = storage_cause(error) or error.strerror or str(error)
        return StorageError(
            f"cannot write {output}: {cause}. Every outcome is recorded in the checkpoint "
            f"{summary.checkpoint}; `bulk-delete status` on it shows this summary again."
        )
    return None


def results_paths(spec: RunSpec) -> tuple[Path, Path] | None:
    """(workbook, HTML report) a run of ``spec`` writes, or None (--no-results, no checkpoint)."""
    if spec.no_results or spec.checkpoint is None:
        return None
    if spec.results is not None:
        return spec.results, spec.results.with_suffix(".html")
    checkpoint = spec.checkpoint
    return (
        checkpoint.with_name(f"{checkpoint.stem}-results.xlsx"),
        checkpoint.with_name(f"{checkpoint.stem}-report.html"),
    )
