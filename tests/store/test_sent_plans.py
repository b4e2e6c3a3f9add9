"""A plan already sent is not sent again by accident (issue 32, point 4).

The machine remembers each plan it sent (its fingerprint, the account as a hash, the checkpoint
and when): `plan` warns, `run` and `job` refuse it under another checkpoint unless --again, a
resume goes on, and a memory that cannot be used is said by name.
"""

from __future__ import annotations

import contextlib
import re
import shlex
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bulk_delete.emulator.server import DEMO_ACCESS_KEY
from bulk_delete.errors import SentPlansUnusable
from bulk_delete.store.sent_plans import FILE_NAME, remember, sent_before

from ..conftest import demo_env, leads_csv, run_cli, send_sheet

HOST = "https://api-in21.leadsquared.com"


def test_the_memory_keeps_plans_per_account_and_never_a_key(own_state_dir: Path) -> None:
    remember("plan-1", HOST, DEMO_ACCESS_KEY, "/x/first.sqlite", at=1_767_225_600.0)
    remember("plan-1", HOST, DEMO_ACCESS_KEY, "/x/first.sqlite", at=1_767_300_000.0)  # kept once
    remember("plan-1", HOST, "u$other-key", "/x/other.sqlite", at=1_767_225_700.0)
    [sent] = sent_before({"plan-1", "plan-2"}, HOST, DEMO_ACCESS_KEY)
    assert (sent.checkpoint, sent.host, sent.when) == (
        "/x/first.sqlite",
        HOST,
        "2026-01-01 00:00 UTC",
    )
    assert len(sent_before({"plan-1"})) == 2  # no keys known (a dry run without them): any account
    assert sent_before({"plan-2"}, HOST, DEMO_ACCESS_KEY) == []
    path = own_state_dir / FILE_NAME
    assert DEMO_ACCESS_KEY.encode() not in path.read_bytes()
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert oct(path.parent.stat().st_mode & 0o777) == "0o700"


def test_a_plan_is_found_by_either_fingerprint_once_per_checkpoint(own_state_dir: Path) -> None:
    """A send keeps both fingerprints; a memory from before the requests one holds only the
    file's. Either finds the send, once; ``same_file`` says whether the file's did."""
    remember("old-file", HOST, DEMO_ACCESS_KEY, "/x/old.sqlite", at=1_767_225_600.0)  # today's
    remember(
        "file-1", HOST, DEMO_ACCESS_KEY, "/x/new.sqlite", at=1_767_300_000.0, requests="requests:1"
    )
    [old] = sent_before({"old-file"}, HOST, DEMO_ACCESS_KEY, requests="requests:9")
    assert (old.checkpoint, old.same_file) == ("/x/old.sqlite", True)
    [both] = sent_before({"file-1"}, HOST, DEMO_ACCESS_KEY, requests="requests:1")
    assert (both.checkpoint, both.same_file) == ("/x/new.sqlite", True)
    [by_requests] = sent_before({"file-2"}, HOST, DEMO_ACCESS_KEY, requests="requests:1")
    assert (by_requests.checkpoint, by_requests.same_file) == ("/x/new.sqlite", False)
    assert sent_before(set(), HOST, DEMO_ACCESS_KEY, requests="requests:2") == []


def test_a_dry_run_never_makes_the_file(own_state_dir: Path) -> None:
    assert sent_before({"plan-1"}, HOST, DEMO_ACCESS_KEY) == []
    assert not own_state_dir.exists()


def test_a_file_not_ours_is_named_with_how_to_mend_it(own_state_dir: Path) -> None:
    path = own_state_dir / FILE_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("not a database, but a note someone left here\n" * 10)
    for attempt in (
        lambda: sent_before({"p"}, HOST, DEMO_ACCESS_KEY),
        lambda: remember("p", HOST, DEMO_ACCESS_KEY, "/x/c.sqlite", at=0.0),
    ):
        with pytest.raises(SentPlansUnusable) as unusable:
            attempt()
        message = str(unusable.value)
        assert f"memory of sent plans {path} cannot be used" in message
        assert "it is not a bulk-delete sent-plans (not a SQLite database)" in message
        assert f"mv {path} {path}.bad" in message


