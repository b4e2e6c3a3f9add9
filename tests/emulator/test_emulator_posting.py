"""The emulator learns to post activities back before the restore does: Create, the bulk add
on its own window, per-item failures, posted activities as real as any (Retrieve, the
listing, a delete carried out later), answers lost after the activities were created, and
the count of activities posted twice that a restore's "never twice" is measured with."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import aiohttp
import pytest

from bulk_delete.api import BULK_ADD_PATH, CREATE_PATH, LIST_PATH, RETRIEVE_PATH, SETTING_PATH
from bulk_delete.clock import ManualClock
from bulk_delete.config import RateLimit
from bulk_delete.emulator.server import (
    CUSTOM_ACTIVITY_NAMES,
    DEMO_ACCESS_KEY,
    DEMO_SECRET_KEY,
)

from ..emulator_fixtures import G1, call

G2 = "c988e982-d01d-11e7-b4ec-069729b2474c"
WALL = 1_800_000_000.0  # the emulator's "now": 2027-01-15 08:00:00 UTC
NOW = dt.datetime.fromtimestamp(WALL, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
DEMO_USER = "7d4c9ab0-0000-4000-8000-000000000001"
ASHA = "6f1c2a10-0000-4000-8000-00000000a001"
WINDOW = {"FromDate": "2018-04-30 18:30:00", "ToDate": "2018-06-20 18:29:59"}
NO_BULK_LIMIT = RateLimit.parse("off")


def activity(**changes: Any) -> dict[str, Any]:
    """One activity to post, as the reference's Create example has it (a date years ago)."""
    return {
        "RelatedProspectId": G1,
        "ActivityEvent": 201,
        "ActivityNote": "Asked for the brochure",
        "ActivityDateTime": "2018-05-01 10:00:00",
        "Fields": [
            {"SchemaName": "mx_Custom_1", "Value": '=HYPERLINK("x")'},
            {"SchemaName": "mx_Custom_2", "Value": 12.5},
        ],
    } | changes


async def create(url: str, body: Any) -> tuple[int, Any]:
    return await call(url, path=CREATE_PATH, body=body)


async def bulk(url: str, items: Any) -> tuple[int, Any]:
    return await call(url, path=BULK_ADD_PATH, body=items)


async def retrieve(url: str, lead: str = G1) -> dict[str, dict[str, Any]]:
    """The lead's activities by Id."""
    status, answer = await call(
        url,
        path=RETRIEVE_PATH,
        params={"leadId": lead},
        body={"Paging": {"Offset": "0", "RowCount": "1000"}},
    )
    assert status == 200
    return {row["Id"]: row for row in answer["ProspectActivities"]}


async def listing(url: str, code: int, low: str, high: str) -> dict[str, dict[str, Any]]:
    """RetrieveByActivityEvent's rows by ProspectActivityId."""
    body = {
        "Parameter": {"ActivityEvent": code, "FromDate": low, "ToDate": high},
        "Paging": {"PageIndex": 1, "PageSize": 500},
        "Sorting": {"ColumnName": "CreatedOn", "Direction": 0},
    }
    status, answer = await call(url, path=LIST_PATH, body=body)
    assert status == 200
    assert answer["RecordCount"] == len(answer["List"])
    return {row["ProspectActivityId"]: row for row in answer["List"]}


