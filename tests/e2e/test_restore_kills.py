"""kill -9 over a `restore`, again and again, each kill followed by a resume, while 5 % of the
post answers are lost after the emulator created the activities: every activity comes back,
and none twice. Real processes, marked ``e2e``; the kills and the seed as in
test_backup_kills.py (``BULK_DELETE_KILLS``, ``BULK_DELETE_SEED``; ``-s`` shows the figures).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import random
import signal
import sqlite3
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bulk_delete.config import RateLimit

from ..backup_fixtures import KILLS, SEED
from ..conftest import demo_env, start_cli
from ..restore_fixtures import on_leads, purged

pytestmark = pytest.mark.e2e


async def _until_calls_or_exit(emu: Any, process: Any, calls: int, seconds: float = 60) -> None:
    async with asyncio.timeout(seconds):
        while emu.calls < calls and process.returncode is None:
            await asyncio.sleep(0.005)


@pytest.mark.e2e(seconds=3)
@pytest.mark.parametrize("post", ["single", "bulk"])
async def test_kill_9_again_and_again_with_lost_answers_never_posts_twice(
    emulator: Any, tmp_path: Path, post: str
) -> None:
    rng = random.Random(SEED)
    emu = await emulator(
        rate="off",
        webhook_delay=0.02,
        latency=0.01,
        post_lost_rate=0.05,
        bulk_rate=RateLimit.parse("off"),
        seed=SEED,
    )
    backup, saved = await purged(emu, tmp_path, 80)
    leads = {key[0] for key in saved}
    before = on_leads(emu, leads)
    args = ["restore", str(backup), "--checkpoint", str(tmp_path / "restore.sqlite"), "--yes"]
    args += ["--rate", "off", "--bulk-rate", "off", "--concurrency", "2", "--post", post]
    args += ["--max-attempts", "20"]
    env = demo_env(emu.url)
    outcomes: Counter[str] = Counter()
    started, kills = time.monotonic(), 0
    while True:
        process = await start_cli(*args, env=env)
        if kills < KILLS:
            span = 12 if post == "single" else 6
            await _until_calls_or_exit(emu, process, emu.calls + rng.randint(1, span))
        if process.returncode is None and kills < KILLS:
            os.kill(process.pid, signal.SIGKILL)
            await process.wait()
            kills += 1
            outcomes["killed"] += 1
            continue
        stdout, stderr = await process.communicate()
        outcomes[f"exit {process.returncode}"] += 1
        if kills >= KILLS:
            assert process.returncode == 0, (stdout + stderr).decode()
            break
    stats = emu.stats()
    print(
        f"\nseed {SEED}, {post}: {kills} kills, {dict(outcomes)}, "
        f"{stats['outcomes'].get('post_lost', 0)} answers lost, "
        f"{stats['activities_posted']} posted for {sum(saved.values())}, "
        f"{time.monotonic() - started:.1f} s"
    )
    assert kills == KILLS
    assert stats["outcomes"].get("post_lost", 0) + kills > 0
    assert stats["posted_twice"] == 0  # never twice …
    assert on_leads(emu, leads) - before == saved  # … and every one back, as it was


@pytest.mark.e2e(seconds=5)
async def test_sigterm_drains_a_restore_and_the_rerun_posts_the_rest_once(
    emulator: Any, tmp_path: Path
) -> None:
    emu = await emulator(rate="off", webhook_delay=0.02, bulk_rate=RateLimit.parse("off"))
    backup, saved = await purged(emu, tmp_path, 60)
    emu.config = dataclasses.replace(emu.config, latency=0.2)  # posts that take their time
    args = ["restore", str(backup), "--checkpoint", str(tmp_path / "restore.sqlite"), "--yes"]
    args += ["--post", "single", "--summary-json", str(tmp_path / "s.json")]
    env = demo_env(emu.url)
    process = await start_cli(*args, "--rate", "50/1s", env=env)
    async with asyncio.timeout(60):
        while emu.stats()["activities_posted"] < 10:
            await asyncio.sleep(0.01)
    process.send_signal(signal.SIGTERM)
    _, stderr = await process.communicate()
    assert process.returncode == 130, stderr.decode()
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["exit_code"] == 130
    assert summary["restore"]["posted"] == emu.stats()["activities_posted"]  # each one kept
    with sqlite3.connect(tmp_path / "restore.sqlite") as db:
        states = dict(db.execute("SELECT status, COUNT(*) FROM activities GROUP BY status"))
    db.close()
    assert "posting" not in states  # drained and answered; those waiting for a slot not sent
    assert states["gone"] > 0
    rerun = await start_cli(*args, "--rate", "off", env=env)  # the rest at once
    _, stderr = await rerun.communicate()
    assert rerun.returncode == 0, stderr.decode()
    assert emu.stats()["activities_posted"] == sum(saved.values())
    assert emu.stats()["posted_twice"] == 0