async def test_the_same_sheet_under_a_second_checkpoint_is_refused_unless_again(
    emulator: Any, tmp_path: Path
) -> None:
    """The bar: exit 2 naming the first checkpoint and its date; with --again it is sent; the
    first checkpoint resumes as ever; plan warns and prints a command that runs as printed."""
    emu = await emulator(rate="off")
    sheet = leads_csv(tmp_path / "leads.csv", 3)
    first, second = tmp_path / "first.sqlite", tmp_path / "second.sqlite"
    done = await send_sheet(emu, sheet, first)
    assert done.returncode == 0, done.stderr
    assert len(emu.records) == 3
    again = await send_sheet(emu, sheet, second)
    assert again.returncode == 2
    assert f"under the checkpoint {first}" in again.stderr
    assert re.search(r"on \d{4}-\d\d-\d\d \d\d:\d\d UTC", again.stderr)
    assert "pass --again" in again.stderr
    assert len(emu.records) == 3  # nothing sent
    resumed = await send_sheet(emu, sheet, first)  # the same checkpoint: unaffected
    assert resumed.returncode == 0, resumed.stderr
    assert len(emu.records) == 3  # (everything was queued already)
    planned = await run_cli("plan", str(sheet), env=demo_env(emu.url))
    assert planned.returncode == 0, planned.stderr
    assert "warning: this plan was sent from this machine on" in planned.stdout
    command = shlex.split(planned.stdout.strip().splitlines()[-1])
    assert command[-2:] == ["--checkpoint", str(first)]  # goes on there: runs as printed
    forced = await send_sheet(emu, sheet, second, "--again")
    assert forced.returncode == 0, forced.stderr
    assert len(emu.records) == 6


async def test_another_account_or_another_sheet_is_a_new_plan(
    emulator: Any, tmp_path: Path
) -> None:
    emu = await emulator(rate="off")
    sheet = leads_csv(tmp_path / "leads.csv", 2)
    assert (await send_sheet(emu, sheet, tmp_path / "a.sqlite")).returncode == 0
    other = await emulator(rate="off")  # another host: another account
    assert (await send_sheet(other, sheet, tmp_path / "b.sqlite")).returncode == 0
    changed = leads_csv(tmp_path / "leads.csv", 2, start=5)  # other bytes: another plan
    assert (await send_sheet(emu, changed, tmp_path / "c.sqlite")).returncode == 0
    assert len(emu.records) == len(other.records) + 2 == 4


async def test_a_memory_that_cannot_be_used_is_said_by_name_and_the_run_goes_on(
    emulator: Any, tmp_path: Path, own_state_dir: Path
) -> None:
    """The ledger's rule without a daily limit: named, with how to mend it, never passed over
    in silence; the run goes on (a read-only state folder must not stop every run)."""
    emu = await emulator(rate="off")
    path = own_state_dir / FILE_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00" * 4096)
    sheet = leads_csv(tmp_path / "leads.csv", 2)
    done = await send_sheet(emu, sheet, tmp_path / "c.sqlite")
    assert done.returncode == 0, done.stderr
    said = f"warning: the machine's memory of sent plans {path} cannot be used: it is not a"
    assert done.stderr.count(said) == 2  # when it is read, and when the send is kept
    assert f"mv {path} {path}.bad" in done.stderr
    assert len(emu.records) == 2
    planned = await run_cli("plan", str(sheet))
    assert planned.returncode == 0
    assert said in planned.stdout


async def test_a_job_sent_again_from_another_state_folder_is_refused(
    emulator: Any, tmp_path: Path
) -> None:
    emu = await emulator(rate="off")
    (tmp_path / "ids.csv").write_text("ProspectId\n00000000-0000-4000-8000-000000000001\n")
    job = tmp_path / "q1.toml"
    job.write_text(
        'input = "ids.csv"\ncodes = [203]\nrate = "off"\nconfirm = true\n'
        '[window]\nfrom = "2025-01-01"\nto = "2025-03-31"\n'
    )
    env = demo_env(emu.url)
    first = await run_cli("job", str(job), "--state-dir", str(tmp_path / "a"), env=env)
    assert first.returncode == 0, first.stderr
    other = await run_cli("job", str(job), "--state-dir", str(tmp_path / "b"), env=env)
    assert other.returncode == 2
    assert f"under the checkpoint {tmp_path / 'a' / 'q1.sqlite'}" in other.stderr
    again = await run_cli("job", str(job), "--state-dir", str(tmp_path / "b"), "--again", env=env)
    assert again.returncode == 0, again.stderr
    assert len(emu.records) == 2