async def test_create_answers_the_new_id_and_the_activity_is_real(emulator: Any) -> None:
    emu = await emulator(rate="off", wall=lambda: WALL)
    before = await retrieve(emu.url)
    status, answer = await create(emu.url, activity(RelatedProspectId=G1.upper()))
    assert status == 200
    assert answer == {"Status": "Success", "Message": {"Id": answer["Message"]["Id"]}}
    new = answer["Message"]["Id"]
    after = await retrieve(emu.url)
    assert set(after) == set(before) | {new}  # a new id, beside what the lead held
    assert after[new] == {
        "Id": new,
        "EventCode": 201,
        "EventName": CUSTOM_ACTIVITY_NAMES[201 % len(CUSTOM_ACTIVITY_NAMES)],
        "CreatedOn": NOW,  # created now, by the keys' user: that cannot come back
        "ModifiedOn": NOW,
        "ActivityDateTime": "2018-05-01 10:00:00",  # the date it was posted with
        "ActivityScore": 201 % 25,
        "Notes": "Asked for the brochure",
        "CreatedBy": DEMO_USER,
        "CreatedByName": "Demo",
        "ModifiedBy": DEMO_USER,
        "ModifiedByName": "Demo",
        "Owner": DEMO_USER,  # Create has no owner field
        "OwnerName": "Demo",
        "Data": [
            {"Key": "mx_Custom_1", "Value": '=HYPERLINK("x")'},
            {"Key": "mx_Custom_2", "Value": "12.5"},
        ],
    }
    # The listing filters on ModifiedOn: it holds the activity from the moment it was posted.
    row = (await listing(emu.url, 201, "2018-01-01 00:00:00", NOW))[new]
    assert row["RelatedProspectId"] == G1
    assert (row["ActivityEvent"], row["CreatedOn"], row["ModifiedOn"]) == ("201", NOW, NOW)
    assert row["ActivityDateTime"] == "2018-05-01 10:00:00"
    assert (row["Notes"], row["Owner"]) == ("Asked for the brochure", DEMO_USER)
    assert (row["mx_Custom_1"], row["mx_Custom_2"]) == ('=HYPERLINK("x")', "12.5")
    assert new not in await listing(emu.url, 201, "2018-01-01 00:00:00", "2026-12-31 23:59:59")
    stats = emu.stats()
    assert (stats["activities_posted"], stats["posted_twice"]) == (1, 0)
    assert stats["outcomes"]["posted"] == 1


@pytest.mark.parametrize(
    ("changes", "config", "status", "exception", "message"),
    [
        ({"ActivityEvent": 12}, {}, 500, "MXInvalidActivityEventException", "system activity"),
        (
            {"ActivityEvent": 99},
            {"system_codes": frozenset({"99"})},
            500,
            "MXInvalidActivityEventException",
            "system activity",
        ),
        ({"ActivityEvent": 999}, {}, 500, "MXInvalidActivityEventException", "No custom"),
        (
            {},
            {"leads": frozenset({G2})},
            500,
            "MXLeadNotFoundException",
            f"Lead {G1} does not exist",
        ),
        ({}, {"dataset_leads": 3}, 500, "MXLeadNotFoundException", "does not exist"),
        (
            {"Fields": [{"SchemaName": "mx_Custom_9", "Value": "1"}]},
            {},
            500,
            "MXInvalidActivityFieldException",
            "no field mx_Custom_9",
        ),
        (
            {"ActivityDateTime": "2018-05-01"},
            {},
            400,
            "MXInvalidRequestBodyException",
            "YYYY-MM-DD HH:MM:SS",
        ),
        (
            {"ActivityDateTime": "2018-02-30 10:00:00"},
            {},
            400,
            "MXInvalidRequestBodyException",
            "not a valid date",
        ),
        (
            {"RelatedProspectId": None, "EmailAddress": "someone@example.com"},
            {},
            400,
            "MXInvalidRequestBodyException",
            "does not post by email",
        ),
        ({"RelatedProspectId": "lead-1"}, {}, 400, "MXInvalidRequestBodyException", "Guid"),
        ({"ActivityEvent": "x"}, {}, 400, "MXInvalidRequestBodyException", "activity code"),
        ({"Fields": {"mx_Custom_1": "a"}}, {}, 400, "MXInvalidRequestBodyException", "Fields"),
        (
            {"Fields": [{"SchemaName": "mx_Custom_1", "Value": {"a": 1}}]},
            {},
            400,
            "MXInvalidRequestBodyException",
            "Fields",
        ),
    ],
)
async def test_create_refuses_in_leadsquareds_shape_and_creates_nothing(
    emulator: Any,
    changes: dict[str, Any],
    config: dict[str, Any],
    status: int,
    exception: str,
    message: str,
) -> None:
    emu = await emulator(rate="off", **config)
    before = emu.remaining(G1)
    got, answer = await create(emu.url, activity(**changes))
    assert got == status
    assert answer["Status"] == "Error"
    assert answer["ExceptionType"] == exception
    assert message in answer["ExceptionMessage"]
    assert emu.remaining(G1) == before  # nothing created, and no lead either
    assert emu.stats()["activities_posted"] == 0


