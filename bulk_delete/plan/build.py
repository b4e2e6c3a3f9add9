"""rows → plan: validated rows coalesced into requests, and the plan's summary.

A *request* is one DeleteActivities call: one lead, one window, one webhook, its codes. Rows
with the same (ProspectId, FromDate, ToDate, StatusWebhookURL) become one request whose
ActivityEventList is the union of their codes. Under a fixed rate limit, fewer calls is the
biggest speed lever there is: a long sheet with three codes per lead on three rows costs a
third of the calls.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
import tempfile
import weakref
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from ..config import DEFAULT_TZ, RateLimit
from ..errors import DateOrderNeeded, InputError, NothingToSend
from ..records import InvalidRow, Request
from ..sheet.read import Chunk, SheetInfo, Table, open_sheet
from .date_orders import ORDER_WORDS, order_needed, reading
from .rows import Columns, Validator, guid_texts
from .rules import PlanOptions, UnorderedDate, load_tz
from .sends import requests_fingerprint

FIRST_ROWS_SHOWN = 5


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
        counted = set()  # a row counts once per kind (both dates may have the same one)
        for kind, message in row.reasons:
            if kind in counted:
                continue
            counted.add(kind)
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


@dataclass(frozen=True)
class Groups:
    """Rows with the same lead, window and webhook: one request (more when they hold more
    than --max-codes-per-request codes). Groups are numbered in order of their first row."""

    order: npt.NDArray[np.intp]  # row indexes, grouped, each group's rows in sheet order
    starts: npt.NDArray[np.intp]  # where each group starts in ``order``
    leads: int

    @classmethod
    def of(cls, columns: Columns) -> Groups:
        if not len(columns.rows):
            return cls(np.zeros(0, np.intp), np.zeros(0, np.intp), 0)
        lead, leads = _numbered(columns.lead_hi, columns.lead_lo)
        group, _ = _refined(lead, leads, columns.from_date, columns.to_date, columns.webhook)
        if group[-1] == len(group) - 1:  # every row its own group (the groups count up)
            order = np.arange(len(group))
            starts = order
        else:
            order = np.argsort(group, kind="stable")
            ordered = group[order]
            starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        return cls(order, starts, leads)

    def __len__(self) -> int:
        return len(self.starts)

    def first_rows(self) -> npt.NDArray[np.intp]:
        """The index of each group's first row."""
        return self.order[self.starts]

    def sizes(self) -> npt.NDArray[np.intp]:
        sizes: npt.NDArray[np.intp] = np.diff(np.r_[self.starts, len(self.order)])
        return sizes


Numbers = npt.NDArray[np.int64]


def _numbered(first: npt.NDArray[Any], *keys: npt.NDArray[Any]) -> tuple[Numbers, int]:
    """A number for each distinct combination of the keys, counting up from 0 in order of
    first appearance (so requests come out in sheet order), and how many there are."""
    numbers, distinct = pd.factorize(first)
    return _refined(numbers.astype(np.int64), len(distinct), *keys)


def _refined(numbers: Numbers, count: int, *keys: npt.NDArray[Any]) -> tuple[Numbers, int]:
    """``numbers`` (``count`` of them) split further by each key in turn."""
    for key in keys:
        if count == len(numbers):  # every row is apart already
            break
        values, distinct = pd.factorize(key)
        if len(distinct) > 1:
            numbers, combined = pd.factorize(numbers * len(distinct) + values)
            numbers, count = numbers.astype(np.int64), len(combined)
    return numbers, count


_BLOCK = 65_536  # groups turned into Python values at a time
_WINDOWS_COUNTED = 10_000  # distinct windows a tally counts one request at a time


