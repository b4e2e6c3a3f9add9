"""The rules of a plan's inputs: what each cell may hold, and the options that fill empty ones.

A cell rule is a pure function per column: the cell in the API's form, or a CellError a person
can act on. ``PlanOptions`` checks the job options (``--codes``, ``--from`` …) by the same rules
(``row_defaults``) and decides the plan's fingerprint. No pandas or numpy here
(commands/spec.py reads options through it; tests/test_layers.py holds it); rows.py checks a
sheet's rows in bulk.

Why: docs/design/planning.md.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..config import DEFAULT_MAX_CODES_PER_REQUEST, DEFAULT_TZ
from ..errors import FieldError, OptionError
from ..sheet.markers import ErrorCell, FormulaWithoutValue, MergedCells
from ..timetext import as_read, machine_zone_name
from .date_orders import DATE_ORDERS, ISO_DATE_RE, OrderUnknown, is_ordered, read_ordered

MIN_YEAR, MAX_YEAR = 1900, 9999
MAX_CODE = 2**31 - 1  # LeadSquared keeps activity codes as 32-bit integers
FORMULA_WITHOUT_VALUE = (
    "formula without a saved value: open and save the file in Excel (or type the value)"
)

_CODE_SPLIT_RE = re.compile(r"[,;|\s]+")
_CODE_RE = re.compile(r"\d+(?:\.0*)?")
_EXCEL_ERRORS = frozenset(
    {"#N/A", "#VALUE!", "#REF!", "#DIV/0!", "#NUM!", "#NAME?", "#NULL!", "#SPILL!", "#CALC!"}
)


class CellError(ValueError):
    """One cell broke one rule. ``kind`` groups the same mistake across rows."""

    kind = "invalid cell"


class CodeError(CellError):
    kind = "bad activity code"


class DateError(CellError):
    kind = "bad date"


class UnorderedDate(DateError):
    """A text date in some order (01/02/2024), and no --date-order: the sheet is refused whole
    (exit 2), naming its readings; its row is never read one way or the other."""

    kind = "date order not given"

    def __init__(self, message: str, text: str, orders: tuple[str, ...]) -> None:
        super().__init__(message)
        self.text, self.orders = text, orders


def cell_text(value: Any) -> str:
    """A cell as trimmed text; Excel's 163.0 becomes "163", empty cells become "".
    The markers of cells that read as empty but are not keep their kind."""
    if isinstance(value, FormulaWithoutValue | ErrorCell | MergedCells):
        return value
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if value.is_integer():
            return str(int(value))
    return str(value).strip()


def excel_error(text: str) -> str | None:
    return str(text) if isinstance(text, ErrorCell) or text.upper() in _EXCEL_ERRORS else None


def parse_code_cell(value: Any) -> tuple[str, ...]:
    """Activity codes from one cell: positive integers, as strings, de-duplicated, sorted.

    Parsed as whole numbers from their text, never through a float: a float rounds a long
    code to a different code. LeadSquared stores codes as 32-bit integers, so a longer one is
    a typo, not a code.
    """
    text = cell_text(value)
    if error := excel_error(text):
        raise CodeError(f"activity codes cell holds the Excel error {error}")
    if isinstance(text, FormulaWithoutValue):
        raise CodeError(FORMULA_WITHOUT_VALUE)
    codes: set[int] = set()
    for part in _CODE_SPLIT_RE.split(text):
        if not part:
            continue
        if not _CODE_RE.fullmatch(part) or int(part.split(".")[0]) <= 0:
            raise CodeError(f"activity code {quoted(part)} is not a positive whole number")
        code = int(part.split(".")[0])
        if code > MAX_CODE:
            raise CodeError(
                f"activity code {quoted(part)} is longer than any LeadSquared code "
                f"(they are at most {MAX_CODE:,})"
            )
        codes.add(code)
    if not codes and text:  # only separators: not an empty cell, so --codes does not apply
        raise CodeError(f"no code in {quoted(text)}")
    return tuple(str(code) for code in sorted(codes))


def parse_date_cell(value: Any, *, end_of_day: bool, tz: dt.tzinfo, order: str = "") -> str:
    """A date cell or option in the API's UTC format, or "" when empty.

    Text dates are ISO, or written in ``order`` (DMY, MDY, YMD; "": none is accepted, and
    UnorderedDate names the readings). Naive times are read in ``tz``; explicit offsets win.
    A naive time that ``tz`` skips (the clocks jump forward over it) or passes twice (they go
    back) is refused, not guessed.
    A date without a time means the whole day: from its first instant in ``tz`` (FromDate) to
    its last second (ToDate) — otherwise ``ToDate=2024-03-31`` would silently leave out the
    last day the user named. A day whose midnight ``tz`` skips starts when the clocks do.
    """
    if isinstance(value, FormulaWithoutValue):
        raise DateError(FORMULA_WITHOUT_VALUE)
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        moment = _whole_day(value, end_of_day, tz)
    else:
        text = cell_text(value)
        if not text:
            return ""
        if error := excel_error(text):
            raise DateError(f"date cell holds the Excel error {error}")
        if not ISO_DATE_RE.fullmatch(text):
            moment = _ordered(text, order, end_of_day, tz)
        else:
            moment = _iso(text, end_of_day, tz)
    if moment.tzinfo is None:
        moment = _local(moment, tz)
    return _api_date(moment)


def _ordered(text: str, order: str, end_of_day: bool, tz: dt.tzinfo) -> dt.datetime:
    """A text date in the order the user named; a date alone is the whole day, as in ISO."""
    if not is_ordered(text):
        raise DateError(f"{quoted(text)} is not a date (use YYYY-MM-DD or YYYY-MM-DD HH:MM:SS)")
    try:
        day, time = read_ordered(text, order)
    except OrderUnknown as unknown:
        raise UnorderedDate(str(unknown), unknown.text, unknown.orders) from None
    except ValueError as error:
        raise DateError(str(error)) from None
    return _whole_day(day, end_of_day, tz) if time is None else dt.datetime.combine(day, time)


def _iso(text: str, end_of_day: bool, tz: dt.tzinfo) -> dt.datetime:
    try:
        if len(text) == 10:
            return _whole_day(dt.date.fromisoformat(text), end_of_day, tz)
        return dt.datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise DateError(f"{quoted(text)} is not a real date") from None


def _api_date(moment: dt.datetime) -> str:
    """UTC in the API's format, always with a four-digit year. A year outside 1900–9999 is a
    typo (and would overflow the time-zone arithmetic at the edges)."""
    out_of_range = DateError(f"{moment.date().isoformat()} is outside the years 1900–9999")
    if not MIN_YEAR <= moment.year <= MAX_YEAR:
        raise out_of_range
    try:
        utc = moment.astimezone(dt.UTC)
    except OverflowError:
        raise out_of_range from None
    if not MIN_YEAR <= utc.year <= MAX_YEAR:
        raise out_of_range
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d} "
        f"{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}"
    )


def _local(moment: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    """A naive time read in ``tz``; DateError when it does not exist there or is ambiguous."""
    early, late = moment.replace(tzinfo=tz, fold=0), moment.replace(tzinfo=tz, fold=1)
    if not MIN_YEAR <= moment.year <= MAX_YEAR or early.utcoffset() == late.utcoffset():
        return early
    shown, zone = moment.isoformat(sep=" "), str(tz)
    if _wall(early.astimezone(dt.UTC), tz) == moment:  # it exists: twice
        raise DateError(
            f"{shown} happens twice in {zone} (at {_offset(early)} and again at "
            f"{_offset(late)}, when the clocks go back); give an offset like {_offset(early)}"
        )
    jump = _transition(early, tz)
    raise DateError(
        f"{shown} does not exist in {zone} (the clocks jump from "
        f"{_wall(jump - dt.timedelta(seconds=1), tz) + dt.timedelta(seconds=1):%H:%M} to "
        f"{_wall(jump, tz):%H:%M}); give an offset or another time"
    )


def _wall(moment: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    """An instant as a naive local time in ``tz``."""
    return moment.astimezone(tz).replace(tzinfo=None)


def _offset(moment: dt.datetime) -> str:
    offset = moment.utcoffset() or dt.timedelta()
    sign = "-" if offset < dt.timedelta() else "+"
    minutes = abs(offset) // dt.timedelta(minutes=1)
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _transition(skipped: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    """The UTC instant the clocks jumped at, for a local time in the gap they jumped over:
    between its two readings (fold=1 is before the jump, fold=0 after), found by halving."""
    before = skipped.replace(fold=1).astimezone(dt.UTC)
    after = skipped.replace(fold=0).astimezone(dt.UTC)
    if before > after:
        before, after = after, before
    offset = after.astimezone(tz).utcoffset()
    while after - before > dt.timedelta(seconds=1):
        middle = before + (after - before) // 2
        if middle.astimezone(tz).utcoffset() == offset:
            after = middle
        else:
            before = middle
    return after


def _whole_day(day: dt.date, end_of_day: bool, tz: dt.tzinfo) -> dt.datetime:
    """The first instant of ``day`` in ``tz``, or its last second (the next day's first
    instant, less a second), in UTC: right also where the clocks skip or repeat midnight."""
    if not MIN_YEAR <= day.year <= MAX_YEAR or (end_of_day and day == dt.date.max):
        return dt.datetime.combine(day, dt.time(23, 59, 59) if end_of_day else dt.time(0))
    if end_of_day:
        return _day_start(day + dt.timedelta(days=1), tz) - dt.timedelta(seconds=1)
    return _day_start(day, tz)


def _day_start(day: dt.date, tz: dt.tzinfo) -> dt.datetime:
    midnight = dt.datetime.combine(day, dt.time(0))
    early = midnight.replace(tzinfo=tz, fold=0)
    if early.utcoffset() == midnight.replace(tzinfo=tz, fold=1).utcoffset():
        return early.astimezone(dt.UTC)
    if _wall(early.astimezone(dt.UTC), tz) == midnight:  # twice: the first time
        return early.astimezone(dt.UTC)
    return _transition(early, tz)  # skipped: the day starts at the jump


def parse_webhook(value: Any) -> str:
    """An http(s) URL, or "" when empty."""
    text = cell_text(value)
    if not text:
        return ""
    if error := excel_error(text):
        raise CellError(f"StatusWebhookURL holds the Excel error {error}")
    if isinstance(text, FormulaWithoutValue):
        raise CellError(FORMULA_WITHOUT_VALUE)
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc or " " in text:
        raise CellError(f"StatusWebhookURL {quoted(text)} is not an http(s) URL")
    if parts.username or parts.password:
        raise CellError(
            "StatusWebhookURL holds credentials (user:password@); they would be stored in the "
            "checkpoint and exports, so such a URL is refused"
        )
    return text


def load_tz(name: str) -> ZoneInfo:
    local = machine_zone_name(name)
    if local is not None:
        real = f"--tz {local}" if local else "its IANA name (like Asia/Kolkata)"
        raise OptionError(
            f"{name!r} is whatever zone this machine is set to, and would change with the "
            f"machine that runs the plan: give {real}"
        )
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise OptionError(f"{name!r} is not an IANA time zone (like Asia/Kolkata)") from None


MAX_SHOWN = 80


def shorten(text: str, limit: int = MAX_SHOWN) -> str:
    """A value as messages show it: cut to about ``limit`` characters with "…"."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def quoted(text: str) -> str:
    """A cell's value inside a message: quoted, and cut when long (the invalid-rows file
    keeps it whole)."""
    return repr(shorten(text))


