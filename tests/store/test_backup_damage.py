"""A backup that cannot be read whole says so, naming the member, its bytes and its request:
never a short read, a short export, or a quiet cut on a resume. The one thing set aside is a
torn tail (a write killed half way, its request never sent), and that is said.

Damage is generated (Hypothesis: a byte flipped at any offset of any backup) as well as placed
by hand, and files in the format of the first version (plain gzip members) still read."""

from __future__ import annotations

import gzip
import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bulk_delete.emulator.server import _activities
from bulk_delete.errors import BulkDeleteError
from bulk_delete.store.backup_file import BackupWriter, encode_member, read_backup, scan

from ..backup_fixtures import CODES, WINDOW, deleted_by, killed_run, leads_in, saved_in, settled
from ..conftest import demo_env, leads_csv, run_cli

T = TypeVar("T")
LEAD = "3aee22bd-8419-422a-8242-c510df9af001"
NAMED = r"cannot be read whole: member \d+ \(bytes [\d,]+–[\d,]+, {which}\)"


def activity(n: int, notes: str = "") -> dict[str, Any]:
    return {
        "Id": f"00000000-0000-4000-8000-{n:012d}",
        "EventCode": 201,
        "CreatedOn": "2024-03-01 10:00:00",
        "Notes": notes or f"note {n}",
        "Data": [{"Key": "mx_Custom_1", "Value": f"value {n}"}],
    }


def written(path: Path, requests: int = 150, per: int = 2) -> Path:
    with BackupWriter.open(path) as writer:
        for seq in range(1, requests + 1):
            writer.write(seq, LEAD, [activity(seq * 10 + n) for n in range(per)])
    return path


def flip(path: Path, offset: int, xor: int = 0xFF) -> None:
    with path.open("r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)[0]
        handle.seek(offset)
        handle.write(bytes([byte ^ xor]))


def middle_of(path: Path, seq: int) -> int:
    start, end = scan(path).spans[seq][0]
    return (start + end) // 2


def legacy_member(seq: int, lead: str, activities: list[dict[str, Any]]) -> bytes:
    """A member exactly as the first version of the backup wrote it (plain gzip, no framing)."""
    rows = [
        {
            "Request": seq,
            "ProspectId": lead,
            "ProspectActivityId": a["Id"],
            "ActivityEvent": str(a["EventCode"]),
            "CreatedOn": a["CreatedOn"],
            "ModifiedOn": "",
            "Activity": a,
        }
        for a in activities
    ]
    lines = [json.dumps(row, ensure_ascii=False) for row in rows]
    lines.append(json.dumps({"Request": seq, "Saved": len(rows)}))
    return gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0)


# ---------------------------------------------------------------- reading: named, never short


def test_a_byte_flipped_inside_a_member_is_named_never_read_short(tmp_path: Path) -> None:
    path = written(tmp_path / "b.jsonl.gz")
    assert len(list(read_backup(path))) == 300
    flip(path, middle_of(path, 75))
    with pytest.raises(BulkDeleteError, match=NAMED.format(which="request 75")) as raised:
        list(read_backup(path))  # (the first version read 298 of the 300 rows, and said nothing)
    assert str(path) in str(raised.value)


async def test_export_of_a_damaged_backup_exits_2_naming_the_member_and_writes_nothing(
    tmp_path: Path,
) -> None:
    path = written(tmp_path / "b.jsonl.gz")
    flip(path, middle_of(path, 75))
    out = tmp_path / "x.csv"
    done = await run_cli("export", "--backup", str(path), "-o", str(out))
    assert done.returncode == 2, done.stdout
    assert re.search(NAMED.format(which="request 75"), done.stderr), done.stderr
    assert str(path) in done.stderr
    assert "nothing exported" in done.stderr
    assert not out.exists()