class ExtraCells:
    """Each valid row's cells of the sheet's other columns, as one JSON list text, spooled
    as InvalidRows are: a lead sheet can have dozens of such columns (names, emails, notes),
    and held they would cost memory on every row. Read back: each request's first row."""

    SPOOL_BYTES = 8 << 20
    READ_BYTES = 4 << 20  # read back this much at a time, at most (and a row)

    def __init__(self) -> None:
        self._file = tempfile.SpooledTemporaryFile(  # noqa: SIM115 - lives as long as the plan
            max_size=self.SPOOL_BYTES
        )
        self._closer = weakref.finalize(self, self._file.close)
        self._ends: list[npt.NDArray[np.int64]] = []  # each row's end in the file, by chunk
        self._size = 0
        self._offsets: npt.NDArray[np.int64] | None = None  # row i: offsets[i]:offsets[i + 1]

    def add(self, texts: list[str]) -> None:
        data = [text.encode() for text in texts]
        lengths = np.fromiter(map(len, data), dtype=np.int64, count=len(data))
        self._ends.append(self._size + np.cumsum(lengths))
        self._file.seek(0, 2)
        self._file.write(b"".join(data))
        self._size += int(lengths.sum())
        self._offsets = None

    def __len__(self) -> int:
        return sum(map(len, self._ends))

    def __bool__(self) -> bool:
        """Whether the sheet's other columns were kept (for a chunk without a valid row too:
        the results workbook still names them)."""
        return bool(self._ends)

    def texts(self, rows: npt.NDArray[np.intp]) -> list[str]:
        """The texts of ``rows`` (indexes of the plan's valid rows), read in file order."""
        if self._offsets is None:
            self._offsets = np.concatenate([np.zeros(1, dtype=np.int64), *self._ends])
        offsets = self._offsets
        order = np.argsort(rows, kind="stable")
        starts, ends = offsets[rows[order]], offsets[rows[order] + 1]
        found = [""] * len(rows)
        at = 0
        while at < len(order):
            base = int(starts[at])
            stop = max(at + 1, int(np.searchsorted(ends, base + self.READ_BYTES, side="right")))
            self._file.seek(base)
            blob = self._file.read(int(ends[stop - 1]) - base)
            picked = order[at:stop].tolist()
            firsts, lasts = (starts[at:stop] - base).tolist(), (ends[at:stop] - base).tolist()
            for index, start, end in zip(picked, firsts, lasts, strict=True):
                found[index] = blob[start:end].decode()
            at = stop
        return found


@dataclass
class Plan:
    """The planned requests (streamed, not materialised) and what was read to make them."""

    source: SheetInfo
    options: PlanOptions
    rows_read: int
    blank_rows: int
    invalid: InvalidRows
    columns: Columns = field(repr=False)
    groups: Groups = field(repr=False)
    # The cells of the sheet's other columns (source.ignored) of each row of ``columns.rows``;
    # empty when the sheet has none, or they were not asked for (then none are written).
    extra: ExtraCells = field(default_factory=ExtraCells, repr=False)
    read_as: str = ""  # with --date-order: the first text date read in that order

    @property
    def leads(self) -> int:
        return self.groups.leads

    def requests(self) -> Iterator[Request]:
        """Requests in order of their first sheet row. Re-iterable."""
        columns, groups = self.columns, self.groups
        limit = self.options.max_codes_per_request
        ends = np.r_[groups.starts[1:], len(groups.order)]
        code_sets, texts = columns.code_sets, columns.texts
        for block in range(0, len(groups), _BLOCK):
            starts, stops = groups.starts[block : block + _BLOCK], ends[block : block + _BLOCK]
            at = int(starts[0])
            picked = groups.order[at : int(stops[-1])]
            leads = guid_texts(columns.lead_hi[picked], columns.lead_lo[picked])
            rows, codes = columns.rows[picked].tolist(), columns.codes[picked].tolist()
            froms, tos = columns.from_date[picked].tolist(), columns.to_date[picked].tolist()
            hooks = columns.webhook[picked].tolist()
            extras = self._extras(groups.order[starts])
            bounds = zip((starts - at).tolist(), (stops - at).tolist(), strict=True)
            for (start, stop), extra in zip(bounds, extras, strict=False):
                lead = leads[start]
                window = texts[froms[start]], texts[tos[start]], texts[hooks[start]]
                first = code_sets[codes[start]]
                if stop - start == 1 and len(first) <= limit:  # the common case, kept cheap
                    yield Request(lead, first, *window, (rows[start],), extra)
                    continue
                sets = [(code_sets[codes[i]], rows[i]) for i in range(start, stop)]
                union = sorted({code for group_codes, _ in sets for code in group_codes}, key=int)
                for part_start in range(0, len(union), limit):
                    part = union[part_start : part_start + limit]
                    wanted = set(part)
                    source = tuple(sorted({row for cs, row in sets if wanted.intersection(cs)}))
                    yield Request(lead, tuple(part), *window, source, extra)

    def _extras(self, first: npt.NDArray[np.intp]) -> Iterable[str]:
        """The extra cells of each group's first row ``first`` ("" when none are kept)."""
        if not self.extra:
            return itertools.repeat("")
        return self.extra.texts(first)

    def tally(self) -> RequestTally:
        """What ``RequestTally`` counts over ``requests()``, computed on the columns."""
        return _column_tally(self.columns, self.groups, self.options.max_codes_per_request)

    def fingerprint(self) -> str:
        """What ``requests()`` sends, in any order, as one fingerprint (plan/sends.py)."""
        return requests_fingerprint(self.columns, self.groups, self.options.max_codes_per_request)


