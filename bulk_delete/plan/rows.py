"""rows → checked rows: normalise and validate every row of the sheet.

A row is valid or invalid; an invalid row keeps its sheet row number and reasons, and is never
sent. ``Validator.check_chunk`` checks a chunk column by column; ``Validator.check`` checks one
row and names its reasons (the same as the chunk's). Each cell's rule is in rules.py.

Why: docs/design/planning.md.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np
import numpy.typing as npt
import pandas as pd

from ..records import InvalidRow
from ..sheet.markers import FormulaWithoutValue, MergedCells
from ..sheet.read import Chunk, RawRow, Table
from ..timetext import as_read
from .date_orders import is_ordered
from .rules import (
    FORMULA_WITHOUT_VALUE,
    CellError,
    CodeError,
    DateError,
    RowDefaults,
    UnorderedDate,
    cell_text,
    excel_error,
    parse_code_cell,
    parse_date_cell,
    parse_webhook,
    quoted,
)

_GUID_RE = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


@dataclass(frozen=True, slots=True)
class ValidRow:
    row: int
    prospect_id: str
    codes: tuple[str, ...]
    from_date: str
    to_date: str
    webhook: str


@dataclass(frozen=True, kw_only=True)
class Columns:
    """Valid rows, one array per column, in sheet order. A lead is its GUID as a 128-bit
    number in two halves; codes, dates and webhooks index ``code_sets`` and ``texts``, the
    Validator's tables of the distinct values."""

    rows: npt.NDArray[np.int64]
    lead_hi: npt.NDArray[np.uint64]
    lead_lo: npt.NDArray[np.uint64]
    codes: npt.NDArray[np.int32]
    from_date: npt.NDArray[np.int32]
    to_date: npt.NDArray[np.int32]
    webhook: npt.NDArray[np.int32]
    code_sets: list[tuple[str, ...]]
    texts: list[str]  # texts[0] is ""

    @classmethod
    def join(cls, parts: list[Columns], validator: Validator) -> Columns:
        def joined(name: str, dtype: type[np.generic]) -> Any:
            arrays = [getattr(part, name) for part in parts]
            return np.concatenate(arrays) if arrays else np.zeros(0, dtype=dtype)

        return cls(
            rows=joined("rows", np.int64),
            lead_hi=joined("lead_hi", np.uint64),
            lead_lo=joined("lead_lo", np.uint64),
            codes=joined("codes", np.int32),
            from_date=joined("from_date", np.int32),
            to_date=joined("to_date", np.int32),
            webhook=joined("webhook", np.int32),
            code_sets=validator.code_sets.values,
            texts=validator.texts.values,
        )


@dataclass(frozen=True, kw_only=True)
class CheckedChunk:
    """A checked chunk: its valid rows as columns, and how many of its records were blank
    (its invalid rows went to the caller one by one)."""

    valid: Columns
    blank: int
    records: int


T = TypeVar("T", bound=Hashable)


class _Interned(Generic[T]):
    """Distinct values, each with its index (a column of indexes refers to them)."""

    def __init__(self) -> None:
        self.values: list[T] = []
        self._index: dict[T, int] = {}

    def add(self, value: T) -> int:
        index = self._index.get(value)
        if index is None:
            index = self._index[value] = len(self.values)
            self.values.append(value)
        return index


_LOW_64 = (1 << 64) - 1
_DASHES = np.array([8, 13, 18, 23])
_HEX_DIGITS = np.array([i for i in range(36) if i not in (8, 13, 18, 23)])
_NIBBLE = np.full(256, 255, dtype=np.uint8)  # byte → its value as a hex digit, else 255
for _digit, _char in enumerate("0123456789abcdef"):
    _NIBBLE[ord(_char)] = _NIBBLE[ord(_char.upper())] = _digit


