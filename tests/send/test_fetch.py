"""What a request will delete, read before it is sent: against the emulator, the fetch returns
exactly what the emulator's delete then removes (same ids, same fields, none extra, none
missing), at the number of Retrieve calls the dry run predicts; pages that do not add up stop
the fetch."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from bulk_delete.config import Credentials
from bulk_delete.emulator.server import DEMO_ACCESS_KEY, DEMO_SECRET_KEY
from bulk_delete.errors import ActivitiesUnread
from bulk_delete.send.answers import Answer, Verdict
from bulk_delete.send.backup_fetch import (
    activities_to_delete,
    expected_calls,
    expected_total,
)
from bulk_delete.send.client import LeadSquaredClient
from bulk_delete.store.backup_file import BackupWriter, read_backup

KEYS = Credentials(access_key=DEMO_ACCESS_KEY, secret_key=DEMO_SECRET_KEY)
CODES = (("201",), ("201", "202"), ("150", "151", "152", "153", "154"), ("203", "204", "155"))
WINDOWS = (
    ("", ""),
    ("2024-03-01 00:00:00", ""),
    ("", "2024-09-30 23:59:59"),
    ("2024-02-01 00:00:00", "2024-08-31 23:59:59"),
)
NOWHERE = "http://127.0.0.1:9/hook"  # the emulator notes the webhook document, then fails to post


@dataclass(frozen=True)
class Req:
    prospect_id: str
    codes: tuple[str, ...]
    from_date: str = ""
    to_date: str = ""

    def body(self) -> str:
        return json.dumps(
            {
                "ProspectId": self.prospect_id,
                "ActivityEventList": list(self.codes),
                "FromDate": self.from_date,
                "ToDate": self.to_date,
                "StatusWebhookURL": NOWHERE,
            }
        )


def requests_for(emu: Any) -> list[Req]:
    leads = emu.dataset()
    found = [
        Req(lead, CODES[n % len(CODES)], *WINDOWS[(n // len(CODES)) % len(WINDOWS)])
        for n, lead in enumerate(leads[:-1])
    ]
    # both ends inclusive: a window of one second, on an activity's own CreatedOn
    edge = emu.remaining(leads[-1])[0]
    found.append(Req(leads[-1], (str(edge["EventCode"]),), edge["CreatedOn"], edge["CreatedOn"]))
    return found


def by_id(activities: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Activities by id, as Retrieve shows them (without the emulator's own Index)."""
    return {a["Id"]: {k: v for k, v in a.items() if k != "Index"} for a in activities}


async def carried_out(emu: Any, count: int) -> None:
    async with asyncio.timeout(30):
        while len(emu.webhook_posts) < count:
            await asyncio.sleep(0.02)


async def test_the_fetch_holds_exactly_what_the_delete_removes(emulator: Any) -> None:
    emu = await emulator(rate="off", dataset_leads=48, webhook_delay=0.01)
    requests = requests_for(emu)
    before = {r.prospect_id: json.loads(json.dumps(emu.remaining(r.prospect_id))) for r in requests}
    async with aiohttp.ClientSession() as session:
        client = LeadSquaredClient(session, emu.url, KEYS)
        fetched = [await activities_to_delete(client.retrieve, r) for r in requests]
        for request in requests:
            assert (await client.delete_activities(request.body())).verdict == Verdict.QUEUED
    await carried_out(emu, len(requests))
    for request, got in zip(requests, fetched, strict=True):
        left = {a["Id"] for a in emu.remaining(request.prospect_id)}
        gone = [a for a in before[request.prospect_id] if a["Id"] not in left]
        assert len(by_id(got)) == len(got)  # none twice
        assert by_id(got) == by_id(gone)  # same ids, every field equal, none extra or missing
    assert sum(map(len, fetched)) == sum(post["DeletedCount"] for post in emu.webhook_posts)
    assert 0 < sum(map(len, fetched)) < sum(map(len, before.values()))  # a test that can fail
    assert any(not got for got in fetched)  # and windows that hold nothing
    assert len(fetched[-1]) >= 1  # the one-second window holds its activity


async def test_the_predicted_calls_are_the_calls_made(emulator: Any) -> None:
    emu = await emulator(rate="off", dataset_leads=48)
    requests = requests_for(emu)
    held = {
        lead: Counter(str(a["EventCode"]) for a in emu.remaining(lead)) for lead in emu.dataset()
    }
    async with aiohttp.ClientSession() as session:
        client = LeadSquaredClient(session, emu.url, KEYS)
        for request in requests:
            await activities_to_delete(client.retrieve, request)
    assert emu.outcomes["retrieve"] == expected_total(requests, held.get)
    # the leads hold fewer than 100 of each type: one call per code, known or not
    assert (
        emu.outcomes["retrieve"] == expected_total(requests) == sum(len(r.codes) for r in requests)
    )