def _extra_texts(extra: list[Table]) -> list[str]:
    """Each row's extra cells as one JSON list text: held so, a row's cells cost one string,
    not one each. Built from each cell's JSON text: a dumps per row would cost more than
    the rest of the request together."""
    quote = json.encoder.encode_basestring  # C; non-ASCII kept as it is
    columns = [
        [quote(cell) if cell.__class__ is str else _json_cell(cell) for cell in column.tolist()]
        for column in extra
    ]
    return ["[" + ",".join(cells) + "]" for cells in zip(*columns, strict=True)]


def _json_cell(cell: Any) -> str:
    """A cell that is not text (an Excel number, date, error …) as JSON."""
    return json.dumps(cell, ensure_ascii=False, default=str)


def _extra_cells(chunk: Chunk, at: tuple[int, ...], rows: npt.NDArray[np.int64]) -> list[Table]:
    """The cells of the columns ``at`` on the sheet rows ``rows`` of a chunk."""
    local = rows - chunk.first_row
    return [chunk.columns[column][local] for column in at]


def build_plan(path: str | Path, options: PlanOptions, *, extra: bool = True) -> Plan:
    """Read, validate and coalesce a sheet. Raises UsageError subclasses (exit 2).
    ``extra=False``: the sheet's other columns are not kept for the requests (a dry run
    writes none of them; left out as each chunk is read, they cost no memory)."""
    defaults = options.row_defaults()
    parts: list[Columns] = []
    extra_cells = ExtraCells()
    invalid = InvalidRows()
    rows_read = blank = 0
    with open_sheet(
        path,
        sheet=options.sheet,
        ignore_columns=options.ignore_columns,
        keep_ignored=extra,
        header_row=options.header_row,
    ) as sheet:
        tz: dt.tzinfo = load_tz(options.tz)
        if sheet.info.written_by == "export":
            raise InputError(
                f"{path} is a bulk-delete export (outcomes), not a sheet to plan: its invalid "
                "rows have no dates and its queued rows were sent already, so planning it "
                "again would widen the purge. Resume the run's checkpoint instead (add "
                "--retry-failed to resend failed requests)."
            )
        if sheet.info.written_by:  # our own preview: its dates are UTC
            tz = dt.UTC
            sheet.info = _ours(sheet.info, options)
        validator = Validator(defaults, tz, options.date_order)
        for chunk in sheet.chunks():
            checked = validator.check_chunk(chunk, invalid.add)  # invalid rows are spooled
            rows_read += checked.records
            blank += checked.blank
            parts.append(checked.valid)
            if at := sheet.info.ignored_at:
                extra_cells.add(_extra_texts(_extra_cells(chunk, at, checked.valid.rows)))
        info = sheet.info
    if validator.unordered:
        raise _order_needed(path, validator.unordered, invalid)
    columns = Columns.join(parts, validator)
    del parts
    groups = Groups.of(columns)
    return Plan(
        source=info,
        options=options,
        rows_read=rows_read,
        blank_rows=blank,
        invalid=invalid,
        columns=columns,
        groups=groups,
        extra=extra_cells,
        read_as=validator.read_as,
    )


