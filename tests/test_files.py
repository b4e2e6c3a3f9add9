"""A file is its inode: locks and checkpoints seen through symlinks, `..` and hard links;
look-alike databases refused byte for byte; checkpoints from before the mark resumed; a full
disk named as such, before and after sending began."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import pytest

from bulk_delete.clock import system_wall
from bulk_delete.commands.job_file import load_job
from bulk_delete.errors import InputError, LockHeld, StorageError
from bulk_delete.files import replacing
from bulk_delete.records import Request, Status
from bulk_delete.store import checkpoint as checkpoints
from bulk_delete.store import schema
from bulk_delete.store.checkpoint import Checkpoint, Outcome
from bulk_delete.store.row_files import OutcomeLog
from bulk_delete.store.schema import APPLICATION_ID

from .conftest import demo_env, leads_csv, run_cli, send_sheet, start_cli


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def requests(count: int) -> list[Request]:
    return [
        Request(f"00000000-0000-4000-8000-{n:012d}", ("201",), "", "", "", (n,))
        for n in range(count)
    ]


def planned(path: Path, count: int = 3) -> Checkpoint:
    checkpoint = Checkpoint.open(path)
    checkpoint.store_plan(
        requests(count), [], source=str(path), fingerprint="f", options={}, extra={}
    )
    return checkpoint


# ---------------------------------------------------------------- one checkpoint, many names


async def test_every_name_of_a_held_checkpoint_exits_75(emulator: Any, tmp_path: Path) -> None:
    emu = await emulator(rate="off")
    sheet = leads_csv(tmp_path / "leads.csv", 3)
    real = tmp_path / "real" / "cp.sqlite"
    real.parent.mkdir()
    planned(real).close()
    (tmp_path / "latest.sqlite").symlink_to(real)
    (tmp_path / "sub").mkdir()
    names = ["latest.sqlite", "sub/../real/cp.sqlite"]  # a hard link is refused: see below
    with checkpoints.lock(real):  # a `run` (this process) is sending from it
        for name in names:
            done = await send_sheet(emu, sheet, tmp_path / name, "--rate", "off")
            assert (name, done.returncode) == (name, 75)
            assert f"pid {os.getpid()}" in done.stderr
    assert emu.calls == 0


@pytest.mark.e2e
async def test_two_runs_through_a_symlink_send_each_request_once(
    emulator: Any, tmp_path: Path
) -> None:
    emu = await emulator(rate="off", latency=0.2)
    sheet = leads_csv(tmp_path / "leads.csv", 15)
    real = tmp_path / "cp.sqlite"
    (tmp_path / "latest.sqlite").symlink_to(real)
    args = [str(sheet), "--yes", "--open-window", "--rate", "10/1s", "--quiet"]
    processes = [
        await start_cli("run", *args, "--checkpoint", str(tmp_path / name), env=demo_env(emu.url))
        for name in ("cp.sqlite", "latest.sqlite")
    ]
    results = [await process.communicate() for process in processes]
    codes = [process.returncode for process in processes]
    assert sorted(code or 0 for code in codes) == [0, 75], [err.decode() for _, err in results]
    assert "pid" in results[codes.index(75)][1].decode()
    assert len(emu.records) == 15  # the loser sent nothing
    assert not (tmp_path / "latest.sqlite.lock").exists()


def test_a_job_started_through_a_symlink_is_the_same_job(tmp_path: Path) -> None:
    (tmp_path / "ids.csv").write_text("ProspectId\n00000000-0000-4000-8000-000000000001\n")
    real = tmp_path / "purge.toml"
    real.write_text('input = "ids.csv"\ncodes = [201]\nconfirm = true\n')
    (tmp_path / "nightly.toml").symlink_to(real)
    with (
        load_job(real, wall=system_wall).lock(),
        pytest.raises(LockHeld, match="pid") as held,
        load_job(tmp_path / "nightly.toml", wall=system_wall).lock(),
    ):
        pass
    # the second name is a symlink, and said so: one link, so no hard link is involved
    assert f"under another name (a symlink of {real.resolve()})" in str(held.value)
    assert "hard link" not in str(held.value)
    os.link(real, tmp_path / "weekly.toml")  # two links now: the holder's may be either
    with (
        load_job(real, wall=system_wall).lock(),
        pytest.raises(LockHeld, match=r"another name \(a symlink or a hard link of "),
        load_job(tmp_path / "weekly.toml", wall=system_wall).lock(),
    ):
        pass


# ---------------------------------------------------------------- look-alikes


def key_value_meta(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        db.execute("INSERT INTO meta VALUES ('theme', 'dark')")
    db.close()


def other_application(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA application_id = 305419896")
    db.close()


def our_names_other_columns(path: Path) -> None:
    with sqlite3.connect(path) as db:
        for table in ("meta", "requests", "invalid_rows", "runs"):
            db.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, payload BLOB)")
    db.close()


@pytest.mark.parametrize("make", [key_value_meta, other_application, our_names_other_columns])
async def test_a_look_alike_is_refused_byte_identical(
    make: Any, emulator: Any, tmp_path: Path
) -> None:
    emu = await emulator(rate="off")
    other = tmp_path / "settings.db"
    make(other)
    before = digest(other)
    done = await send_sheet(emu, leads_csv(tmp_path / "leads.csv", 3), other, "--rate", "off")
    assert done.returncode == 2, done.stderr
    assert "is not a bulk-delete checkpoint" in done.stderr
    assert "not touched" in done.stderr
    for command in ("status", "export"):
        extra = ("--out", str(tmp_path / "x.csv")) if command == "export" else ()
        done = await run_cli(command, str(other), *extra)
        assert done.returncode == 2
        assert "is not a bulk-delete checkpoint" in done.stderr
    assert digest(other) == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["leads.csv", "settings.db"]
    assert emu.calls == 0


def test_a_checkpoint_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    planned(path).close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    db.close()
    before = digest(path)
    with pytest.raises(InputError, match="newer bulk-delete"):
        Checkpoint.open(path)
    assert digest(path) == before


def test_a_new_or_empty_file_becomes_a_marked_checkpoint(tmp_path: Path) -> None:
    (tmp_path / "empty.sqlite").touch()
    for name in ("new.sqlite", "empty.sqlite"):
        Checkpoint.open(tmp_path / name).close()
        with sqlite3.connect(tmp_path / name) as db:
            assert db.execute("PRAGMA application_id").fetchone() == (APPLICATION_ID,)
        db.close()
        # in the file's own header, not only in the WAL: a kill -9 cannot lose the mark
        header = (tmp_path / name).read_bytes()[:100]
        assert int.from_bytes(header[68:72], "big") == APPLICATION_ID


# ---------------------------------------------------------------- checkpoints from before


def unmark(path: Path) -> None:
    """Make a checkpoint as releases before the mark wrote them: no application_id, no
    user_version, no format row, no found/listing tables, none of the added columns."""
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA application_id = 0")
        db.execute("PRAGMA user_version = 0")
        db.execute("DELETE FROM meta WHERE key = 'format'")
        db.execute("DROP TABLE found")
        db.execute("DROP TABLE listing")
        for table, column, _ in schema._ADDED_COLUMNS:
            if table not in ("found", "listing"):  # (dropped whole above)
                db.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    db.close()


async def test_a_checkpoint_from_before_the_mark_resumes(emulator: Any, tmp_path: Path) -> None:
    emu = await emulator(rate="off")
    sheet, path = leads_csv(tmp_path / "leads.csv", 4), tmp_path / "old.sqlite"
    done = await run_cli("run", str(sheet), "--checkpoint", str(path), env=demo_env(emu.url))
    assert done.returncode == 2  # not confirmed: the plan is saved, nothing sent
    unmark(path)
    before = digest(path)
    done = await run_cli("status", str(path))  # read-only: accepted, not stamped
    assert done.returncode == 1
    assert digest(path) == before
    done = await send_sheet(emu, sheet, path, "--rate", "off")
    assert done.returncode == 0, done.stderr
    assert "Resuming from checkpoint" in done.stdout
    assert len(emu.records) == 4
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA application_id").fetchone() == (APPLICATION_ID,)
        assert ("format", "bulk-delete checkpoint") in db.execute("SELECT * FROM meta")
    db.close()


def test_an_old_checkpoint_whose_plan_was_never_stored_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    Checkpoint.open(path).close()
    unmark(path)
    with Checkpoint.open(path) as checkpoint:
        assert not checkpoint.has_plan


def test_an_old_checkpoint_that_another_run_is_stamping_is_in_use(tmp_path: Path) -> None:
    """Two runs opening one checkpoint from before the mark at once both stamped it and
    switched it to WAL, and SQLite refused one's switch now and then (exit 2, "database is
    locked"), as it did for a new one. The first holds the lock while it stamps it."""
    path = tmp_path / "c.sqlite"
    Checkpoint.open(path).close()
    unmark(path)
    before = digest(path)
    with checkpoints.lock(path), pytest.raises(LockHeld, match="is in use"):  # another run's
        Checkpoint.open(path)
    assert digest(path) == before  # not stamped under another run's lock
    with Checkpoint.open(path):  # once it is free
        assert schema._inspect(path) == "ours"


