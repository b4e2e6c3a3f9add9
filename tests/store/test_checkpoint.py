"""The checkpoint as a file: its lock, its folder, other programs' databases, read-only
readers, old checkpoints, and who may read what we write."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bulk_delete.errors import InputError, LockHeld
from bulk_delete.records import Request
from bulk_delete.store import checkpoint as checkpoints
from bulk_delete.store.checkpoint import Checkpoint
from bulk_delete.store.schema import APPLICATION_ID

from ..conftest import demo_env, leads_csv, run_cli, send_sheet


def planned(path: Path, leads: int = 3) -> Checkpoint:
    checkpoint = Checkpoint.open(path)
    requests = (
        Request(f"00000000-0000-4000-8000-{n:012d}", ("201",), "", "", "", (n,))
        for n in range(leads)
    )
    checkpoint.store_plan(requests, [], source=str(path), fingerprint="f", options={}, extra={})
    return checkpoint


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_a_second_run_on_the_same_checkpoint_exits_75_and_names_the_pid(
    emulator: Any, tmp_path: Path
) -> None:
    emu = await emulator(rate="off")
    sheet, checkpoint = leads_csv(tmp_path / "leads.csv", 5), tmp_path / "c.sqlite"
    with checkpoints.lock(checkpoint):  # another `run` (this process) is sending from it
        done = await send_sheet(emu, sheet, checkpoint, "--rate", "off")
    assert done.returncode == 75
    assert f"pid {os.getpid()}" in done.stderr
    assert emu.calls == 0
    done = await send_sheet(emu, sheet, checkpoint, "--rate", "off")  # released: it runs
    assert done.returncode == 0
    assert len(emu.records) == 5


async def test_a_typo_in_the_checkpoint_folder_is_exit_2_and_creates_nothing(
    emulator: Any, tmp_path: Path
) -> None:
    emu = await emulator(rate="off")
    sheet = leads_csv(tmp_path / "leads.csv", 3)
    done = await send_sheet(emu, sheet, tmp_path / "chekpoints" / "c.sqlite")
    assert done.returncode == 2
    assert "no such directory" in done.stderr
    assert not (tmp_path / "chekpoints").exists()
    assert emu.calls == 0


async def test_another_programs_database_is_refused_untouched(
    emulator: Any, tmp_path: Path
) -> None:
    emu = await emulator(rate="off")
    other = tmp_path / "crm.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE contacts (id INTEGER PRIMARY KEY, name TEXT)")
        db.execute("INSERT INTO contacts (name) VALUES ('Asha')")
    db.close()
    before = digest(other)
    done = await send_sheet(emu, leads_csv(tmp_path / "leads.csv", 3), other)
    assert done.returncode == 2
    assert "another program's SQLite database (tables: contacts)" in done.stderr
    assert digest(other) == before
    for command in ("status", "export"):
        args = (command, str(other)) + (
            ("--out", str(tmp_path / "x.csv")) if command == "export" else ()
        )
        done = await run_cli(*args)
        assert done.returncode == 2
        assert "not a bulk-delete checkpoint" in done.stderr
    assert digest(other) == before
    assert emu.calls == 0


def _marked(path: Path, *statements: str) -> str:
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        db.execute("PRAGMA user_version = 1")
        for statement in statements:
            db.execute(statement)
    db.close()
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_our_header_alone_is_not_a_checkpoint(emulator: Any, tmp_path: Path) -> None:
    emu = await emulator(rate="off")
    sheet = leads_csv(tmp_path / "leads.csv", 2)
    for name, statements in (("foreign", ("CREATE TABLE customers (id)",)), ("empty", ())):
        path = tmp_path / f"{name}.sqlite"
        before = _marked(path, *statements)
        args = ("run", str(sheet), "--checkpoint", str(path), "-y", "--open-window")
        done = await run_cli(*args, env=demo_env(emu.url))
        assert done.returncode == 2, name
        assert "not a bulk-delete checkpoint" in done.stderr
        assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert emu.calls == 0


def test_a_file_that_is_not_sqlite_says_so(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite"
    path.write_text("ProspectId\n" * 100)
    with pytest.raises(InputError, match="is not a bulk-delete checkpoint"):
        Checkpoint.open(path)


def test_status_and_export_open_read_only(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    planned(path).close()
    with Checkpoint.open_existing(path) as checkpoint:
        assert checkpoint.counts().pending == 3
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            checkpoint._db.execute("UPDATE requests SET status = 'queued'")


async def test_status_reads_a_checkpoint_from_before_the_new_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    planned(path).close()
    with sqlite3.connect(path) as db:  # as the first release wrote it
        db.execute("ALTER TABLE runs DROP COLUMN start_span")
        db.execute("ALTER TABLE runs DROP COLUMN limit_per_second")
        db.execute("INSERT INTO runs (started_at, host, rate, calls) VALUES ('x', 'h', 'r', 3)")
    db.close()
    before = digest(path)
    done = await run_cli("status", str(path))
    assert done.returncode == 1
    assert "3 call(s)" in done.stdout
    assert digest(path) == before  # not migrated by a reader


async def test_everything_we_write_is_private(emulator: Any, tmp_path: Path) -> None:
    emu = await emulator(rate="off")
    umask = os.umask(0o022)  # the usual default, under which files come out 0644
    try:
        await write_everything(emu, tmp_path)
    finally:
        os.umask(umask)
    written = [
        "c.sqlite",
        "c.sqlite.lock",
        "s.json",
        "o.jsonl",
        "o.csv",
        "o.xlsx",
        "p.xlsx",
        "i.csv",
    ]
    modes = {name: oct((tmp_path / name).stat().st_mode & 0o777) for name in written}
    assert modes == dict.fromkeys(written, "0o600")
    assert json.loads((tmp_path / "s.json").read_text())["totals"]["queued"] == 3


async def write_everything(emu: Any, tmp_path: Path) -> None:
    sheet = leads_csv(tmp_path / "leads.csv", 3, extra_rows="bad,1\n")
    checkpoint = tmp_path / "c.sqlite"
    await send_sheet(
        emu,
        sheet,
        checkpoint,
        "--rate",
        "off",
        "--summary-json",
        str(tmp_path / "s.json"),
        "--log-file",
        str(tmp_path / "o.jsonl"),
    )
    await run_cli("export", str(checkpoint), "--out", str(tmp_path / "o.csv"))
    await run_cli("export", str(checkpoint), "--out", str(tmp_path / "o.xlsx"))
    await run_cli(
        "plan",
        str(sheet),
        "--out",
        str(tmp_path / "p.xlsx"),
        "--invalid-out",
        str(tmp_path / "i.csv"),
    )


def test_two_processes_opening_an_old_checkpoint_at_once_add_each_column_once(
    tmp_path: Path,
) -> None:
    """An old checkpoint lacks a column added since. While one opener is adding it (its
    write transaction open), a second opener must wait and then find it, not add it again:
    SQLite refuses a duplicate column, and the loser of a lock race would crash with exit 70
    instead of being told the lock is held."""
    import threading
    import time

    path = tmp_path / "old.sqlite"
    Checkpoint.open(path).close()
    with sqlite3.connect(path) as old:
        old.execute("ALTER TABLE requests DROP COLUMN verified_note")  # as a release before it
    first = sqlite3.connect(path, isolation_level=None)
    first.execute("BEGIN IMMEDIATE")  # the first opener, half-way through its migration
    first.execute("ALTER TABLE requests ADD COLUMN verified_note TEXT NOT NULL DEFAULT ''")
    errors: list[BaseException] = []

    def second_opener() -> None:
        try:
            Checkpoint.open(path).close()
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=second_opener)
    thread.start()
    time.sleep(0.3)  # the second opener is waiting on the write lock by now
    first.execute("COMMIT")
    first.close()
    thread.join(10)
    assert errors == []
    columns = [row[1] for row in sqlite3.connect(path).execute("PRAGMA table_info(requests)")]
    assert columns.count("verified_note") == 1


@pytest.mark.parametrize(
    ("table", "change", "says"),
    [
        ("meta", "value = '{\"tz\": \"Mars/Olympus\"}' WHERE key = 'options'", "'Mars/Olympus'"),
        ("meta", "value = '{\"tz\": \"/etc/passwd\"}' WHERE key = 'options'", "'/etc/passwd'"),
        ("meta", "value = 'not json' WHERE key = 'options'", "saved plan options"),
        ("meta", "value = '[1]' WHERE key = 'options'", "saved plan options"),
        ("calls", "started = 1e12, answered = 1e12 + 1 WHERE id = 2", "the year 33,658"),
        ("calls", "started = -1e12 WHERE id = 2", "stamped in the year"),
    ],
)
async def test_a_checkpoint_changed_by_hand_is_exit_2_from_status_and_report(
    emulator: Any, tmp_path: Path, table: str, change: str, says: str
) -> None:
    """A bad tz or an impossible call time is named (exit 2), never a crash (exit 70); the
    export still writes the outcomes."""
    emu = await emulator()
    checkpoint = tmp_path / "c.sqlite"
    assert (await send_sheet(emu, leads_csv(tmp_path / "l.csv", 3), checkpoint)).returncode == 0
    with sqlite3.connect(checkpoint) as db:
        db.execute(f"UPDATE {table} SET {change}")
    status = await run_cli("status", str(checkpoint))
    report = await run_cli("report", str(checkpoint), "-o", str(tmp_path / "r.html"))
    for done in (report, *([status] if table == "meta" else [])):
        assert done.returncode == 2, done.stderr
        assert f"checkpoint {checkpoint}: " in done.stderr
        assert says in done.stderr
    if table == "calls":  # status reads no call times
        assert status.returncode == 0, status.stderr
    exported = await run_cli("export", str(checkpoint), "-o", str(tmp_path / "e.csv"))
    assert exported.returncode == 0, exported.stderr
    assert "Wrote 3 line(s)" in exported.stdout


@pytest.mark.parametrize("table", ["requests", "runs", "invalid_rows", "meta"])
async def test_a_marked_checkpoint_missing_a_table_is_refused_by_every_reader(
    emulator: Any, tmp_path: Path, table: str
) -> None:
    """Our header and mark, one table dropped by another program: status, export and report
    crashed on it ("internal error … a bug", exit 70); a folder's report left it out then."""
    emu = await emulator()
    checkpoint = tmp_path / "night" / "c.sqlite"
    checkpoint.parent.mkdir()
    sheet = leads_csv(tmp_path / "l.csv", 2)
    assert (await send_sheet(emu, sheet, checkpoint)).returncode == 0
    with sqlite3.connect(checkpoint) as db:
        db.execute(f"DROP TABLE {table}")
    db.close()
    before = checkpoint.read_bytes()
    for command in (("status",), ("export", "-o", "-"), ("report", "-o", str(tmp_path / "r.html"))):
        done = await run_cli(command[0], str(checkpoint), *command[1:])
        assert done.returncode == 2, (command, done.stderr)
        assert str(checkpoint) in done.stderr
    assert checkpoint.read_bytes() == before
    folder = await run_cli("report", str(checkpoint.parent), "-o", str(tmp_path / "n.html"))
    assert folder.returncode == 0, folder.stderr