REASONS_SHOWN = 3


def nothing_to_send(plan: Plan) -> NothingToSend | None:
    """A plan without one valid row: nothing to send, and the top reasons why."""
    if len(plan.columns.rows):
        return None
    where = Path(plan.source.path).name
    if not plan.invalid:
        return NothingToSend(f"nothing to send: {where} has no data row below its header")
    reasons = "; ".join(
        f"{group.count:,} × {group.kind} (e.g. {group.example})"
        for group in plan.invalid.groups()[:REASONS_SHOWN]
    )
    return NothingToSend(
        f"nothing to send: none of the {len(plan.invalid):,} row(s) of {where} is valid. "
        f"Top reasons: {reasons}. (--invalid-out FILE lists every row with its reasons.)"
    )


def _order_needed(
    path: str | Path, seen: dict[str, tuple[str, ...]], invalid: InvalidRows
) -> DateOrderNeeded:
    """Text dates in some order, and none given: the sheet is refused whole, naming rows."""
    group = next((g for g in invalid.groups() if g.kind == UnorderedDate.kind), None)
    rows = ""
    if group is not None:
        more = ", …" if group.count > len(group.first_rows) else ""
        label = "row" if group.count == 1 else "rows"
        first = ", ".join(map(str, group.first_rows))
        rows = f"{group.count:,} row(s) ({label} {first}{more}) "
    return DateOrderNeeded(
        f"{path}: {rows or 'rows '}hold text dates that are not YYYY-MM-DD, and their order "
        f"was not given: {order_needed(seen)}. (Excel date cells need no option.)"
    )


def _ours(info: SheetInfo, options: PlanOptions) -> SheetInfo:
    """A preview or export bulk-delete wrote holds UTC dates without an offset: read in
    --tz they would shift a second time. So they are read as UTC, and the plan says so."""
    warning = f"this is a bulk-delete {info.written_by}: its dates are UTC and are read as UTC"
    if options.tz.upper() != "UTC":
        applies = "--from/--to only" if options.from_date or options.to_date else "nothing here"
        warning += f"; --tz {options.tz} applies to {applies}"
    return dataclasses.replace(info, warnings=(*info.warnings, warning))


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
    # (FromDate, ToDate) → requests: the windows with the most (all, when few), and how many
    windows: Counter[tuple[str, str]] = field(default_factory=Counter)
    distinct_windows: int = 0

    def observe(self, requests: Iterable[Request]) -> Iterator[Request]:
        for request in requests:
            self.add(request)
            yield request

    def add(self, request: Request) -> None:
        self.requests += 1
        self.code_counts.update(request.codes)
        window = (request.from_date, request.to_date)
        if window in self.windows or len(self.windows) < _WINDOWS_COUNTED:
            self.distinct_windows += window not in self.windows
            self.windows[window] += 1
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
    tz: str = DEFAULT_TZ  # the --tz the dates were read in: shown beside UTC
    date_order: str = ""  # --date-order: the windows are shown as read
    read_as: str = ""  # how that order was read, shown with an example of the sheet's

    @property
    def requests(self) -> int:
        return self.tally.requests

    @property
    def eta_seconds(self) -> float:
        return self.rate.eta_seconds(self.tally.requests)


def summarise(
    plan: Plan, rate: RateLimit, *, sink: Callable[[Request], None] | None = None
) -> PlanSummary:
    """The plan's summary (counted on its columns), handing each request to ``sink``."""
    if sink is not None:
        for request in plan.requests():
            sink(request)
    return plan_summary(plan, plan.tally(), rate)