async def test_a_big_lead_is_paged_to_the_end_and_only_its_window_kept(emulator: Any) -> None:
    emu = await emulator(rate="off", dataset_leads=4, retrieve_record_count=250)
    lead = emu.dataset()[0]
    request = Req(lead, ("201", "150"), "2024-01-01 00:00:00", "2026-01-01 00:00:00")
    async with aiohttp.ClientSession() as session:
        client = LeadSquaredClient(session, emu.url, KEYS)
        got = await activities_to_delete(client.retrieve, request)
    assert emu.outcomes["retrieve"] == 6 == expected_calls(request, {"201": 250, "150": 250})
    # the 2001 activities past the lead's own are read, and left out: outside the window
    assert by_id(got) == by_id(
        [a for a in emu.remaining(lead) if str(a["EventCode"]) in request.codes]
    )


async def test_retrieve_shows_every_field_the_same_on_every_call(emulator: Any) -> None:
    emu = await emulator(rate="off", dataset_leads=40, webhook_delay=0.01)
    async with aiohttp.ClientSession() as session:
        client = LeadSquaredClient(session, emu.url, KEYS)
        each = [
            await activities_to_delete(client.retrieve, Req(lead, ("201", "202")))
            for lead in emu.dataset()
        ]
        again = [
            await activities_to_delete(client.retrieve, Req(lead, ("201", "202")))
            for lead in emu.dataset()
        ]
        _, listed = await client.list_activities("201", "", "9999", 1, 1000)
    assert again == each  # every call agrees, to the last field
    rows = [row for found in each for row in found]
    for row in rows:
        assert {"Id", "EventCode", "EventName", "CreatedOn", "ModifiedOn", "Notes"} <= set(row)
        assert {"CreatedBy", "CreatedByName", "Owner", "OwnerName"} <= set(row)
        assert "Index" not in row  # the emulator's own bookkeeping stays inside it
        keys = [pair["Key"] for pair in row["Data"]]
        assert keys[:3] == ["mx_Custom_1", "mx_Custom_2", "mx_Custom_3"]
        assert all(isinstance(pair["Value"], str) for pair in row["Data"])
    assert len({row["Notes"] for row in rows}) > 3  # varied, not one value
    assert {len(row["Data"]) for row in rows} == {3, 4}  # odd codes have one more field
    # the listing's rows carry the same fields, flat (so --discover need not Retrieve)
    same = {row["Id"]: row for row in rows}
    compared = [item for item in listed["List"] if item["ProspectActivityId"] in same]
    assert len(compared) == sum(1 for row in rows if row["EventCode"] == 201)
    for item in compared:
        full = same[item["ProspectActivityId"]]
        assert item["Notes"] == full["Notes"]
        assert item["OwnerName"] == full["OwnerName"]
        assert all(item[pair["Key"]] == pair["Value"] for pair in full["Data"])


# ---------------------------------------------------------------- pages that do not add up


def server(pages: list[tuple[int, list[dict[str, Any]]]]) -> Any:
    """A Retrieve that serves these (RecordCount, rows) in turn, and records each call."""
    calls: list[tuple[int, int]] = []

    async def retrieve(lead: str, code: str, offset: int, count: int) -> Any:
        calls.append((offset, count))
        total, rows = pages[min(len(calls), len(pages)) - 1]
        return Answer(Verdict.QUEUED, 200), {"RecordCount": total, "ProspectActivities": rows}

    retrieve.calls = calls  # type: ignore[attr-defined]
    return retrieve


def rows(start: int, count: int, **extra: Any) -> list[dict[str, Any]]:
    base = {"EventCode": 201, "CreatedOn": "2024-05-01 00:00:00"}
    return [{**base, "Id": f"a-{n}", **extra} for n in range(start, start + count)]


REQ = Req("lead", ("201",))


async def test_a_server_serving_fewer_rows_than_asked_is_paged_at_its_size() -> None:
    retrieve = server([(60, rows(0, 25)), (60, rows(25, 25)), (60, rows(50, 10))])
    assert len(await activities_to_delete(retrieve, REQ)) == 60
    assert retrieve.calls == [(0, 100), (25, 100), (50, 100)]  # Offset counts rows