@pytest.mark.parametrize("kind", ["purge", "restore"])
def test_a_new_checkpoint_that_another_run_is_creating_is_in_use(tmp_path: Path, kind: str) -> None:
    """Two runs started at once on one new checkpoint: the second to open it met SQLite's
    refusal of its switch to WAL now and then (no busy wait where waiting could deadlock),
    and exited 2, "cannot write checkpoint: database is locked". Now the first holds the
    checkpoint's lock while it creates it, and the second is told it is in use (exit 75)."""
    from bulk_delete.store.restore_checkpoint import RestoreCheckpoint

    opening = Checkpoint.open if kind == "purge" else RestoreCheckpoint.open
    path = tmp_path / "new.sqlite"
    with checkpoints.lock(path), pytest.raises(LockHeld, match="is in use"):  # another run's
        opening(path)
    assert path.read_bytes() == b""  # untouched: no header, no journal
    assert not path.with_name("new.sqlite-wal").exists()
    opening(path).close()  # once it is free


REFUSED_RUN = """
import sys
from pathlib import Path
from bulk_delete.errors import LockHeld
from bulk_delete.store import checkpoint as checkpoints
from bulk_delete.store.checkpoint import Checkpoint

path = Path(sys.argv[1])
with Checkpoint.open(path):
    try:
        with checkpoints.lock(path):
            sys.exit("the lock was free")
    except LockHeld:
        pass
"""
READ_AFTER = """
import sqlite3, sys
reader = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
print(reader.execute("SELECT value FROM meta WHERE key = 'after'").fetchall())
"""


def test_a_new_checkpoint_keeps_its_outcomes_when_a_refused_run_closes_it(tmp_path: Path) -> None:
    """The lock a new checkpoint is created under is let go by closing its descriptor of the
    file, which drops every POSIX lock the process holds on it. The run's connection, open
    across it, lost SQLite's shared lock, so a second run, refused by the lock, took the file
    alone as it closed: it checkpointed and deleted the WAL the first went on writing. What
    the first then committed was in no file by its name (a kill -9 lost it, and the resume
    sent it again)."""
    path = tmp_path / "new.sqlite"
    with planned(path) as checkpoint, checkpoints.lock(path):
        subprocess.run([sys.executable, "-c", REFUSED_RUN, str(path)], check=True)
        checkpoint.set_meta("after", "the refused run")  # an outcome, committed
        seen = subprocess.run(  # by another process, as a resume after a kill -9 reads it
            [sys.executable, "-c", READ_AFTER, str(path)], check=True, capture_output=True
        )
    assert seen.stdout == b"[('the refused run',)]\n"
