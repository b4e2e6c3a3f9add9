"""Posting back, without the wire: a backup line → a post, an answer → each activity's outcome,
a lead read → gone, held, or found after a lost answer, and the bulk add's own window."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from typing import Any

import pytest

from bulk_delete.clock import ManualClock
from bulk_delete.config import RateLimit
from bulk_delete.records import Restored
from bulk_delete.send.answers import Answer, Verdict
from bulk_delete.send.limiter import SlidingWindowLimiter
from bulk_delete.send.posting import (
    BulkWindows,
    Reading,
    bulk_item,
    create_body,
    restorable,
    same,
    settle_reading,
    settled_by_bulk,
    settled_by_create,
)
from bulk_delete.store.restore_checkpoint import Item

LEAD = "3aee22bd-8419-422a-8242-c510df9af021"
RETRIEVED = {  # one activity as Retrieve shows it (and a backup saves it)
    "Id": "old-1",
    "EventCode": 201,
    "CreatedOn": "2024-05-01 10:00:00",
    "ModifiedOn": "2024-05-09 10:00:00",
    "Notes": "  two lines:\nfirst ",
    "Owner": "6f1c2a10-0000-4000-8000-00000000a001",
    "OwnerName": "Asha Rao",
    "Data": [{"Key": "mx_Custom_1", "Value": "=1+1"}, {"Key": "mx_Custom_2", "Value": 12.5}],
}


def line(activity: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A backup line, as store/backup_file.activity_row writes it."""
    return {
        "Request": 7,
        "ProspectId": LEAD.upper(),
        "ProspectActivityId": activity.get("Id") or activity.get("ProspectActivityId"),
        "ActivityEvent": str(activity.get("EventCode") or activity.get("ActivityEvent")),
        "CreatedOn": activity["CreatedOn"],
        "ModifiedOn": activity["ModifiedOn"],
        "Activity": activity,
    } | changes


def item(status: Restored, seq: int = 1, **changes: Any) -> Item:
    activity = restorable(line(RETRIEVED))
    assert activity is not None
    return Item(activity=dataclasses.replace(activity, seq=seq, **changes), status=status)


def posted_copy(new_id: str, **changes: Any) -> dict[str, Any]:
    """The activity as Retrieve shows it once posted back (the emulator's reading)."""
    return {
        "Id": new_id,
        "EventCode": 201,
        "CreatedOn": "2027-01-15 08:00:00",
        "ModifiedOn": "2027-01-15 08:00:00",
        "ActivityDateTime": "2024-05-01 10:00:00",
        "Notes": "  two lines:\nfirst ",
        "ActivityScore": 3,  # the server's own: not a field it was posted with
        "Data": [
            {"Key": "mx_Custom_1", "Value": "=1+1"},
            {"Key": "mx_Custom_2", "Value": "12.5"},
        ],
    } | changes


# ---------------------------------------------------------------- a backup line → a post


def test_a_retrieved_activity_becomes_a_faithful_post_never_by_email() -> None:
    activity = restorable(line(RETRIEVED))
    assert activity is not None
    assert activity.prospect_id == LEAD  # lower-case, as LeadSquared's ids compare
    assert create_body(activity) == {
        "RelatedProspectId": LEAD,
        "ActivityEvent": 201,
        "ActivityNote": "  two lines:\nfirst ",  # exactly, spaces kept
        "ActivityDateTime": "2024-05-01 10:00:00",
        "Fields": [
            {"SchemaName": "mx_Custom_1", "Value": "=1+1"},
            {"SchemaName": "mx_Custom_2", "Value": "12.5"},
        ],
    }
    assert "EmailAddress" not in bulk_item(activity)
    assert "ActivityOwnerEmail" not in bulk_item(activity)  # Retrieve names no email
    assert activity.owner == "Asha Rao"


def test_a_listing_row_with_its_fields_flat_becomes_the_same_post() -> None:
    row = {
        "ProspectActivityId": "old-1",
        "RelatedProspectId": LEAD,
        "ActivityEvent": "201",
        "CreatedOn": "2027-01-15 08:00:00",  # posted back once already: its date is below
        "ModifiedOn": "2027-01-15 08:00:00",
        "ActivityDateTime": "2024-05-01 10:00:00",
        "Notes": "  two lines:\nfirst ",
        "OwnerEmailAddress": "asha.rao@example.com",
        "mx_Custom_1": "=1+1",
        "mx_Custom_2": "12.5",
    }
    activity = restorable(line(row, ProspectActivityId="old-1"))
    assert activity is not None
    assert create_body(activity) == create_body(restorable(line(RETRIEVED)))  # type: ignore[arg-type]
    assert bulk_item(activity)["ActivityOwnerEmail"] == "asha.rao@example.com"


