"""A plan with nothing to send says so; a printed command runs as printed (issue 32, point 3)."""

from __future__ import annotations

import asyncio
import shlex
import shutil
from pathlib import Path
from typing import Any

import pexpect
import pytest

from .conftest import demo_env, run_cli, send_sheet, terminal

ROOT = Path(__file__).parent.parent
G = "00000000-0000-4000-8000-{:012d}"


async def test_no_valid_row_exits_2_with_the_top_reasons_and_nothing_to_run(
    emulator: Any, tmp_path: Path
) -> None:
    emu = await emulator(rate="off")
    sheet = tmp_path / "leads.csv"
    sheet.write_text(
        "ProspectId,Codes,FromDate\n"
        f"{G.format(1)},201,2024-13-01\n{G.format(2)},201,2024-13-02\nabc,201,2024-01-01\n"
    )
    planned = await run_cli("plan", str(sheet), "--invalid-out", str(tmp_path / "bad.csv"))
    assert planned.returncode == 2
    assert "nothing to send: none of the 3 row(s) of leads.csv is valid" in planned.stderr
    assert "2 × bad FromDate (e.g. row 2: FromDate '2024-13-01' is not a real date)" in (
        planned.stderr
    )
    assert "1 × ProspectId is not a GUID" in planned.stderr
    assert "To send it" not in planned.stdout + planned.stderr
    assert len((tmp_path / "bad.csv").read_text().splitlines()) == 4  # the rows, written
    checkpoint = tmp_path / "c.sqlite"
    sent = await send_sheet(emu, sheet, checkpoint)
    assert sent.returncode == 2
    assert "nothing to send" in sent.stderr
    assert emu.calls == 0
    sheet.write_text(f"ProspectId,Codes,FromDate\n{G.format(1)},201,2024-01-01\n")  # corrected
    assert (await send_sheet(emu, sheet, checkpoint)).returncode == 0  # a new plan there
    assert len(emu.records) == 1


@pytest.mark.e2e
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
