"""Posting activities back, on the wire: what a backup's activity becomes in a post, what an
answer says of each activity it carried, how one found on its lead is told for the one a lost
answer may have created, and the bulk add's own window within the account's.

Pure functions of what came back, except ``BulkWindows`` (a limiter, on the injected clock). A
post names its lead by ``RelatedProspectId`` only, never by email (that would create leads).
The steps that call and record are send/post_step.py.

Why: docs/design/restore.md.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..api import activity_date
from ..config import RateLimit
from ..records import Restorable, Restored
from ..store.restore_checkpoint import Item, Settled
from .answers import Answer, Verdict
from .limiter import SlidingWindowLimiter

_EMAIL_KEYS = ("ActivityOwnerEmail", "OwnerEmailAddress", "OwnerEmail")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_LEAD_GONE = re.compile(
    r"LeadNotFound|\blead\b[^.]*\b(?:does not exist|not found|no longer exists)", re.IGNORECASE
)
LOOK_FIRST = "looked for on the lead before it is posted again"
ALREADY = "an identical activity is on the lead already (restored before?): not posted again"


# ---------------------------------------------------------------- a backup row → a post


def restorable(row: dict[str, Any]) -> Restorable | None:
    """A backup line (store/backup_file.py ``activity_row``) as the activity to post back;
    None when it lacks what a post needs (a lead, an id, a numeric code, a date)."""
    activity = row.get("Activity")
    activity = activity if isinstance(activity, dict) else {}
    lead = _text(row.get("ProspectId")).lower()
    code = _text(row.get("ActivityEvent") or activity.get("EventCode"))
    date = activity_date(activity) or _text(row.get("CreatedOn"))
    old_id = _text(row.get("ProspectActivityId"))
    if not (lead and old_id and code.isdigit() and date):
        return None
    return Restorable(
        old_id=old_id,
        request=int(row.get("Request") or 0),
        prospect_id=lead,
        code=code,
        date=date,
        note=note_of(activity),
        fields=fields_of(activity),
        owner_email=_owner_email(activity),
        owner=_text(activity.get("OwnerName") or activity.get("Owner")),
    )


def note_of(activity: dict[str, Any]) -> str:
    """The note, as Retrieve (``Notes``) or a post (``ActivityNote``) names it, exactly."""
    return _value(activity.get("ActivityNote") or activity.get("Notes"))


def fields_of(activity: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """Every custom field: the ``Data`` pairs (Retrieve), then ``mx_`` fields held flat
    beside them (a listing row), each once, values as text."""
    pairs: dict[str, str] = {}
    data = activity.get("Data")
    for pair in data if isinstance(data, list) else ():
        if isinstance(pair, dict) and _text(pair.get("Key")):
            pairs.setdefault(_text(pair.get("Key")), _value(pair.get("Value")))
    for key, value in activity.items():
        if key.startswith("mx_"):
            pairs.setdefault(key, _value(value))
    return tuple(pairs.items())


def _owner_email(activity: dict[str, Any]) -> str:
    """The owner's email, when the backup names one (Retrieve gives only the owner's id and
    name): only then can the bulk add's ActivityOwnerEmail give the activity back its owner."""
    data = activity.get("Data")
    pairs = data if isinstance(data, list) else []
    flat = {_text(p.get("Key")): p.get("Value") for p in pairs if isinstance(p, dict)}
    for key in _EMAIL_KEYS:
        value = _text(activity.get(key) or flat.get(key))
        if _EMAIL.match(value):
            return value
    return ""


def create_body(activity: Restorable) -> dict[str, Any]:
    """Create's body: the lead by its ProspectId (never by email), code, note, date, fields."""
    return {
        "RelatedProspectId": activity.prospect_id,
        "ActivityEvent": int(activity.code),
        "ActivityNote": activity.note,
        "ActivityDateTime": activity.date,
        "Fields": [{"SchemaName": name, "Value": value} for name, value in activity.fields],
    }


def bulk_item(activity: Restorable) -> dict[str, Any]:
    """One activity of a bulk add: Create's body, and the owner when the backup names one."""
    body = create_body(activity)
    if activity.owner_email:
        body["ActivityOwnerEmail"] = activity.owner_email
    return body


# ---------------------------------------------------------------- an answer → each activity


