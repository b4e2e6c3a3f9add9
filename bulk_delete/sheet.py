"""file → rows: read a CSV or Excel sheet as a stream of raw rows.

Nothing is validated here beyond the file and its header; every data row comes out with its
sheet row number (header = row 1, as Excel shows it) and the five cells the job uses, raw.
Rows are streamed, never loaded whole, so memory does not grow with the file.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import operator
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .cells import ods_error_cells, xls_error_cells, xlsx_formulas_without_value
from .errors import InputError

# The five columns the job reads, in this order in RawRow.cells.
FIELDS = ("ProspectId", "ActivityEventList", "FromDate", "ToDate", "StatusWebhookURL")

# Headers match case-insensitively, ignoring spaces, underscores and hyphens.
HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "ProspectId": ("prospectid", "leadid"),
    "ActivityEventList": (
        "activityeventlist",
        "activityevent",
        "activityevents",
        "activitycode",
        "activitycodes",
        "code",
        "codes",
        "eventcode",
    ),
    "FromDate": ("fromdate", "from", "startdate"),
    "ToDate": ("todate", "to", "enddate"),
    "StatusWebhookURL": ("statuswebhookurl", "webhookurl", "webhook"),
}
_ALIAS_TO_FIELD = {alias: name for name, aliases in HEADER_ALIASES.items() for alias in aliases}

CSV_DELIMITERS = (",", ";", "\t", "|")
EXCEL_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".xlsb", ".ods")
_SAMPLE_BYTES = 64 * 1024
_BLOCK_BYTES = 1 << 20
_XLSX_MAGIC = b"PK\x03\x04"
_UTF16_BOMS = ((codecs.BOM_UTF16_LE, "UTF-16LE"), (codecs.BOM_UTF16_BE, "UTF-16BE"))


Cells = tuple[Any, Any, Any, Any, Any]
# A row's cells → (the five cells the job uses, non-empty cells beyond the header's width).
Picker = Callable[[list[Any]], tuple[Cells, int]]
IsBlank = Callable[[Sequence[Any]], bool]


def normalise_header(name: Any) -> str:
    return re.sub(r"[\s_\-]+", "", str(name or "")).lower()


@dataclass(frozen=True, slots=True)
class RawRow:
    """One data row: its sheet row number and the five cells (None where no column)."""

    row: int
    cells: tuple[Any, Any, Any, Any, Any]
    extra_cells: int = 0  # non-empty cells beyond the header's width


@dataclass(frozen=True, kw_only=True)
class SheetInfo:
    path: Path
    kind: str  # "csv" or "excel"
    sheet: str = ""
    delimiter: str = ""
    encoding: str = ""
    columns: dict[str, str] = field(default_factory=dict)  # field → header as written
    warnings: tuple[str, ...] = ()


class Sheet:
    """An opened input: ``info`` describes it, iterating yields RawRow; blank rows come
    through as ``None`` so the caller can count them."""

    def __init__(
        self,
        info: SheetInfo,
        rows: Iterator[RawRow | None],
        closer: Callable[[], object] | None = None,
    ) -> None:
        self.info = info
        self._rows = rows
        self._closer = closer

    def __iter__(self) -> Iterator[RawRow | None]:
        return self._rows

    def close(self) -> None:
        if self._closer is not None:
            self._closer()

    def __enter__(self) -> Sheet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_sheet(path: str | Path, *, sheet: str | None = None) -> Sheet:
    """Open a CSV or Excel file. Raises InputError (exit 2) for anything unreadable."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a sheet")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty")
    suffix = path.suffix.lower()
    if suffix in EXCEL_SUFFIXES:
        return _open_excel(path, sheet)
    if sheet:
        raise InputError(f"{path}: --sheet applies to Excel files only")
    return _open_csv(path)


# ---------------------------------------------------------------- header


def map_header(path: Path, header: Sequence[Any]) -> tuple[dict[str, int], dict[str, str]]:
    """field → column index, and field → header text, from a header row."""
    indexes: dict[str, int] = {}
    written: dict[str, str] = {}
    for index, name in enumerate(header):
        field_name = _ALIAS_TO_FIELD.get(normalise_header(name))
        if field_name is None:
            continue
        if field_name in indexes:
            raise InputError(
                f"{path}: two columns mean {field_name}: {written[field_name]!r} and {name!r}"
            )
        indexes[field_name] = index
        written[field_name] = str(name).strip()
    if "ProspectId" not in indexes:
        shown = ", ".join(repr(str(h).strip()) for h in header if str(h or "").strip()) or "none"
        raise InputError(
            f"{path}: no ProspectId column (accepted headers: ProspectId, LeadId, "
            f"Prospect ID, Lead ID); the header row has {shown}"
        )
    return indexes, written


