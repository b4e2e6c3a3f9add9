"""What a person or a scheduler sees while a run goes: bar, log lines, or nothing."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bulk_delete.cli.progress import ProgressDisplay, log_line
from bulk_delete.commands import run
from bulk_delete.commands.spec import RunSpec
from bulk_delete.config import Credentials
from bulk_delete.emulator.server import DEMO_ACCESS_KEY, DEMO_SECRET_KEY
from bulk_delete.errors import Interrupted
from bulk_delete.send.pool import Progress, StopSwitch
from bulk_delete.summary import RunFigures

from ..conftest import leads_csv
from ..helpers import real_time

NOW = dt.datetime(2026, 11, 30, 2, 30, tzinfo=dt.UTC)


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_logs_get_one_line_a_minute_with_the_eta_at_the_limit() -> None:
    stream, clock = io.StringIO(), Ticks()
    display = ProgressDisplay(stream=stream, clock=clock, calls_per_second=5.0, now=lambda: NOW)
    progress = Progress(total=1000, figures=RunFigures(queued=90, failed=10))
    for second in range(0, 150, 5):
        clock.now = float(second)
        display(progress)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2  # at 60 s and at 120 s, not on every outcome
    assert lines[0].startswith(
        "2026-11-30T02:30:00Z progress: 100/1,000 done, 90 queued, 10 failed"
    )
    assert lines[0].endswith("at least 3 min 00 s to go")  # 900 left at 5/s


def test_quiet_shows_nothing() -> None:
    stream, clock = io.StringIO(), Ticks()
    display = ProgressDisplay(quiet=True, stream=stream, clock=clock)
    clock.now = 1000.0
    display(Progress(total=1))
    assert stream.getvalue() == ""


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def last_line(stream: io.StringIO) -> str:
    """What the terminal shows last: tqdm redraws the line after each carriage return."""
    return stream.getvalue().split("\r")[-1].rstrip("\n")


def test_a_wide_terminal_gets_a_bar_with_every_count() -> None:
    stream = Tty()
    display = ProgressDisplay(stream=stream, calls_per_second=5.0, ncols=120, now=lambda: NOW)
    display(
        Progress(total=10, figures=RunFigures(queued=3, failed=1, rate_limited_429=2), retrying=1)
    )
    display.close()
    shown = last_line(stream)
    assert shown.startswith("4/10  40%|")
    assert shown.endswith("| queued 3, failed 1, retrying 1, 429×2, eta ≥1.2 s")
    assert "2026" not in stream.getvalue()  # a terminal's bar is not stamped


def test_an_80_column_terminal_keeps_done_total_refusals_and_eta() -> None:
    """With every count in the postfix, tqdm cut the line at 80 columns: a one-character bar
    and no 429 count or ETA. Fields are dropped instead, least important first."""
    stream = Tty()
    display = ProgressDisplay(stream=stream, calls_per_second=5.0, ncols=80)
    figures = RunFigures(queued=120_000, failed=3_000, rate_limited_429=312)
    progress = Progress(total=155_000, already_done=146_000, figures=figures)
    progress.retrying = 20
    display(progress)
    display.close()
    shown = last_line(stream)
    assert len(shown) <= 80
    assert shown.startswith("269,000/301,000  89%|")
    assert "429×312" in shown
    assert "eta ≥1 h 46 min" in shown  # the 32,000 left at 5/s
    assert "failed 3,000" in shown
    assert "retrying" not in shown  # dropped below 100 columns
    assert "queued" not in shown
    bar = shown.split("|")[1]
    assert len(bar) >= 10


def test_a_resumed_run_counts_the_whole_plan() -> None:
    """146 of 301 settled by an earlier run, 155 left: the bar and the log say 146/301 at
    the start, not 0/155; the ETA is for the 155 left."""
    progress = Progress(total=155, already_done=146)
    stream = Tty()
    display = ProgressDisplay(stream=stream, calls_per_second=1.0, ncols=100)
    display(progress)
    display.close()
    assert last_line(stream).startswith("146/301  49%|")
    assert "eta ≥2 min 35 s" in last_line(stream)
    log, clock = io.StringIO(), Ticks()
    logger = ProgressDisplay(stream=log, clock=clock, calls_per_second=1.0, now=lambda: NOW)
    clock.now = 60.0
    logger(progress)
    assert log.getvalue() == (
        "2026-11-30T02:30:00Z progress: 146/301 done (146 by earlier runs), 0 queued, 0 failed, "
        "0 retrying, 0 × 429, 0.00 calls/s, at least 2 min 35 s to go\n"
    )


def test_log_lines_are_stamped_only_off_a_terminal() -> None:
    assert log_line("listing", io.StringIO(), now=lambda: NOW) == "2026-11-30T02:30:00Z listing"
    assert log_line("listing", Tty(), now=lambda: NOW) == "listing"


async def test_a_resumed_run_hands_the_display_the_plan_so_far(
    emulator: Any, tmp_path: Path
) -> None:
    """The pool's counts start at 0 in every run; `run` tells the display how many
    requests of the plan earlier runs settled, so the two add up to the plan."""
    emu = await emulator(rate="off", latency=0.02)
    spec = RunSpec.from_values(
        {
            "input": str(leads_csv(tmp_path / "leads.csv", 30)),
            "checkpoint": str(tmp_path / "c.sqlite"),
            "host": emu.url,
            "rate": "off",
            "concurrency": 2,
            "open_window": True,  # the sheet has no dates: this tests the sending
        }
    )
    stop = StopSwitch()
    first: list[Progress] = []

    def stop_after_four(progress: Progress) -> None:
        first.append(dataclasses.replace(progress))
        if progress.done >= 4:
            stop.stop()

    seen: list[Progress] = []
    keys = Credentials(access_key=DEMO_ACCESS_KEY, secret_key=DEMO_SECRET_KEY)
    async with aiohttp.ClientSession() as session:
        hooks = run.RunHooks(confirm=lambda c: True, on_progress=stop_after_four)
        with pytest.raises(Interrupted):
            await run.run(spec, keys, session=session, hooks=hooks, stop=stop, **real_time())
        hooks = run.RunHooks(
            confirm=lambda c: True, on_progress=lambda p: seen.append(dataclasses.replace(p))
        )
        summary = await run.run(spec, keys, session=session, **real_time(), hooks=hooks)
    assert {p.already_done for p in first} == {0}
    settled = first[-1].done
    assert 4 <= settled < 30
    assert {p.already_done for p in seen} == {settled}
    assert {p.already_done + p.total for p in seen} == {30}
    assert seen[-1].already_done + seen[-1].done == 30
    assert summary.totals.queued == 30