def _column_tally(columns: Columns, groups: Groups, limit: int) -> RequestTally:
    """RequestTally's counts without making a request. A group makes ceil(n / limit)
    requests for its n distinct codes, and each of those codes is in exactly one of them."""
    tally = RequestTally()
    if not len(groups):
        return tally
    names = sorted({code for codes in columns.code_sets for code in codes}, key=int)
    number = {code: index for index, code in enumerate(names)}
    lengths = np.array([len(codes) for codes in columns.code_sets], dtype=np.int64)
    flat = np.array([number[code] for codes in columns.code_sets for code in codes], dtype=np.int64)
    offsets = np.r_[0, np.cumsum(lengths)[:-1]]
    group = np.empty(len(groups.order), dtype=np.int64)
    group[groups.order] = np.repeat(np.arange(len(groups)), groups.sizes())
    # Each distinct (group, code set), then each distinct (group, code).
    pairs = pd.unique(group * len(lengths) + columns.codes.astype(np.int64))
    pair_group, pair_set = pairs // len(lengths), pairs % len(lengths)
    if len(pairs) == len(groups):  # one code set per group: its codes are distinct already
        distinct = np.bincount(pair_group, weights=lengths[pair_set], minlength=len(groups))
        per_set = np.bincount(pair_set, minlength=len(lengths))
        counts = np.bincount(flat, weights=np.repeat(per_set, lengths), minlength=len(names))
    else:
        spread = lengths[pair_set]
        owner = np.repeat(pair_group, spread)
        within = np.arange(spread.sum()) - np.repeat(np.cumsum(spread) - spread, spread)
        codes = flat[np.repeat(offsets[pair_set], spread) + within]
        unique = pd.unique(owner * len(names) + codes)
        distinct = np.bincount(unique // len(names), minlength=len(groups))
        counts = np.bincount(unique % len(names), minlength=len(names))
    made = (distinct.astype(np.int64) + limit - 1) // limit
    first = groups.first_rows()
    froms, tos = columns.from_date[first], columns.to_date[first]
    has_from, has_to = froms != 0, tos != 0
    texts = columns.texts
    tally.requests = int(made.sum())
    tally.code_counts = Counter({names[i]: int(c) for i, c in enumerate(counts.tolist()) if c})
    tally.earliest_from = min((texts[i] for i in np.unique(froms[has_from]).tolist()), default="")
    tally.latest_to = max((texts[i] for i in np.unique(tos[has_to]).tolist()), default="")
    tally.without_dates = int(made[~has_from & ~has_to].sum())
    tally.open_start = int(made[~has_from & has_to].sum())
    tally.open_end = int(made[has_from & ~has_to].sum())
    _tally_windows(tally, froms, tos, made, texts)
    return tally


def _tally_windows(
    tally: RequestTally,
    froms: npt.NDArray[np.int32],
    tos: npt.NDArray[np.int32],
    made: npt.NDArray[np.int64],
    texts: list[str],
) -> None:
    """The windows with the most requests (as many as ``RequestTally.add`` counts), and how
    many distinct windows there are."""
    keys, pairs = pd.factorize((froms.astype(np.int64) << 32) | tos.astype(np.int64))
    counts = np.bincount(keys, weights=made, minlength=len(pairs)).astype(np.int64)
    top = np.argsort(-counts, kind="stable")[:_WINDOWS_COUNTED].tolist()
    tally.distinct_windows = len(pairs)
    tally.windows = Counter(
        {
            (texts[int(pairs[i]) >> 32], texts[int(pairs[i]) & 0xFFFFFFFF]): int(counts[i])
            for i in top
        }
    )


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
        tz=plan.options.tz,
        date_order=plan.options.date_order,
        read_as=_read_as(plan.read_as, plan.options.date_order),
    )


def _read_as(text: str, order: str) -> str:
    """How the plan says the order was read: "as DMY (day/month/year): '01/02/2024' is 1
    February 2024"."""
    if not order:
        return ""
    example = (
        f": {text!r} is {reading(text, order)}"
        if text
        else "; no date of the sheet is written so (ISO dates and date cells read as they are)"
    )
    return f"as {order} ({ORDER_WORDS[order]}){example}"