class StampedAfterFirstRead:
    """A connection whose file another run stamps right after its first read."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self.connection, self.path, self.reads = connection, path, 0

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        cursor = self.connection.execute(sql, *args)
        self.reads += sql.startswith("PRAGMA")
        if self.reads == 1 and sql.startswith("PRAGMA"):
            other = sqlite3.connect(self.path, isolation_level=None)
            schema._prepare(other, stamp=True)  # as a run opening it to write does
            other.close()
        return cursor

    def __getattr__(self, name: str) -> Any:
        return getattr(self.connection, name)


def test_an_old_checkpoint_another_run_stamps_while_it_is_read_is_not_anothers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two runs opening one checkpoint from before the mark at once: one stamps its header
    (application_id and user_version, in one transaction) between the other's reads of them.
    Read statement by statement, the old application_id and the new user_version read as
    another program's header, and that run exited 2 on our own checkpoint."""
    path = tmp_path / "c.sqlite"
    Checkpoint.open(path).close()
    unmark(path)
    connect = schema._connect
    monkeypatch.setattr(
        schema, "_connect", lambda *args: StampedAfterFirstRead(connect(*args), path)
    )
    assert schema._inspect(path) == "legacy"  # as it was when the reading began


# ---------------------------------------------------------------- a full disk