async def test_a_lead_of_the_data_set_takes_a_post(emulator: Any) -> None:
    emu = await emulator(rate="off", dataset_leads=3)
    lead = emu.dataset()[1]
    status, answer = await create(emu.url, activity(RelatedProspectId=lead))
    assert status == 200
    assert answer["Message"]["Id"] in await retrieve(emu.url, lead)


async def test_the_bulk_add_answers_a_row_per_activity(emulator: Any) -> None:
    emu = await emulator(rate="off", wall=lambda: WALL, leads=frozenset({G1, G2}))
    unknown_lead = "00000000-0000-4000-8000-000000000000"
    items = [
        activity(ActivityOwnerEmail="Asha.Rao@example.com"),
        activity(RelatedProspectId=unknown_lead),
        activity(ActivityEvent=12),
        activity(Fields=[{"SchemaName": "mx_Custom_5", "Value": "2"}]),  # 201 has mx_Custom_4
        activity(ActivityOwnerEmail="nobody@example.com"),
        "not an activity",
        activity(ActivityDateTime="01/05/2018 10:00"),
        {"RelatedProspectId": G2, "ActivityEvent": "202"},  # no note, date, owner or fields
    ]
    status, answer = await bulk(emu.url, items)
    assert status == 200
    rows = answer["Response"]
    assert [row["RowNumber"] for row in rows] == list(range(1, 9))
    assert [row["ActivityCreated"] for row in rows] == [True] + [False] * 6 + [True]
    for row in rows:
        assert set(row) == {
            "RowNumber",
            "ActivityCreated",
            "ProspectActivityId",
            "ExceptionMessage",
        }
        assert (row["ProspectActivityId"] is None) == (not row["ActivityCreated"])
        assert (row["ExceptionMessage"] is None) == row["ActivityCreated"]
    reasons = [row["ExceptionMessage"] for row in rows[1:7]]
    for reason, fragment in zip(
        reasons,
        [
            f"Lead {unknown_lead} does not exist",
            "system activity",
            "no field mx_Custom_5",
            "'nobody@example.com' is not a user",
            "must be a JSON object",
            "YYYY-MM-DD HH:MM:SS",
        ],
        strict=True,
    ):
        assert fragment in reason
    owned = (await retrieve(emu.url, G1))[rows[0]["ProspectActivityId"]]
    assert (owned["Owner"], owned["OwnerName"]) == (ASHA, "Asha Rao")
    assert (owned["CreatedBy"], owned["ActivityDateTime"]) == (DEMO_USER, "2018-05-01 10:00:00")
    bare = (await retrieve(emu.url, G2))[rows[7]["ProspectActivityId"]]
    assert (bare["Owner"], bare["Notes"], bare["Data"]) == (DEMO_USER, "", [])
    assert (bare["EventCode"], bare["ActivityDateTime"]) == (202, NOW)  # no date given: now
    stats = emu.stats()
    assert (stats["activities_posted"], stats["post_items_refused"]) == (2, 6)
    assert stats["outcomes"]["bulk_posted"] == 1


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([activity()] * 26, "this one holds 26"),
        ([], "this one holds 0"),
        (activity(), "must be a JSON list"),
    ],
)
async def test_the_bulk_add_refuses_a_body_not_per_spec_whole(
    emulator: Any, items: Any, message: str
) -> None:
    emu = await emulator(rate="off")
    status, answer = await bulk(emu.url, items)
    assert status == 400
    assert answer["ExceptionType"] == "MXInvalidRequestBodyException"
    assert message in answer["ExceptionMessage"]
    assert emu.stats()["activities_posted"] == 0


async def test_twenty_five_activities_fit_one_bulk_call(emulator: Any) -> None:
    emu = await emulator(rate="off")
    items = [activity(ActivityNote=f"note {n}") for n in range(25)]
    status, answer = await bulk(emu.url, items)
    assert status == 200
    assert all(row["ActivityCreated"] for row in answer["Response"])
    assert emu.stats()["activities_posted"] == 25