def test_a_cut_member_with_whole_members_after_it_is_damage_not_a_torn_write(
    tmp_path: Path,
) -> None:
    path = written(tmp_path / "b.jsonl.gz", requests=6)
    start, end = scan(path).spans[3][0]
    data = path.read_bytes()
    path.write_bytes(data[: (start + end) // 2] + data[end:])  # bytes lost inside member 3
    size = path.stat().st_size
    with pytest.raises(BulkDeleteError, match=NAMED.format(which="request 3")):
        list(read_backup(path))  # not read as the end of the file
    with pytest.raises(BulkDeleteError, match=NAMED.format(which="request 3")):
        BackupWriter.open(path)  # the members after the cut are no torn write
    assert path.stat().st_size == size
    assert sorted(tmp_path.iterdir()) == [path]  # nothing moved aside


def test_damage_before_a_torn_tail_stops_the_writer_and_nothing_is_set_aside(
    tmp_path: Path,
) -> None:
    """Faults 2's file: killed while writing a member, and a byte flipped in an early one."""
    path = written(tmp_path / "b.jsonl.gz", requests=64)
    torn = encode_member(65, LEAD, [activity(n) for n in range(650, 690)])
    with path.open("ab") as handle:
        handle.write(torn[: len(torn) // 2])
    flip(path, middle_of(path, 3))
    before = path.read_bytes()
    with pytest.raises(BulkDeleteError, match=NAMED.format(which="request 3")):
        BackupWriter.open(path)  # (the first version took members 3 to 64 for a torn tail)
    assert path.read_bytes() == before
    assert sorted(tmp_path.iterdir()) == [path]


# ---------------------------------------------------------------- generated damage

ACTIVITIES = st.lists(
    st.builds(activity, st.integers(0, 10**6), st.text(max_size=40)), max_size=3, unique_by=id
)
BACKUPS = st.lists(ACTIVITIES, min_size=1, max_size=6)


def _rows_or_named(path: Path, rows: list[dict[str, Any]]) -> str:
    """The read's outcome: every row as written ("whole"), or an error naming a member
    ("named"). A short or changed read fails the test."""
    read, error = _attempt(lambda: list(read_backup(path)))
    if error is not None:
        assert str(path) in error
        assert re.search(r"member \d+ \(bytes [\d,]+–[\d,]+, ", error), error
        return "named"
    assert read == rows, "a damaged backup read short (or changed) with no error"
    return "whole"


def _attempt(call: Callable[[], T]) -> tuple[T | None, str | None]:
    """What ``call`` returns, or the message of the BulkDeleteError it raises."""
    try:
        return call(), None
    except BulkDeleteError as error:
        return None, str(error)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests=BACKUPS, where=st.floats(0, 1, exclude_max=True), xor=st.integers(1, 255))
def test_a_byte_flipped_anywhere_is_named_or_harmless(
    requests: list[list[dict[str, Any]]], where: float, xor: int
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "b.jsonl.gz"
        with BackupWriter.open(path) as writer:
            for seq, activities in enumerate(requests, 1):
                writer.write(seq, LEAD, activities)
        rows = list(read_backup(path))
        flip(path, int(where * path.stat().st_size), xor)
        named = _rows_or_named(path, rows) == "named"
        reopened, error = _attempt(lambda: BackupWriter.open(path))
        if reopened is not None:
            reopened.close()
        assert named == (error is not None), error  # the writer and the readers agree
        assert error is None or str(path) in error
        assert sorted(os.listdir(folder)) == ["b.jsonl.gz"]  # a flip is never a torn tail


@settings(max_examples=200, deadline=None)
@given(requests=BACKUPS, where=st.floats(0, 1))
def test_a_backup_cut_anywhere_ends_in_a_torn_tail_at_the_start_of_the_cut_member(
    requests: list[list[dict[str, Any]]], where: float
) -> None:
    """What a kill in the middle of a write leaves (the front of the last member, its header
    cut or not) is always a torn tail, never damage: a resume must not stop for it."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "b.jsonl.gz"
        with BackupWriter.open(path) as writer:
            for seq, activities in enumerate(requests, 1):
                writer.write(seq, LEAD, activities)
        starts = sorted(start for spans in scan(path).spans.values() for start, _ in spans)
        size = path.stat().st_size
        cut = int(where * size)
        with path.open("r+b") as handle:
            handle.truncate(cut)
        found = scan(path)
        assert found.damage == []
        whole = [start for start in starts if start < cut]
        if cut in [*starts, size]:  # between members: nothing torn
            assert found.tail is None
        else:
            assert found.tail is not None
            assert found.tail.start == whole[-1]
            assert found.requests == list(range(1, len(whole)))


@settings(max_examples=200, deadline=None)
@given(requests=BACKUPS, where=st.floats(0, 1, exclude_max=True), xor=st.integers(1, 255))
def test_in_a_backup_of_the_first_format_a_flip_is_named_harmless_or_a_said_torn_tail(
    requests: list[list[dict[str, Any]]], where: float, xor: int
) -> None:
    """Plain gzip members do not say where they end: damage to the last one can look like a
    write cut by a kill. It is then reported as a torn tail (set aside and said), never read
    short in silence; damage before it is named."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "b.jsonl.gz"
        members = [legacy_member(seq, LEAD, a) for seq, a in enumerate(requests, 1)]
        path.write_bytes(b"".join(members))
        rows = list(read_backup(path))
        offset = int(where * path.stat().st_size)
        flip(path, offset, xor)
        tail = scan(path).tail
        if tail is not None:
            assert offset >= path.stat().st_size - len(members[-1])  # only the last member
            assert tail.start == path.stat().st_size - len(members[-1])
            return
        _rows_or_named(path, rows)


# ---------------------------------------------------------------- the first format still reads


def test_a_backup_of_the_first_format_reads_and_a_resume_appends_to_it(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl.gz"
    first = [legacy_member(seq, LEAD, [activity(seq)]) for seq in (1, 2, 3)]
    torn = legacy_member(4, LEAD, [activity(n) for n in range(40, 80)])
    path.write_bytes(b"".join(first) + torn[: len(torn) // 2])  # killed writing request 4
    assert [row["Request"] for row in read_backup(path)] == [1, 2, 3]
    with BackupWriter.open(path) as writer:
        assert writer.saved_requests() == {1, 2, 3}
        writer.write(4, LEAD, [activity(4)])
    assert path.read_bytes().startswith(b"".join(first))  # appended, nothing rewritten
    assert [row["Activity"] for row in read_backup(path)] == [activity(n) for n in (1, 2, 3, 4)]
    with gzip.open(path, "rt") as handle:  # old members and new ones: one gzip file to any reader
        seals = [json.loads(line) for line in handle if '"Saved"' in line]
    assert seals == [{"Request": n, "Saved": 1} for n in (1, 2, 3, 4)]


def test_damage_in_a_backup_of_the_first_format_is_named(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl.gz"
    members = [legacy_member(seq, LEAD, [activity(seq)]) for seq in range(1, 6)]
    path.write_bytes(b"".join(members))
    flip(path, len(b"".join(members[:2])) + len(members[2]) // 2)  # inside request 3's
    around = "request unknown: after request 2 and before request 4"  # no header names it
    with pytest.raises(BulkDeleteError, match=NAMED.format(which=around)):
        list(read_backup(path))


# ---------------------------------------------------------------- a run on a damaged backup


@pytest.mark.e2e
async def test_a_damaged_backup_stops_the_resume_before_any_delete_and_verify_names_the_loss(
    emulator: Any, tmp_path: Path
) -> None:
    """Fault 2: killed after N members, a byte flipped in an early one, the command rerun."""
    emu = await emulator(rate="off", webhook_delay=0.05, latency=0.01)
    args, sheet, backup = await killed_run(emu, tmp_path, leads=60, after=20, concurrency=2)
    env, checkpoint = demo_env(emu.url), tmp_path / "run.sqlite"
    flip(backup, middle_of(backup, 3))
    before, sent = backup.read_bytes(), len(emu.records)

    done = await run_cli(*args, "--backup", str(backup), env=env)
    assert done.returncode == 3, done.stdout + done.stderr
    assert re.search(NAMED.format(which="request 3"), done.stderr), done.stderr
    assert str(backup) in done.stderr
    assert len(emu.records) == sent  # nothing sent
    assert backup.read_bytes() == before  # nothing cut, nothing moved aside
    assert sorted(tmp_path.glob("backup.jsonl.gz*")) == [backup]

    # The way on that the message gives: a new file. Verify reads both, and names the loss.
    fresh = tmp_path / "backup-2.jsonl.gz"
    done = await run_cli(*args, "--rate", "off", "--backup", str(fresh), env=env)
    assert done.returncode == 0, done.stderr
    await settled(emu)
    checked = await run_cli("verify", str(checkpoint), "--rate", "off", env=env)
    assert "1 queued request(s) have no saved copy" in checked.stdout, checked.stdout
    lead = leads_in(sheet)[2]
    assert f"request 3 (lead {lead})" in checked.stdout
    assert re.search(NAMED.format(which="request 3"), checked.stdout), checked.stdout
    leads = leads_in(sheet)
    kept = {row["ProspectActivityId"] for row in [*_readable(backup), *read_backup(fresh)]}
    gone = deleted_by(emu, leads)
    assert kept <= gone.keys()
    owner = {a["Id"]: lead for lead in leads for a in _activities(lead, [])}
    assert {owner[key] for key in gone.keys() - kept} <= {lead}  # request 3's copy only is lost


async def test_a_last_member_cut_after_its_delete_was_sent_is_damage_not_a_torn_write(
    emulator: Any, tmp_path: Path
) -> None:
    """A file cut short (a copy that stopped half way) looks like a write killed half way,
    but the checkpoint knows that request's delete went out: its copy is lost, and said."""
    emu = await emulator(rate="off", webhook_delay=0.05)
    sheet = leads_csv(tmp_path / "leads.csv", 5, codes=f'"{CODES}"')
    backup = tmp_path / "backup.jsonl.gz"
    args = ["run", str(sheet), "--checkpoint", str(tmp_path / "r.sqlite"), "--yes", *WINDOW]
    args += ["--rate", "off", "--concurrency", "1", "--backup", str(backup)]
    done = await run_cli(*args, env=demo_env(emu.url))
    assert done.returncode == 0, done.stderr
    start, end = scan(backup).spans[5][0]
    with backup.open("r+b") as handle:
        handle.truncate((start + end) // 2)
    before = backup.read_bytes()
    again = await run_cli(*args, "--retry-failed", env=demo_env(emu.url))
    assert again.returncode == 3, again.stdout + again.stderr
    assert re.search(NAMED.format(which="request 5") + " is cut short", again.stderr)
    assert "records its delete as sent" in again.stderr
    assert backup.read_bytes() == before
    assert sorted(tmp_path.glob("backup.jsonl.gz*")) == [backup]  # not moved aside


def _readable(path: Path) -> list[dict[str, Any]]:
    """The rows of every member that still reads (walk goes on past damage)."""
    from bulk_delete.store.backup_file import Member, walk

    return [row for item in walk(path) if isinstance(item, Member) for row in item.rows]


@pytest.mark.e2e
async def test_a_torn_tail_is_set_aside_and_said_on_stderr_and_in_the_summary(
    emulator: Any, tmp_path: Path
) -> None:
    emu = await emulator(rate="off", webhook_delay=0.05, latency=0.01)
    args, sheet, backup = await killed_run(emu, tmp_path, leads=40, after=5, concurrency=1)
    args += ["--backup", str(backup)]
    env = demo_env(emu.url)
    # A kill in the middle of the next write leaves the front of a member: the next request's
    saved = scan(backup)
    pending = max(saved.requests) + 1
    member = encode_member(pending, leads_in(sheet)[pending - 1], [activity(n) for n in range(40)])
    with backup.open("r+b") as handle:
        handle.truncate(saved.end)  # (the kill itself may have torn one: this is the tear)
        handle.seek(saved.end)
        handle.write(member[: len(member) // 2])
    aside = backup.with_name(f"{backup.name}.torn-{saved.end}")

    summary = tmp_path / "summary.json"
    done = await run_cli(*args, "--summary-json", str(summary), env=env)
    assert done.returncode == 0, done.stderr
    assert f"moved to {aside}" in done.stderr
    assert json.loads(summary.read_text())["backup_set_aside"] == str(aside)
    assert f"moved to {aside}" in done.stdout  # the text summary says it too
    assert aside.read_bytes() == member[: len(member) // 2]
    await settled(emu)
    assert saved_in(backup) == deleted_by(emu, leads_in(sheet))  # the torn request saved again
