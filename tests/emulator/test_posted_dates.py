"""An activity posted back (by a restore) is in a window by its date, not by the moment of the
post: a backup saves what the delete takes, verify counts what is left and --discover plans
what is there, all by ``api.activity_date``, in both of the emulator's readings of the
docs (the date posted as ActivityDateTime, CreatedOn the post's moment; or, with
--created-on-posted, the date posted as CreatedOn)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

from bulk_delete.api import CREATE_PATH, activity_date
from bulk_delete.store.backup_file import read_backup

from ..conftest import demo_env, leads_csv, run_cli
from ..emulator_fixtures import call

LEAD = "00000000-0000-4000-8000-000000000000"  # the first lead of leads_csv
POSTED_ON = "2024-05-01 10:00:00"
WINDOW = ("--from", "2024-04-01", "--to", "2024-06-30")
MODES = pytest.mark.parametrize("created_on_posted", [False, True], ids=["default", "created-on"])


async def _post(url: str, lead: str = LEAD, code: int = 201) -> str:
    """One activity posted back on ``lead``, dated in the window: its new id."""
    body = {
        "RelatedProspectId": lead,
        "ActivityEvent": code,
        "ActivityNote": "posted back",
        "ActivityDateTime": POSTED_ON,
        "Fields": [{"SchemaName": "mx_Custom_1", "Value": "x"}],
    }
    status, answer = await call(url, path=CREATE_PATH, body=body)
    assert status == 200, answer
    return str(answer["Message"]["Id"])


def test_an_activity_is_dated_by_its_activitydatetime_before_its_createdon() -> None:
    posted = {"CreatedOn": "2027-01-15 08:00:00", "ActivityDateTime": POSTED_ON}
    assert activity_date(posted) == POSTED_ON
    assert activity_date({"CreatedOn": POSTED_ON}) == POSTED_ON
    assert activity_date({}) == ""


@MODES
async def test_a_backup_saves_a_posted_activity_its_delete_takes(
    emulator: Any, tmp_path: Path, created_on_posted: bool
) -> None:
    emu = await emulator(rate="off", webhook_delay=0.02, created_on_posted=created_on_posted)
    new_id = await _post(emu.url)
    sheet = leads_csv(tmp_path / "leads.csv", 1)
    backup = tmp_path / "backup.jsonl.gz"
    done = await run_cli(
        "run", str(sheet), "--checkpoint", str(tmp_path / "run.sqlite"), "--yes", *WINDOW,
        "--codes", "201", "--rate", "off", "--backup", str(backup), env=demo_env(emu.url),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    await asyncio.sleep(0.2)  # the delete is carried out
    assert new_id not in {activity["Id"] for activity in emu.remaining(LEAD)}  # it took it
    assert new_id in {row["ProspectActivityId"] for row in read_backup(backup)}  # saved first


@MODES
@pytest.mark.parametrize("leads", [1, 20], ids=["per-lead", "per-code"])
async def test_verify_counts_a_posted_activity_in_a_window_as_left(
    emulator: Any, tmp_path: Path, created_on_posted: bool, leads: int
) -> None:
    emu = await emulator(rate="off", webhook_delay=0.02, created_on_posted=created_on_posted)
    sheet = leads_csv(tmp_path / "leads.csv", leads)
    checkpoint = tmp_path / "run.sqlite"
    env = demo_env(emu.url)
    done = await run_cli(
        "run", str(sheet), "--checkpoint", str(checkpoint), "--yes", *WINDOW, "--codes", "201",
        "--rate", "off", env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    await asyncio.sleep(0.2)
    await _post(emu.url)  # after the delete: it is in the window, and left
    checked = await run_cli("verify", str(checkpoint), "--rate", "off", env=env)
    assert checked.returncode == 1, checked.stdout + checked.stderr
    way = "per lead" if leads == 1 else "per code"
    assert f"Verifying {leads} queued request(s) {way}" in checked.stdout
    assert re.search(r"1 lead\(s\) still have 1 activit", checked.stdout), checked.stdout


@MODES
async def test_discover_plans_a_lead_whose_only_activity_was_posted_in_the_window(
    emulator: Any, tmp_path: Path, created_on_posted: bool
) -> None:
    emu = await emulator(rate="off", created_on_posted=created_on_posted)
    await _post(emu.url)  # no data set: the listing holds only what was posted
    done = await run_cli(
        "plan", "--discover", "--codes", "201", *WINDOW, "--rate", "off", env=demo_env(emu.url)
    )
    assert done.returncode == 0, done.stderr
    assert re.search(r"\b1 lead", done.stdout), done.stdout