def _picker(indexes: dict[str, int], width: int) -> Picker:
    """A function that takes a row's cells and returns (five cells, extra non-empty cells)."""
    positions = [indexes.get(name) for name in FIELDS]
    # Picked in C by one itemgetter. A column the sheet lacks reads index `width`: every row
    # is brought to exactly the header's width, then gets one None appended for it.
    getter = operator.itemgetter(*[width if i is None else i for i in positions])

    def pick(cells: list[Any]) -> tuple[Cells, int]:
        n = len(cells)
        extra = 0
        if n > width:
            extra = sum(1 for cell in cells[width:] if cell is not None and str(cell).strip())
            cells = cells[:width]
        elif n < width:  # a short row: the cells it lacks are empty
            cells = cells + [None] * (width - n)
        return getter([*cells, None]), extra

    return pick


def _blank_text(cells: Sequence[Any]) -> bool:
    return not "".join(cells).strip()


def _blank(cells: Sequence[Any]) -> bool:
    return all(cell is None or (isinstance(cell, str) and not cell.strip()) for cell in cells)


# ---------------------------------------------------------------- CSV


def _detect_encoding(path: Path) -> tuple[str, str, tuple[str, ...]]:
    """(codec, name to show, warnings). UTF-16 with a BOM (Excel's "Unicode Text" save) or
    UTF-8 (with or without BOM) when the whole file decodes; else cp1252, with a warning.

    The whole file is checked with an incremental decoder (fast, constant memory) because a
    bad byte can sit on row 900,000, after a chunked reader has already planned the rest.
    """
    with path.open("rb") as handle:
        head = handle.read(_SAMPLE_BYTES)
        if head.startswith(_XLSX_MAGIC):
            raise InputError(f"{path}: this is an Excel workbook named like a CSV; rename it .xlsx")
        for bom, name in _UTF16_BOMS:
            if head.startswith(bom):
                if not _decodes(handle, head, "utf-16"):
                    raise InputError(f"{path}: starts like {name} text but does not decode as it")
                return "utf-16", name, ()
        if b"\x00" in head:
            raise InputError(f"{path}: not a text file (it holds binary data); expected CSV")
        if not _decodes(handle, head, "utf-8"):
            return (
                "cp1252",
                "cp1252",
                (
                    f"{path.name} is not UTF-8; read it as Windows-1252 (cp1252). "
                    "Save as 'CSV UTF-8' to be sure names come through unchanged.",
                ),
            )
    return "utf-8-sig", "utf-8", ()


def _decodes(handle: IO[bytes], head: bytes, codec: str) -> bool:
    decoder = codecs.getincrementaldecoder(codec)()
    block = head
    try:
        while block:
            decoder.decode(block)
            block = handle.read(_BLOCK_BYTES)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _detect_delimiter(path: Path, first_line: str) -> str:
    """The delimiter that splits the header into the most recognised columns."""
    best, best_score = ",", (-1, -1)
    for delimiter in CSV_DELIMITERS:
        cells = next(csv.reader([first_line], delimiter=delimiter), [])
        known = sum(1 for cell in cells if normalise_header(cell) in _ALIAS_TO_FIELD)
        score = (known, len(cells))
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _open_csv(path: Path) -> Sheet:
    encoding, shown, warnings = _detect_encoding(path)
    handle: IO[str] = path.open("r", encoding=encoding, errors="replace", newline="")
    try:
        reader_rows, info = _csv_header(path, handle, shown, warnings)
    except BaseException:
        handle.close()
        raise
    return Sheet(info, reader_rows, handle.close)


def _csv_header(
    path: Path, handle: IO[str], encoding: str, warnings: tuple[str, ...]
) -> tuple[Iterator[RawRow | None], SheetInfo]:
    # Find the header: the first line that is not blank, counting rows as Excel would.
    row_number = 0
    first_line = ""
    for line in handle:
        row_number += 1
        if line.strip():
            first_line = line
            break
    if not first_line:
        raise InputError(f"{path}: the file has no header row (only blank lines)")
    delimiter = _detect_delimiter(path, first_line)
    try:
        header = next(csv.reader([first_line], delimiter=delimiter))
    except csv.Error as exc:
        raise InputError(f"{path}: the header row cannot be read as CSV ({exc})") from None
    indexes, written = map_header(path, header)
    reader = csv.reader(handle, delimiter=delimiter)
    info = SheetInfo(
        path=path,
        kind="csv",
        delimiter=delimiter,
        encoding=encoding,
        columns=written,
        warnings=warnings,
    )
    return _csv_rows(path, reader, row_number, _picker(indexes, len(header))), info


def _csv_rows(path: Path, reader: Any, header_row: int, pick: Picker) -> Iterator[RawRow | None]:
    try:
        yield from _numbered(reader, header_row, pick, _blank_text)
    except csv.Error as exc:
        raise InputError(f"{path}: line {reader.line_num} cannot be read as CSV ({exc})") from None


