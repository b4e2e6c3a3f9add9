"""rows → plan: validated rows coalesced into requests, and the plan's summary.

A *request* is one DeleteActivities call: one lead, one window, one webhook, its codes. Rows
with the same (ProspectId, FromDate, ToDate, StatusWebhookURL) become one request whose
ActivityEventList is the union of their codes. Under a fixed rate limit, fewer calls is the
biggest speed lever there is: a long sheet with three codes per lead on three rows costs a
third of the calls.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import weakref
from array import array
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .config import DEFAULT_MAX_CODES_PER_REQUEST, DEFAULT_TZ, RateLimit
from .errors import FieldError, OptionError
from .rows import (
    CellError,
    InvalidRow,
    RowDefaults,
    Validator,
    ValidRow,
    load_tz,
    parse_date_cell,
    parse_webhook,
)
from .sheet import SheetInfo, open_sheet

FIRST_ROWS_SHOWN = 5


@dataclass(frozen=True, kw_only=True)
class PlanOptions:
    """Everything that decides which requests a sheet becomes (and so the input fingerprint)."""

    codes: tuple[str, ...] = ()
    from_date: str = ""
    to_date: str = ""
    webhook: str = ""
    tz: str = DEFAULT_TZ
    sheet: str | None = None
    max_codes_per_request: int = DEFAULT_MAX_CODES_PER_REQUEST

    def row_defaults(self) -> RowDefaults:
        """The options checked by the same rules as cells; a bad one is a FieldError."""
        if self.max_codes_per_request < 1:
            raise FieldError("max_codes_per_request", "must be at least 1")
        try:
            tz = load_tz(self.tz)
        except OptionError as exc:
            raise FieldError("tz", str(exc)) from None
        from_date = _option_cell(
            "from_date", self.from_date, parse_date_cell, end_of_day=False, tz=tz
        )
        to_date = _option_cell("to_date", self.to_date, parse_date_cell, end_of_day=True, tz=tz)
        if from_date and to_date and from_date > to_date:
            raise FieldError("from_date", f"{from_date} is after ToDate {to_date} (UTC)")
        webhook = _option_cell("webhook", self.webhook, parse_webhook)
        return RowDefaults(codes=self.codes, from_date=from_date, to_date=to_date, webhook=webhook)

    def as_dict(self) -> dict[str, Any]:
        return {
            "codes": list(self.codes),
            "from": self.from_date,
            "to": self.to_date,
            "webhook": self.webhook,
            "tz": self.tz,
            "sheet": self.sheet or "",
            "max_codes_per_request": self.max_codes_per_request,
        }


def _option_cell(field: str, value: str, parse: Callable[..., str], **kwargs: Any) -> str:
    try:
        return parse(value, **kwargs)
    except CellError as exc:
        raise FieldError(field, str(exc)) from None


@dataclass(frozen=True, slots=True)
class Request:
    """One DeleteActivities call, with the sheet rows it came from."""

    prospect_id: str
    codes: tuple[str, ...]
    from_date: str
    to_date: str
    webhook: str
    source_rows: tuple[int, ...]

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


def fingerprint_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def plan_fingerprint(path: Path, options: PlanOptions) -> str:
    """Same file bytes and same plan options ⇔ same requests."""
    digest = hashlib.sha256(fingerprint_file(path).encode())
    digest.update(json.dumps(options.as_dict(), sort_keys=True).encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class InvalidGroup:
    kind: str
    count: int
    first_rows: tuple[int, ...]
    example: str


class InvalidRows:
    """The invalid rows of a plan, without holding them in memory: each row is spooled to a
    temporary file (in memory up to 8 MB, on disk beyond) and the grouped reasons are tallied
    as rows arrive. A 1 M-row file of the wrong kind stays as small as a good one."""

    SPOOL_BYTES = 8 << 20

    def __init__(self) -> None:
        self._file = tempfile.SpooledTemporaryFile(  # noqa: SIM115 - lives as long as the plan
            max_size=self.SPOOL_BYTES, mode="w+", encoding="utf-8"
        )
        self._closer = weakref.finalize(self, self._file.close)  # the spool goes with the plan
        self._count = 0
        self._counts: Counter[str] = Counter()
        self._first: dict[str, list[int]] = defaultdict(list)
        self._example: dict[str, str] = {}

    def add(self, row: InvalidRow) -> None:
        self._count += 1
        for kind, message in row.reasons:
            self._counts[kind] += 1
            if len(self._first[kind]) < FIRST_ROWS_SHOWN:
                self._first[kind].append(row.row)
            self._example.setdefault(kind, f"row {row.row}: {message}")
        self._file.write(
            json.dumps(
                [
                    row.row,
                    row.reasons,
                    row.prospect_id,
                    row.codes,
                    row.from_date,
                    row.to_date,
                    row.webhook,
                ]
            )
            + "\n"
        )

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[InvalidRow]:
        """The rows in sheet order; re-iterable."""
        self._file.flush()
        self._file.seek(0)
        for line in self._file:
            row, reasons, pid, codes, from_date, to_date, webhook = json.loads(line)
            yield InvalidRow(
                row=row,
                reasons=tuple((kind, message) for kind, message in reasons),
                prospect_id=pid,
                codes=codes,
                from_date=from_date,
                to_date=to_date,
                webhook=webhook,
            )
        self._file.seek(0, 2)  # later writes (none expected) go to the end

    def groups(self) -> list[InvalidGroup]:
        """Reasons grouped by kind of mistake, most frequent first, with their first rows."""
        return [
            InvalidGroup(kind, count, tuple(self._first[kind]), self._example[kind])
            for kind, count in self._counts.most_common()
        ]

    def close(self) -> None:
        self._closer()


@dataclass
class Plan:
    """The planned requests (streamed, not materialised) and what was read to make them."""

    source: SheetInfo
    options: PlanOptions
    rows_read: int
    blank_rows: int
    invalid: InvalidRows
    leads: int
    _columns: dict[str, Any] = field(repr=False)

    def requests(self) -> Iterator[Request]:
        """Requests in order of their first sheet row. Re-iterable."""
        cols = self._columns
        if not cols["order"]:
            return
        pids, froms, tos, hooks, codes, rows = (
            cols["p"],
            cols["f"],
            cols["t"],
            cols["w"],
            cols["c"],
            cols["r"],
        )
        gids = cols["gid"]
        limit = self.options.max_codes_per_request
        group: list[int] = []
        current = gids[cols["order"][0]]
        for index in cols["order"]:
            if gids[index] != current:
                yield from _merge(group, pids, froms, tos, hooks, codes, rows, limit)
                group = []
                current = gids[index]
            group.append(index)
        yield from _merge(group, pids, froms, tos, hooks, codes, rows, limit)


def _merge(
    group: list[int],
    pids: list[str],
    froms: list[str],
    tos: list[str],
    hooks: list[str],
    codes: list[tuple[str, ...]],
    rows: array[int],
    limit: int,
) -> Iterator[Request]:
    first = group[0]
    if len(group) == 1 and len(codes[first]) <= limit:  # the common case, kept cheap
        yield Request(
            pids[first], codes[first], froms[first], tos[first], hooks[first], (rows[first],)
        )
        return
    union = sorted({code for index in group for code in codes[index]}, key=int)
    for start in range(0, len(union), limit):
        part = union[start : start + limit]
        wanted = set(part)
        source = tuple(
            sorted({rows[index] for index in group if wanted.intersection(codes[index])})
        )
        yield Request(pids[first], tuple(part), froms[first], tos[first], hooks[first], source)


def build_plan(path: str | Path, options: PlanOptions) -> Plan:
    """Read, validate and coalesce a sheet. Raises UsageError subclasses (exit 2)."""
    defaults = options.row_defaults()
    validator = Validator(defaults, load_tz(options.tz))
    pids: list[str] = []
    froms: list[str] = []
    tos: list[str] = []
    hooks: list[str] = []
    codes: list[tuple[str, ...]] = []
    rows: array[int] = array("l")
    invalid = InvalidRows()
    rows_read = blank = 0
    with open_sheet(path, sheet=options.sheet) as sheet:
        for raw in sheet:
            rows_read += 1
            if raw is None:
                blank += 1
                continue
            checked = validator.check(raw)
            if isinstance(checked, ValidRow):
                pids.append(checked.prospect_id)
                froms.append(checked.from_date)
                tos.append(checked.to_date)
                hooks.append(checked.webhook)
                codes.append(checked.codes)
                rows.append(checked.row)
            else:
                invalid.add(checked)
        info = sheet.info

    columns: dict[str, Any] = {"p": pids, "f": froms, "t": tos, "w": hooks, "c": codes, "r": rows}
    leads = 0
    order: list[int] = []
    gid_list: list[int] = []
    if pids:
        frame = pd.DataFrame({"p": pids, "f": froms, "t": tos, "w": hooks}, dtype=object)
        # sort=False numbers groups by first appearance, so requests come out in sheet order.
        gids = frame.groupby(["p", "f", "t", "w"], sort=False).ngroup().to_numpy()
        leads = int(frame["p"].nunique())
        del frame
        order = np.argsort(gids, kind="stable").tolist()
        gid_list = gids.tolist()
    columns["order"] = order
    columns["gid"] = gid_list
    return Plan(
        source=info,
        options=options,
        rows_read=rows_read,
        blank_rows=blank,
        invalid=invalid,
        leads=leads,
        _columns=columns,
    )


# ---------------------------------------------------------------- summary


@dataclass
class RequestTally:
    """Counts over requests, gathered in the same pass that writes them somewhere."""

    requests: int = 0
    code_counts: Counter[str] = field(default_factory=Counter)
    earliest_from: str = ""
    latest_to: str = ""
    without_dates: int = 0
    open_start: int = 0
    open_end: int = 0

    def observe(self, requests: Iterable[Request]) -> Iterator[Request]:
        for request in requests:
            self.add(request)
            yield request

    def add(self, request: Request) -> None:
        self.requests += 1
        self.code_counts.update(request.codes)
        if not request.from_date and not request.to_date:
            self.without_dates += 1
            return
        if request.from_date:
            if not self.earliest_from or request.from_date < self.earliest_from:
                self.earliest_from = request.from_date
        else:
            self.open_start += 1
        if request.to_date:
            if request.to_date > self.latest_to:
                self.latest_to = request.to_date
        else:
            self.open_end += 1


@dataclass(frozen=True, kw_only=True)
class PlanSummary:
    source: SheetInfo
    rows_read: int
    blank_rows: int
    invalid_rows: int
    invalid_groups: list[InvalidGroup]
    leads: int
    tally: RequestTally
    rate: RateLimit

    @property
    def requests(self) -> int:
        return self.tally.requests

    @property
    def eta_seconds(self) -> float:
        return self.rate.eta_seconds(self.tally.requests)


def summarise(
    plan: Plan, rate: RateLimit, *, sink: Callable[[Request], None] | None = None
) -> PlanSummary:
    """One pass over the plan's requests, optionally handing each to ``sink``."""
    tally = RequestTally()
    for request in tally.observe(plan.requests()):
        if sink is not None:
            sink(request)
    return plan_summary(plan, tally, rate)


def plan_summary(plan: Plan, tally: RequestTally, rate: RateLimit) -> PlanSummary:
    """The summary of a plan whose requests ``tally`` has seen."""
    return PlanSummary(
        source=plan.source,
        rows_read=plan.rows_read,
        blank_rows=plan.blank_rows,
        invalid_rows=len(plan.invalid),
        invalid_groups=plan.invalid.groups(),
        leads=plan.leads,
        tally=tally,
        rate=rate,
    )
