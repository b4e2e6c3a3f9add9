"""`restore` end to end on the emulator: a purge with --backup, verified, then restored, and
every restored activity equal to its original (lead, code, note, date, every field), none
missing, none twice; only what is gone is posted; a damaged or foreign backup exits 2
before any call."""

from __future__ import annotations

import asyncio
import gzip
import json
import re
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bulk_delete.api import activity_date
from bulk_delete.config import RateLimit
from bulk_delete.store.backup_file import read_backup

from .conftest import demo_env, leads_csv, run_cli

CODES = "201,202,203"
NO_LIMIT = RateLimit.parse("off")
WINDOW = ("--from", "2024-03-01", "--to", "2025-06-30 23:59:59")


def _key(lead: str, activity: dict[str, Any]) -> tuple[Any, ...]:
    """What a restored activity must keep of its original: lead, code, note, date, fields."""
    fields = tuple((pair["Key"], str(pair["Value"])) for pair in activity.get("Data") or ())
    return (
        lead,
        str(activity["EventCode"]),
        activity.get("Notes"),
        activity_date(activity),
        fields,
    )


async def purged(
    emu: Any, tmp_path: Path, leads: int, *extra: str, verify: bool = True
) -> tuple[Path, Counter[tuple[Any, ...]]]:
    """`run --backup` of ``leads`` leads × 3 codes, carried out and verified: the backup and
    what it holds, as _key counts."""
    sheet = leads_csv(tmp_path / "leads.csv", leads, codes=f'"{CODES}"')
    backup = tmp_path / "backup.jsonl.gz"
    env = demo_env(emu.url)
    done = await run_cli(
        "run", str(sheet), "--checkpoint", str(tmp_path / "purge.sqlite"), "--yes", *WINDOW,
        "--rate", "off", "--backup", str(backup), *extra, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    if verify:
        await asyncio.sleep(0.3)  # the deletes are carried out
        checked = await run_cli("verify", str(tmp_path / "purge.sqlite"), "--rate", "off", env=env)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    saved = Counter(_key(row["ProspectId"], row["Activity"]) for row in read_backup(backup))
    return backup, saved


def on_leads(emu: Any, leads: set[str]) -> Counter[tuple[Any, ...]]:
    """Every activity the leads hold now, as _key counts."""
    return Counter(_key(lead, activity) for lead in leads for activity in emu.remaining(lead))


def restored_ids(checkpoint: Path) -> dict[str, str]:
    """old id → new id, as the restore's checkpoint keeps them."""
    with sqlite3.connect(checkpoint) as db:
        rows = db.execute("SELECT old_id, new_id FROM activities WHERE status = 'posted'")
        found = dict(rows.fetchall())
    db.close()
    return found


@pytest.mark.parametrize("post", ["single", "bulk"])
async def test_a_purge_restored_brings_every_activity_back_once(
    emulator: Any, tmp_path: Path, post: str
) -> None:
    emu = await emulator(rate="off", webhook_delay=0.05, bulk_rate=NO_LIMIT)
    backup, saved = await purged(emu, tmp_path, 80)
    assert sum(saved.values()) > 100  # 80 leads and 3 codes select plenty
    leads = {key[0] for key in saved}
    before = on_leads(emu, leads)
    checkpoint = tmp_path / "restore.sqlite"
    done = await run_cli(
        "restore", str(backup), "--checkpoint", str(checkpoint), "--yes", "--rate", "off",
        "--post", post, env=demo_env(emu.url),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert on_leads(emu, leads) - before == saved  # every one back, each once, as it was
    stats = emu.stats()
    assert stats["activities_posted"] == sum(saved.values())
    assert stats["posted_twice"] == 0
    ids = restored_ids(checkpoint)
    assert len(ids) == sum(saved.values())
    assert set(ids) == {row["ProspectActivityId"] for row in read_backup(backup)}
    total = sum(saved.values())
    assert re.search(rf"posted\s+{total} of {total} activities", done.stdout), done.stdout
    # A rerun posts nothing more.
    again = await run_cli(
        "restore", str(backup), "--checkpoint", str(checkpoint), "--yes", "--rate", "off",
        env=demo_env(emu.url),
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert emu.stats()["activities_posted"] == sum(saved.values())


async def test_requests_whose_deletes_are_not_carried_out_post_nothing_and_say_so(
    emulator: Any, tmp_path: Path
) -> None:
    emu = await emulator(rate="off", webhook_delay=3600, bulk_rate=NO_LIMIT)  # never carried out
    backup, saved = await purged(emu, tmp_path, 6, verify=False)
    done = await run_cli(
        "restore", str(backup), "--checkpoint", str(tmp_path / "r.sqlite"), "--yes",
        "--rate", "off", env=demo_env(emu.url),
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert emu.stats()["activities_posted"] == 0
    assert re.search(rf"still present\s+{sum(saved.values())}\b", done.stdout), done.stdout
    assert "Rerun after LeadSquared has processed the deletes" in done.stdout


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        ("flip", "cannot be read whole"),
        ("foreign", "is not a bulk-delete backup"),
        ("joined", "holds the backups of 2 purges"),
    ],
)
async def test_a_damaged_or_foreign_backup_exits_2_before_any_call(
    emulator: Any, tmp_path: Path, damage: str, says: str
) -> None:
    emu = await emulator(rate="off", webhook_delay=0.05)
    backup, _ = await purged(emu, tmp_path, 4, verify=False)
    if damage == "flip":
        data = bytearray(backup.read_bytes())
        data[len(data) // 2] ^= 0x55
        backup.write_bytes(bytes(data))
    elif damage == "foreign":
        backup.write_bytes(gzip.compress(json.dumps({"ProspectId": "x"}).encode() + b"\n"))
    else:
        other = tmp_path / "other"
        other.mkdir()
        second, _ = await purged(emu, other, 2, verify=False)
        backup.write_bytes(backup.read_bytes() + second.read_bytes())
    calls = emu.calls
    checkpoint = tmp_path / "r.sqlite"
    done = await run_cli(
        "restore", str(backup), "--checkpoint", str(checkpoint), "--yes", "--rate", "off",
        env=demo_env(emu.url),
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert says in done.stderr
    assert str(backup) in done.stderr
    assert emu.calls == calls  # not one call
    assert not checkpoint.exists()  # nothing written either
