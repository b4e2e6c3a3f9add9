"""The emulator's data set as `--discover`, `verify` and the listing tests meet it: the window
they purge, the ground truth of what a purge must remove (from the emulator's own activities),
faults taught to a running emulator, and a purge by sheet to verify."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from .conftest import send_sheet

FROM, TO = "2024-03-01", "2024-12-31"
LOW, HIGH = "2024-03-01 00:00:00", "2024-12-31 23:59:59"
WINDOW = ("--codes", "201,202", "--from", FROM, "--to", TO, "--rate", "off")


def in_window(activity: dict[str, Any], codes: set[str]) -> bool:
    return str(activity["EventCode"]) in codes and LOW <= activity["CreatedOn"] <= HIGH


def truth(emu: Any, codes: set[str]) -> dict[str, list[dict[str, Any]]]:
    """Each lead's activities that a purge of ``codes`` over the window must remove."""
    found = {
        lead: [a for a in emu.remaining(lead) if in_window(a, codes)] for lead in emu.dataset()
    }
    return {lead: activities for lead, activities in found.items() if activities}


async def dataset(emulator: Any, **knobs: Any) -> Any:
    return await emulator(rate="off", dataset_leads=400, page_cap=40, webhook_delay=0.05, **knobs)


def fault(emu: Any, **knobs: Any) -> None:
    """Teach the running emulator a fault (or cure it)."""
    emu.config = dataclasses.replace(emu.config, **knobs)


async def purge(emulator: Any, tmp_path: Path, **knobs: Any) -> tuple[Any, Path]:
    """60 leads purged by sheet; the deletes are carried out after ``webhook_delay``."""
    emu = await emulator(rate="off", dataset_leads=400, **knobs)
    sheet = tmp_path / "leads.csv"
    sheet.write_text("ProspectId\n" + "\n".join(emu.dataset()[:60]) + "\n")
    checkpoint = tmp_path / "c.sqlite"
    window = ("--codes", "201,202", "--from", "2024-01-01", "--to", "2024-06-30")
    done = await send_sheet(emu, sheet, checkpoint, "--rate", "off", *window)
    assert done.returncode == 0, done.stderr
    return emu, checkpoint
