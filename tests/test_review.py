"""Defects an adversarial pass found in the user's path and trust work, each held here."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shlex
import sqlite3
from pathlib import Path
from typing import Any

from bulk_delete.store.schema import APPLICATION_ID

from .conftest import demo_env, leads_csv, run_cli

G = "00000000-0000-4000-8000-{:012d}"


async def test_as_of_a_later_date_is_refused(emulator: Any, tmp_path: Path) -> None:
    """A mistyped year must not move an 'older than 90 days' window onto the last days."""
    emu = await emulator(rate="off")
    (tmp_path / "ids.csv").write_text("ProspectId\n" + G.format(1) + "\n")
    job = tmp_path / "nightly.toml"
    job.write_text(
        'input = "ids.csv"\ncodes = [201]\nrate = "off"\nconfirm = true\n'
        "[window]\nolder_than_days = 90\nwindow_days = 30\n"
    )
    later = (dt.date.today() + dt.timedelta(days=2)).isoformat()
    for extra in ((), ("--dry-run",)):
        done = await run_cli("job", str(job), "--as-of", later, *extra, env=demo_env(emu.url))
        assert done.returncode == 2
        assert "is after today" in done.stderr
    assert emu.calls == 0


async def test_an_export_is_not_planned_again(emulator: Any, tmp_path: Path) -> None:
    """Its invalid rows have no dates and its queued rows were sent: planning it would widen."""
    emu = await emulator(rate="off")
    sheet = tmp_path / "leads.csv"
    sheet.write_text(
        "ProspectId,Codes,FromDate,ToDate\n"
        f"{G.format(1)},201,2025-01-01,2025-01-31\n{G.format(2)},201,2025-05-01,2025-04-01\n"
    )
    checkpoint = tmp_path / "c.sqlite"
    done = await run_cli(
        "run", str(sheet), "--checkpoint", str(checkpoint), "-y", env=demo_env(emu.url)
    )
    assert done.returncode == 1  # one invalid row
    assert (
        await run_cli("export", str(checkpoint), "-o", str(tmp_path / "ex.csv"))
    ).returncode == 0
    plan = await run_cli("plan", str(tmp_path / "ex.csv"))
    assert plan.returncode == 2
    assert "is a bulk-delete export (outcomes), not a sheet to plan" in plan.stderr


async def test_the_next_command_repeats_multiple_options_and_drops_dry_run(
    tmp_path: Path,
) -> None:
    sheet = tmp_path / "leads.csv"
    sheet.write_text(
        f"ProspectId,Form Date,Codes,FromDate,ToDate\n{G.format(1)},x,201,2025-01-01,2025-01-31\n"
    )
    plan = await run_cli("plan", str(sheet), "--ignore-column", "Form Date")
    words = shlex.split(plan.stdout.strip().splitlines()[-1])
    assert words[2:5] == [str(sheet), "--ignore-column", "Form Date"]
    dry = await run_cli(
        "run",
        str(sheet),
        "--ignore-column",
        "Form Date",
        "--dry-run",
        "--checkpoint",
        str(tmp_path / "c.sqlite"),
    )
    words = shlex.split(dry.stdout.strip().splitlines()[-1])
    assert "--dry-run" not in words
    assert words[-2:] == ["--checkpoint", str(tmp_path / "c.sqlite")]


async def test_plan_refuses_standard_output_for_its_files(tmp_path: Path) -> None:
    sheet = leads_csv(tmp_path / "leads.csv", 1)
    for flag in ("-o", "--invalid-out"):
        done = await run_cli("plan", str(sheet), flag, "-")
        assert done.returncode == 2
        assert "give a file name" in done.stderr
    assert not Path("-").exists()


async def test_a_dry_run_writes_its_summary(tmp_path: Path) -> None:
    sheet = leads_csv(tmp_path / "leads.csv", 1)
    summary = tmp_path / "s.json"
    done = await run_cli(
        "run",
        str(sheet),
        "--dry-run",
        "--checkpoint",
        str(tmp_path / "c.sqlite"),
        "--summary-json",
        str(summary),
    )
    assert done.returncode == 0
    facts = json.loads(summary.read_text())
    assert (facts["exit_code"], facts["this_run"]["result"]) == (0, "dry run")


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


async def test_rate_off_is_refused_for_a_name_that_starts_with_127(tmp_path: Path) -> None:
    sheet = leads_csv(tmp_path / "leads.csv", 1)
    env = demo_env("https://127.api-in21.leadsquared.com")
    args = ("run", str(sheet), "--checkpoint", str(tmp_path / "c.sqlite"), "-y", "--open-window")
    done = await run_cli(*args, "--rate", "off", env=env)
    assert done.returncode == 2
    assert "is a test setting for the local emulator" in done.stderr
