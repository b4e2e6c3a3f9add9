"""A listing is checked, not believed (#23.5): `--discover` and `verify` against an emulator
taught each fault first — pages that repeat (PageIndex ignored), rows without ids, leads that
are not GUIDs, a RecordCount that lies, offsets counted from the size asked — and `verify`'s
Retrieve paging bounded and stopped by a signal."""

from __future__ import annotations

import asyncio
import re
import signal
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bulk_delete.commands import run, verify
from bulk_delete.commands.spec import RunSpec
from bulk_delete.config import Credentials
from bulk_delete.emulator.server import DEMO_ACCESS_KEY, DEMO_SECRET_KEY
from bulk_delete.errors import Interrupted, UntrustworthyListing
from bulk_delete.plan import listing_pages
from bulk_delete.send.client import LeadSquaredClient
from bulk_delete.send.pool import StopSwitch
from bulk_delete.store.checkpoint import Checkpoint
from bulk_delete.store.found import Found, FoundStore

from ..conftest import demo_env, run_cli, start_cli
from ..helpers import real_time
from ..listing_fixtures import FROM, TO, WINDOW, dataset, fault, purge, truth

KEYS = Credentials(access_key=DEMO_ACCESS_KEY, secret_key=DEMO_SECRET_KEY)
IGNORED = (
    "page 2 of code 201 repeats 40 activities already read on earlier pages: the server seems "
    "to ignore PageIndex; nothing deleted"
)


async def discover_run(emu: Any, checkpoint: Path) -> Any:
    args = ("run", "--discover", *WINDOW, "--checkpoint", str(checkpoint), "--yes")
    return await run_cli(*args, env=demo_env(emu.url))


def pages_asked(emu: Any, code: str) -> list[int]:
    return [call["page"] for call in emu.list_calls if call["code"] == code]


# ---------------------------------------------------------------- the emulator learns the faults


async def listed(emu: Any, page: int, size: int = 1000) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session:
        client = LeadSquaredClient(session, emu.url, KEYS)
        _, body = await client.list_activities("201", "2024-03-01 00:00:00", "9999", page, size)
    return body


async def test_the_emulator_plays_each_listing_fault(emulator: Any) -> None:
    emu = await dataset(emulator)
    first, second = await listed(emu, 1), await listed(emu, 2)
    assert len(first["List"]) == 40
    assert {r["ProspectActivityId"] for r in first["List"]}.isdisjoint(
        r["ProspectActivityId"] for r in second["List"]
    )
    fault(emu, ignore_page_index=True)
    assert (await listed(emu, 2))["List"] == first["List"]
    fault(emu, ignore_page_index=False, offset_from_asked_size=True)
    assert (await listed(emu, 2, size=20))["List"] == first["List"][20:40]  # starts at 20
    assert (await listed(emu, 2, size=1000))["List"] == []  # starts at 1,000: past the end
    fault(emu, offset_from_asked_size=False, record_count=10, rows_without_ids=3, bad_lead_ids=2)
    broken = await listed(emu, 1)
    assert broken["RecordCount"] == 10
    assert [bool(r.get("ProspectActivityId")) for r in broken["List"][:4]] == [0, 0, 0, 1]
    assert [r["RelatedProspectId"] for r in broken["List"][:2]] == ["lead-1", "lead-2"]
    assert listing_pages.GUID.fullmatch(broken["List"][2]["RelatedProspectId"])


async def test_the_emulator_can_say_a_lead_holds_more_than_it_has(emulator: Any) -> None:
    emu = await dataset(emulator, retrieve_record_count=250)
    lead = emu.dataset()[0]
    async with aiohttp.ClientSession() as session:
        client = LeadSquaredClient(session, emu.url, KEYS)
        pages = [(await client.retrieve(lead, "201", offset, 100))[1] for offset in (0, 200)]
    assert [page["RecordCount"] for page in pages] == [250, 250]
    assert [len(page["ProspectActivities"]) for page in pages] == [100, 50]
    assert {a["CreatedOn"] for a in pages[1]["ProspectActivities"]} == {"2001-01-01 00:00:00"}


# ---------------------------------------------------------------- the rules, table-driven


@pytest.mark.parametrize(
    ("page", "asked", "got", "then"),
    [
        (1, 1000, 1000, 1000),  # full: on at that size
        (1, 1000, 40, 40),  # short first page: the server's cap, or the end; one more tells
        (1, 1000, 0, 0),  # empty: nothing to list
        (2, 40, 40, 40),  # full: on, whatever RecordCount said
        (2, 40, 39, 0),  # short: the end
        (2, 40, 0, 0),
    ],
)
def test_pages_go_on_while_full(page: int, asked: int, got: int, then: int) -> None:
    assert listing_pages.next_size(page, asked, got) == then


