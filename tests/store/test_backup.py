"""The backup file on real files: durable per request, appended across reopenings, a torn last
member ignored (and kept aside), 0600, and exported whole to CSV and Excel."""

from __future__ import annotations

import csv
import gzip
import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from bulk_delete.errors import DamagedBackup, NotABackup, StorageError
from bulk_delete.store.backup_file import (
    BackupWriter,
    encode_member,
    export_backup,
    read_backup,
    scan,
)

LEAD = "3aee22bd-8419-422a-8242-c510df9af001"


def activity(n: int, code: int = 201, **data: str) -> dict[str, Any]:
    return {
        "Id": f"00000000-0000-4000-8000-{n:012d}",
        "EventCode": code,
        "EventName": "Demo Booked",
        "CreatedOn": f"2024-03-{n % 28 + 1:02d} 10:00:00",
        "ModifiedOn": f"2024-04-{n % 28 + 1:02d} 10:00:00",
        "Notes": f"note {n}",
        "Data": [{"Key": key, "Value": value} for key, value in data.items()],
    }


def ids(path: Path) -> list[str]:
    return [row["ProspectActivityId"] for row in read_backup(path)]


def test_rows_hold_every_field_as_returned_and_the_request(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl.gz"
    sent = [activity(1, mx_Custom_1="=1+1", mx_Custom_2="12.50"), activity(2, code=155)]
    with BackupWriter.open(path) as writer:
        writer.write(7, LEAD, sent)
    rows = list(read_backup(path))
    assert [row["Activity"] for row in rows] == sent  # nothing changed, nothing added
    assert rows[0] == {
        "Request": 7,
        "ProspectId": LEAD,
        "ProspectActivityId": sent[0]["Id"],
        "ActivityEvent": "201",
        "CreatedOn": sent[0]["CreatedOn"],
        "ModifiedOn": sent[0]["ModifiedOn"],
        "Activity": sent[0],
    }
    with gzip.open(path, "rt") as handle:  # any gzip reader reads it: one JSON per line
        lines = [json.loads(line) for line in handle]
    assert lines[-1] == {"Request": 7, "Saved": 2}


def test_reopening_appends_and_knows_what_is_saved(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl.gz"
    with BackupWriter.open(path) as writer:
        assert writer.saved_requests() == set()
        writer.write(1, LEAD, [activity(1)])
        writer.write(2, LEAD, [])  # nothing in its window: saved all the same
    first = path.read_bytes()
    with BackupWriter.open(path) as writer:
        assert writer.saved_requests() == {1, 2}
        writer.write(3, LEAD, [activity(3), activity(4)])
        assert writer.saved_requests() == {1, 2, 3}
    assert path.read_bytes().startswith(first)  # appended: nothing before rewritten
    assert ids(path) == [activity(n)["Id"] for n in (1, 3, 4)]
    assert [row["Request"] for row in read_backup(path)] == [1, 3, 3]


def test_a_torn_last_member_is_ignored_then_set_aside_on_reopening(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl.gz"
    with BackupWriter.open(path) as writer:
        writer.write(1, LEAD, [activity(1)])
        writer.write(2, LEAD, [activity(2)])
    whole = path.stat().st_size
    torn = encode_member(3, LEAD, [activity(n) for n in range(3, 40)])
    with path.open("ab") as handle:  # a kill -9 (or a power cut) half way through a write
        handle.write(torn[: len(torn) // 2])
    assert ids(path) == [activity(1)["Id"], activity(2)["Id"]]
    assert scan(path).torn == len(torn) // 2
    with BackupWriter.open(path) as writer:
        assert writer.saved_requests() == {1, 2}  # request 3 was never sent: fetch it again
        writer.write(3, LEAD, [activity(3)])
    assert ids(path) == [activity(n)["Id"] for n in (1, 2, 3)]
    aside = tmp_path / f"b.jsonl.gz.torn-{whole}"
    assert aside.read_bytes() == torn[: len(torn) // 2]  # kept, never deleted
    assert stat.S_IMODE(aside.stat().st_mode) == 0o600


def test_a_member_missing_lines_is_not_believed(tmp_path: Path) -> None:
    """The seal counts the lines: a whole member whose seal disagrees is not a torn write but
    a damaged (or foreign) file, and nothing is appended to it."""
    path = tmp_path / "b.jsonl.gz"
    with BackupWriter.open(path) as writer:
        writer.write(1, LEAD, [activity(1)])
    row = json.dumps({"Request": 2, "ProspectActivityId": "x"})
    with path.open("ab") as handle:
        handle.write(gzip.compress((row + '\n{"Request": 2, "Saved": 5}\n').encode()))
    size = path.stat().st_size
    named = r"b\.jsonl\.gz cannot be read whole: member 2 \(bytes [\d,]+–[\d,]+, request 2\)"
    with pytest.raises(DamagedBackup, match=named + " should hold 5 rows"):
        ids(path)
    with pytest.raises(DamagedBackup, match=named):
        BackupWriter.open(path)
    assert path.stat().st_size == size


@pytest.mark.parametrize(
    "content",
    [b"ProspectId\nabc\n", gzip.compress(b"a log line\n")],
    ids=["a sheet", "a gzipped log"],
)
def test_another_file_is_refused_and_left_alone(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "leads.csv"
    path.write_bytes(content)
    path.chmod(0o644)
    with pytest.raises(NotABackup, match=r"leads\.csv is not a bulk-delete backup"):
        BackupWriter.open(path)
    assert path.read_bytes() == content
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert list(tmp_path.iterdir()) == [path]


def test_the_file_is_0600_even_when_it_was_not(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl.gz"
    old = os.umask(0)
    try:
        with BackupWriter.open(path) as writer:
            writer.write(1, LEAD, [activity(1)])
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o644)
    with BackupWriter.open(path):
        pass
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


READER = "import sys; from bulk_delete.store.backup_file import read_backup; " + (
    "print(sum(1 for _ in read_backup(sys.argv[1])))"
)


@pytest.mark.e2e
def test_what_write_returned_is_readable_by_another_process(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl.gz"
    writer = BackupWriter.open(path)
    try:
        for seq in range(1, 4):
            writer.write(seq, LEAD, [activity(seq * 10 + n) for n in range(seq)])
            seen = subprocess.run(  # the writer is still open: nothing is buffered in it
                [sys.executable, "-c", READER, str(path)], capture_output=True, text=True
            )
            assert seen.stdout.strip() == str(seq * (seq + 1) // 2)
    finally:
        writer.close()


WRITER = """
import sys
from bulk_delete.store.backup_file import BackupWriter
writer = BackupWriter.open(sys.argv[1])
for seq in range(1, 100_000):
    writer.write(seq, "lead", [{"Id": f"{seq}-{n}", "EventCode": 201, "CreatedOn": "x",
                              "Notes": "y" * 2000} for n in range(50)])
    print(seq, flush=True)
"""


@pytest.mark.e2e
def test_a_writer_killed_mid_run_leaves_every_returned_write_readable(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl.gz"
    with subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        returned = [int(process.stdout.readline()) for _ in range(30)]
        os.kill(process.pid, signal.SIGKILL)
        returned += [int(line) for line in process.stdout.read().split()]
    assert process.returncode == -signal.SIGKILL
    with BackupWriter.open(path) as writer:
        saved = writer.saved_requests()
        assert set(returned) <= saved <= set(returned) | {max(returned) + 1}
        writer.write(max(saved) + 1, LEAD, [activity(1)])
    rows = list(read_backup(path))
    assert len(rows) == 50 * len(saved) + 1


def test_a_write_that_fails_raises_naming_the_file_and_saves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl.gz"
    writer = BackupWriter.open(path)
    try:
        writer.write(1, LEAD, [activity(1)])
        read_only = os.open(path, os.O_RDONLY)
        os.dup2(read_only, writer._fd)  # the file became unwritable under the run
        os.close(read_only)
        with pytest.raises(StorageError, match=r"b\.jsonl\.gz.*request 2 was not sent"):
            writer.write(2, LEAD, [activity(2)])
        assert writer.saved_requests() == {1}
        with pytest.raises(StorageError, match="failed earlier"):  # no write trusted after one
            writer.write(3, LEAD, [activity(3)])
    finally:
        writer.close()
    assert ids(path) == [activity(1)["Id"]]


FULL_DISK = """
import resource, signal, sys
from bulk_delete.store.backup_file import BackupWriter
from bulk_delete.errors import StorageError
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
writer = BackupWriter.open(sys.argv[1])
writer.write(1, "lead", [{"Id": "a", "Notes": "x"}])
size = writer.path.stat().st_size
resource.setrlimit(resource.RLIMIT_FSIZE, (size + 100, size + 100))  # the disk fills up
try:
    writer.write(2, "lead", [{"Id": str(n), "Notes": str(n) * 50} for n in range(200)])
except StorageError as error:
    print(error)
"""


@pytest.mark.e2e
def test_a_write_cut_short_by_a_full_disk_leaves_no_torn_member(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl.gz"
    done = subprocess.run(
        [sys.executable, "-c", FULL_DISK, str(path)], capture_output=True, text=True, check=True
    )
    assert f"cannot write the backup {path}" in done.stdout
    assert "request 2 was not sent" in done.stdout
    assert scan(path).torn == 0  # the part written was cut again
    assert ids(path) == ["a"]


def test_a_request_already_saved_is_not_written_again(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl.gz"
    with BackupWriter.open(path) as writer:
        writer.write(1, LEAD, [activity(1), activity(2)])
    before = path.read_bytes()
    with BackupWriter.open(path) as writer:
        writer.write(1, LEAD, [activity(1)])  # after its delete, fewer are left: keep the first
    assert path.read_bytes() == before


def test_adding_to_a_saved_request_appends_only_what_it_lacks_by_id(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl.gz"
    with BackupWriter.open(path) as writer:
        writer.write(1, LEAD, [activity(1), activity(2)])
        writer.write(2, LEAD, [activity(9)])
    before = path.read_bytes()
    with BackupWriter.open(path) as writer:  # a resumed run: the spans come from the scan
        assert writer.saved_ids(1) == {activity(n)["Id"] for n in (1, 2)}
        assert writer.add(1, LEAD, [activity(2), activity(1)]) == 0  # nothing new: no write
        assert path.read_bytes() == before
        assert writer.add(1, LEAD, [activity(1), activity(2), activity(3)]) == 1
        assert writer.add(1, LEAD, [activity(3), activity(4)]) == 1  # the member just added
        assert writer.add(3, LEAD, [activity(5)]) == 1  # a request not saved: written whole
    assert path.read_bytes().startswith(before)  # appended: nothing before rewritten
    assert [(row["Request"], row["Activity"]) for row in read_backup(path)] == [
        (1, activity(1)),
        (1, activity(2)),
        (2, activity(9)),
        (1, activity(3)),
        (1, activity(4)),
        (3, activity(5)),
    ]
    assert scan(path).requests == [1, 2, 1, 1, 3]


def written(path: Path) -> Path:
    with BackupWriter.open(path) as writer:
        writer.write(1, LEAD, [activity(1, mx_Custom_1='=HYPERLINK("x")', mx_Custom_2="1,5")])
        writer.write(2, LEAD, [activity(2, code=155, mx_Custom_3="Zeile 1\nZeile 2 – 午後")])
    return path


def expected_table() -> list[list[str]]:
    one, two = activity(1), activity(2, code=155)
    fields = ["CreatedOn", "EventCode", "EventName", "Id", "ModifiedOn", "Notes"]
    head = ["Request", "ProspectId", "ProspectActivityId", "ActivityEvent", "CreatedOn"]
    head += ["ModifiedOn", *(f"Activity.{f}" for f in fields)]
    head += ["Data.mx_Custom_1", "Data.mx_Custom_2", "Data.mx_Custom_3"]
    rows = [head]
    for seq, act, data in (
        (1, one, ['=HYPERLINK("x")', "1,5", ""]),
        (2, two, ["", "", "Zeile 1\nZeile 2 – 午後"]),
    ):
        fixed = [str(seq), LEAD, act["Id"], str(act["EventCode"]), act["CreatedOn"]]
        rows.append([*fixed, act["ModifiedOn"], *(str(act[f]) for f in fields), *data])
    return rows


def test_export_to_csv_round_trips(tmp_path: Path) -> None:
    out = tmp_path / "backup.csv"
    assert export_backup(written(tmp_path / "b.jsonl.gz"), out).rows == 2
    with out.open(newline="", encoding="utf-8") as handle:
        table = list(csv.reader(handle))
    expected = expected_table()
    expected[1][-3] = "'" + expected[1][-3]  # a formula is defused for the spreadsheet
    assert table == expected


def test_export_to_xlsx_round_trips(tmp_path: Path) -> None:
    out = tmp_path / "backup.xlsx"
    assert export_backup(written(tmp_path / "b.jsonl.gz"), out).rows == 2
    sheet = openpyxl.load_workbook(out).active
    assert sheet is not None
    table = [
        ["" if v is None else str(v) for v in row] for row in sheet.iter_rows(values_only=True)
    ]
    assert table == expected_table()  # the formula stays text, exactly as LeadSquared had it


def test_members_larger_than_a_read_chunk_are_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl.gz"
    big = [{**activity(n), "Notes": os.urandom(60_000).hex()} for n in range(3)]
    with BackupWriter.open(path) as writer:
        writer.write(1, LEAD, big)
        writer.write(2, LEAD, [activity(9)])
        writer.write(3, LEAD, big[:1])
    assert path.stat().st_size > 4 * 65_536  # each big member spans several chunks
    assert [row["Activity"] for row in read_backup(path)] == [*big, activity(9), big[0]]
    whole = path.stat().st_size
    with path.open("r+b") as handle:  # the last member torn a few bytes before its end
        handle.truncate(whole - 10)
    assert [row["Request"] for row in read_backup(path)] == [1, 1, 1, 2]