def _numbered(
    rows: Iterable[list[Any]], header_row: int, pick: Picker, blank: IsBlank
) -> Iterator[RawRow | None]:
    """Data rows numbered as Excel shows them (the row after the header is header_row + 1)."""
    row = header_row
    for cells in rows:
        row += 1
        if blank(cells):
            yield None
            continue
        picked, extra = pick(cells)
        yield RawRow(row, picked, extra)


# ---------------------------------------------------------------- Excel


def _open_excel(path: Path, sheet: str | None) -> Sheet:
    with path.open("rb") as handle:
        magic = handle.read(8)
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        if not magic.startswith(_XLSX_MAGIC):
            raise InputError(f"{path}: not a valid Excel workbook (.xlsx files are zip archives)")
        return _open_openpyxl(path, sheet)
    return _open_calamine(path, sheet)


def _choose_sheet(path: Path, names: list[str], wanted: str | None) -> str:
    if not names:
        raise InputError(f"{path}: the workbook has no sheets")
    if not wanted:
        return names[0]
    if wanted in names:
        return wanted
    lowered = {name.lower(): name for name in names}
    if wanted.lower() in lowered:
        return lowered[wanted.lower()]
    raise InputError(
        f"{path}: no sheet named {wanted!r}; the sheets are " + ", ".join(map(repr, names))
    )


def _excel_cell(value: Any, number_format: str | None) -> Any:
    """A datetime whose cell format shows no time is a date (so date-only rules apply)."""
    if isinstance(value, dt.datetime) and number_format is not None:
        fmt = number_format.lower()
        if "h" not in fmt and "s" not in fmt and value.time() == dt.time(0):
            return value.date()
    if isinstance(value, dt.time):
        return None if value == dt.time(0) else value.isoformat()
    return value


def _excel_rows(
    path: Path, rows: Iterator[list[Any]], sheet_name: str, warnings: tuple[str, ...] = ()
) -> tuple[Iterator[RawRow | None], SheetInfo]:
    row_number = 0
    header: Sequence[Any] | None = None
    for cells in rows:
        row_number += 1
        if not _blank(cells):
            header = cells
            break
    if header is None:
        raise InputError(f"{path}: sheet {sheet_name!r} is empty (no header row)")
    width = len(header)
    while width and _blank(header[width - 1 : width]):
        width -= 1
    indexes, written = map_header(path, header[:width])
    pick = _picker(indexes, width)
    info = SheetInfo(path=path, kind="excel", sheet=sheet_name, columns=written, warnings=warnings)

    return _numbered(rows, row_number, pick, _blank), info


def _open_openpyxl(path: Path, sheet: str | None) -> Sheet:
    import openpyxl

    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise InputError(f"{path}: not a valid Excel workbook ({exc})") from None
    try:
        name = _choose_sheet(path, workbook.sheetnames, sheet)
        worksheet = workbook[name]
        marks = xlsx_formulas_without_value(
            workbook._archive,  # type: ignore[attr-defined]
            worksheet._worksheet_path,  # type: ignore[attr-defined]
        )

        def cells() -> Iterator[list[Any]]:
            for row in worksheet.iter_rows():
                values = [_excel_cell(c.value, getattr(c, "number_format", None)) for c in row]
                if marks:  # a formula with no saved value reads as None: it is not empty
                    for index, cell in enumerate(row):
                        where = (getattr(cell, "row", 0), getattr(cell, "column", 0))
                        if values[index] is None and where in marks:
                            values[index] = marks[where]
                yield values

        rows, info = _excel_rows(path, cells(), name)
    except BaseException:
        workbook.close()
        raise
    return Sheet(info, rows, workbook.close)


def _open_calamine(path: Path, sheet: str | None) -> Sheet:
    import python_calamine

    suffix = path.suffix.lower()
    try:
        workbook = python_calamine.CalamineWorkbook.from_path(str(path))
        name = _choose_sheet(path, list(workbook.sheet_names), sheet)
        data = workbook.get_sheet_by_name(name).to_python(skip_empty_area=False)
        # calamine reads error cells as empty: find them in the file itself.
        marks = (
            xls_error_cells(path, name)
            if suffix == ".xls"
            else ods_error_cells(path, name)
            if suffix == ".ods"
            else {}
        )
    except InputError:
        raise
    except Exception as exc:  # calamine raises its own error types for every kind of bad file
        raise InputError(f"{path}: not a valid spreadsheet ({exc})") from None
    for (row, column), mark in marks.items():
        if row <= len(data) and column <= len(data[row - 1]) and data[row - 1][column - 1] == "":
            data[row - 1][column - 1] = mark
    warnings: tuple[str, ...] = ()
    if suffix == ".xlsb":
        warnings = (
            f"{path.name}: Excel error cells (#N/A …) read as empty in .xlsb files; "
            "save as .xlsx to see them named",
        )
    rows, info = _excel_rows(path, iter(data), name, warnings)
    return Sheet(info, rows)