GOOD = {
    "ProspectActivityId": "a1",
    "RelatedProspectId": "3aee22bd-8419-422a-8242-c510df9af000",
    "ActivityEvent": "201",
    "CreatedOn": "2024-05-01 00:00:00",
}


@pytest.mark.parametrize(
    ("rows", "already", "message"),
    [
        ([GOOD, {**GOOD, "ProspectActivityId": "a2"}], 0, ""),
        ([GOOD, GOOD], 0, "repeats 1 activity already read"),
        ([GOOD], 1, "repeats 1 activity already read on earlier pages: the server seems"),
        ([{**GOOD, "ProspectActivityId": None}], 0, "1 row(s) without a ProspectActivityId"),
        ([{**GOOD, "RelatedProspectId": "4711"}], 0, "is not a GUID (e.g. '4711')"),
        ([{**GOOD, "CreatedOn": ""}], 0, "1 row(s) without a CreatedOn"),
        ([{**GOOD, "ActivityEvent": "202"}], 0, "holds activities of code 202, not 201"),
    ],
)
def test_a_page_is_checked(rows: list[dict[str, Any]], already: int, message: str) -> None:
    if not message:
        listing_pages.check_page(rows, "201", 3, already)
        return
    with pytest.raises(UntrustworthyListing, match=re.escape(message)) as caught:
        listing_pages.check_page(rows, "201", 3, already)
    assert caught.value.exit_code == 3
    assert str(caught.value).startswith("page 3 of code 201 ")


def test_the_count_read_is_held_against_record_count() -> None:
    assert listing_pages.count_problem("201", 1500, (1500, 1500)) == ""
    assert listing_pages.count_problem("201", 1500, (10, 10)) == (
        "the server said 10 activities of code 201 but 1,500 were read"
    )
    assert "changed while it was listed" in listing_pages.count_problem("201", 90, (90, 100))
    assert "no RecordCount" in listing_pages.count_problem("201", 90, (-1, 90))


# ---------------------------------------------------------------- 1. checked, not believed


async def test_a_server_ignoring_page_index_stops_the_run_before_any_delete(
    emulator: Any, tmp_path: Path
) -> None:
    emu = await dataset(emulator, ignore_page_index=True)
    checkpoint = tmp_path / "c.sqlite"
    done = await discover_run(emu, checkpoint)
    assert done.returncode == 3, done.stderr
    assert IGNORED in done.stderr
    assert emu.records == []
    # The pages read are set aside: the rerun lists code 201 again from page 1, and refuses
    # again with the same message while the server is still wrong.
    again = await discover_run(emu, checkpoint)
    assert again.returncode == 3
    assert IGNORED in again.stderr
    assert pages_asked(emu, "201") == [1, 2, 1, 2]
    assert emu.records == []
    fault(emu, ignore_page_index=False)  # the server is fixed: a rerun lists and purges it all
    expected = truth(emu, {"201", "202"})
    fixed = await discover_run(emu, checkpoint)
    assert fixed.returncode == 0, fixed.stderr
    assert Counter(r["ProspectId"] for r in emu.records) == dict.fromkeys(expected, 1)


async def test_the_dry_run_checks_the_listing_the_same_way(emulator: Any) -> None:
    emu = await dataset(emulator, ignore_page_index=True)
    done = await run_cli("plan", "--discover", *WINDOW, env=demo_env(emu.url))
    assert done.returncode == 3
    assert IGNORED in done.stderr


@pytest.mark.parametrize(
    ("knobs", "message"),
    [
        ({"rows_without_ids": 6}, "page 1 of code 201 has 6 row(s) without a ProspectActivityId"),
        (
            {"bad_lead_ids": 3},
            "page 1 of code 201 has 3 row(s) whose RelatedProspectId is not a GUID (e.g. 'lead-1')",
        ),
    ],
)
async def test_rows_that_cannot_be_used_stop_the_run_before_any_delete(
    emulator: Any, tmp_path: Path, knobs: dict[str, int], message: str
) -> None:
    emu = await dataset(emulator, **knobs)
    done = await discover_run(emu, tmp_path / "c.sqlite")
    assert done.returncode == 3, done.stderr
    assert message in done.stderr
    assert "nothing deleted" in done.stderr
    assert emu.records == []