def settled_by_create(item: Item, answer: Answer, body: dict[str, Any]) -> Settled:
    """What a Create answer says of the one activity it carried."""
    if answer.verdict is Verdict.QUEUED:
        message = body.get("Message")
        new_id = _text(message.get("Id") if isinstance(message, dict) else None)
        if new_id:
            return Settled(item.seq, Restored.POSTED, new_id=new_id, http_status=200)
        return _unknown(item, answer, "Success without the new id")
    return _not_created(item, answer) or _unknown(item, answer)


def settled_by_bulk(items: Sequence[Item], answer: Answer, body: dict[str, Any]) -> list[Settled]:
    """What a bulk add's answer says of each activity: its row (RowNumber from 1, in the order
    sent); an activity without a row, or an answer without rows, may have been created."""
    rows = body.get("Response") if answer.http_status == 200 else None
    if not isinstance(rows, list):
        return [_not_created(item, answer) or _unknown(item, answer) for item in items]
    by_number = {row.get("RowNumber"): row for row in rows if isinstance(row, dict)}
    return [_by_row(item, by_number.get(number)) for number, item in enumerate(items, 1)]


def _by_row(item: Item, row: dict[str, Any] | None) -> Settled:
    if row is None:
        return Settled(item.seq, Restored.POSTING, error=f"no row in the answer; {LOOK_FIRST}")
    new_id = _text(row.get("ProspectActivityId"))
    if row.get("ActivityCreated") is True and new_id:
        return Settled(item.seq, Restored.POSTED, new_id=new_id, http_status=200)
    if row.get("ActivityCreated") is True:
        return Settled(item.seq, Restored.POSTING, error=f"created, id not given; {LOOK_FIRST}")
    return _refused(item, _text(row.get("ExceptionMessage")) or "not created", 200)


def _not_created(item: Item, answer: Answer) -> Settled | None:
    """An answer after which nothing was created: refused (400, MX), or never acted on (a
    refusal, the allowance, a fatal answer); None when the post may have acted."""
    if answer.verdict is Verdict.FAILED:
        return _refused(item, answer.message, answer.http_status)
    if answer.verdict in (Verdict.RATE_LIMITED, Verdict.ALLOWANCE, Verdict.FATAL):
        return Settled(item.seq, Restored.GONE, http_status=answer.http_status)
    return None


def _refused(item: Item, message: str, status: int | None) -> Settled:
    if _LEAD_GONE.search(message):
        return Settled(item.seq, Restored.LEAD_MISSING, http_status=status, error=message)
    return Settled(item.seq, Restored.FAILED, http_status=status, error=message)


def _unknown(item: Item, answer: Answer, why: str = "") -> Settled:
    said = why or answer.message or "no answer"
    error = f"no answer ({said}): the post may have been made; {LOOK_FIRST}"
    return Settled(item.seq, Restored.POSTING, http_status=answer.http_status, error=error)


# ---------------------------------------------------------------- a lead read → each activity


@dataclass(frozen=True)
class Reading:
    """A lead's activities of the codes its items hold, read whole, as Retrieve gave them."""

    lead: str
    rows: dict[str, list[dict[str, Any]]]  # code → activities


def settle_reading(
    items: Iterable[Item],
    reading: Reading,
    seen: set[tuple[str, str]],
    *,
    max_attempts: int,
) -> tuple[list[Settled], list[tuple[str, str]]]:
    """What one reading of a lead decides. Each activity whose post got no answer: found on
    the lead (posted: the copy's id kept) or not (to post again, or given up on after
    ``max_attempts`` posts). Then each unchecked or held one: still present (held), already
    there (an identical activity, not another's copy nor another original: restored before,
    by another restore's checkpoint say; never posted twice), or gone (to post). Returns the
    decisions and the (code, id) pairs the lead held, to remember as not ours."""
    items = list(items)
    present = {_text(row.get("Id")) for rows in reading.rows.values() for row in rows}
    claimed = {item.new_id for item in items if item.status is Restored.POSTED and item.new_id}
    originals = {item.activity.old_id for item in items}
    taken: set[str] = set()
    settled: list[Settled] = []
    for item in items:
        if item.status is Restored.POSTING:
            copy = _copy_of(item, reading, seen, claimed | taken)
            taken |= {copy} - {""}
            settled.append(_looked(item, copy, max_attempts))
    for item in items:
        if item.status not in (Restored.UNCHECKED, Restored.PRESENT):
            continue
        if item.activity.old_id in present:
            settled.append(Settled(item.seq, Restored.PRESENT))
            continue
        copy = _copy_of(item, reading, set(), claimed | taken | originals)
        taken |= {copy} - {""}
        settled.append(
            Settled(item.seq, Restored.ALREADY, new_id=copy, error=ALREADY)
            if copy
            else Settled(item.seq, Restored.GONE)
        )
    before = [
        (code, _text(row.get("Id")))
        for code, rows in reading.rows.items()
        for row in rows
        if _text(row.get("Id")) not in claimed | taken
    ]
    return settled, before


