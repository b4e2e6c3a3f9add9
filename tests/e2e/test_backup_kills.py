"""kill -9 over a `run --backup`, again and again, each kill followed by a resume, and one
byte of the backup flipped once along the way. Every outcome is a non-zero exit naming the
damage, or a backup exactly equal to what the emulator deleted: never a short backup with
exit 0.

Real processes (a kill -9 needs one), on the emulator: an end-to-end test of some seconds,
marked ``e2e``. ``BULK_DELETE_KILLS=30`` (and ``BULK_DELETE_SEED``) make a longer run by hand;
``-s`` shows its figures.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import shutil
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from ..backup_fixtures import CODES, KILLS, SEED, WINDOW, deleted_by, leads_in, saved_in, settled
from ..conftest import demo_env, leads_csv, start_cli

pytestmark = pytest.mark.e2e


async def _until_calls_or_exit(emu: Any, process: Any, calls: int, seconds: float = 60) -> None:
    """Wait until the emulator has seen ``calls`` calls (reads and deletes), or the process
    has ended by itself."""
    async with asyncio.timeout(seconds):
        while len(emu.records) + emu.outcomes["retrieve"] < calls:
            if process.returncode is not None:
                return
            await asyncio.sleep(0.01)


@pytest.mark.e2e(seconds=5)
async def test_kill_9_again_and_again_with_a_flipped_byte_never_leaves_a_short_backup(
    emulator: Any, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    emu = await emulator(rate="off", webhook_delay=0.02, latency=0.01)
    sheet = leads_csv(tmp_path / "leads.csv", 8 * KILLS, codes=f'"{CODES}"')
    backup = tmp_path / "backup.jsonl.gz"
    args = ["run", str(sheet), "--checkpoint", str(tmp_path / "run.sqlite"), "--yes", *WINDOW]
    args += ["--rate", "off", "--concurrency", "2", "--backup", str(backup)]
    env = demo_env(emu.url)
    flip_after = rng.randrange(1, KILLS - 1)  # after this kill, one byte of the backup flips
    outcomes: Counter[str] = Counter()
    started = time.monotonic()
    kills = 0
    while True:
        process = await start_cli(*args, env=env)
        if kills < KILLS:
            target = len(emu.records) + emu.outcomes["retrieve"] + rng.randint(1, 24)
            await _until_calls_or_exit(emu, process, target)
        if process.returncode is None and kills < KILLS:
            os.kill(process.pid, signal.SIGKILL)
            await process.wait()
            kills += 1
            outcomes["killed"] += 1
        else:
            sent = len(emu.records)
            _, stderr = await process.communicate()
            outcomes[f"exit {process.returncode}"] += 1
            if process.returncode != 0:  # only the flipped byte may stop a run: named
                assert re.search(r"cannot be read whole: member \d+ \(bytes", stderr.decode())
                assert str(backup) in stderr.decode()
                assert len(emu.records) == sent  # stopped before any delete
                shutil.copyfile(backup.with_name("copy"), backup)  # restored from a copy
                continue
            await settled(emu)
            assert saved_in(backup) == deleted_by(emu, leads_in(sheet))  # never short with exit 0
            if kills >= KILLS:
                break
        if kills == flip_after and backup.exists() and backup.stat().st_size:
            shutil.copyfile(backup, backup.with_name("copy"))
            offset = rng.randrange(backup.stat().st_size)
            with backup.open("r+b") as handle:
                handle.seek(offset)
                byte = handle.read(1)[0]
                handle.seek(offset)
                handle.write(bytes([byte ^ rng.randint(1, 255)]))
            outcomes["flipped"] += 1
    torn = len(list(tmp_path.glob("backup.jsonl.gz.torn-*")))
    print(
        f"\nseed {SEED}: {kills} kills, {dict(outcomes)}, {torn} torn tail(s) set aside, "
        f"{len(emu.records)} deletes for {8 * KILLS} requests, "
        f"{time.monotonic() - started:.1f} s"
    )
    assert kills == KILLS
    assert outcomes["flipped"] == 1