# ---------------------------------------------------------------- 2. RecordCount checked


@pytest.mark.parametrize("lie", [10, 40])  # 40: the first page, short at the cap, "says it all"
async def test_a_record_count_that_lies_neither_stops_the_listing_nor_goes_unreported(
    emulator: Any, tmp_path: Path, lie: int
) -> None:
    emu = await dataset(emulator, record_count=lie)
    expected = truth(emu, {"201", "202"})
    preview = tmp_path / "preview.csv"
    done = await run_cli(
        "plan", "--discover", *WINDOW, "--out", str(preview), env=demo_env(emu.url)
    )
    assert done.returncode == 0, done.stderr
    assert f"{len(expected):,} lead(s) in all" in done.stdout
    with preview.open() as handle:
        assert sum(1 for _ in handle) == len(expected) + 1
    warning = re.compile(rf"warning: the server said {lie} activities of code 201 but [\d,]+ were")
    assert len(warning.findall(done.stdout)) == 2  # under the listing, and in the plan


# ---------------------------------------------------------------- 3. the page size is saved


async def test_a_resumed_listing_asks_the_page_size_the_server_gave(
    emulator: Any, tmp_path: Path
) -> None:
    emu = await dataset(emulator, offset_from_asked_size=True)
    expected = truth(emu, {"201", "202"})
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
    stop.stop()  # SIGTERM after page 1 (asked 1,000, given 40)
    hooks = run.RunHooks(confirm=lambda c: True)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(Interrupted):
            await run.run(spec, KEYS, session=session, hooks=hooks, stop=stop, **real_time())
        summary = await run.run(spec, KEYS, session=session, **real_time(), hooks=hooks)
    assert summary.totals.complete
    assert Counter(r["ProspectId"] for r in emu.records) == dict.fromkeys(expected, 1)


def test_a_listing_saved_before_the_size_was_goes_on_at_the_cap() -> None:
    store = FoundStore.in_memory()
    rows = [Found(f"a{n}", "lead", "201", "2024-05-01 00:00:00") for n in range(40)]
    store.save_page("201", 1, 1000, 400, 40, rows)
    assert store.state("201").size == 40
    store._db.execute("UPDATE listing SET next_size = NULL")  # as an older version saved it
    state = store.state("201")
    assert (state.size, state.ended) == (40, False)


