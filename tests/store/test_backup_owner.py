"""A backup file belongs to one checkpoint from the moment a run names it: the checkpoint's
mark is in the file before the first call, and the file is locked while a run writes it. And
it is a regular file, in a folder made for it as for every other output."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bulk_delete.cli.main import cli
from bulk_delete.store.backup_file import read_backup

from ..backup_fixtures import CODES, WINDOW, deleted_by, leads_in, saved_in, settled
from ..conftest import demo_env, leads_csv, run_cli, start_cli, until


def _run(sheet: Path, checkpoint: Path, backup: Path, *extra: str) -> list[str]:
    return [
        "run", str(sheet), "--checkpoint", str(checkpoint), *WINDOW, "--rate", "off",
        "--backup", str(backup), *extra,
    ]  # fmt: skip


def _requests(backup: Path) -> list[int]:
    return [row["Request"] for row in read_backup(backup)]


@pytest.mark.e2e
async def test_two_runs_of_two_checkpoints_started_together_on_one_backup_one_is_refused(
    emulator: Any, tmp_path: Path
) -> None:
    """Started together, neither has written a member yet: the first version accepted both,
    and each request number was in the file twice."""
    emu = await emulator(rate="off", webhook_delay=0.05, latency=0.02)
    env = demo_env(emu.url)
    shared = tmp_path / "shared.jsonl.gz"
    sheets = {
        name: leads_csv(tmp_path / f"{name}.csv", 20, codes=f'"{CODES}"', start=start)
        for name, start in (("a", 0), ("b", 100))
    }
    processes = {
        name: await start_cli(*_run(sheet, tmp_path / f"{name}.sqlite", shared, "--yes"), env=env)
        for name, sheet in sheets.items()
    }
    ended = {name: await process.communicate() for name, process in processes.items()}
    codes = {name: process.returncode or 0 for name, process in processes.items()}
    assert sorted(codes.values()) in ([0, 2], [0, 75]), ended
    winner = next(name for name, code in codes.items() if code == 0)
    loser = next(name for name in codes if name != winner)
    assert str(shared) in ended[loser][1].decode()  # the refusal names the file
    leads = set(leads_in(sheets[winner]))
    assert {record["ProspectId"] for record in emu.records} == leads  # none of the other's
    await settled(emu)
    assert saved_in(shared) == deleted_by(emu, list(leads))  # one checkpoint's, whole


@pytest.mark.e2e(seconds=2)
async def test_a_run_on_a_backup_that_another_run_writes_exits_75_naming_it(
    emulator: Any, tmp_path: Path
) -> None:
    emu = await emulator(rate="off", webhook_delay=0.05, latency=0.05)
    env = demo_env(emu.url)
    shared = tmp_path / "shared.jsonl.gz"
    first = leads_csv(tmp_path / "a.csv", 30, codes=f'"{CODES}"')
    second = leads_csv(tmp_path / "b.csv", 30, codes=f'"{CODES}"', start=100)
    a = await start_cli(
        *_run(first, tmp_path / "a.sqlite", shared, "--yes", "--concurrency", "1"), env=env
    )
    await until(lambda: len(emu.records) >= 2, a)  # A is writing the file and sending
    b = await run_cli(*_run(second, tmp_path / "b.sqlite", shared, "--yes"), env=env)
    assert b.returncode == 75, b.stdout + b.stderr
    assert f"the backup {shared} is in use: pid {a.pid}" in b.stderr
    emu.config = dataclasses.replace(emu.config, latency=0.0)  # A's rest, without waiting
    _, stderr = await a.communicate()
    assert a.returncode == 0, stderr
    assert {record["ProspectId"] for record in emu.records} == set(leads_in(first))  # none of B's

    again = await run_cli(*_run(second, tmp_path / "b.sqlite", shared, "--yes"), env=env)
    assert again.returncode == 2, again.stdout + again.stderr
    assert f"{shared} holds the backup of another checkpoint's run" in again.stderr
    assert str(tmp_path / "a.sqlite") in again.stderr  # whose it is
    assert {record["ProspectId"] for record in emu.records} == set(leads_in(first))
    assert {row["ProspectId"] for row in read_backup(shared)} <= set(leads_in(first))
    await settled(emu)
    assert saved_in(shared) == deleted_by(emu, leads_in(first))


async def test_a_backup_belongs_to_the_checkpoint_that_named_it_before_its_first_write(
    emulator: Any, tmp_path: Path
) -> None:
    """Run A names the file and stops before its first write (not confirmed); run B, of
    another checkpoint, is refused the file; A then resumes on it."""
    emu = await emulator(rate="off", webhook_delay=0.05)
    env = demo_env(emu.url)
    shared = tmp_path / "shared.jsonl.gz"
    first = leads_csv(tmp_path / "a.csv", 5, codes=f'"{CODES}"')
    second = leads_csv(tmp_path / "b.csv", 5, codes=f'"{CODES}"', start=100)
    a_args = _run(first, tmp_path / "a.sqlite", shared)
    stopped = await run_cli(*a_args, env=env)  # no --yes and no terminal: not confirmed
    assert stopped.returncode == 2, stopped.stdout + stopped.stderr
    assert "nothing sent: no terminal to confirm on" in stopped.stderr
    assert emu.records == []
    assert emu.outcomes["retrieve"] == 0

    b = await run_cli(*_run(second, tmp_path / "b.sqlite", shared, "--yes"), env=env)
    assert b.returncode == 2, b.stdout + b.stderr
    assert f"{shared} holds the backup of another checkpoint's run" in b.stderr
    assert str(tmp_path / "a.sqlite") in b.stderr
    assert emu.records == []
    assert emu.outcomes["retrieve"] == 0  # refused before any call

    done = await run_cli(*a_args, "--yes", env=env)
    assert done.returncode == 0, done.stderr
    await settled(emu)
    assert saved_in(shared) == deleted_by(emu, leads_in(first))
    assert set(_requests(shared)) <= set(range(1, 6))


async def test_a_second_plan_into_the_same_backup_file_is_not_counted_as_the_first(
    emulator: Any, tmp_path: Path
) -> None:
    """A backup's members name their request by the checkpoint's seq, and a new checkpoint
    numbers its requests from 1 again. A second plan run with a new checkpoint into the same
    --backup FILE (a reused name) finds its seqs "saved" by the first plan: its requests
    are read again and appended (the first plan's ids are other leads'), but verify, which now
    sums every member of a request, counts the first plan's rows as this plan's."""
    emu = await emulator(rate="off", webhook_delay=0.05)
    backup = tmp_path / "backup.jsonl.gz"
    common = ["--yes", *WINDOW, "--rate", "off", "--backup", str(backup)]
    first = leads_csv(tmp_path / "first.csv", 3, codes=f'"{CODES}"')
    done = await run_cli(
        "run", str(first), "--checkpoint", str(tmp_path / "1.sqlite"), *common,
        env=demo_env(emu.url),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    first_rows = len(list(read_backup(backup)))
    second = leads_csv(tmp_path / "second.csv", 3, codes=f'"{CODES}"', start=10)
    checkpoint = tmp_path / "2.sqlite"
    done = await run_cli(
        "run", str(second), "--checkpoint", str(checkpoint), *common, env=demo_env(emu.url)
    )
    if done.returncode == 2:  # refused before anything was sent: a new plan, a new file
        assert "holds the backup of another checkpoint's run" in done.stderr
        assert len(emu.records) == 3  # the first plan's deletes only
        assert len(list(read_backup(backup))) == first_rows
        return
    assert done.returncode == 0, done.stderr
    await asyncio.sleep(0.3)  # the emulator carries a queued delete out after its delay
    leads = {line.split(",")[0] for line in second.read_text().splitlines()[1:]}
    ours = [row for row in read_backup(backup) if row["ProspectId"] in leads]
    assert len(list(read_backup(backup))) == first_rows + len(ours)
    checked = await run_cli("verify", str(checkpoint), "--rate", "off", env=demo_env(emu.url))
    assert checked.returncode == 0, checked.stderr
    assert f"saved {len(ours):,} activities of 3 verified request(s)" in checked.stdout


@pytest.fixture(params=["fifo", "device"])
def not_a_file(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A pipe, or (as root) a private copy of /dev/null's device node: never /dev/null itself,
    whose mode a run as root must not change."""
    path = tmp_path / f"backup-{request.param}"
    if request.param == "fifo":
        os.mkfifo(path, 0o644)
    else:
        if os.geteuid() != 0:
            pytest.skip("making a device node needs root")
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        path.chmod(0o666)
    return path