def _copy_of(item: Item, reading: Reading, seen: set[tuple[str, str]], mine: set[str]) -> str:
    """The id of an activity on the lead that the post may have created: not there before,
    not another's copy, and the same code, date, note and fields ("" when there is none)."""
    code = item.activity.code
    for row in reading.rows.get(code, ()):
        found = _text(row.get("Id"))
        if (code, found) not in seen and found not in mine and same(item.activity, row):
            return found
    return ""


def _looked(item: Item, copy: str, max_attempts: int) -> Settled:
    if copy:
        return Settled(item.seq, Restored.POSTED, new_id=copy, found=True)
    if item.attempts >= max_attempts:
        error = (
            f"no answer to {item.attempts} post(s), and none of them is on the lead: not "
            "restored; a rerun tries again"
        )
        return Settled(item.seq, Restored.FAILED, transient=True, error=error)
    return Settled(item.seq, Restored.GONE)


def same(activity: Restorable, row: dict[str, Any]) -> bool:
    """Whether ``row`` (Retrieve's) is ``activity`` posted: code, date, note and every field
    it was posted with (a field the server adds by itself does not make it another)."""
    held = dict(fields_of(row))
    return (
        _text(row.get("EventCode") or row.get("ActivityEvent")) == activity.code
        and activity_date(row) == activity.date
        and note_of(row) == activity.note
        and all(held.get(name) == value for name, value in activity.fields)
    )


# ---------------------------------------------------------------- the bulk add's windows


class BulkWindows:
    """The bulk add's limiter: its own window ("the rate limit for all Bulk APIs is 1 call in
    5 seconds", learned lower from its refusals like any other) within the account's, which
    every bulk call counts in too. A refusal of a bulk call naming a limit no faster than the
    bulk window's (1 in 5 s, 1 in 10 s) is that window's; one naming a faster limit ("10 in 5
    s": a tenant's account limit) or none is the account's, handled as for every call."""

    def __init__(
        self,
        account: SlidingWindowLimiter,
        bulk: SlidingWindowLimiter,
        on_learned: Callable[[RateLimit], None] = lambda _: None,
    ) -> None:
        self.account = account
        self.bulk = bulk
        self.on_learned = on_learned
        self.refusals = 0  # by the bulk window
        self._turn = asyncio.Lock()
        self._bulk_start: dict[float, float] = {}  # the account's start → the bulk window's

    @property
    def effective(self) -> RateLimit:
        return self.account.effective

    async def acquire(self) -> float:
        """One caller at a time: wait until the bulk window has room (the long wait), take the
        account's slot, then the bulk window's, so each window counts the call's start when
        it goes. (Taken the other way round, a wait for the account's slot after the bulk's
        would start the call later than its window counted it, and the next one too early.)"""
        async with self._turn:
            while (wait := self.bulk.ready_in()) > 0:
                await self.bulk.clock.sleep(wait)
            started = await self.account.acquire()
            self._bulk_start[started] = await self.bulk.acquire()  # at once: nobody took it
            return started

    def on_the_wire(self, started: float) -> float:
        """The call went out late (a new connection first): both windows count it from now."""
        bulk = self._bulk_start.pop(started, None)
        if bulk is not None:
            self.bulk.on_the_wire(bulk)
        return self.account.on_the_wire(started)

    def sent_again(self) -> None:
        self.account.sent_again()
        self.bulk.sent_again()

    def refused(
        self,
        limit: RateLimit | None,
        retry_after: float | None = None,
        started: float | None = None,
    ) -> bool:
        own = self.bulk.account
        if limit is None or limit.unlimited or limit.per_second > own.per_second * 1.001:
            return self.account.refused(limit, retry_after, started)
        self.refusals += 1
        if self.bulk.learn(limit):
            self.on_learned(self.bulk.account)
        else:  # its own window was full: someone else posts in bulk too, or a jitter
            self.bulk.pause(retry_after)
        return False


def _text(value: object) -> str:
    return "" if value is None else str(value).strip()


def _value(value: object) -> str:
    """A field's value as text, as Retrieve shows it, exactly (spaces kept)."""
    return "" if value is None else str(value)