@pytest.mark.parametrize(
    "changes",
    [{"ProspectId": ""}, {"ProspectActivityId": ""}, {"ActivityEvent": "x"}, {"Activity": {}}],
)
def test_a_line_without_what_a_post_needs_is_left_out(changes: dict[str, Any]) -> None:
    broken = line(RETRIEVED) | changes
    if changes == {"Activity": {}}:
        broken["CreatedOn"] = ""
    assert restorable(broken) is None


def test_the_same_activity_is_told_by_code_date_note_and_every_field_posted() -> None:
    activity = restorable(line(RETRIEVED))
    assert activity is not None
    assert same(activity, posted_copy("new-1"))
    assert same(activity, posted_copy("new-1", Data=[*posted_copy("x")["Data"], {"Key": "k"}]))
    for changed in (
        {"EventCode": 202},
        {"ActivityDateTime": "2024-05-01 10:00:01"},
        {"Notes": "two lines:\nfirst"},
        {"Data": [{"Key": "mx_Custom_1", "Value": "=1+1"}]},
    ):
        assert not same(activity, posted_copy("new-1", **changed)), changed


# ---------------------------------------------------------------- an answer → each activity


def test_create_answers_settle_the_activity() -> None:
    one = item(Restored.POSTING)
    ok = Answer(Verdict.QUEUED, 200, "ok")
    assert settled_by_create(one, ok, {"Message": {"Id": "new-1"}}).status is Restored.POSTED
    assert settled_by_create(one, ok, {"Message": {}}).status is Restored.POSTING  # look first
    lost = Answer(Verdict.TRANSIENT, None, "ServerDisconnectedError")
    assert settled_by_create(one, lost, {}).status is Restored.POSTING
    proxy = Answer(Verdict.TRANSIENT, 502, "HTTP 502 with a non-JSON body")
    assert settled_by_create(one, proxy, {}).status is Restored.POSTING  # it may have acted
    gone = Answer(Verdict.FAILED, 500, "MXLeadNotFoundException: Lead x does not exist")
    assert settled_by_create(one, gone, {}).status is Restored.LEAD_MISSING
    field = Answer(Verdict.FAILED, 500, "MXInvalidActivityFieldException: no field mx_X")
    assert settled_by_create(one, field, {}).status is Restored.FAILED
    for never in (Verdict.RATE_LIMITED, Verdict.ALLOWANCE, Verdict.FATAL):
        assert settled_by_create(one, Answer(never, 429), {}).status is Restored.GONE


def test_a_bulk_answer_settles_each_activity_by_its_row() -> None:
    batch = [item(Restored.POSTING, seq) for seq in (1, 2, 3, 4)]
    rows = [
        {"RowNumber": 1, "ActivityCreated": True, "ProspectActivityId": "new-1"},
        {"RowNumber": 2, "ActivityCreated": False, "ExceptionMessage": "Lead y does not exist"},
        {"RowNumber": 3, "ActivityCreated": False, "ExceptionMessage": "no field mx_X"},
    ]  # no row for the fourth: it may have been created
    settled = settled_by_bulk(batch, Answer(Verdict.QUEUED, 200, "read"), {"Response": rows})
    assert [each.status for each in settled] == [
        Restored.POSTED,
        Restored.LEAD_MISSING,
        Restored.FAILED,
        Restored.POSTING,
    ]
    assert settled[0].new_id == "new-1"
    lost = settled_by_bulk(batch, Answer(Verdict.TRANSIENT, None, "reset"), {})
    assert {each.status for each in lost} == {Restored.POSTING}
    whole = settled_by_bulk(batch, Answer(Verdict.FAILED, 400, "more than 25"), {})
    assert {each.status for each in whole} == {Restored.FAILED}


# ---------------------------------------------------------------- a lead read → each activity


def test_a_reading_tells_gone_from_held_and_finds_a_lost_posts_copy() -> None:
    items = [
        item(Restored.UNCHECKED, 1, old_id="old-1"),
        item(Restored.PRESENT, 2, old_id="old-2"),
        item(Restored.POSTING, 3, old_id="old-3"),
        item(Restored.POSTING, 4, old_id="old-4"),  # its twin: one copy only on the lead
    ]
    rows = {"201": [{"Id": "old-2"}, posted_copy("copy-a"), {"Id": "other"}]}
    settled, before = settle_reading(items, Reading(LEAD, rows), set(), max_attempts=3)
    assert sorted((s.seq, s.status, s.new_id, s.found) for s in settled) == [
        (1, Restored.GONE, "", False),
        (2, Restored.PRESENT, "", False),
        (3, Restored.POSTED, "copy-a", True),
        (4, Restored.GONE, "", False),  # posted again: the only copy is the other's
    ]
    assert sorted(before) == [("201", "old-2"), ("201", "other")]  # never a copy of ours


