"""--discover end to end on the emulator's data set: the listing, the dry run, the purge, the
guard, an interrupted listing. Ground truth comes from the emulator's own activities."""

from __future__ import annotations

import asyncio
import csv
import math
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bulk_delete.commands import run
from bulk_delete.commands.spec import RunSpec
from bulk_delete.config import Credentials, RateLimit
from bulk_delete.emulator.server import DEMO_ACCESS_KEY, DEMO_SECRET_KEY
from bulk_delete.errors import Interrupted
from bulk_delete.send.pool import StopSwitch

from ..conftest import demo_env, run_cli
from ..helpers import real_time
from ..listing_fixtures import FROM, HIGH, LOW, TO, WINDOW, dataset, in_window, truth

KEYS = Credentials(access_key=DEMO_ACCESS_KEY, secret_key=DEMO_SECRET_KEY)


async def test_the_dry_run_shows_what_would_be_deleted_and_deletes_nothing(
    emulator: Any, tmp_path: Path
) -> None:
    emu = await dataset(emulator)
    expected = truth(emu, {"201", "202"})
    per_code = Counter(str(a["EventCode"]) for acts in expected.values() for a in acts)
    preview = tmp_path / "preview.csv"
    done = await run_cli(
        "plan", "--discover", *WINDOW, "--out", str(preview), env=demo_env(emu.url)
    )
    assert done.returncode == 0, done.stderr
    assert "listing code 202: " in done.stderr  # the listing shows its progress
    for code in ("201", "202"):
        leads = sum(
            1 for acts in expected.values() if any(str(a["EventCode"]) == code for a in acts)
        )
        assert (
            f"Found {per_code[code]:,} activities of code {code} on {leads:,} leads" in done.stdout
        )
    assert f"{len(expected):,} lead(s) in all" in done.stdout
    with preview.open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(expected)  # one line per lead found
    assert {row["ProspectId"]: int(row["activities"]) for row in rows} == {
        lead: len(acts) for lead, acts in expected.items()
    }
    assert {row["FromDate"] for row in rows} == {LOW}
    assert {row["ToDate"] for row in rows} == {HIGH}
    assert emu.records == []
    assert "Dry run: nothing was sent." in done.stdout


async def test_the_run_deletes_every_listed_activity_and_nothing_else(
    emulator: Any, tmp_path: Path
) -> None:
    emu = await dataset(emulator)
    before = {lead: emu.remaining(lead) for lead in emu.dataset()}
    expected = truth(emu, {"201", "202"})
    checkpoint = tmp_path / "c.sqlite"
    args = ("run", "--discover", *WINDOW, "--checkpoint", str(checkpoint), "--yes")
    done = await run_cli(*args, env=demo_env(emu.url))
    assert done.returncode == 0, done.stderr
    assert "listing code 201: 40 of " in done.stderr  # progress shows the listing first
    assert Counter(r["ProspectId"] for r in emu.records) == dict.fromkeys(expected, 1)
    await asyncio.sleep(0.3)  # the emulator carries the queued deletes out
    for lead, activities in before.items():
        gone = [a for a in activities if in_window(a, {"201", "202"})]
        assert emu.remaining(lead) == [a for a in activities if a not in gone]  # nothing else
    per_code = Counter(str(a["EventCode"]) for acts in expected.values() for a in acts)
    least = sum(math.ceil(n / 40) for n in per_code.values())  # pages at the server's cap
    listed = emu.stats()["outcomes"]["list"]
    assert listed <= 2 * least + 2
    assert "rate_limited" not in emu.stats()["outcomes"]
    assert emu.stats()["outcomes"]["user"] == 1  # one preflight, before the listing: not again
    again = await run_cli(*args, env=demo_env(emu.url))  # a rerun lists nothing again
    assert again.returncode == 0
    assert emu.stats()["outcomes"]["list"] == listed