async def test_a_job_of_a_plan_sent_before_says_what_it_can_do_and_prints_what_runs(
    emulator: Any, tmp_path: Path
) -> None:
    """A job has no --checkpoint: its refusal said "rerun with --checkpoint …" and its dry run
    printed `bulk-delete job FILE`, which the refusal then stopped (exit 2)."""
    emu = await emulator(rate="off")
    sheet = leads_csv(tmp_path / "leads.csv", 3)
    assert (await send_sheet(emu, sheet, tmp_path / "first.sqlite")).returncode == 0
    job = tmp_path / "same.toml"
    job.write_text(f'input = "{sheet.name}"\nconfirm = true\nopen_window = true\n')
    env = demo_env(emu.url)
    refused = await run_cli("job", str(job), "--yes", env=env)
    assert refused.returncode == 2
    assert "--checkpoint" not in refused.stderr.split("To go on with that run")[1]
    assert "pass --again" in refused.stderr
    previewed = await run_cli("job", str(job), "--dry-run", env=env)
    assert previewed.returncode == 0, previewed.stderr
    command = shlex.split(previewed.stdout.strip().splitlines()[-1])
    assert "--again" in command
    ran = await run_cli(*command[1:], env=env)  # as printed
    assert ran.returncode == 0, ran.stderr
    assert len(emu.records) == 6
    # Its own send is no reason for --again: the job's checkpoint goes on where it was.
    previewed = await run_cli("job", str(job), "--dry-run", env=env)
    command = shlex.split(previewed.stdout.strip().splitlines()[-1])
    assert "--again" not in command
    assert (await run_cli(*command[1:], env=env)).returncode == 0
    assert len(emu.records) == 6


def _dated_sheet(path: Path, rows: list[str], *, end: str = "\n") -> Path:
    """Five leads, two codes and a window each, and a column the plan does not read."""
    path.write_bytes(("ProspectId,ActivityEventList,FromDate,ToDate,Foo" + end).encode())
    with path.open("ab") as handle:
        handle.write("".join(row + end for row in rows).encode())
    return path


ROWS = [
    f"00000000-0000-4000-8000-{n:012d},201;202,2025-01-01,2025-03-31,note {n}" for n in range(5)
]
# The same five requests, written or optioned otherwise (the adversarial pass's findings).
SAME_REQUESTS: dict[str, tuple[Callable[[Path], Path], tuple[str, ...]]] = {
    "re-saved with CRLF": (lambda path: _dated_sheet(path, ROWS, end="\r\n"), ()),
    "rows reordered": (lambda path: _dated_sheet(path, ROWS[::-1]), ()),
    "codes on rows of their own": (
        lambda path: _dated_sheet(
            path,
            [row.replace("201;202", code) for row in ROWS for code in ("202", "201")],
        ),
        (),
    ),
    "--header-row 1": (lambda path: _dated_sheet(path, ROWS), ("--header-row", "1")),
    "--ignore-column Foo": (lambda path: _dated_sheet(path, ROWS), ("--ignore-column", "Foo")),
    "--codes for no empty cell": (lambda path: _dated_sheet(path, ROWS), ("--codes", "999")),
    "--max-codes-per-request 10": (
        lambda path: _dated_sheet(path, ROWS),
        ("--max-codes-per-request", "10"),
    ),
}


def _plan_in(checkpoint: Path) -> str | None:
    """The plan fingerprint a checkpoint holds; None when it holds no plan (or is no file)."""
    if not checkpoint.exists():
        return None
    with contextlib.closing(sqlite3.connect(checkpoint)) as db:
        found = db.execute(
            "SELECT value FROM sqlite_master, meta WHERE sqlite_master.name = 'meta' "
            "AND key = 'fingerprint'"
        ).fetchone()
    return found[0] if found else None


@pytest.mark.parametrize("variant", SAME_REQUESTS)
async def test_the_same_requests_from_another_copy_of_the_sheet_are_refused_unless_again(
    emulator: Any, tmp_path: Path, variant: str
) -> None:
    """Known by what it sends: the file's bytes or the options differ, the requests do not.
    Exit 2 naming the first checkpoint, nothing stored or sent; --again sends."""
    emu = await emulator(rate="off")
    first, second = tmp_path / "first.sqlite", tmp_path / "second.sqlite"
    done = await send_sheet(emu, _dated_sheet(tmp_path / "leads.csv", ROWS), first)
    assert done.returncode == 0, done.stderr
    assert len(emu.records) == 5
    write, options = SAME_REQUESTS[variant]
    copy = write(tmp_path / "copy.csv")
    refused = await send_sheet(emu, copy, second, *options)
    assert refused.returncode == 2, refused.stderr
    said = " ".join(refused.stderr.split())
    assert f"under the checkpoint {first}" in said
    assert "this plan (the same requests)" in said
    assert f"its checkpoint: {first}" in said  # not "--checkpoint first": it takes no other file
    assert "pass --again" in said
    assert len(emu.records) == 5  # nothing sent
    assert _plan_in(second) is None  # nothing stored: a rerun is still a new plan there
    again = await send_sheet(emu, copy, second, *options, "--again")
    assert again.returncode == 0, again.stderr
    assert len(emu.records) == 10


