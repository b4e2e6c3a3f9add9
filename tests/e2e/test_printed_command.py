"""The plan of the shipped sample prints a command that runs as printed (issue 32, point 3)."""

from __future__ import annotations

import asyncio
import shlex
import shutil
from pathlib import Path
from typing import Any

import pexpect
import pytest

from ..conftest import demo_env, run_cli, terminal

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).parents[2]
G = "00000000-0000-4000-8000-{:012d}"


@pytest.mark.e2e(seconds=8)
async def test_the_samples_printed_command_runs_as_printed(emulator: Any, tmp_path: Path) -> None:
    """`plan sample_inputs/leads.csv` used to print a command that exits 2 (the sample holds
    a row without dates, and the command lacked --open-window)."""
    emu = await emulator(rate="off")
    shutil.copy(ROOT / "sample_inputs" / "leads.csv", tmp_path / "leads.csv")
    planned = await run_cli("plan", str(tmp_path / "leads.csv"), "--tz", "Asia/Kolkata")
    assert planned.returncode == 0, planned.stderr
    why, command = planned.stdout.strip().splitlines()[-2:]
    assert why == (
        "Dry run: nothing was sent. To send it, with --open-window for the 2 request(s) above "
        "whose window is open:"
    )
    words = shlex.split(command)
    assert "--open-window" in words
    child = await asyncio.to_thread(terminal, words[1:], demo_env(emu.url))
    await asyncio.to_thread(child.expect, r"\[y/N\]")
    child.sendline("y")
    await asyncio.to_thread(child.expect, pexpect.EOF)
    child.close()
    assert child.exitstatus == 1  # finished; the sample's bad rows are invalid on purpose
    assert len(emu.records) == 31  # (its 32nd, of the system code 12, is refused by design)