def _guids(
    cells: Table,
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
    """(is a GUID as written, high and low 64 bits) for each cell, as a byte matrix. A GUID
    with spaces around it, or anything unusual, is not accepted here: its row is checked
    again on its own. (A number or a date cell never reads as 36 hex digits and dashes.)"""
    try:
        text = cells.astype("S37")  # one byte more than a GUID: a longer text shows
    except (UnicodeError, TypeError, ValueError):
        text = np.array([c if isinstance(c, str) and c.isascii() else "" for c in cells], "S37")
    matrix = text.view(np.uint8).reshape(len(cells), 37)
    nibbles = _NIBBLE[matrix[:, _HEX_DIGITS]]
    ok = (
        (nibbles < 16).all(axis=1)
        & (matrix[:, _DASHES] == ord("-")).all(axis=1)
        & (matrix[:, 36] == 0)  # 36 characters, not more
    )
    halves = np.ascontiguousarray((nibbles[:, 0::2] << 4) | nibbles[:, 1::2]).view(">u8")
    return ok, halves[:, 0].astype(np.uint64), halves[:, 1].astype(np.uint64)


_HEX_CHARS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def guid_texts(hi: npt.NDArray[np.uint64], lo: npt.NDArray[np.uint64]) -> list[str]:
    """GUIDs as text (lower case) from their two halves: what ``_guids`` took apart."""
    halves = np.empty((len(hi), 2), dtype=">u8")
    halves[:, 0], halves[:, 1] = hi, lo
    octets = halves.view(np.uint8)
    nibbles = np.empty((len(hi), 32), dtype=np.uint8)
    nibbles[:, 0::2], nibbles[:, 1::2] = octets >> 4, octets & 15
    text = np.full((len(hi), 36), ord("-"), dtype=np.uint8)
    text[:, _HEX_DIGITS] = _HEX_CHARS[nibbles]
    texts: list[str] = text.view("S36").ravel().astype("U36").tolist()
    return texts


def _distinguishable(cells: Table) -> Table:
    """The cells, with True/False as text: grouping equal values would take True for 1."""
    flags = np.flatnonzero((cells == True) | (cells == False))  # noqa: E712 - 1 == True
    if not len(flags):
        return cells
    cells = cells.copy()
    for index in flags.tolist():
        if cells[index].__class__ is bool:
            cells[index] = str(cells[index])
    return cells


class Validator:
    """Checks raw rows one by one. Dates, code lists and webhooks repeat across a sheet, so
    each distinct cell value is parsed once (this is what keeps a 1 M-row plan fast)."""

    UNORDERED_KEPT = 1000  # text dates kept to say what their order may be (date_orders.py)

    def __init__(self, defaults: RowDefaults, tz: dt.tzinfo, order: str = "") -> None:
        self._defaults = defaults
        self._tz = tz
        self._order = order
        # Text dates read without --date-order: text → the orders it reads in. Any, and the
        # sheet is refused (build.py); with it, the first such date read, for the plan to show.
        self.unordered: dict[str, tuple[str, ...]] = {}
        self.read_as = ""  # as written
        self._codes: dict[Any, tuple[str, ...] | CellError] = {}
        self._from: dict[Any, str | CellError] = {}
        self._to: dict[Any, str | CellError] = {}
        self._hooks: dict[Any, str | CellError] = {}
        # What valid rows hold, each distinct value once: columns keep indexes into these.
        self.code_sets = _Interned[tuple[str, ...]]()
        self.texts = _Interned[str]()  # dates and webhooks; texts[0] is ""
        self.texts.add("")

    def check(self, raw: RawRow) -> ValidRow | InvalidRow:
        pid_cell, codes_cell, from_cell, to_cell, hook_cell = raw.cells
        reasons: list[tuple[str, str]] = []
        if merged := sorted({str(c) for c in raw.cells if isinstance(c, MergedCells)}):
            return self._invalid(raw, [("merged cells", why) for why in merged])

        pid = cell_text(pid_cell)
        if not pid:
            reasons.append(("ProspectId is empty", "ProspectId is empty"))
        elif excel_error(pid):
            reasons.append(
                ("ProspectId is an Excel error", f"ProspectId holds the Excel error {pid}")
            )
        elif isinstance(pid, FormulaWithoutValue):
            reasons.append(
                ("formula without a saved value", f"ProspectId: {FORMULA_WITHOUT_VALUE}")
            )
        elif not _GUID_RE.fullmatch(pid):
            reasons.append(("ProspectId is not a GUID", f"ProspectId {quoted(pid)} is not a GUID"))

        codes = self._cached(self._codes, codes_cell, parse_code_cell, reasons)
        if codes == ():
            codes = self._defaults.codes
            if not codes:
                reasons.append(
                    ("no activity codes", "no activity codes (empty cell and no --codes)")
                )
        from_date = self._cached(self._from, from_cell, self._parse_from, reasons)
        to_date = self._cached(self._to, to_cell, self._parse_to, reasons)
        webhook = self._cached(self._hooks, hook_cell, parse_webhook, reasons)
        from_date = from_date or self._defaults.from_date
        to_date = to_date or self._defaults.to_date
        if (
            from_date and to_date and from_date > to_date
        ):  # same fixed format: text order is time order
            (low, high), zone = as_read(str(self._tz), from_date, to_date)
            reasons.append(
                (
                    "FromDate after ToDate",
                    f"FromDate {low} is after ToDate {high} ({zone})",
                )
            )
        if raw.extra_cells:
            reasons.append(
                (
                    "more cells than the header",
                    f"{raw.extra_cells} more non-empty cell(s) than the header has columns",
                )
            )

        if reasons:
            return self._invalid(raw, reasons)
        assert isinstance(codes, tuple)
        return ValidRow(
            row=raw.row,
            prospect_id=pid.lower(),
            codes=codes,
            from_date=str(from_date),
            to_date=str(to_date),
            webhook=str(webhook or self._defaults.webhook),
        )

    @staticmethod
    def _invalid(raw: RawRow, reasons: list[tuple[str, str]]) -> InvalidRow:
        pid_cell, codes_cell, from_cell, to_cell, hook_cell = raw.cells
        return InvalidRow(
            row=raw.row,
            reasons=tuple(reasons),
            prospect_id=cell_text(pid_cell),
            codes=cell_text(codes_cell),
            from_date=cell_text(from_cell),
            to_date=cell_text(to_cell),
            webhook=cell_text(hook_cell),
        )

    def check_chunk(self, chunk: Chunk, invalid: Callable[[InvalidRow], None]) -> CheckedChunk:
        """Every row of a chunk: the valid ones as columns; each invalid one, with its
        reasons, goes to ``invalid`` as it is found (so none are held here)."""
        n = len(chunk)

        def cells(index: int) -> Table:
            column = chunk.column(index)
            return column if chunk.text_only else _distinguishable(column)

        ok, hi, lo = _guids(chunk.column(0))
        codes_ok, codes = self._column(cells(1), self._codes_or_default, self.code_sets)
        from_ok, froms = self._column(cells(2), self._from_or_default, self.texts)
        to_ok, tos = self._column(cells(3), self._to_or_default, self.texts)
        hooks_ok, hooks = self._column(cells(4), self._hook_or_default, self.texts)
        ok &= codes_ok & from_ok & to_ok & hooks_ok & ~chunk.beyond_header()
        ok &= ~self._reversed(froms, tos)
        blank = 0
        refused = np.flatnonzero(~ok)
        for index, raw in zip(refused.tolist(), chunk.rows(refused), strict=True):
            if raw is None:
                blank += 1
                continue
            checked = self.check(raw)
            if isinstance(checked, InvalidRow):
                invalid(checked)
                continue
            ok[index] = True
            number = int(checked.prospect_id.replace("-", ""), 16)
            hi[index], lo[index] = number >> 64, number & _LOW_64
            codes[index] = self.code_sets.add(checked.codes)
            froms[index] = self.texts.add(checked.from_date)
            tos[index] = self.texts.add(checked.to_date)
            hooks[index] = self.texts.add(checked.webhook)
        valid = Columns(
            rows=chunk.first_row + np.flatnonzero(ok),
            lead_hi=hi[ok],
            lead_lo=lo[ok],
            codes=codes[ok],
            from_date=froms[ok],
            to_date=tos[ok],
            webhook=hooks[ok],
            code_sets=self.code_sets.values,
            texts=self.texts.values,
        )
        return CheckedChunk(valid=valid, blank=blank, records=n)

    @staticmethod
    def _column(
        cells: Table, parse: Callable[[Any], Any], interned: _Interned[Any]
    ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.int32]]:
        """(accepted, index of the value in ``interned``) for each cell; each distinct cell
        is parsed once. A cell the rule refuses is not accepted (its row is checked again on
        its own, which names the reason)."""
        keys, distinct = pd.factorize(cells)
        accepted = np.zeros(len(distinct) + 1, dtype=bool)  # the last one: empty (key -1)
        indexes = np.zeros(len(distinct) + 1, dtype=np.int32)
        for key, value in enumerate([*distinct.tolist(), None]):
            try:
                indexes[key] = interned.add(parse(value))
            except CellError:
                continue
            accepted[key] = True
        return accepted[keys], indexes[keys]

    def _reversed(
        self, froms: npt.NDArray[np.int32], tos: npt.NDArray[np.int32]
    ) -> npt.NDArray[np.bool_]:
        """Rows whose FromDate is after their ToDate, checked once per distinct pair."""
        keys, pairs = pd.factorize((froms.astype(np.int64) << 32) | tos.astype(np.int64))
        texts = self.texts.values
        after = np.array(
            [
                bool(texts[f]) and bool(texts[t]) and texts[f] > texts[t]
                for f, t in ((pair >> 32, pair & 0xFFFFFFFF) for pair in pairs.tolist())
            ],
            dtype=bool,
        )
        return after[keys] if len(after) else np.zeros(len(froms), dtype=bool)

    def _codes_or_default(self, value: Any) -> tuple[str, ...]:
        codes = parse_code_cell(value) or self._defaults.codes
        if not codes:
            raise CodeError("no activity codes")
        return codes

    def _from_or_default(self, value: Any) -> str:
        return self._parse_from(value) or self._defaults.from_date

    def _to_or_default(self, value: Any) -> str:
        return self._parse_to(value) or self._defaults.to_date

    def _hook_or_default(self, value: Any) -> str:
        return parse_webhook(value) or self._defaults.webhook

    def _parse_from(self, value: Any) -> str:
        return self._prefixed("FromDate", value, end_of_day=False)

    def _parse_to(self, value: Any) -> str:
        return self._prefixed("ToDate", value, end_of_day=True)

    def _prefixed(self, column: str, value: Any, *, end_of_day: bool) -> str:
        try:
            read = parse_date_cell(value, end_of_day=end_of_day, tz=self._tz, order=self._order)
        except UnorderedDate as unordered:
            if len(self.unordered) < self.UNORDERED_KEPT:
                self.unordered.setdefault(unordered.text, unordered.orders)
            error = DateError(f"{column} {unordered}")
            error.kind = unordered.kind  # one kind for both columns: the order is the sheet's
            raise error from None
        except DateError as exc:
            error = DateError(f"{column} {exc}")
            error.kind = f"bad {column}"
            raise error from None
        if not self.read_as and self._order and isinstance(value, str) and read:
            self.read_as = value.strip() if is_ordered(value.strip()) else ""
        return read

    @staticmethod
    def _cached(
        cache: dict[Any, Any],
        value: Any,
        parse: Callable[[Any], Any],
        reasons: list[tuple[str, str]],
    ) -> Any:
        # True == 1 == 1.0 and ErrorCell("#N/A") == "#N/A", but they are different cells.
        key = value if value is None or value.__class__ is str else (value.__class__, value)
        try:
            result = cache[key]
        except KeyError:
            try:
                result = parse(value)
            except CellError as exc:
                result = exc
            if len(cache) < 100_000:  # high-cardinality columns must not grow the cache forever
                cache[key] = result
        except TypeError:  # an unhashable cell value: parse it every time
            try:
                result = parse(value)
            except CellError as exc:
                result = exc
        if result.__class__ is str or result.__class__ is tuple:
            return result
        reasons.append((result.kind, str(result)))
        return ""
