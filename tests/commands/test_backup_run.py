"""`run --backup` end to end on the emulator: what the backup holds is what was deleted."""

from __future__ import annotations

import dataclasses
import os
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from bulk_delete.clock import system_wall
from bulk_delete.errors import StorageError
from bulk_delete.store import backup_file as backups
from bulk_delete.store.backup_file import BackupWriter, read_backup

from ..backup_fixtures import CODES, WINDOW, deleted_by, killed_run, leads_in, saved_in, settled
from ..conftest import demo_env, leads_csv, run_cli


@pytest.mark.e2e
async def test_a_run_killed_half_way_and_resumed_backs_up_exactly_what_was_deleted(
    emulator: Any, tmp_path: Path
) -> None:
    emu = await emulator(rate="off", webhook_delay=0.05, latency=0.01)
    args, sheet, backup = await killed_run(emu, tmp_path, leads=80, after=25)
    sent_before = len(emu.records)
    assert sent_before < 80  # killed half way

    # The resume at full speed (another --rate may resume a checkpoint).
    done = await run_cli(*args, "--rate", "off", "--backup", str(backup), env=demo_env(emu.url))
    assert done.returncode == 0, done.stderr
    await settled(emu)
    leads = leads_in(sheet)
    assert {record["ProspectId"] for record in emu.records} == set(leads)
    # A delete on the wire at the kill may have been queued unrecorded: the resume sends it
    # again (as without --backup); only those, and the backup holds their activities once.
    again = len(emu.records) - 80
    assert 0 <= again <= 10
    gone, saved = deleted_by(emu, leads), saved_in(backup)
    assert gone  # the window and codes select something
    assert saved == gone  # same ids, same field values, none extra, none missing
    assert os.stat(backup).st_mode & 0o777 == 0o600