def test_a_full_disk_while_storing_the_plan_is_exit_2_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    with Checkpoint.open(path) as checkpoint:
        (pages,) = checkpoint._db.execute("PRAGMA page_count").fetchone()
        checkpoint._db.execute(f"PRAGMA max_page_count = {pages}")
        with pytest.raises(InputError, match="no space left on device") as caught:
            checkpoint.store_plan(
                requests(2000), [], source="s", fingerprint="f", options={}, extra={}
            )
        assert str(path) in str(caught.value)
        assert "nothing sent" in str(caught.value)
        assert caught.value.exit_code == 2
        assert not checkpoint.has_plan  # all of the plan or none of it


def test_a_full_disk_while_recording_is_a_storage_error(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    with planned(path) as checkpoint:
        (pages,) = checkpoint._db.execute("PRAGMA page_count").fetchone()
        checkpoint._db.execute(f"PRAGMA max_page_count = {pages}")
        outcome = Outcome(1, Status.FAILED, False, 1, 0, 400, "x" * 50_000)  # needs new pages
        with pytest.raises(StorageError, match="no space left on device") as caught:
            checkpoint.record(outcome)
        assert caught.value.exit_code == 3
        assert "nothing sent" not in str(caught.value)
        assert checkpoint.counts().pending == 3


class FillingConnection:
    """A real connection whose disk fills after ``room`` outcomes are written."""

    def __init__(self, connection: sqlite3.Connection, room: int) -> None:
        self._connection = connection
        self.room = room

    def execute(self, sql: str, *args: Any) -> Any:
        if sql.startswith("UPDATE requests SET status"):
            if self.room <= 0:
                raise sqlite3.OperationalError("database or disk is full")
            self.room -= 1
        return self._connection.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)


