"""`run --backup` against the emulator, as the backup tests meet it: the window and codes they
purge, what the emulator deleted, what the backup saved, and a run killed half way."""

from __future__ import annotations

import asyncio
import os
import random
import signal
from pathlib import Path
from typing import Any

from bulk_delete.store.backup_file import read_backup

from .conftest import demo_env, leads_csv, start_cli, until

WINDOW = ("--from", "2024-03-01", "--to", "2025-06-30 23:59:59")
CODES = "201,202,203"
# kill -9 loops: BULK_DELETE_KILLS=30 (and BULK_DELETE_SEED) make a longer run by hand
KILLS = int(os.environ.get("BULK_DELETE_KILLS", "10"))
SEED = int(os.environ.get("BULK_DELETE_SEED", str(random.SystemRandom().randrange(10**6))))


def deleted_by(emu: Any, leads: list[str]) -> dict[str, dict[str, Any]]:
    """What the emulator removed: each lead's activities at the start, less what is left."""
    from bulk_delete.emulator.server import _activities

    gone: dict[str, dict[str, Any]] = {}
    for lead in leads:
        left = {activity["Id"] for activity in emu.remaining(lead)}
        for activity in _activities(lead, []):
            if activity["Id"] not in left:
                gone[activity["Id"]] = {k: v for k, v in activity.items() if k != "Index"}
    return gone


def saved_in(path: Path) -> dict[str, dict[str, Any]]:
    rows = list(read_backup(path))
    saved = {row["ProspectActivityId"]: row["Activity"] for row in rows}
    assert len(saved) == len(rows)  # no activity saved twice
    return saved


async def settled(emu: Any) -> None:
    """The emulator carries out a queued delete after its webhook delay."""
    await asyncio.sleep(0.3)


def leads_in(sheet: Path) -> list[str]:
    return [line.split(",")[0] for line in sheet.read_text().splitlines()[1:] if line]


async def killed_run(
    emu: Any, tmp_path: Path, *, leads: int, after: int, concurrency: int | None = None
) -> tuple[list[str], Path, Path]:
    """`run --backup` of ``leads`` leads at 100/1s in its own process, killed (-9) once the
    emulator has queued ``after`` deletes. Returns the command (without --backup), the sheet
    and the backup."""
    sheet = leads_csv(tmp_path / "leads.csv", leads, codes=f'"{CODES}"')
    backup = tmp_path / "backup.jsonl.gz"
    args = ["run", str(sheet), "--checkpoint", str(tmp_path / "run.sqlite"), "--yes", *WINDOW]
    args += ["--rate", "100/1s"] + (["--concurrency", str(concurrency)] if concurrency else [])
    process = await start_cli(*args, "--backup", str(backup), env=demo_env(emu.url))
    await until(lambda: len(emu.records) >= after, process)
    os.kill(process.pid, signal.SIGKILL)
    await process.wait()
    return args, sheet, backup