async def test_the_dry_run_prices_the_backup_calls_made(emulator: Any, tmp_path: Path) -> None:
    emu = await emulator(rate="off", webhook_delay=0.05)
    sheet = leads_csv(tmp_path / "leads.csv", 40, codes=f'"{CODES}"')
    backup = tmp_path / "backup.jsonl.gz"
    env = demo_env(emu.url)
    planned = await run_cli("plan", str(sheet), *WINDOW, "--backup", str(backup), env=env)
    assert planned.returncode == 0, planned.stderr
    found = re.search(r"about ([\d,]+) Retrieve call", planned.stdout)
    assert found, planned.stdout
    predicted = int(found.group(1).replace(",", ""))
    assert not backup.exists()  # the dry run writes no backup
    done = await run_cli(
        "run", str(sheet), "--checkpoint", str(tmp_path / "r.sqlite"), "--yes", *WINDOW,
        "--rate", "off", "--backup", str(backup), env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    made = emu.outcomes["retrieve"]
    assert abs(made - predicted) <= 0.05 * predicted, (made, predicted)


async def test_verify_sets_what_was_saved_against_what_is_gone_and_export_flattens_it(
    emulator: Any, tmp_path: Path
) -> None:
    emu = await emulator(rate="off", webhook_delay=0.05)
    sheet = leads_csv(tmp_path / "leads.csv", 20, codes=f'"{CODES}"')
    checkpoint, backup = tmp_path / "r.sqlite", tmp_path / "backup.jsonl.gz"
    env = demo_env(emu.url)
    done = await run_cli(
        "run", str(sheet), "--checkpoint", str(checkpoint), "--yes", *WINDOW,
        "--rate", "off", "--backup", str(backup), env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    await settled(emu)
    saved = len(saved_in(backup))
    checked = await run_cli("verify", str(checkpoint), "--rate", "off", env=env)
    assert checked.returncode == 0, checked.stderr
    assert (
        f"saved {saved:,} activities of 20 verified request(s) and {saved:,} are gone; 0 still"
        in (checked.stdout)
    )
    out = tmp_path / "deleted.csv"
    exported = await run_cli("export", "--backup", str(backup), "-o", str(out))
    assert exported.returncode == 0, exported.stderr
    lines = out.read_text(encoding="utf-8-sig").splitlines()
    assert lines[0].startswith("Request,ProspectId,ProspectActivityId,ActivityEvent,CreatedOn")
    assert "Data.mx_Custom_1" in lines[0]
    refused = await run_cli("export", "--backup", str(backup), "-o", str(backup))
    assert refused.returncode == 2  # never written over the backup itself


async def test_a_request_whose_backup_write_fails_is_not_sent(
    emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = await emulator(rate="off", webhook_delay=0.05)
    sheet = leads_csv(tmp_path / "leads.csv", 30, codes=f'"{CODES}"')
    backup = tmp_path / "backup.jsonl.gz"
    real_write = BackupWriter.write
    writes: list[int] = []

    def failing(self: BackupWriter, seq: int, lead: str, activities: list[Any]) -> None:
        writes.append(seq)
        if len(writes) == 5:  # the file became unwritable under the run (a real OSError)
            read_only = os.open(self.path, os.O_RDONLY)
            os.dup2(read_only, self._fd)
            os.close(read_only)
        real_write(self, seq, lead, activities)

    monkeypatch.setattr(backups.BackupWriter, "write", failing)
    done = await run_cli(
        "run", str(sheet), "--checkpoint", str(tmp_path / "r.sqlite"), "--yes", *WINDOW,
        "--rate", "off", "--concurrency", "2", "--backup", str(backup), env=demo_env(emu.url),
    )  # fmt: skip
    assert done.returncode == 3
    assert f"cannot write the backup {backup}" in done.stdout + done.stderr
    saved_leads = {row["ProspectId"] for row in read_backup(backup)}
    saved_requests = len(backups.scan(backup).requests)
    sent = [record["ProspectId"] for record in emu.records]
    assert 0 < len(sent) <= saved_requests < 30  # stopped; nothing sent unbacked
    assert set(sent) <= saved_leads | _empty_leads(emu, leads_in(sheet))


def _empty_leads(emu: Any, leads: list[str]) -> set[str]:
    """Leads whose request selects nothing: saved as an empty member, no row names them."""
    from bulk_delete.emulator.server import _activities
    from bulk_delete.send.backup_fetch import selected

    class Window:
        prospect_id = ""
        codes = tuple(CODES.split(","))
        from_date, to_date = "2024-03-01 00:00:00", "2025-06-30 23:59:59"

    return {lead for lead in leads if not any(selected(Window, a) for a in _activities(lead, []))}


async def test_discover_backs_up_from_the_listing_rows_with_no_call_beyond_it(
    emulator: Any, tmp_path: Path
) -> None:
    emu = await emulator(rate="off", dataset_leads=120, page_cap=40, webhook_delay=0.05)
    window = ("--codes", "201,202", "--from", "2024-03-01", "--to", "2024-12-31 23:59:59")
    backup = tmp_path / "backup.jsonl.gz"
    args = ("--discover", *window, "--rate", "off", "--backup", str(backup))
    env = demo_env(emu.url)
    planned = await run_cli("plan", *args, env=env)
    assert planned.returncode == 0, planned.stderr
    assert "about 0 Retrieve call(s)" in planned.stdout  # the listing rows carry the fields
    assert re.search(r"[1-9][\d,]* activities to save", planned.stdout), planned.stdout
    listing_calls = emu.outcomes["list"]
    ran = await run_cli("run", *args, "--checkpoint", str(tmp_path / "r.sqlite"), "--yes", env=env)
    assert ran.returncode == 0, ran.stderr
    await settled(emu)
    assert emu.outcomes["retrieve"] == 0  # no call beyond the listing and the deletes
    assert emu.outcomes["list"] == 2 * listing_calls  # the run's listing, as the dry run's
    gone = deleted_by(emu, emu.dataset())
    saved = saved_in(backup)
    assert saved.keys() == gone.keys()
    for activity_id, row in saved.items():  # the listing's fields, as it gave them
        assert row["Notes"] == gone[activity_id]["Notes"]
        assert row["mx_Custom_1"] == gone[activity_id]["Data"][0]["Value"]


@pytest.mark.parametrize(
    ("key", "window", "expected"),
    [
        (
            "backups/purge-{date}.jsonl.gz",
            "older_than_days = 7",
            "backups/purge-2026-05-01.jsonl.gz",
        ),
        ("purge.jsonl.gz", "older_than_days = 7", "purge-2026-05-01.jsonl.gz"),
        ("purge.jsonl.gz", 'from = "2025-01-01"\nto = "2025-03-31"', "purge.jsonl.gz"),
    ],
)
def test_a_job_backs_up_each_dated_run_to_its_own_file_beside_the_job(
    tmp_path: Path, key: str, window: str, expected: str
) -> None:
    import datetime as dt

    from bulk_delete.commands.job_file import load_job

    (tmp_path / "ids.csv").write_text("ProspectId\n00000000-0000-4000-8000-000000000001\n")
    job_file = tmp_path / "job.toml"
    job_file.write_text(f'input = "ids.csv"\ncodes = [201]\nbackup = "{key}"\n[window]\n{window}\n')
    job = load_job(job_file, wall=system_wall)
    spec = job.run_spec(dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC))
    assert spec.backup == tmp_path / expected


async def test_a_request_whose_activities_cannot_be_read_is_not_sent_and_retried_later(
    emulator: Any, tmp_path: Path
) -> None:
    # Retrieve claims more activities per lead and code than a backup reads (20,000).
    emu = await emulator(rate="off", webhook_delay=0.05, retrieve_record_count=50_000)
    sheet = leads_csv(tmp_path / "leads.csv", 5, codes="201")
    checkpoint, backup = tmp_path / "r.sqlite", tmp_path / "backup.jsonl.gz"
    args = ["run", str(sheet), "--checkpoint", str(checkpoint), "--yes", *WINDOW, "--rate", "off"]
    done = await run_cli(*args, "--backup", str(backup), env=demo_env(emu.url))
    assert done.returncode == 1, done.stderr  # incomplete: a rerun tries them again
    assert emu.records == []  # nothing sent unbacked
    assert emu.outcomes["retrieve"] == 5  # one page each told it all
    assert "not backed up: Retrieve of code 201" in done.stdout
    out = tmp_path / "failed.csv"
    await run_cli("export", str(checkpoint), "-o", str(out), "--status", "failed")
    assert out.read_text().count("not backed up") == 5


async def _killed_after_saving(
    emu: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[str], list[str]]:
    """A run of 3 leads, one at a time, cut after the 2nd request's backup is on disk and
    before its delete is sent: the state a kill -9 there leaves (saved, no attempt recorded).
    Returns the resume's arguments and the sheet's leads."""
    sheet = leads_csv(tmp_path / "leads.csv", 3, codes=f'"{CODES}"')
    backup = tmp_path / "backup.jsonl.gz"
    args = ["run", str(sheet), "--checkpoint", str(tmp_path / "r.sqlite"), "--yes", *WINDOW]
    args += ["--rate", "off", "--concurrency", "1", "--backup", str(backup)]
    real_write = BackupWriter.write

    def cut_after(self: BackupWriter, seq: int, lead: str, activities: list[Any]) -> None:
        real_write(self, seq, lead, activities)
        if seq == 2:
            raise StorageError("cut here by the test")

    with monkeypatch.context() as patched:
        patched.setattr(backups.BackupWriter, "write", cut_after)
        cut = await run_cli(*args, env=demo_env(emu.url))
    assert cut.returncode == 3, cut.stderr
    leads = leads_in(sheet)
    assert [record["ProspectId"] for record in emu.records] == leads[:1]
    assert backups.scan(backup).requests == [1, 2]
    return args, leads


async def test_a_resume_reads_a_saved_unsent_request_again_and_saves_what_came_since(
    emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = await emulator(rate="off", webhook_delay=0.05)
    args, leads = await _killed_after_saving(emu, tmp_path, monkeypatch)
    backup = tmp_path / "backup.jsonl.gz"
    first = {row["ProspectActivityId"] for row in read_backup(backup) if row["Request"] == 2}
    # A user adds activities to the cut request's lead: one in its window, one after it.
    inside = emu.add_activity(leads[1], 202, "2025-06-30 12:00:00")
    after = emu.add_activity(leads[1], 202, "2025-07-01 00:00:01")
    reads_before = emu.outcomes["retrieve"]

    done = await run_cli(*args, env=demo_env(emu.url))
    assert done.returncode == 0, done.stderr
    await settled(emu)
    saved = saved_in(backup)  # no activity saved twice
    second = {row["ProspectActivityId"] for row in read_backup(backup) if row["Request"] == 2}
    assert second == first | {inside["Id"]}
    assert saved[inside["Id"]] == inside  # as Retrieve gave it
    assert after["Id"] not in saved
    assert backups.scan(backup).requests == [1, 2, 2, 3]  # appended, never rewritten
    assert [record["ProspectId"] for record in emu.records] == leads  # each sent once
    assert emu.outcomes["retrieve"] - reads_before == 2 * len(CODES.split(","))  # leads 2, 3
    left = {activity["Id"] for activity in emu.remaining(leads[1])}
    assert inside["Id"] not in left  # the delete took what was saved
    assert after["Id"] in left
    checked = await run_cli("verify", args[3], "--rate", "off", env=demo_env(emu.url))
    assert checked.returncode == 0, checked.stderr
    assert f"saved {len(saved):,} activities of 3 verified request(s) and {len(saved):,} are" in (
        checked.stdout
    )


async def test_a_saved_unsent_request_whose_rereading_fails_is_not_sent(
    emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = await emulator(rate="off", webhook_delay=0.05)
    args, leads = await _killed_after_saving(emu, tmp_path, monkeypatch)
    # Retrieve now claims more activities per lead and code than a backup reads.
    emu.config = dataclasses.replace(emu.config, retrieve_record_count=50_000)
    done = await run_cli(*args, env=demo_env(emu.url))
    assert done.returncode == 1, done.stderr  # incomplete: a rerun tries again
    assert [record["ProspectId"] for record in emu.records] == leads[:1]  # nothing more sent
    assert "not backed up: Retrieve of code 201" in done.stdout


async def test_a_saved_request_whose_send_failed_is_read_again_before_its_resend(
    emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = await emulator(rate="off", webhook_delay=0.05)
    args, leads = await _killed_after_saving(emu, tmp_path, monkeypatch)
    db = sqlite3.connect(tmp_path / "r.sqlite")  # request 2 as a send that failed leaves it
    with db:
        db.execute(
            "UPDATE requests SET status = 'failed', transient = 1, attempts = 1 WHERE seq = 2"
        )
    db.close()
    reads_before = emu.outcomes["retrieve"]
    done = await run_cli(*args, env=demo_env(emu.url))
    assert done.returncode == 0, done.stderr
    assert [record["ProspectId"] for record in emu.records] == leads
    # lead 2 read again (its send failed: it goes again, and so may take what came since)
    assert emu.outcomes["retrieve"] - reads_before == 2 * len(CODES.split(","))
    assert backups.scan(tmp_path / "backup.jsonl.gz").requests == [1, 2, 3]