@pytest.mark.e2e
async def test_a_backup_that_is_not_a_regular_file_is_refused_before_any_call(
    emulator: Any, tmp_path: Path, not_a_file: Path
) -> None:
    emu = await emulator(rate="off", webhook_delay=0.05)
    env = demo_env(emu.url)
    sheet = leads_csv(tmp_path / "leads.csv", 3, codes=f'"{CODES}"')
    mode = stat.S_IMODE(not_a_file.stat().st_mode)
    planned = await run_cli("plan", str(sheet), *WINDOW, "--backup", str(not_a_file), env=env)
    assert planned.returncode == 2, planned.stdout  # the dry run says it too
    assert f"--backup {not_a_file} is not a regular file" in planned.stderr
    # In its own process: the first version blocked reading a pipe, and only kill -9 ended it.
    process = await start_cli(*_run(sheet, tmp_path / "r.sqlite", not_a_file, "--yes"), env=env)
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 2, stderr
    assert f"--backup {not_a_file} is not a regular file" in stderr.decode()
    assert emu.records == []
    assert emu.outcomes["retrieve"] == 0
    assert stat.S_IMODE(not_a_file.stat().st_mode) == mode  # its mode untouched


async def test_a_missing_folder_named_in_backup_is_made_and_the_dry_run_checks_it(
    emulator: Any, tmp_path: Path
) -> None:
    emu = await emulator(rate="off", webhook_delay=0.05)
    env = demo_env(emu.url)
    sheet = leads_csv(tmp_path / "leads.csv", 3, codes=f'"{CODES}"')
    (tmp_path / "a-file").write_text("")
    blocked = tmp_path / "a-file" / "sub" / "backup.jsonl.gz"
    planned = await run_cli("plan", str(sheet), *WINDOW, "--backup", str(blocked), env=env)
    assert planned.returncode == 2, planned.stdout
    assert f"--backup {blocked}: cannot write it" in planned.stderr

    backup = tmp_path / "backups" / "2025" / "backup.jsonl.gz"
    planned = await run_cli("plan", str(sheet), *WINDOW, "--backup", str(backup), env=env)
    assert planned.returncode == 0, planned.stderr
    assert not (tmp_path / "backups").exists()  # the dry run writes nothing
    done = await run_cli(*_run(sheet, tmp_path / "r.sqlite", backup, "--yes"), env=env)
    assert done.returncode == 0, done.stderr
    for folder in (tmp_path / "backups", backup.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700  # as every output's folders
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    await settled(emu)
    assert saved_in(backup) == deleted_by(emu, leads_in(sheet))


def test_export_of_a_backup_that_is_a_fifo_says_what_it_is(tmp_path: Path) -> None:
    fifo = tmp_path / "backup.gz"
    os.mkfifo(fifo)
    result = CliRunner().invoke(
        cli, ["export", "--backup", str(fifo), "-o", str(tmp_path / "x.csv")]
    )
    assert result.exit_code == 2
    assert "not a backup file" in result.stderr


@pytest.mark.parametrize("how", ["replaced", "joined"])
async def test_verify_never_counts_another_checkpoint_s_backup_as_its_own(
    emulator: Any, tmp_path: Path, how: str
) -> None:
    """The file a checkpoint's run wrote is later another checkpoint's: moved aside and the
    name used again (a nightly rotation), or two backups joined with `cat`. Both number their
    requests from 1; the first version's verify counted the other's activities as saved."""
    emu = await emulator(rate="off", webhook_delay=0.05)
    env = demo_env(emu.url)
    backup = tmp_path / "backup.jsonl.gz"
    for name, start in (("a", 0), ("b", 100)):
        sheet = leads_csv(tmp_path / f"{name}.csv", 3, codes=f'"{CODES}"', start=start)
        done = await run_cli(*_run(sheet, tmp_path / f"{name}.sqlite", backup, "--yes"), env=env)
        assert done.returncode == 0, done.stderr
        backup.rename(tmp_path / f"{name}.jsonl.gz")
    parts = ["b"] if how == "replaced" else ["a", "b"]
    backup.write_bytes(b"".join((tmp_path / f"{name}.jsonl.gz").read_bytes() for name in parts))
    await settled(emu)

    checked = await run_cli("verify", str(tmp_path / "a.sqlite"), "--rate", "off", env=env)
    if how == "replaced":
        assert "3 queued request(s) have no saved copy" in checked.stdout, checked.stdout
    else:  # a's own members, before b's mark, still count
        assert "no saved copy" not in checked.stdout, checked.stdout
        a_saved = len(list(read_backup(tmp_path / "a.jsonl.gz")))
        assert f"saved {a_saved} activities of 3 verified request(s)" in checked.stdout
    named = f"{backup} holds another checkpoint's backup ({tmp_path / 'b.sqlite'})"
    assert named in checked.stdout
