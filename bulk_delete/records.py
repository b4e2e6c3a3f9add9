"""The records the layers hand each other: a request to send and a row that will not be sent;
for a restore, an activity to post back and where it stands.

They live below the sheet and the plan so that storing and sending them needs neither (no
pandas, no numpy): the plan makes them, the checkpoint keeps them, the pool sends them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """Where a request stands in the checkpoint: the ``status`` column and the exports."""

    PENDING = "pending"  # not sent yet, or sent with no answer before the run stopped
    QUEUED = "queued"  # LeadSquared accepted the delete: it deletes later, on its side
    FAILED = "failed"  # refused, or transient and given up on (a rerun retries those)


@dataclass(frozen=True, slots=True)
class InvalidRow:
    """A row that will not be sent, with the raw cells as the user wrote them."""

    row: int
    reasons: tuple[tuple[str, str], ...]  # (kind, message)
    prospect_id: str = ""
    codes: str = ""
    from_date: str = ""
    to_date: str = ""
    webhook: str = ""

    @property
    def reason(self) -> str:
        return "; ".join(message for _, message in self.reasons)

    def __str__(self) -> str:
        return f"row {self.row}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Request:
    """One DeleteActivities call, with the sheet rows it came from."""

    prospect_id: str
    codes: tuple[str, ...]
    from_date: str
    to_date: str
    webhook: str
    source_rows: tuple[int, ...]
    # The sheet's own other columns (Name, Email …) of its first row, as a JSON list in the
    # order of the checkpoint's ``extra_columns``; "" when the sheet has none.
    extra: str = ""

    def body(self) -> dict[str, Any]:
        """The JSON body, in the API's words; optional fields are left out when empty."""
        body: dict[str, Any] = {
            "ProspectId": self.prospect_id,
            "ActivityEventList": list(self.codes),
        }
        if self.from_date:
            body["FromDate"] = self.from_date
        if self.to_date:
            body["ToDate"] = self.to_date
        if self.webhook:
            body["StatusWebhookURL"] = self.webhook
        return body

    def body_json(self) -> str:
        return json.dumps(self.body(), separators=(",", ":"))


class Restored(StrEnum):
    """Where an activity of a restore stands: the restore checkpoint's ``status`` column."""

    UNCHECKED = "unchecked"  # its lead not read yet: is it gone?
    PRESENT = "present"  # still on its lead (the delete not carried out yet, or locked): held
    GONE = "gone"  # confirmed gone from its lead: to post
    POSTING = "posting"  # a post went out, its answer not recorded: look before posting again
    POSTED = "posted"  # created again: its new id beside the old
    ALREADY = "already there"  # the same activity is on the lead already (restored before)
    FAILED = "failed"  # refused (400, MX), or given up on (transient: a rerun tries again)
    LEAD_MISSING = "lead missing"  # the lead no longer exists: reported, never created


@dataclass(frozen=True, slots=True)
class Restorable:
    """One activity of a backup, as a restore posts it back: its lead, event code, date (posted
    as ActivityDateTime), note and fields, and the owner's email when the backup names one."""

    old_id: str  # its ProspectActivityId before the delete (never comes back)
    request: int  # the purge's request that deleted it
    prospect_id: str
    code: str
    date: str  # 'YYYY-MM-DD HH:MM:SS' UTC
    note: str
    fields: tuple[tuple[str, str], ...]  # (SchemaName, Value), in the backup's order
    owner_email: str = ""
    owner: str = ""  # the owner it had, as the backup names it (for the results)
    seq: int = 0  # its place in the restore checkpoint (0: not stored yet)
