"""A plan with nothing to send says so (issue 32, point 3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..conftest import run_cli, send_sheet

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