async def test_too_many_leads_exit_2_before_any_delete(emulator: Any, tmp_path: Path) -> None:
    emu = await dataset(emulator)
    args = ("--discover", *WINDOW, "--max-leads", "10")
    done = await run_cli(
        "run", *args, "--checkpoint", str(tmp_path / "c.sqlite"), "--yes", env=demo_env(emu.url)
    )
    assert done.returncode == 2
    assert "more than --max-leads 10" in done.stderr
    assert emu.records == []


async def test_an_interrupted_listing_resumes_without_reading_a_page_twice(
    emulator: Any, tmp_path: Path
) -> None:
    emu = await dataset(emulator)
    spec = RunSpec.from_values(
        {
            "discover": True,
            "codes": "201,202",
            "from_date": FROM,
            "to_date": TO,
            "checkpoint": str(tmp_path / "c.sqlite"),
            "host": emu.url,
            "rate": "off",
        }
    )
    stop = StopSwitch()
    # SIGTERM comes as the first page is read: the pages on the wire (one a code, the codes
    # are listed at once) come back and are saved; no further page is asked for.
    stopping = run.RunHooks(confirm=lambda c: True, on_listing=lambda *_: stop.stop())
    hooks = run.RunHooks(confirm=lambda c: True)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(Interrupted, match=r"while listing \(code 20[12]: .*pages read are"):
            await run.run(spec, KEYS, session=session, hooks=stopping, stop=stop, **real_time())
        assert 1 <= emu.stats()["outcomes"]["list"] <= 2
        summary = await run.run(spec, KEYS, session=session, **real_time(), hooks=hooks)
    assert summary.totals.complete
    pages = Counter((r["code"], r["page"]) for r in emu.list_calls)
    assert set(pages.values()) == {1}  # no page read twice


def test_discover_needs_codes_and_a_window_and_no_sheet(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from bulk_delete.cli.main import cli

    cases = [
        (("--discover", "--from", FROM, "--to", TO), "--codes: discovery needs"),
        (("--discover", "--codes", "201", "--from", FROM), "--to: discovery needs a window"),
        (("x.csv", "--discover", *WINDOW), "--discover: takes the place of an input sheet"),
        ((), "give an INPUT sheet, or --discover"),
    ]
    for args, message in cases:
        result = CliRunner().invoke(cli, ["plan", *args])
        assert result.exit_code == 2, result.output
        assert message in result.stderr


async def test_a_limit_learned_while_listing_is_said_and_kept_for_a_resume(
    emulator: Any, tmp_path: Path
) -> None:
    """--discover: the listing's pool learns the account's lower limit (its refusals name it)
    but has no checkpoint and no on_limit_learned; the delete pool then shares the limiter,
    which already knows the limit, so ``learn`` returns False and nothing is ever saved or
    said. A resume starts again from --rate and is refused again."""
    # 2.5 s windows: virtual time skips their waits, and a busy machine still outpaces 10
    emu = await emulator(rate="10/2.5s", dataset_leads=150, page_cap=10, latency=0.02)
    path = tmp_path / "c.sqlite"
    spec = RunSpec.from_values(
        {
            "discover": True,
            "codes": "201,202",
            "from_date": "2024-03-01",
            "to_date": "2024-12-31",
            "checkpoint": str(path),
            "host": emu.url,
            "rate": "25/2.5s",
        }
    )
    learned: list[RateLimit] = []
    hooks = run.RunHooks(confirm=lambda c: True, on_limit_learned=learned.append)
    async with aiohttp.ClientSession() as session:
        summary = await run.run(spec, KEYS, session=session, **real_time(), hooks=hooks)
    assert summary.rate_limit == "10/2.5s (learned)"  # the limiter did learn it
    assert emu.stats()["outcomes"]["rate_limited"] >= 1
    with sqlite3.connect(path) as db:
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
    assert meta.get("learned_limit") == "10/2.5s", meta.get("learned_limit")  # kept
    assert [str(limit) for limit in learned] == ["10/2.5s (learned)"]  # said once
    assert meta.get("learned_limit") == "10/2.5s"  # kept for a resume and the results report