def test_a_checkpoint_from_before_the_checks_opens_and_keeps_its_listing(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    Checkpoint.open(path).close()  # then made as a release before the checks left it:
    old = sqlite3.connect(path)
    old.executescript(
        "PRAGMA application_id = 0; PRAGMA user_version = 0;"
        "DELETE FROM meta WHERE key = 'format';"
        "ALTER TABLE found DROP COLUMN kept; ALTER TABLE found DROP COLUMN row;"
        " ALTER TABLE listing DROP COLUMN next_size;"
        "INSERT INTO meta VALUES ('schema', '1'), ('fingerprint', 'f'), ('input', 'x'),"
        " ('options', '{}'), ('created_at', '2026-01-01 00:00:00');"
        "INSERT INTO found VALUES ('a1', 'lead', '201', '2024-05-01 00:00:00');"
        "INSERT INTO listing VALUES ('201', 1, 1000, 1, 1);"
    )
    old.commit()
    old.close()
    with Checkpoint.open(path) as checkpoint:
        found = checkpoint.found
        assert found.leads() == 1
        state = found.state("201")  # a short first page: one more page at its size tells
        assert (state.pages, state.size, state.ended) == (1, 1, False)
        assert found.already_read(["a1", "a2"]) == 1


# ---------------------------------------------------------------- 4. verify


@pytest.mark.parametrize(
    ("knobs", "reason"),
    [
        ({"ignore_page_index": True}, "page 2 of code 201 repeats"),
        ({"record_count": 10}, "the server said 10 activities of code 201 but"),
    ],
)
async def test_verify_never_confirms_from_a_listing_that_cannot_be_trusted(
    emulator: Any, tmp_path: Path, knobs: dict[str, Any], reason: str
) -> None:
    emu, checkpoint = await purge(emulator, tmp_path, webhook_delay=60, page_cap=40)
    fault(emu, **knobs)  # nothing was carried out: no request may be "confirmed"
    done = await run_cli("verify", str(checkpoint), "--rate", "off", env=demo_env(emu.url))
    assert done.returncode == 1, done.stderr
    assert "queued request(s) per code" in done.stdout
    assert "confirmed 0 of 60 checked" in done.stdout
    assert "60 could not be checked" in done.stdout
    assert f"listing not trusted: {reason}" in done.stdout


async def verify_sample_of_one(emu: Any, checkpoint: Path) -> Any:
    spec = RunSpec.from_values(
        {"checkpoint": str(checkpoint), "host": emu.url, "rate": "off", "sample": 1}
    )
    async with aiohttp.ClientSession() as session, asyncio.timeout(120):  # a hang fails
        return await verify.verify(spec, KEYS, session=session, **real_time())


async def test_verify_per_lead_pages_no_further_than_the_run_could_need(
    emulator: Any, tmp_path: Path
) -> None:
    emu, checkpoint = await purge(emulator, tmp_path, webhook_delay=60)
    fault(emu, retrieve_record_count=1_000_000_000)
    summary = await verify_sample_of_one(emu, checkpoint)
    assert summary.strategy == "per lead"
    assert summary.verification.unverified == 1
    assert emu.outcomes["retrieve"] == 1  # the first page's count is already too many
    [(note, count)] = summary.unverified_notes
    assert count == 1
    assert "said a lead holds 1,000,000,000 activities of code" in note


async def test_verify_per_lead_reads_every_page_of_a_big_lead(
    emulator: Any, tmp_path: Path
) -> None:
    emu, checkpoint = await purge(emulator, tmp_path, webhook_delay=0.05)
    await asyncio.sleep(0.3)  # the deletes are carried out
    fault(emu, retrieve_record_count=250)  # each lead holds 250 a code: 3 pages each
    summary = await verify_sample_of_one(emu, checkpoint)
    assert summary.verification.confirmed == 1
    assert emu.outcomes["retrieve"] == 6


@pytest.mark.e2e
async def test_verify_stops_within_seconds_of_sigterm(emulator: Any, tmp_path: Path) -> None:
    emu, checkpoint = await purge(emulator, tmp_path, webhook_delay=60)
    fault(emu, retrieve_record_count=4000, latency=0.2)  # 80 calls: 16 s to page through
    process = await start_cli(
        "verify", str(checkpoint), "--rate", "off", "--sample", "1", env=demo_env(emu.url)
    )
    async with asyncio.timeout(60):
        while emu.outcomes["retrieve"] < 3:
            await asyncio.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    async with asyncio.timeout(12):  # the calls in flight are abandoned, not waited for
        _, stderr = await process.communicate()
    assert process.returncode == 130, stderr.decode()
    assert b"interrupted; every check made is saved" in stderr


async def test_a_fatal_answer_during_verify_still_exits_3(emulator: Any, tmp_path: Path) -> None:
    emu, checkpoint = await purge(emulator, tmp_path, webhook_delay=60)
    env = {**demo_env(emu.url), "LSQ_SECRET_KEY": "not-the-secret-key-000000"}
    done = await run_cli("verify", str(checkpoint), "--rate", "off", "--no-preflight", env=env)
    assert done.returncode == 3, done.stderr  # a stoppable call passes its errors through


async def test_a_listing_refused_in_a_200_does_not_end_short_with_exit_0(
    emulator: Any, tmp_path: Path
) -> None:
    """The same defect end to end: a tenant that refuses with 200 + Status Error (the emulator's
    limit_status=200). The refused list page comes back from ``Pool.read`` as a page without
    a List: ``listing.pages`` takes it for the last page, the code's listing ends there, and
    the nightly --discover purge deletes a third of the leads and exits 0 (two warnings
    'the server gave no RecordCount'). A rerun resumes that plan: the rest is never found."""
    emu = await emulator(
        rate="6/2.5s", limit_status=200, dataset_leads=150, page_cap=15, latency=0.02
    )
    expected = truth(emu, {"201", "202"})
    spec = RunSpec.from_values(
        {
            "discover": True,
            "codes": "201,202",
            "from_date": "2024-03-01",
            "to_date": "2024-12-31",
            "checkpoint": str(tmp_path / "c.sqlite"),
            "host": emu.url,
            "rate": "25/2.5s",
        }
    )
    hooks = run.RunHooks(confirm=lambda c: True)
    async with aiohttp.ClientSession() as session:
        summary = await run.run(spec, KEYS, session=session, **real_time(), hooks=hooks)
    # before: 0, 55 of 179
    assert not summary.totals.complete or summary.totals.leads == len(expected)