async def test_one_request_different_is_a_new_plan(emulator: Any, tmp_path: Path) -> None:
    emu = await emulator(rate="off")
    sheet = _dated_sheet(tmp_path / "leads.csv", ROWS)
    assert (await send_sheet(emu, sheet, tmp_path / "first.sqlite")).returncode == 0
    changes = (
        (0, ROWS[0].replace("201;202", "201")),  # a code fewer
        (1, ROWS[1].replace("2025-03-31", "2025-04-01")),  # a day longer
        (2, ROWS[2].replace("000000000002", "000000000009")),  # another lead
    )
    for at, changed in changes:
        rows = [changed if i == at else row for i, row in enumerate(ROWS)]
        other = _dated_sheet(tmp_path / f"other-{at}.csv", rows[::-1], end="\r\n")
        sent = await send_sheet(emu, other, tmp_path / f"other-{at}.sqlite")
        assert sent.returncode == 0, sent.stderr
    assert len(emu.records) == 5 * 4


async def test_plan_warns_of_the_same_requests_and_prints_a_command_that_runs(
    emulator: Any, tmp_path: Path
) -> None:
    """The dry run warns in the same words. The checkpoint they went under holds another
    file's plan, so the printed command cannot go on there: it says --again, and runs."""
    emu = await emulator(rate="off")
    first = tmp_path / "first.sqlite"
    sheet = _dated_sheet(tmp_path / "leads.csv", ROWS)
    assert (await send_sheet(emu, sheet, first)).returncode == 0
    copy = _dated_sheet(tmp_path / "copy.csv", ROWS[::-1], end="\r\n")
    env = demo_env(emu.url)
    planned = await run_cli("plan", str(copy), env=env)
    assert planned.returncode == 0, planned.stderr
    assert "warning: this plan was sent from this machine on" in planned.stdout
    assert f"under {first} (to {emu.url})" in planned.stdout
    command = shlex.split(planned.stdout.strip().splitlines()[-1])
    assert "--again" in command
    assert command[-2:] != ["--checkpoint", str(first)]
    ran = await run_cli(*command[1:], "--yes", env=env)  # as printed, confirmed
    assert ran.returncode == 0, ran.stderr
    assert len(emu.records) == 10


async def test_a_checkpoint_from_before_the_requests_fingerprint_resumes_and_is_kept(
    emulator: Any, tmp_path: Path
) -> None:
    """A plan saved and not confirmed by today's main has no requests fingerprint in its
    checkpoint: confirmed now, it resumes and its send is kept by sheet and options."""
    emu = await emulator(rate="off")
    sheet = _dated_sheet(tmp_path / "leads.csv", ROWS)
    first = tmp_path / "first.sqlite"
    env = demo_env(emu.url)
    saved = await run_cli("run", str(sheet), "--checkpoint", str(first), env=env)
    assert saved.returncode == 2  # no terminal and no --yes: the plan saved, nothing sent
    with contextlib.closing(sqlite3.connect(first)) as db, db:
        assert db.execute("DELETE FROM meta WHERE key = 'requests_fingerprint'").rowcount == 1
    resumed = await send_sheet(emu, sheet, first)
    assert resumed.returncode == 0, resumed.stderr
    assert len(emu.records) == 5
    again = await send_sheet(emu, sheet, tmp_path / "second.sqlite")
    assert again.returncode == 2  # known by its sheet and options
    assert f"rerun with --checkpoint {first}" in " ".join(again.stderr.split())
    copy = _dated_sheet(tmp_path / "copy.csv", ROWS, end="\r\n")
    assert (await send_sheet(emu, copy, tmp_path / "third.sqlite")).returncode == 0
    assert len(emu.records) == 10  # (its requests were never known: said in docs/design)


async def test_the_dry_run_of_a_sheet_sent_twice_goes_on_under_its_own_checkpoint(
    emulator: Any, tmp_path: Path
) -> None:
    """Sent, then a reordered copy sent again (--again): the original sheet's dry run named
    the latest send, the copy's, and printed --again, which sends everything once more; the
    original's own checkpoint holds it and resumes."""
    emu = await emulator(rate="off")
    first, second = tmp_path / "first.sqlite", tmp_path / "second.sqlite"
    sheet = _dated_sheet(tmp_path / "leads.csv", ROWS)
    assert (await send_sheet(emu, sheet, first)).returncode == 0
    copy = _dated_sheet(tmp_path / "copy.csv", ROWS[::-1], end="\r\n")
    assert (await send_sheet(emu, copy, second, "--again")).returncode == 0
    env = demo_env(emu.url)
    for given in (("plan",), ("run", "--dry-run", "--checkpoint", str(first))):
        planned = await run_cli(*given, str(sheet), env=env)
        assert planned.returncode == 0, planned.stderr
        command = shlex.split(planned.stdout.strip().splitlines()[-1])
        assert "--again" not in command
        assert command[-2:] == ["--checkpoint", str(first)]
    sent = len(emu.records)
    ran = await run_cli(*command[1:], "--yes", env=env)
    assert ran.returncode == 0, ran.stderr
    assert len(emu.records) == sent  # it went on where it was: nothing sent twice