@dataclass(frozen=True, kw_only=True)
class RowDefaults:
    """What job options fill in where the sheet has no column or an empty cell."""

    codes: tuple[str, ...] = ()
    from_date: str = ""
    to_date: str = ""
    webhook: str = ""


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
    ignore_columns: tuple[str, ...] = ()
    date_order: str = ""  # how text dates are written (DMY, MDY, YMD); "": ISO only
    header_row: int | None = None  # the sheet's header row; None: found (sheet/headers.py)

    def row_defaults(self) -> RowDefaults:
        """The options checked by the same rules as cells; a bad one is a FieldError."""
        if self.max_codes_per_request < 1:
            raise FieldError("max_codes_per_request", "must be at least 1")
        try:
            tz = load_tz(self.tz)
        except OptionError as exc:
            raise FieldError("tz", str(exc)) from None
        if self.date_order not in ("", *DATE_ORDERS):
            raise FieldError("date_order", f"must be one of {', '.join(DATE_ORDERS)}")
        dates: dict[str, Any] = {"parse": parse_date_cell, "tz": tz, "order": self.date_order}
        from_date = _option_cell("from_date", self.from_date, end_of_day=False, **dates)
        to_date = _option_cell("to_date", self.to_date, end_of_day=True, **dates)
        if from_date and to_date and from_date > to_date:
            (low, high), zone = as_read(self.tz, from_date, to_date)
            raise FieldError("from_date", f"{low} is after ToDate {high} ({zone})")
        webhook = _option_cell("webhook", self.webhook, parse=parse_webhook)
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
            # (only when given: the fingerprints of earlier checkpoints stay what they were)
            **({"ignore_columns": list(self.ignore_columns)} if self.ignore_columns else {}),
            **({"date_order": self.date_order} if self.date_order else {}),
            **({"header_row": self.header_row} if self.header_row is not None else {}),
        }


def _option_cell(field: str, value: str, *, parse: Callable[..., str], **kwargs: Any) -> str:
    try:
        return parse(value, **kwargs)
    except CellError as exc:
        raise FieldError(field, str(exc)) from None


def fingerprint_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def discovered_fingerprint(options: PlanOptions) -> str:
    """A discovered plan is defined by its options alone (the run date is in the window)."""
    text = json.dumps({"discover": True, **options.as_dict()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def plan_fingerprint(path: Path, options: PlanOptions, file_digest: str = "") -> str:
    """Same file bytes and same plan options ⇔ same requests (``file_digest``: the file's
    ``fingerprint_file``, when already known)."""
    digest = hashlib.sha256((file_digest or fingerprint_file(path)).encode())
    digest.update(json.dumps(options.as_dict(), sort_keys=True).encode())
    return digest.hexdigest()