def test_an_identical_activity_on_the_lead_already_is_not_posted_again() -> None:
    """Restored before (by another restore's checkpoint, say): taken for this one. A twin
    that is itself an original of the backup (locked, still present) is not."""
    items = [
        item(Restored.UNCHECKED, 1, old_id="old-1"),
        item(Restored.UNCHECKED, 2, old_id="old-2"),
        item(Restored.UNCHECKED, 3, old_id="old-3"),
    ]
    rows = {"201": [posted_copy("old-3"), posted_copy("restored-before")]}
    settled, before = settle_reading(items, Reading(LEAD, rows), set(), max_attempts=3)
    assert sorted((s.seq, s.status, s.new_id) for s in settled) == [
        (1, Restored.ALREADY, "restored-before"),
        (2, Restored.GONE, ""),  # the only other twin is an original: posted
        (3, Restored.PRESENT, ""),
    ]
    assert before == [("201", "old-3")]


def test_what_the_lead_held_before_any_post_and_anothers_copy_are_never_taken() -> None:
    posting = item(Restored.POSTING, 5)
    claimed = Item(activity=item(Restored.POSTED, 6).activity, status=Restored.POSTED, new_id="b")
    rows = {"201": [posted_copy("a"), posted_copy("b")]}
    settled, _ = settle_reading(
        [posting, claimed], Reading(LEAD, rows), {("201", "a")}, max_attempts=3
    )
    assert [(s.status, s.new_id) for s in settled] == [(Restored.GONE, "")]


def test_a_post_given_up_on_after_max_attempts_without_a_copy_fails_for_the_rerun() -> None:
    tired = Item(activity=item(Restored.POSTING).activity, status=Restored.POSTING, attempts=3)
    settled, _ = settle_reading([tired], Reading(LEAD, {"201": []}), set(), max_attempts=3)
    assert settled[0].status is Restored.FAILED
    assert settled[0].transient


# ---------------------------------------------------------------- the bulk add's windows


async def test_the_bulk_window_paces_its_calls_and_learns_its_own_limit() -> None:
    clock = ManualClock()
    account = SlidingWindowLimiter(RateLimit.parse("25/5s"), clock=clock)
    learned: list[RateLimit] = []
    windows = BulkWindows(
        account, SlidingWindowLimiter(RateLimit.parse("1/5s"), clock=clock), learned.append
    )
    starts = []

    async def post() -> None:
        starts.append(await windows.acquire())

    tasks = [asyncio.create_task(post()) for _ in range(3)]
    await clock.run_until_idle()
    await asyncio.gather(*tasks)
    assert [round(b - a, 2) for a, b in itertools.pairwise(starts)] == [5.1, 5.1]
    # A refusal naming the bulk limit is the bulk window's: the account's pace is untouched.
    assert not windows.refused(RateLimit.parse("1/5s"))
    assert account.account == RateLimit.parse("25/5s")
    assert not account.shares_account
    assert not windows.refused(RateLimit.parse("1/10s"))  # lower: learned, kept apart
    assert learned == [RateLimit(calls=1, period=10.0, label="learned")]
    assert windows.refusals == 2
    assert windows.refused(RateLimit.parse("10/5s"))  # the account's: learned as ever
    assert account.account.calls == 10


async def test_a_bulk_call_waited_for_by_the_account_still_keeps_its_own_window() -> None:
    """The account's slot is taken before the bulk window's, so each window counts the call
    when it goes: a call held up by the account's pace (a read spent its slot) must not let the
    next bulk call start sooner than one bulk window after it went."""
    clock = ManualClock(start=0.0)
    account = SlidingWindowLimiter(RateLimit.parse("5/5s"), clock=clock)
    windows = BulkWindows(account, SlidingWindowLimiter(RateLimit.parse("1/5s"), clock=clock))
    starts: list[float] = []

    async def bulk_calls() -> None:
        for _ in range(3):
            starts.append(await windows.acquire())

    async def a_read_meanwhile() -> None:
        await clock.sleep(4.9)
        await account.acquire()

    tasks = [asyncio.create_task(bulk_calls()), asyncio.create_task(a_read_meanwhile())]
    await clock.run_until_idle()
    await asyncio.gather(*tasks)
    assert starts[1] > 5.1  # held up by the read's slot
    assert min(b - a for a, b in itertools.pairwise(starts)) >= 5.0