@pytest.mark.parametrize(
    ("pages", "message", "calls"),
    [
        ([(250, rows(0, 100))], "repeats activities already read", 2),  # Offset ignored
        ([(10**9, rows(0, 100))], "holds 1,000,000,000 activities", 1),
        ([(5, rows(0, 3)), (5, [])], "holds 5 activities of code 201 but 3 were read", 2),
        ([(3, rows(0, 1)), (4, rows(1, 1))], "RecordCount changed from 3 to 4", 2),
        ([(3, rows(0, 2) + rows(1, 1))], "repeats", 1),
        ([(2, rows(0, 2, Id=""))], "rows without an Id", 1),
        ([(2, rows(0, 2, CreatedOn=None))], "rows without a CreatedOn", 1),
        ([(2, rows(0, 2, EventCode=150))], "holds code 150", 1),
        ([(900, rows(0, 100))] + [(900, rows(100 + n, 1)) for n in range(20)], "after 10", 10),
        ([(1, "nonsense")], "is not a list", 1),
        ([("many", rows(0, 1))], "no RecordCount", 1),
    ],
)
async def test_pages_that_do_not_add_up_stop_the_fetch(
    pages: list[tuple[int, list[dict[str, Any]]]], message: str, calls: int
) -> None:
    retrieve = server(pages)
    with pytest.raises(ActivitiesUnread, match=message):
        await activities_to_delete(retrieve, REQ)
    assert len(retrieve.calls) == calls


async def test_no_answer_stops_the_fetch_naming_the_lead() -> None:
    async def retrieve(lead: str, code: str, offset: int, count: int) -> Any:
        return Answer(Verdict.TRANSIENT, 500, "HTTP 500"), {}

    with pytest.raises(ActivitiesUnread, match="Retrieve of code 201 on lead lead: HTTP 500"):
        await activities_to_delete(retrieve, REQ)


def test_the_price_is_one_call_per_code_and_more_for_big_leads() -> None:
    request = Req("lead", ("201", "202", "203"))
    assert expected_calls(request) == 3
    assert expected_calls(request, {"201": 100, "202": 101, "203": 0}) == 1 + 2 + 1
    assert expected_calls(request, {"201": 250}, rows_per_call=25) == 10 + 1 + 1


# ---------------------------------------------------------------- the sequence the pool follows


class Crash(Exception):
    """The process dies between a request's backup and its send."""


async def purge_with_backup(
    client: LeadSquaredClient, requests: list[Req], path: Any, sent: set[int], crash_at: int
) -> None:
    """Per request: skip it if sent; fetch and write unless already saved; only then send."""
    writer = BackupWriter.open(path)
    for seq, request in enumerate(requests, 1):
        if seq in sent:
            continue
        if seq not in writer.saved_requests():
            writer.write(
                seq, request.prospect_id, await activities_to_delete(client.retrieve, request)
            )
        if seq == crash_at:
            writer.close()  # the process dies: the kernel closes the file (and drops its lock)
            raise Crash
        assert (await client.delete_activities(request.body())).verdict == Verdict.QUEUED
        sent.add(seq)
    writer.close()


async def test_a_run_stopped_between_backup_and_send_resumes_with_exactly_the_deleted(
    emulator: Any, tmp_path: Any
) -> None:
    emu = await emulator(rate="off", dataset_leads=24, webhook_delay=0.01)
    requests = requests_for(emu)
    before = {r.prospect_id: json.loads(json.dumps(emu.remaining(r.prospect_id))) for r in requests}
    path, sent = tmp_path / "backup.jsonl.gz", set[int]()
    async with aiohttp.ClientSession() as session:
        client = LeadSquaredClient(session, emu.url, KEYS)
        with pytest.raises(Crash):
            await purge_with_backup(client, requests, path, sent, crash_at=10)
        assert sent == set(range(1, 10))
        await purge_with_backup(client, requests, path, sent, crash_at=0)
    await carried_out(emu, len(requests))
    gone = [
        a
        for r in requests
        for a in before[r.prospect_id]
        if a["Id"] not in {left["Id"] for left in emu.remaining(r.prospect_id)}
    ]
    rows = list(read_backup(path))
    assert by_id([row["Activity"] for row in rows]) == by_id(gone)  # exactly what went
    assert len(rows) == len(gone) > 0  # none twice
    assert emu.outcomes["retrieve"] == expected_total(requests)  # request 10 fetched once
    assert {row["Request"] for row in rows} <= set(range(1, len(requests) + 1))
