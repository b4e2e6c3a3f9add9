"""A plan already sent is not sent again by accident (issue 32, point 4).

The machine remembers each plan it sent (its fingerprint, the account as a hash, the checkpoint
and when): `plan` warns, `run` and `job` refuse it under another checkpoint unless --again, a
resume goes on, and a memory that cannot be used is said by name.
"""

from __future__ import annotations

import re
import shlex
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
