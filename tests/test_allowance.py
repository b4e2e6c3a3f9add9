"""Daily allowances: a refusal naming a long window is an allowance, never a pace; when the
run may go again; how a planned run spreads over days."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bulk_delete.allowance import across_days, allowance_used, resume_at
from bulk_delete.config import RateLimit
from bulk_delete.emulator.server import NEXT_DAY_PATH
from bulk_delete.errors import AllowanceUsed, OptionError, exit_code_for
from bulk_delete.send.answers import Verdict, classify

from .conftest import demo_env, leads_csv, run_cli, send_sheet


def refusal(message: str, status: int = 429) -> str:
    return json.dumps(
        {
            "Status": "Error",
            "ExceptionType": "MXAPIRateLimitExceededException",
            "ExceptionMessage": message,
        }
    )


@pytest.mark.parametrize(
    ("message", "window"),
    [
        ("API calls exceeded the limit of 10000 in 86400 second(s)", 86400.0),
        ("API calls exceeded the limit of 500 in 60 minute(s)", 3600.0),
        ("API calls exceeded the limit of 2000 in 1 hour(s)", 3600.0),
        ("API calls exceeded the limit of 100000 in 1 day(s)", 86400.0),
        ("API calls exceeded the limit of 100000 in 1 Day", 86400.0),
    ],
)
def test_a_long_window_is_an_allowance_not_a_pace(message: str, window: float) -> None:
    for status in (429, 403, 200):
        answer = classify(status, refusal(message))
        assert answer.verdict is Verdict.ALLOWANCE
        assert answer.limit is None  # never learned as a rate
        assert answer.allowance is not None
        assert answer.allowance.period == window


@pytest.mark.parametrize(
    ("message", "limit"),
    [
        ("API calls exceeded the limit of 10 in 5 second(s)", "10/5s"),
        ("API calls exceeded the limit of 100 in 1 minute(s)", "100/60s"),
        ("API calls exceeded the limit of 5 in 3599 second(s)", "5/3599s"),
    ],
)
def test_a_short_window_is_still_a_pace(message: str, limit: str) -> None:
    answer = classify(429, refusal(message))
    assert answer.verdict is Verdict.RATE_LIMITED
    assert str(answer.limit) == limit
    assert answer.allowance is None


def test_the_error_says_when_to_resume_and_exits_75() -> None:
    now = dt.datetime(2026, 11, 30, 21, 40, tzinfo=dt.UTC)
    error = allowance_used(RateLimit(calls=50, period=86400.0), now)
    assert isinstance(error, AllowanceUsed)
    assert exit_code_for(error) == 75
    assert str(error).startswith("daily allowance used; resume after 00:00 UTC tomorrow")
    assert "50 calls in 1 day" in str(error)
    assert error.resume_at == "2026-12-01T00:00+00:00"
    hourly = allowance_used(RateLimit(calls=500, period=3600.0), now)
    assert "resume after 22:00 UTC (500 calls in 1 hour)" in str(hourly)
    told = allowance_used(None, now, retry_after=5400)  # Retry-After wins
    assert "resume after 23:10 UTC" in str(told)


def test_resume_is_the_next_window_boundary_from_midnight_utc() -> None:
    now = dt.datetime(2026, 11, 30, 0, 0, tzinfo=dt.UTC)
    assert resume_at(86400, now) == dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    assert resume_at(3600, now + dt.timedelta(minutes=59)) == now + dt.timedelta(hours=1)


NOON = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)


def test_a_run_within_the_allowance_fits_today() -> None:
    estimate = across_days(120, RateLimit.parse("25/5s"), 1000, now=NOON)
    assert not estimate.crosses
    assert estimate.days == 1
    assert estimate.finish == NOON + dt.timedelta(seconds=24)
    assert "fits today's allowance" in estimate.describe()
    assert not across_days(120, RateLimit.parse("25/5s"), None, now=NOON).crosses


def test_a_run_larger_than_the_allowance_crosses_it_and_takes_days() -> None:
    rate = RateLimit.parse("25/5s")
    estimate = across_days(25_000, rate, 10_000, now=NOON, used_today=4_000)
    assert estimate.crosses
    assert estimate.today == 6_000  # what is left of today's allowance
    # 19,000 left: 10,000 tomorrow, 9,000 the day after, at 5 calls a second from midnight
    assert estimate.days == 3
    assert estimate.finish == dt.datetime(2026, 12, 2, 0, 30, tzinfo=dt.UTC)
    assert "6,000 of 25,000 calls fit today" in estimate.describe()


def test_the_rate_can_be_what_ends_the_day() -> None:
    late = dt.datetime(2026, 11, 30, 23, 59, 0, tzinfo=dt.UTC)  # 60 s left: 300 calls today
    estimate = across_days(400, RateLimit.parse("25/5s"), 100_000, now=late)
    assert not estimate.crosses  # the allowance is not the limit here
    assert estimate.today == 300
    assert estimate.days == 2
    assert estimate.finish == dt.datetime(2026, 12, 1, 0, 0, 20, tzinfo=dt.UTC)


async def test_a_run_larger_than_the_allowance_stops_at_once_and_resumes_after_it(
    emulator: Any, tmp_path: Path
) -> None:
    day = [1_800_000_000.0]  # the emulator's UTC wall clock, moved by the test
    emu = await emulator(rate="off", daily_limit=50, wall=lambda: day[0])
    sheet = leads_csv(tmp_path / "leads.csv", 120)
    fast = ("--rate", "off", "--concurrency", "2")
    summary = tmp_path / "s.json"
    done = await send_sheet(
        emu, sheet, tmp_path / "c.sqlite", *fast, "--summary-json", str(summary)
    )
    assert done.returncode == 75, done.stderr
    assert "daily allowance used; resume after 00:00 UTC" in done.stderr
    written = json.loads(summary.read_text())
    assert written["exit_code"] == 75
    assert written["error"].startswith("daily allowance used; resume after 00:00 UTC")
    calls = emu.stats()["calls"]
    assert calls <= 52  # the preflight, 49 deletes, and the refusals of calls in flight
    # results and report as after any run that sent (only a lock held elsewhere has none),
    # and the report, read later from the checkpoint, gives the exit the process gave
    assert (tmp_path / "c-results.xlsx").is_file()
    assert "<dd>75: stopped: the lock was held" in (tmp_path / "c-report.html").read_text()
    later = await run_cli("report", str(tmp_path / "c.sqlite"), "-o", str(tmp_path / "r.html"))
    assert later.returncode == 0, later.stderr
    later_page = (tmp_path / "r.html").read_text()
    assert "<dd>75: stopped: the lock was held" in later_page
    assert "the account&#39;s daily allowance was used" in later_page  # why, read later
    refused = emu.stats()["outcomes"]["allowance_used"]
    assert 1 <= refused <= 2
    assert written["this_run"]["rate_limited_429"] == refused  # the allowance answers 429 too
    assert f"429={refused}" in done.stderr
    await asyncio.sleep(0.3)
    assert emu.stats()["calls"] == calls  # nothing sent after the refusal
    for _ in range(2):  # 120 deletes and three preflights: three days of 50
        day[0] += 86400  # the allowance resets
        done = await send_sheet(emu, sheet, tmp_path / "c.sqlite", *fast)
    assert done.returncode == 0, done.stderr
    leads = [record["ProspectId"] for record in emu.records]
    assert len(leads) == len(set(leads)) == 120  # nothing sent twice


@pytest.mark.parametrize("daily_limit", [False, True], ids=["learned", "--daily-limit"])
async def test_a_rerun_stopped_at_once_by_the_allowance_reports_what_is_pending(
    emulator: Any, tmp_path: Path, daily_limit: bool
) -> None:
    emu = await emulator(rate="off", daily_limit=5, wall=lambda: 1_800_000_000.0)
    sheet = leads_csv(tmp_path / "leads.csv", 12)
    env = {**demo_env(emu.url), "XDG_STATE_HOME": str(tmp_path / "state")}
    extra: tuple[str, ...] = ("--rate", "off", "--concurrency", "1")
    extra += ("--summary-json", str(tmp_path / "s.json"))
    if daily_limit:
        extra += ("--daily-limit", "5")
    for _ in range(2):  # the first run stops at the allowance; the rerun stops at once
        done = await send_sheet(emu, sheet, tmp_path / "c.sqlite", *extra, env=env)
        assert done.returncode == 75, done.stderr
        written = json.loads((tmp_path / "s.json").read_text())
        assert written["exit_code"] == 75
        assert written["totals"]["queued"] == 4  # the preflight was the fifth call
        assert written["totals"]["pending"] == 8


async def test_the_emulator_s_day_moves_on_when_asked(emulator: Any, tmp_path: Path) -> None:
    """The benchmark's emulator runs in its own process, out of a test's ``wall``: it asks
    for the next day over HTTP, and the rerun after the reset finishes the rest once."""
    emu = await emulator(rate="off", daily_limit=8, wall=lambda: 1_800_000_000.0)
    sheet = leads_csv(tmp_path / "leads.csv", 12)
    fast = ("--rate", "off", "--concurrency", "1")
    done = await send_sheet(emu, sheet, tmp_path / "c.sqlite", *fast)
    assert done.returncode == 75, done.stderr
    calls = emu.stats()["calls"]
    async with aiohttp.ClientSession() as session, session.post(emu.url + NEXT_DAY_PATH) as answer:
        assert await answer.json() == {"days_ahead": 1}
    assert emu.stats()["calls"] == calls  # the control path is not an API call
    done = await send_sheet(emu, sheet, tmp_path / "c.sqlite", *fast)
    assert done.returncode == 0, done.stderr
    assert emu.stats()["leads_deleted"] == 12
    assert emu.stats()["leads_deleted_twice"] == 0


def test_a_plan_past_the_year_9999_is_an_option_error() -> None:
    """3 million calls at one a day end in the year 10240: exit 2, not an OverflowError."""
    with pytest.raises(OptionError, match="would not end before the year 9999"):
        across_days(3_000_000, RateLimit.parse("25/5s"), 1, now=NOON)


@pytest.mark.parametrize("rate", ["1/86401s", "1/100000000000s"])
def test_a_rate_window_longer_than_a_day_is_refused(rate: str) -> None:
    """Not a pace (with --daily-limit it divided by zero calls a day): --daily-limit is."""
    with pytest.raises(OptionError, match="longer than a day is an allowance"):
        RateLimit.parse(rate)
