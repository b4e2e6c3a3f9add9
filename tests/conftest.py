"""Shared fixtures: real files in tmp_path, and the emulator on a free loopback port."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openpyxl
import pytest

GUIDS = [f"3aee22bd-8419-422a-8242-c510df9af{n:03d}" for n in range(1000)]


@pytest.fixture
def write_csv(tmp_path: Path) -> Callable[..., Path]:
    def write(text: str, name: str = "leads.csv", encoding: str = "utf-8") -> Path:
        path = tmp_path / name
        path.write_bytes(text.encode(encoding))
        return path

    return write


@pytest.fixture
def write_xlsx(tmp_path: Path) -> Callable[..., Path]:
    def write(
        rows: Sequence[Sequence[Any]],
        name: str = "leads.xlsx",
        sheet: str = "Leads",
        formats: dict[str, str] | None = None,
        extra_sheets: Sequence[str] = (),
    ) -> Path:
        workbook = openpyxl.Workbook()
        worksheet = workbook.active
        assert worksheet is not None
        worksheet.title = sheet
        for row in rows:
            worksheet.append(list(row))
        for cell, fmt in (formats or {}).items():
            worksheet[cell].number_format = fmt
        for extra in extra_sheets:
            workbook.create_sheet(extra)
        path = tmp_path / name
        workbook.save(path)
        return path

    return write


def utc(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S")


@pytest.fixture
async def emulator() -> Any:
    """A factory: ``emu = await emulator(rate=..., latency=...)`` → a running Emulator
    on a free loopback port, stopped at teardown."""
    from bulk_delete.config import RateLimit
    from bulk_delete.emulator import Emulator, EmulatorConfig

    started: list[Emulator] = []

    async def start(
        *, clock: Callable[[], float] | None = None, rate: str = "25/5s", **knobs: Any
    ) -> Emulator:
        config = EmulatorConfig(rate=RateLimit.parse(rate), **knobs)
        emu = Emulator(config, clock=clock) if clock else Emulator(config)
        await emu.start()
        started.append(emu)
        return emu

    yield start
    for emu in started:
        await emu.stop()


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


async def start_cli(
    *args: str, env: dict[str, str] | None = None, stdin: Any = asyncio.subprocess.DEVNULL
) -> asyncio.subprocess.Process:
    """The real command line, started in its own process; the caller signals and waits."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bulk_delete",
        *args,
        stdin=stdin,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )


async def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> Done:
    """The real command line in its own process (the emulator keeps serving meanwhile)."""
    process = await start_cli(*args, env=env)
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return Done(process.returncode, out.decode(), err.decode())


def demo_env(url: str) -> dict[str, str]:
    from bulk_delete.emulator import DEMO_ACCESS_KEY, DEMO_SECRET_KEY

    return {"LSQ_HOST": url, "LSQ_ACCESS_KEY": DEMO_ACCESS_KEY, "LSQ_SECRET_KEY": DEMO_SECRET_KEY}


def leads_csv(
    path: Path, count: int, *, codes: str = "201", start: int = 0, extra_rows: str = ""
) -> Path:
    lines = ["ProspectId,ActivityEventList"]
    lines += [f"00000000-0000-4000-8000-{n:012d},{codes}" for n in range(start, start + count)]
    path.write_text("\n".join(lines) + "\n" + extra_rows)
    return path


@pytest.fixture
def threaded_emulator() -> Any:
    """A factory for an emulator served from a background thread, for synchronous tests of
    code that runs its own event loop (pipeline.run)."""
    import threading

    from bulk_delete.config import RateLimit
    from bulk_delete.emulator import Emulator, EmulatorConfig

    loops: list[tuple[asyncio.AbstractEventLoop, threading.Thread, Emulator]] = []

    def start(rate: str = "off", **knobs: Any) -> Emulator:
        emu = Emulator(EmulatorConfig(rate=RateLimit.parse(rate), **knobs))
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(emu.start())
            ready.set()
            loop.run_forever()

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        assert ready.wait(10)
        loops.append((loop, thread, emu))
        return emu

    yield start
    for loop, thread, emu in loops:
        asyncio.run_coroutine_threadsafe(emu.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