async def test_the_bulk_window_refuses_in_leadsquareds_words(emulator: Any) -> None:
    clock = ManualClock()
    emu = await emulator(rate="25/5s", clock=clock)
    assert (await bulk(emu.url, [activity()]))[0] == 200
    status, answer = await bulk(emu.url, [activity()])
    assert status == 429
    assert answer["ExceptionType"] == "MXAPIRateLimitExceededException"
    assert answer["ExceptionMessage"] == "API calls exceeded the limit of 1 in 5 second(s)"
    assert (await create(emu.url, activity()))[0] == 200  # Create is not a bulk call
    clock.jump(5.0)
    assert (await bulk(emu.url, [activity()]))[0] == 200
    stats = emu.stats()
    assert stats["bulk_window"] == {
        "calls": 3,
        "refused": 1,
        "max_calls_in_window": 2,
        "rate": {"calls": 1, "period": 5.0},
    }
    assert stats["outcomes"]["bulk_rate_limited"] == 1
    assert stats["activities_posted"] == 3  # the refused call created nothing
    other = await emulator(
        rate="25/5s", clock=clock, bulk_rate=RateLimit.parse("2/10s"), limit_status=403
    )
    assert [(await bulk(other.url, [activity()]))[0] for _ in range(3)] == [200, 200, 403]
    _, answer = await bulk(other.url, [activity()])
    assert answer["ExceptionMessage"] == "API calls exceeded the limit of 2 in 10 second(s)"


async def test_bulk_calls_count_in_the_accounts_window_too(emulator: Any) -> None:
    """Every call spends the account's window; a bulk call the bulk window refuses has spent
    its place there already."""
    clock = ManualClock()
    emu = await emulator(rate="3/5s", clock=clock)
    assert (await bulk(emu.url, [activity()]))[0] == 200
    assert (await bulk(emu.url, [activity()]))[0] == 429  # the bulk window
    assert (await create(emu.url, activity()))[0] == 200
    status, answer = await create(emu.url, activity())  # the account's window: 3 calls in it
    assert status == 429
    assert answer["ExceptionMessage"] == "API calls exceeded the limit of 3 in 5 second(s)"
    assert emu.stats()["callers"]["client"] == {"calls": 4, "refused": 1}


@pytest.mark.parametrize("created_on_posted", [False, True])
async def test_a_queued_delete_removes_what_was_posted_in_its_window(
    emulator: Any, created_on_posted: bool
) -> None:
    """A delete still queued when a restore posts would remove what falls in its window, as
    LeadSquared would: the window selects on the date posted, whichever field shows it."""
    emu = await emulator(
        rate="off",
        bulk_rate=NO_BULK_LIMIT,
        webhook_delay=1.0,
        wall=lambda: WALL,
        created_on_posted=created_on_posted,
    )
    delete = {"ProspectId": G1, "ActivityEventList": ["201"], **WINDOW}
    assert (await call(emu.url, body=delete))[0] == 200
    ids = {}
    for name, body in {
        "inside": activity(),
        "outside": activity(ActivityDateTime="2019-01-01 00:00:00"),
        "other code": activity(ActivityEvent=203),
        "edge": activity(ActivityDateTime=WINDOW["ToDate"]),
    }.items():
        ids[name] = (await create(emu.url, body))[1]["Message"]["Id"]
    _, answer = await bulk(emu.url, [activity(ActivityNote="by bulk")])
    ids["bulk inside"] = answer["Response"][0]["ProspectActivityId"]
    assert set(ids.values()) <= set(await retrieve(emu.url))  # all there while it is queued
    gone = {ids["inside"], ids["edge"], ids["bulk inside"]}
    async with asyncio.timeout(10):
        while gone & set(await retrieve(emu.url)):
            await asyncio.sleep(0.05)
    left = await retrieve(emu.url)
    assert {ids["outside"], ids["other code"]} <= set(left)
    listed = await listing(emu.url, 201, "2018-01-01 00:00:00", NOW)
    assert set(listed) == {ids["outside"]}
    # Posted after the delete was carried out, the same activity stays.
    again = (await create(emu.url, activity()))[1]["Message"]["Id"]
    await asyncio.sleep(0.05)
    assert again in await retrieve(emu.url)
    shown = left[ids["outside"]]
    if created_on_posted:  # the other reading: the date posted is the CreatedOn
        assert (shown["CreatedOn"], shown["ModifiedOn"]) == ("2019-01-01 00:00:00", NOW)
        assert "ActivityDateTime" not in shown
    else:
        assert (shown["CreatedOn"], shown["ActivityDateTime"]) == (NOW, "2019-01-01 00:00:00")