async def test_a_full_disk_while_sending_stops_the_run_with_exit_3(
    emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = await emulator(rate="off")
    sheet, path = leads_csv(tmp_path / "leads.csv", 6), tmp_path / "c.sqlite"
    real_connect = schema._connect  # patched where Checkpoint.open looks it up
    monkeypatch.setattr(
        checkpoints, "_connect", lambda *args: FillingConnection(real_connect(*args), 2)
    )
    done = await send_sheet(emu, sheet, path, "--rate", "off", "--concurrency", "1")
    assert done.returncode == 3, done.stderr
    assert f"checkpoint {path}: no space left on device" in done.stderr
    assert "internal error" not in done.stderr
    assert "nothing sent" not in done.stderr
    monkeypatch.undo()
    done = await run_cli("status", str(path))
    assert done.returncode == 1
    with Checkpoint.open_existing(path) as checkpoint:
        assert checkpoint.counts().queued == 2
    done = await send_sheet(emu, sheet, path, "--rate", "off")  # the rerun resumes
    assert done.returncode == 0
    assert {record["ProspectId"] for record in emu.records} == {
        f"00000000-0000-4000-8000-{n:012d}" for n in range(6)
    }


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
async def test_a_log_on_a_full_disk_stops_the_run_with_exit_3(
    emulator: Any, tmp_path: Path
) -> None:
    emu = await emulator(rate="off")
    sheet, path = leads_csv(tmp_path / "leads.csv", 6), tmp_path / "c.sqlite"
    done = await send_sheet(
        emu, sheet, path, "--rate", "off", "--concurrency", "1", "--log-file", "/dev/full"
    )
    assert done.returncode == 3, done.stderr
    assert "cannot write the log /dev/full: no space left on device" in done.stderr
    assert "internal error" not in done.stderr
    with Checkpoint.open_existing(path) as checkpoint:
        assert checkpoint.counts().queued == len(emu.records) == 1  # every answer recorded


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
async def test_a_summary_on_a_full_disk_after_sending_is_exit_3(
    emulator: Any, tmp_path: Path
) -> None:
    emu = await emulator(rate="off")
    sheet, path = leads_csv(tmp_path / "leads.csv", 3), tmp_path / "c.sqlite"
    done = await send_sheet(emu, sheet, path, "--rate", "off", "--summary-json", "/dev/full")
    assert done.returncode == 3
    assert "--summary-json /dev/full: no space left on device" in done.stderr
    assert "exit=3" in done.stderr  # the scheduler's line says what the run ends with
    assert "nothing sent" not in done.stderr
    assert len(emu.records) == 3


def test_the_log_names_a_full_disk() -> None:
    class Full:
        def write(self, text: str) -> int:
            raise OSError(28, "No space left on device")

        def flush(self) -> None:
            pass

    log = OutcomeLog(Full(), Path("out.jsonl"), system_wall)  # type: ignore[arg-type]
    item = checkpoints.Pending(1, "{}", "lead")
    with pytest.raises(StorageError, match=r"out\.jsonl: no space left on device"):
        log(item, Outcome(1, Status.QUEUED, False, 1, 0, 200, ""))


def test_a_checkpoint_we_open_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    planned(path).close()
    os.chmod(path, 0o644)  # as an earlier release left it under umask 022
    with Checkpoint.open(path) as checkpoint:
        checkpoint.set_meta("x", "y")
        modes = {p.name: oct(p.stat().st_mode & 0o777) for p in tmp_path.iterdir()}
    private = {"c.sqlite", "c.sqlite-wal", "c.sqlite-shm", "c.sqlite.lock"}  # its lock: made
    assert modes == dict.fromkeys(private, "0o600")  # as it was created (planned)


async def test_a_checkpoint_with_two_names_is_refused_until_it_has_one(
    emulator: Any, tmp_path: Path
) -> None:
    """SQLite's journal follows the name used, so a hard-linked checkpoint could hide
    outcomes from a resume under the other name: refused (exit 2, 0 calls) under either name,
    and sent once it has one name again."""
    emu = await emulator(rate="off")
    sheet = leads_csv(tmp_path / "leads.csv", 3)
    first = tmp_path / "cp.sqlite"
    unconfirmed = await run_cli(  # no --yes, no terminal: the plan is saved, nothing sent
        "run", str(sheet), "--checkpoint", str(first), "--open-window", env=demo_env(emu.url)
    )
    assert unconfirmed.returncode == 2, unconfirmed.stderr
    assert first.exists()
    os.link(first, tmp_path / "other.sqlite")
    for name in ("cp.sqlite", "other.sqlite"):
        done = await send_sheet(emu, sheet, tmp_path / name, "--rate", "off")
        assert (name, done.returncode) == (name, 2), done.stderr
        assert "2 names (hard links)" in done.stderr
    assert emu.calls == 0
    (tmp_path / "other.sqlite").unlink()
    done = await send_sheet(emu, sheet, first, "--rate", "off")
    assert done.returncode == 0, done.stderr
    assert len(emu.records) == 3


# ---------------------------------------------------------------- inputs that are not files

# (what is named, the command's words with {name} for it; what the error says it is)
NOT_FILES = {
    "run on a FIFO": ("run {fifo} --checkpoint c.sqlite --yes --open-window", "a named pipe"),
    "run on /dev/zero": ("run /dev/zero --checkpoint c.sqlite --yes --open-window", "a device"),
    "plan on a FIFO": ("plan {fifo}", "a named pipe"),
    "a checkpoint that is a FIFO": ("run {sheet} --checkpoint {fifo} --yes", "a named pipe"),
    "status of a FIFO": ("status {fifo}", "a named pipe"),
    "a job file that is a FIFO": ("job {fifo} --yes", "a named pipe"),
    "a job whose input is a FIFO": ("job {job} --yes", "a named pipe"),
}


@pytest.mark.e2e
@pytest.mark.parametrize("case", list(NOT_FILES))
async def test_an_input_that_is_not_a_file_is_refused_before_it_is_opened(
    case: str, emulator: Any, tmp_path: Path
) -> None:
    """A FIFO blocks its reader until a writer comes, /dev/zero never ends, and a read blocked
    in the kernel holds the process past SIGTERM, SIGINT and SIGHUP: `run` on one hung until
    kill -9. Refused (exit 2) before it is opened, as `plan` refuses it, by what it is."""
    emu = await emulator(rate="off")
    fifo = tmp_path / "ff.csv"
    os.mkfifo(fifo)
    sheet = leads_csv(tmp_path / "leads.csv", 2)
    job = tmp_path / "job.toml"
    job.write_text(f'input = "{fifo.name}"\ncodes = [201]\nconfirm = true\nopen_window = true\n')
    words, kind = NOT_FILES[case]
    args = words.format(fifo=fifo, sheet=sheet, job=job).split()
    process = await start_cli(*args, env=demo_env(emu.url))
    try:
        _, err = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:  # (before: blocked for ever)
            process.kill()
            await process.wait()
    assert process.returncode == 2, err.decode()
    assert f"is {kind}" in err.decode()
    assert emu.calls == 0


@pytest.mark.parametrize("where", ["inside mkstemp", "inside fdopen", "while writing"])
def test_a_stop_at_any_byte_of_a_write_leaves_no_part_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """A signal raised inside mkstemp, after it made the file and before it returned the name,
    left a .part beside the results (seen once in the suite, under load)."""
    target = tmp_path / "out.csv"
    made = tempfile.mkstemp

    def stopped_in_mkstemp(*args: Any, **kwargs: Any) -> Any:
        made(*args, **kwargs)  # the file exists; its name never comes back
        raise KeyboardInterrupt

    def stopped_in_fdopen(*_: Any, **__: Any) -> Any:
        raise KeyboardInterrupt

    if where == "inside mkstemp":
        monkeypatch.setattr(tempfile, "mkstemp", stopped_in_mkstemp)
    elif where == "inside fdopen":
        monkeypatch.setattr(os, "fdopen", stopped_in_fdopen)

    def write() -> None:
        with replacing(target) as handle:
            handle.write("half")
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write()
    assert list(tmp_path.iterdir()) == []
