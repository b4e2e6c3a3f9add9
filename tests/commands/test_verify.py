"""`verify` end to end on the emulator's data set: "queued" becomes "confirmed" once the
emulator has carried the deletes out, and "remaining", with the emulator's own count, before."""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path
from typing import Any

from ..conftest import demo_env, run_cli, send_sheet

LOW, HIGH = "2024-01-01 00:00:00", "2024-06-30 23:59:59"


def left_on(emu: Any, lead: str) -> int:
    return sum(
        1
        for a in emu.remaining(lead)
        if str(a["EventCode"]) in {"201", "202"} and LOW <= a["CreatedOn"] <= HIGH
    )


async def purge(emulator: Any, tmp_path: Path, delay: float) -> tuple[Any, Path]:
    emu = await emulator(rate="off", dataset_leads=400, webhook_delay=delay)
    leads = emu.dataset()[:60]
    sheet = tmp_path / "leads.csv"
    sheet.write_text("ProspectId\n" + "\n".join(leads) + "\n")
    checkpoint = tmp_path / "c.sqlite"
    done = await send_sheet(
        emu,
        sheet,
        checkpoint,
        "--rate",
        "off",
        "--codes",
        "201,202",
        "--from",
        "2024-01-01",
        "--to",
        "2024-06-30",
    )
    assert done.returncode == 0, done.stderr
    return emu, checkpoint


def exported(checkpoint: Path, tmp_path: Path) -> list[dict[str, str]]:
    with (tmp_path / "out.csv").open() as handle:
        return list(csv.DictReader(handle))


async def test_once_carried_out_every_request_is_confirmed(emulator: Any, tmp_path: Path) -> None:
    emu, checkpoint = await purge(emulator, tmp_path, delay=0.05)
    await asyncio.sleep(0.3)  # the emulator carries the deletes out
    done = await run_cli("verify", str(checkpoint), "--rate", "off", env=demo_env(emu.url))
    assert done.returncode == 0, done.stderr
    assert "confirmed 60 of 60 checked" in done.stdout
    await run_cli("export", str(checkpoint), "--out", str(tmp_path / "out.csv"))
    rows = exported(checkpoint, tmp_path)
    assert {(row["verified"], row["remaining"]) for row in rows} == {("confirmed", "0")}
    assert all(row["verified_at"] for row in rows)
    status = await run_cli("status", str(checkpoint))
    assert "confirmed 60 of 60 checked" in status.stdout


async def test_before_it_is_carried_out_remaining_is_the_emulators_count(
    emulator: Any, tmp_path: Path
) -> None:
    emu, checkpoint = await purge(emulator, tmp_path, delay=60)
    env = demo_env(emu.url)
    one = await run_cli("verify", str(checkpoint), "--rate", "off", "--sample", "1", env=env)
    assert "Verifying 1 queued request(s) per lead: 2 call(s)" in one.stdout  # shown first
    done = await run_cli("verify", str(checkpoint), "--rate", "off", env=env)
    assert done.returncode == 1, done.stderr
    assert "queued request(s) per code" in done.stdout  # the listing is cheaper for all 60
    assert "LeadSquared may still be processing; verify again later" in done.stdout
    await run_cli("export", str(checkpoint), "--out", str(tmp_path / "out.csv"))
    rows = exported(checkpoint, tmp_path)
    assert len(rows) == 60
    for row in rows:
        assert int(row["remaining"]) == left_on(emu, row["ProspectId"])
        expected = "confirmed" if row["remaining"] == "0" else "remaining"
        assert row["verified"] == expected


async def test_verify_refuses_a_missing_checkpoint_and_takes_the_lock(
    emulator: Any, tmp_path: Path
) -> None:
    from bulk_delete.store import checkpoint as checkpoints

    emu, checkpoint = await purge(emulator, tmp_path, delay=0.05)
    missing = await run_cli("verify", str(tmp_path / "nope.sqlite"), env=demo_env(emu.url))
    assert missing.returncode == 2
    assert not (tmp_path / "nope.sqlite").exists()
    with checkpoints.lock(checkpoint):
        held = await run_cli("verify", str(checkpoint), env=demo_env(emu.url))
    assert held.returncode == 75


async def test_a_job_with_verify_previous_checks_the_last_run_first(
    emulator: Any, tmp_path: Path
) -> None:
    import json

    emu = await emulator(rate="off", dataset_leads=200, webhook_delay=0.05)
    (tmp_path / "ids.csv").write_text("ProspectId\n" + "\n".join(emu.dataset()[:20]) + "\n")
    job = tmp_path / "nightly.toml"
    job.write_text(
        'input = "ids.csv"\ncodes = [201, 202]\nrate = "off"\nconfirm = true\n'
        'verify_previous = true\nstate_dir = "state"\n'
        "[window]\nolder_than_days = 900\nwindow_days = 180\n"  # one checkpoint a run date
    )
    first = await run_cli("job", str(job), env=demo_env(emu.url))
    assert first.returncode == 0, first.stderr
    [today] = (tmp_path / "state").glob("nightly-*.sqlite")
    yesterday = today.with_name("nightly-2020-01-01.sqlite")
    today.rename(yesterday)  # as if that run was yesterday's
    await asyncio.sleep(0.3)  # and LeadSquared has carried its deletes out since
    summary = tmp_path / "s.json"
    done = await run_cli(  # today's plan again (--again): the renamed one stands for yesterday's
        "job", str(job), "--summary-json", str(summary), "--again", env=demo_env(emu.url)
    )
    assert done.returncode == 0, done.stderr
    assert f"Verifying the previous run first: {yesterday}" in done.stdout
    facts = json.loads(summary.read_text())
    assert facts["previous_checkpoint"] == str(yesterday)
    assert facts["previous_verification"]["checked"] == 20
    assert facts["previous_verification"]["confirmed"] == 20
