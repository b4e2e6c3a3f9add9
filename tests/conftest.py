"""Shared fixtures: real files in tmp_path, and the emulator on a free loopback port."""

from __future__ import annotations

import asyncio
import gc
import os
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from . import virtual_time as virtual_time_
from .forked import Started, start_forked

GUIDS = [f"3aee22bd-8419-422a-8242-c510df9af{n:03d}" for n in range(1000)]


# Workers that each run a lane of e2e tests; make test's other two keep the cores busy.
E2E_LANES = 3


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The e2e tests run in lanes: groups that each run on one worker under make test
    (--dist loadgroup), filled longest first into the shortest lane (a test's
    ``e2e(seconds=N)``, else a second or two). Each e2e test spends seconds waiting on real
    processes and the real clock, so three workers wait in turn while the other two keep the
    cores busy, never all five at once. Among the others, the generated-input tests (the most
    CPU each) come first, so that the run does not end on one worker drawing examples while
    the other core idles (docs/design/tests.md)."""
    e2e = [item for item in items if item.get_closest_marker("e2e") is not None]
    e2e.sort(key=_e2e_seconds, reverse=True)
    lanes = [0.0] * E2E_LANES
    for item in e2e:
        if item.get_closest_marker("xdist_group") is None:
            lane = lanes.index(min(lanes))
            lanes[lane] += _e2e_seconds(item)
            item.add_marker(pytest.mark.xdist_group(f"e2e-{lane}"))
    others = [item for item in items if item.get_closest_marker("e2e") is None]
    others.sort(key=lambda item: not _draws_examples(item))
    items[:] = e2e + others


def _e2e_seconds(item: pytest.Item) -> float:
    marker = item.get_closest_marker("e2e")
    return float(marker.kwargs.get("seconds", 1.5)) if marker is not None else 0.0


def _draws_examples(item: pytest.Item) -> bool:
    return hasattr(getattr(item, "obj", None), "hypothesis")


def pytest_collection_finish(session: pytest.Session) -> None:
    """What collection leaves alive (modules, test functions, their imports) lives as long as
    the process: out of the cyclic collector's sweeps, which otherwise walk it again on every
    full collection (about 2 s of CPU a worker; gc.freeze, as CPython's docs describe it)."""
    gc.collect()
    gc.freeze()


# How much a make test worker yields the cores to the e2e lanes once it runs other tests.
YIELDING = 10


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Under make test, a worker that runs a test of the others (CPU, no real clock) lowers
    its priority for good: the e2e lanes' processes, which wait on the real clock, then get the
    cores when they need them and finish sooner, and the others take what is left (nice 10: a
    tenth of a core's time against a waiting process of priority 0)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker and item.get_closest_marker("e2e") is None:
        os.setpriority(os.PRIO_PROCESS, 0, max(YIELDING, os.getpriority(os.PRIO_PROCESS, 0)))


@pytest.fixture(autouse=True)
def own_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Runs share a budget through a ledger in the user's state directory (ledger.py): each
    test gets its own, never the machine's."""
    state = tmp_path / "xdg-state"
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    return state / "bulk-delete"


@pytest.fixture
def ledger_starts(own_state_dir: Path) -> Callable[..., None]:
    """Another run's call starts in this test's machine ledger (see own_state_dir):
    ``ledger_starts(host, count, ahead=3600)`` writes ``count`` starts on the demo account at
    ``host``, stamped now, or ``ahead`` seconds in the future, as a run leaves them when the
    machine's clock went back since (or as a changed file holds them)."""
    import time

    from bulk_delete.config import normalise_host
    from bulk_delete.emulator.knobs import DEMO_ACCESS_KEY
    from bulk_delete.store.ledger import WindowLedger

    def write(host: str, count: int, *, ahead: float = 0.0, name: str = "another run") -> None:
        ledger = WindowLedger.for_account(
            normalise_host(host),
            DEMO_ACCESS_KEY,
            folder=own_state_dir,
            wall=lambda: time.time() + ahead,
            name=name,
        )
        try:
            for _ in range(count):
                assert ledger.reserve(count, 0.0) == 0.0  # no window: every start is taken
        finally:
            ledger.close()

    return write


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


@pytest.fixture
async def virtual_time() -> AsyncIterator[virtual_time_.Skipper]:
    """Virtual time for this test's loop: whenever the loop only waits for a timer, time jumps
    to it (tests/virtual_time.py). The emulator, the CLI run in-process (run_cli) and the
    core share it; a process of its own (start_cli) cannot, and is refused."""
    with virtual_time_.skipping() as skipper:
        yield skipper


@pytest.fixture
def emulator_time(request: pytest.FixtureRequest) -> None:
    """The emulator's windows in virtual time, except in a test marked e2e: its processes
    (start_cli) and its runs against the real clock live in real time."""
    if request.node.get_closest_marker("e2e") is None:
        request.getfixturevalue("virtual_time")


@pytest.fixture
async def emulator(emulator_time: None) -> Any:
    """A factory: ``emu = await emulator(rate=..., latency=...)`` → a running Emulator
    on a free loopback port, stopped at teardown. In virtual time unless the test is marked
    e2e (emulator_time)."""
    from bulk_delete.config import RateLimit
    from bulk_delete.emulator.server import Emulator, EmulatorConfig

    started: list[Emulator] = []

    async def start(
        *,
        clock: Callable[[], float] | None = None,
        wall: Callable[[], float] | None = None,
        rate: str = "25/5s",
        **knobs: Any,
    ) -> Emulator:
        config = EmulatorConfig(rate=RateLimit.parse(rate), **knobs)
        times = {"clock": clock, "wall": wall}
        emu = Emulator(config, **{name: time for name, time in times.items() if time})
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


async def run_cli(*args: str, env: dict[str, str] | None = None) -> Done:
    """The real command line, in this process: click's CliRunner in a worker thread (the CLI
    runs its own event loop there), while the emulator keeps serving on this test's loop."""
    from click.testing import CliRunner

    from bulk_delete.cli.main import cli

    result = await asyncio.to_thread(
        CliRunner().invoke, cli, list(args), env=env, catch_exceptions=False
    )
    return Done(result.exit_code, result.stdout, result.stderr)


async def send_sheet(
    emu: Any, sheet: Path, checkpoint: Path, *extra: str, env: dict[str, str] | None = None
) -> Done:
    """`bulk-delete run SHEET --checkpoint CK --yes --open-window EXTRA…` against the
    emulator, with the demo keys unless ``env`` says otherwise. (The test sheets mostly have
    no dates: they test the sending, and say so with --open-window.)"""
    return await run_cli(
        "run",
        str(sheet),
        "--checkpoint",
        str(checkpoint),
        "--yes",
        "--open-window",
        *extra,
        env=env if env is not None else demo_env(emu.url),
    )


async def start_cli(
    *args: str, env: dict[str, str] | None = None, stdin: Any = asyncio.subprocess.DEVNULL
) -> Started:
    """The real command line in its own process, for what needs one: signals, kill -9, locks,
    a terminal on standard input. The caller signals and waits. The process is forked from an
    interpreter that has imported the package already (tests/forked.py)."""
    assert not virtual_time_.active(), "another process lives in real time: mark the test e2e"
    environment = {**os.environ, **(env or {})}
    # (a module-scoped fixture runs before own_state_dir: it gives its own, or the run would
    # share the machine's ledger and sent plans, and meet a plan of an earlier day's test)
    assert "XDG_STATE_HOME" in environment, "a test's process keeps its state in the test's folder"
    return await start_forked(list(args), environment, stdin)


def terminal(args: list[str], env: dict[str, str]) -> Any:
    """The CLI on a real pseudo-terminal (pexpect; its controlling terminal: Ctrl-C is a
    SIGINT), for a test marked e2e."""
    import pexpect

    assert not virtual_time_.active(), "another process lives in real time: mark the test e2e"
    return pexpect.spawn(
        sys.executable,
        ["-m", "bulk_delete", *args],
        env={**os.environ, **env},
        encoding="utf-8",
        timeout=30,
    )


async def until(condition: Callable[[], bool], process: Started, seconds: float = 30.0) -> None:
    """Poll ``condition`` while ``process`` runs: a process that exits first, or a condition
    that never comes, fails the test instead of hanging it."""
    async with asyncio.timeout(seconds):
        while not condition():
            if process.returncode is not None:
                _, stderr = await process.communicate()
                raise AssertionError(f"the process exited {process.returncode}: {stderr!r}")
            await asyncio.sleep(0.05)


def demo_env(url: str) -> dict[str, str]:
    from bulk_delete.emulator.server import DEMO_ACCESS_KEY, DEMO_SECRET_KEY

    return {"LSQ_HOST": url, "LSQ_ACCESS_KEY": DEMO_ACCESS_KEY, "LSQ_SECRET_KEY": DEMO_SECRET_KEY}


def leads_csv(
    path: Path, count: int, *, codes: str = "201", start: int = 0, extra_rows: str = ""
) -> Path:
    lines = ["ProspectId,ActivityEventList"]
    lines += [f"00000000-0000-4000-8000-{n:012d},{codes}" for n in range(start, start + count)]
    path.write_text("\n".join(lines) + "\n" + extra_rows)
    return path


def moved_to(checkpoint: Path, url: str) -> None:
    """The checkpoint's account, now at ``url``: a test's second emulator stands for the same
    LeadSquared account at a new address (a resume elsewhere is otherwise refused)."""
    import sqlite3

    from bulk_delete.emulator.server import DEMO_ACCESS_KEY
    from bulk_delete.store.ledger import account_id

    account = {"host": url, "account": account_id(url, DEMO_ACCESS_KEY)}
    with sqlite3.connect(checkpoint) as db:
        db.executemany(
            "UPDATE meta SET value = ? WHERE key = ?", [(v, k) for k, v in account.items()]
        )
    db.close()