async def test_a_lost_answer_leaves_the_activity_created(emulator: Any) -> None:
    emu = await emulator(rate="off", bulk_rate=NO_BULK_LIMIT, post_lost_rate=1.0)
    before = await retrieve(emu.url)
    with pytest.raises(aiohttp.ClientError):
        await create(emu.url, activity())
    with pytest.raises(aiohttp.ClientError):
        await bulk(emu.url, [activity(ActivityNote="one"), activity(ActivityNote="two")])
    created = [row for key, row in (await retrieve(emu.url)).items() if key not in before]
    notes = sorted(row["Notes"] for row in created)
    assert notes == ["Asked for the brochure", "one", "two"]
    with pytest.raises(aiohttp.ClientError):
        await create(emu.url, activity())  # the retry a client without a check would make
    stats = emu.stats()
    assert stats["outcomes"]["post_lost"] == 3
    assert (stats["activities_posted"], stats["posted_twice"]) == (4, 1)


async def test_a_connection_dropped_before_acting_creates_nothing(emulator: Any) -> None:
    emu = await emulator(rate="off", drop_rate=1.0)
    with pytest.raises(aiohttp.ClientError):
        await create(emu.url, activity())
    assert emu.stats()["activities_posted"] == 0


async def test_lost_answers_are_seeded(emulator: Any) -> None:
    async def pattern(seed: int) -> list[bool]:
        emu = await emulator(rate="off", post_lost_rate=0.5, seed=seed)
        lost = []
        for _ in range(12):
            try:
                await create(emu.url, activity())
            except aiohttp.ClientError:
                lost.append(True)
            else:
                lost.append(False)
        assert emu.stats()["activities_posted"] == 12  # lost or not, each was created
        return lost

    first = await pattern(7)
    assert first == await pattern(7)
    assert set(first) == {True, False}


async def test_posted_twice_counts_the_same_activity_created_again(emulator: Any) -> None:
    emu = await emulator(rate="off", bulk_rate=NO_BULK_LIMIT)
    one = activity()
    reordered = activity(Fields=list(reversed(one["Fields"])))
    for body in (
        one,
        reordered,
        activity(ActivityNote="another note"),
        activity(RelatedProspectId=G2),
    ):
        assert (await create(emu.url, body))[0] == 200
    assert emu.stats()["posted_twice"] == 1  # the same fields in another order are the same
    _, answer = await bulk(emu.url, [one, activity(ActivityDateTime="2018-05-01 10:00:01")])
    assert all(row["ActivityCreated"] for row in answer["Response"])
    assert (await create(emu.url, activity(ActivityEvent=12)))[0] == 500  # not counted
    stats = emu.stats()
    assert (stats["activities_posted"], stats["posted_twice"]) == (6, 2)


async def test_the_activity_type_names_the_fields_a_post_may_carry(emulator: Any) -> None:
    emu = await emulator(rate="off")
    headers = {"x-LSQ-AccessKey": DEMO_ACCESS_KEY, "x-LSQ-SecretKey": DEMO_SECRET_KEY}
    async with aiohttp.ClientSession() as session:
        for code, expected in ((201, 4), (202, 3)):
            async with session.get(
                emu.url + SETTING_PATH, params={"code": str(code)}, headers=headers
            ) as response:
                fields = [f["SchemaName"] for f in (await response.json())["Fields"]]
            assert len(fields) == expected
            body = activity(
                ActivityEvent=code, Fields=[{"SchemaName": f, "Value": "1"} for f in fields]
            )
            assert (await create(emu.url, body))[0] == 200


def test_the_posting_knobs_are_emulator_options() -> None:
    from bulk_delete.cli.main import cli
    from bulk_delete.emulator.knobs import config_of

    command = cli.commands["emulator"]
    args = ["--bulk-rate", "2/10s", "--post-lost-rate", "0.05", "--created-on-posted"]
    with command.make_context("emulator", args) as context:
        config = config_of(context.params)
    assert config.bulk_rate == RateLimit.parse("2/10s")
    assert (config.post_lost_rate, config.created_on_posted) == (0.05, True)
    with command.make_context("emulator", []) as context:
        default = config_of(context.params)
    assert default.bulk_rate == RateLimit(calls=1, period=5.0)
    assert (default.post_lost_rate, default.created_on_posted) == (0.0, False)
