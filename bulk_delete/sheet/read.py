"""file → rows: read a CSV or Excel sheet in chunks of rows, as tables.

Nothing is validated here beyond the file and its header. A chunk is a block of consecutive
records, each with its sheet row number (header = row 1, as Excel shows it, blank lines
counted), as one 2-D table of raw cells: pandas' C parser reads CSV, python-calamine reads
every Excel format. Chunks keep memory bounded whatever the file's length, and let the checks
work on whole columns. Iterating a Sheet gives the same rows one by one, as RawRow.
"""

from __future__ import annotations

import bisect
import codecs
import csv
import dataclasses
import datetime as dt
import itertools
import operator
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from ..errors import InputError
from ..files import require_file
from .cells import (
    FoundCells,
    Range,
    active_sheet,
    column_letters,
    ods_cells,
    xls_error_cells,
    xlsx_cells,
)
from .headers import (  # noqa: F401 - HEADER_ALIASES and normalise_header: sheet's API
    ALIAS_TO_FIELD,
    HEADER_ALIASES,
    HEADER_SEARCH_ROWS,
    Header,
    header_index,
    normalise_header,
    read_header,
)
from .markers import MergedCells
from .parts import Parts, cut, rows_of

# The five columns the job reads, in this order in RawRow.cells.
FIELDS = ("ProspectId", "ActivityEventList", "FromDate", "ToDate", "StatusWebhookURL")
_ALIAS_TO_FIELD = ALIAS_TO_FIELD

CSV_DELIMITERS = (",", ";", "\t", "|")
EXCEL_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".xlsb", ".ods")
_SAMPLE_BYTES = 64 * 1024
_BLOCK_BYTES = 1 << 20
_XLSX_MAGIC = b"PK\x03\x04"
NUMBERS = (
    "{path}: is an Apple Numbers file: in Numbers use File → Export To → Excel (or CSV), "
    "then give that file"
)
_UTF16_BOMS = ((codecs.BOM_UTF16_LE, "UTF-16LE"), (codecs.BOM_UTF16_BE, "UTF-16BE"))
CHUNK_ROWS = 100_000  # records per chunk: memory stays bounded, columns stay long
CHUNK_COLUMNS = 12  # ... of up to this many columns read; a wider sheet: fewer rows a chunk
SPARE_COLUMNS = 8  # a CSV row this much longer than the header is still read by pandas


Cells = tuple[Any, Any, Any, Any, Any]
# A row's cells → (the five cells the job uses, non-empty cells beyond the header's width).
Picker = Callable[[list[Any]], tuple[Cells, int]]
Table = npt.NDArray[np.object_]


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
    ignored: tuple[str, ...] = ()  # headers of the columns left out, as written
    ignored_at: tuple[int, ...] = ()  # their columns in each Chunk's ``columns`` (or none)
    written_by: str = ""  # "preview" or "export": a file bulk-delete wrote (its dates are UTC)
    warnings: tuple[str, ...] = ()
    header_row: int = 1  # the header's row, as Excel numbers it (rows above it are not read)


class Sheet:
    """An opened input: ``info`` describes it; ``chunks()`` yields its records as tables,
    once. Iterating yields the same records one by one: RawRow, or None for a blank row."""

    def __init__(
        self,
        info: SheetInfo,
        chunks: Iterator[Chunk],
        closer: Callable[[], object] | None = None,
    ) -> None:
        self.info = info
        self._chunks = chunks
        self._closer = closer

    def chunks(self) -> Iterator[Chunk]:
        return self._chunks

    def __iter__(self) -> Iterator[RawRow | None]:
        for chunk in self._chunks:
            yield from chunk.rows()

    def close(self) -> None:
        if self._closer is not None:
            self._closer()

    def __enter__(self) -> Sheet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_sheet(
    path: str | Path,
    *,
    sheet: str | None = None,
    ignore_columns: Sequence[str] = (),
    keep_ignored: bool = True,
    header_row: int | None = None,
) -> Sheet:
    """Open a CSV or Excel file. Raises InputError (exit 2) for anything unreadable, and for
    a header close to a known column (``ignore_columns`` leaves such columns out).
    ``keep_ignored=False``: the chunks leave out the columns the job does not read (see
    _Narrow), and ``info.ignored_at`` is empty. ``header_row``: the header's row (None: row
    1, or the one below a title: headers.header_index)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".numbers" and path.exists():  # (older Numbers documents are folders)
        raise InputError(NUMBERS.format(path=path))
    require_file(path, "sheet")  # a FIFO or /dev/zero is never opened
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty")
    if suffix in EXCEL_SUFFIXES:
        return _open_excel(path, sheet, ignore_columns, keep_ignored, header_row)
    if sheet:
        raise InputError(f"{path}: --sheet applies to Excel files only")
    return _open_csv(path, ignore_columns, keep_ignored, header_row)


# ---------------------------------------------------------------- header


def _info(header: Header, ignore: Sequence[str], **fields: Any) -> SheetInfo:
    """The SheetInfo of a header, with a warning for an --ignore-column that names nothing."""
    present = {normalise_header(name) for name in (*header.ignored, *header.written.values())}
    unused = [name for name in ignore if normalise_header(name) not in present]
    warnings = tuple(fields.pop("warnings", ())) + tuple(
        f"--ignore-column {name!r} matches no column of the sheet" for name in unused
    )
    return SheetInfo(
        columns=header.written,
        ignored=header.ignored,
        ignored_at=header.ignored_at,
        written_by=header.written_by,
        warnings=warnings,
        **fields,
    )


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
            beyond = cells[width:]
            if beyond.count("") != len(beyond):  # (a quick look first: spare cells are "")
                extra = sum(1 for cell in beyond if not _empty(cell))
            cells = cells[:width]
        elif n < width:  # a short row: the cells it lacks are empty
            cells = cells + [None] * (width - n)
        return getter([*cells, None]), extra

    return pick


@dataclass(frozen=True)
class _Narrow:
    """Chunks without the header's columns the job does not read. A lead sheet often has
    dozens (names, emails, notes): held, they would cost memory on every row, yet they
    change one thing only, whether a row is blank. So each chunk has them replaced, as soon
    as it is read, by one column that says whether the row holds anything in them."""

    dropped: tuple[int, ...]  # the header's columns the job does not read
    kept: tuple[int, ...]  # the ones it reads, in order
    indexes: dict[str, int]  # field → its column in a narrowed chunk
    width: int  # a narrowed chunk's header: the columns read, then that one column

    @classmethod
    def of(cls, indexes: dict[str, int], width: int) -> _Narrow | None:
        """None when every column of the header is read (nothing to leave out)."""
        read = sorted(indexes.values())
        dropped = tuple(index for index in range(width) if index not in indexes.values())
        if not dropped:
            return None
        at = {index: place for place, index in enumerate(read)}
        narrow = {name: at[index] for name, index in indexes.items()}
        return cls(dropped, tuple(read), narrow, len(read) + 1)

    def apply(self, columns: list[Table], text_only: bool) -> list[Table]:
        header_width = len(self.kept) + len(self.dropped)
        filled = np.full(len(columns[0]), "", dtype=object)
        dropped = [columns[index] for index in self.dropped]
        filled[_filled(dropped, len(filled), text_only)] = "x"
        return [*(columns[index] for index in self.kept), filled, *columns[header_width:]]


def _filled(columns: list[Table], records: int, text_only: bool) -> npt.NDArray[np.bool_]:
    """Records with a cell that is not empty (as _empty sees it) in any of ``columns``: a
    cell that is not "" is looked at only while its record has none yet."""
    found = np.zeros(records, dtype=bool)
    for column in columns:
        todo = np.flatnonzero(~found & (column != ""))
        cells = column[todo].tolist()
        if text_only:  # (every cell a str; "" is left out already)
            found[todo] = ~np.fromiter(map(str.isspace, cells), dtype=bool, count=len(cells))
        else:
            found[todo] = [not _empty(cell) for cell in cells]
    return found


def _chunk_rows(columns: int) -> int:
    """Records per chunk of a sheet read ``columns`` wide: a chunk is read whole before its
    other columns are left out, so a wide sheet (a CRM export has dozens) is read in fewer
    rows at a time, and memory does not grow with its width."""
    return max(1, min(CHUNK_ROWS, CHUNK_ROWS * CHUNK_COLUMNS // max(columns, 1)))


def _empty(cell: Any) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def _blank(cells: list[Any]) -> bool:
    return cells.count("") == len(cells) or all(_empty(cell) for cell in cells)


@dataclass(frozen=True, slots=True)
class Chunk:
    """Consecutive records of a sheet as columns: ``columns[j][i]`` is the cell in column j
    of sheet row ``first_row + i``. Empty cells are "". Columns from ``width`` on lie beyond
    the header (a CSV has some spare ones, empty unless a row is longer than the header).
    A narrowed chunk (see _Narrow) has for header the columns read and one more."""

    first_row: int
    columns: list[Table]
    width: int
    positions: tuple[int | None, ...]  # the column of each of FIELDS; None: no such column
    pick: Picker = field(repr=False)
    text_only: bool = False  # every cell is a str (CSV), so no other type needs care

    def __len__(self) -> int:
        return len(self.columns[0])

    def column(self, index: int) -> Table:
        """The cells of FIELDS[index], one per record (all None when the sheet lacks it)."""
        position = self.positions[index]
        if position is None:
            return np.full(len(self), None, dtype=object)
        return self.columns[position]

    def beyond_header(self) -> npt.NDArray[np.bool_]:
        """Records with something in a cell beyond the header (whitespace counts here; the
        row-by-row check that follows does not count it)."""
        found = np.zeros(len(self), dtype=bool)
        for column in self.columns[self.width :]:
            found |= column != ""
        return found

    def rows(self, indexes: npt.NDArray[np.intp] | None = None) -> Iterator[RawRow | None]:
        """Records (all, or those at ``indexes``) as the row-by-row checks see them: a
        RawRow, or None for a blank record."""
        if indexes is None:
            indexes = np.arange(len(self))
        columns = self.columns[: self.width] + [
            column for column in self.columns[self.width :] if (column[indexes] != "").any()
        ]  # (spare columns that are empty here are left out: they change nothing)
        first_row, pick = self.first_row, self.pick
        records = zip(*(column[indexes].tolist() for column in columns), strict=True)
        for index, record in zip(indexes.tolist(), records, strict=True):
            cells = list(record)
            if _blank(cells):
                yield None
                continue
            picked, extra = pick(cells)
            yield RawRow(first_row + index, _nones(picked), extra)


def _nones(cells: Cells) -> Cells:
    """Empty text reads as None, as an absent cell does."""
    if "" not in cells:
        return cells
    a, b, c, d, e = [None if cell == "" else cell for cell in cells]
    return a, b, c, d, e


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
            kind = _zip_kind(path)
            if kind == "numbers":
                raise InputError(NUMBERS.format(path=path))
            if kind == "ods":
                raise InputError(
                    f"{path}: this is an OpenDocument spreadsheet named like a CSV; rename it .ods"
                )
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


def _zip_kind(path: Path) -> str:
    """What a zip archive holds: "numbers" (Apple Numbers: Index/*.iwa), "ods", "excel"
    (or anything else, including a damaged zip)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if any(name.endswith(".iwa") or name == "Index.zip" for name in names):
                return "numbers"
            if "mimetype" in names and b"opendocument.spreadsheet" in archive.read("mimetype"):
                return "ods"
    except (zipfile.BadZipFile, OSError, KeyError, ValueError):
        pass
    return "excel"


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


def _open_csv(
    path: Path, ignore: Sequence[str], keep_ignored: bool, wanted: int | None = None
) -> Sheet:
    encoding, shown, warnings = _detect_encoding(path)
    with path.open("r", encoding=encoding, errors="replace", newline="") as handle:
        header = _csv_header(path, handle, wanted)
    found = read_header(path, header.cells, ignore)
    info = _info(
        found,
        ignore,
        path=path,
        kind="csv",
        delimiter=header.delimiter,
        encoding=shown,
        warnings=warnings,
        header_row=header.row,
    )
    width = len(header.cells)
    narrow = None if keep_ignored else _Narrow.of(found.indexes, width)
    if narrow is not None:
        info = dataclasses.replace(info, ignored_at=())
    layout = _Layout(path, encoding, header, width, found.indexes, narrow)
    return Sheet(info, _read_ahead(_csv_chunks(layout)))


def _csv_header(path: Path, handle: IO[str], wanted: int | None) -> _CsvHeader:
    """Where the header is, its cells and the delimiter: of the header found with each
    delimiter, the one split into the most known columns (a title has no delimiter)."""
    lines = _Lines(handle)
    found: list[_CsvHeader] = []
    refused: list[InputError] = []
    for delimiter in CSV_DELIMITERS:
        try:
            found.append(_header_by(path, lines, delimiter, wanted))
        except InputError as error:
            refused.append(error)
    if not found:
        raise refused[0]
    return max(found, key=lambda header: _known(header.cells))  # (the first of equals)


def _header_by(path: Path, lines: Iterable[str], delimiter: str, wanted: int | None) -> _CsvHeader:
    """The header as found when the rows are split by ``delimiter``. Rows are records, as
    the csv module reads them, and as pandas counts the rows it skips above the data: a
    quoted cell over two lines is one row, as in Excel."""
    reader = csv.reader(lines, delimiter=delimiter)
    ends: list[int] = []  # the lines read down to the end of each record

    def records() -> Iterator[list[str]]:
        for cells in reader:
            ends.append(reader.line_num)
            yield cells

    try:
        leading = _leading(records(), wanted or 0, blank=_blank)
    except csv.Error as exc:
        raise InputError(f"{path}: line {reader.line_num} cannot be read as CSV ({exc})") from None
    index = header_index(path, leading, wanted)
    if index is None:
        raise InputError(f"{path}: the file has no header row (only blank lines)")
    return _CsvHeader(index + 1, ends[index], leading[index], delimiter)


def _known(cells: list[str]) -> tuple[int, int]:
    """How well a delimiter split a header: (known columns, columns)."""
    return sum(1 for cell in cells if normalise_header(cell) in _ALIAS_TO_FIELD), len(cells)


@dataclass(frozen=True)
class _CsvHeader:
    row: int  # as Excel numbers it
    lines: int  # the text lines down to its end: where the csv module starts the data
    cells: list[str]
    delimiter: str


class _Lines:
    """A file's first lines, read from it once, and again for each delimiter tried."""

    def __init__(self, handle: IO[str]) -> None:
        self._handle = handle
        self._read: list[str] = []

    def __iter__(self) -> Iterator[str]:
        index = 0
        while True:
            if index == len(self._read):
                line = self._handle.readline()
                if not line:
                    return
                self._read.append(line)
            yield self._read[index]
            index += 1


def _leading(rows: Iterator[Any], wanted: int, blank: Callable[[Any], bool]) -> list[Any]:
    """The rows the header is looked for in (headers.header_index): down to the
    HEADER_SEARCH_ROWS-th counted from the first that is not blank, and at least ``wanted``
    (--header-row)."""
    leading: list[Any] = []
    first = None
    for row in rows:
        if first is None and not blank(row):
            first = len(leading)
        leading.append(row)
        if first is not None and len(leading) >= max(wanted, first + HEADER_SEARCH_ROWS):
            break
    return leading


@dataclass(frozen=True)
class _Layout:
    """Where a CSV's records start and how they are split."""

    path: Path
    encoding: str
    header: _CsvHeader
    width: int
    indexes: dict[str, int]
    narrow: _Narrow | None = None

    @property
    def delimiter(self) -> str:
        return self.header.delimiter

    @property
    def header_row(self) -> int:
        return self.header.row

    def chunk(self, first_row: int, columns: list[Table]) -> Chunk:
        indexes, width = self.indexes, self.width
        if self.narrow is not None:
            columns = self.narrow.apply(columns, text_only=True)
            indexes, width = self.narrow.indexes, self.narrow.width
        positions = tuple(indexes.get(name) for name in FIELDS)
        pick = _picker(indexes, width)
        return Chunk(first_row, columns, width, positions, pick, text_only=True)


def _csv_chunks(layout: _Layout) -> Iterator[Chunk]:
    """pandas' C parser, reading SPARE_COLUMNS more columns than the header names so that a
    longer row is seen, not refused. A row longer still, or quoting the C parser refuses,
    hands the rest of the file to the csv module: slower, and what the loader always did.
    (Cells are read as text: dtype "category" would skip a string per cell, but pandas
    infers numbers in it, and "0163" would come back as 163.)"""
    done = 0
    try:
        with pd.read_csv(
            layout.path,
            sep=layout.delimiter,
            header=None,
            names=range(layout.width + SPARE_COLUMNS),
            skiprows=layout.header_row,
            dtype=object,
            na_filter=False,
            skip_blank_lines=False,
            encoding=layout.encoding,
            encoding_errors="replace",
            chunksize=_chunk_rows(layout.width + SPARE_COLUMNS),
            engine="c",
        ) as reader:
            for frame in reader:
                columns = [frame[name].to_numpy(dtype=object) for name in frame.columns]
                records = len(frame)
                del frame  # (else it keeps the columns left out while the chunk is checked)
                chunk = layout.chunk(layout.header_row + 1 + done, columns)
                del columns
                yield chunk
                done += records
    except pd.errors.ParserError as error:
        if "EOF inside string" in str(error):  # the csv module would take the rest as one cell
            raise _unclosed_quote(layout) from None
        yield from _csv_module_chunks(layout, skip=done)


def _unclosed_quote(layout: _Layout) -> InputError:
    """A quote that opens a cell and is never closed: every line after it is that cell's, and
    the rows there would vanish without a word. The row it opens in is the file's last."""
    with _after_header(layout) as handle:
        records = sum(1 for _ in csv.reader(handle, delimiter=layout.delimiter))
    return InputError(
        f'{layout.path}: row {layout.header_row + records} opens a quoted cell (") that is '
        "never closed, so every line after it would be read into that one cell; close the "
        "quote or remove it"
    )


def _read_ahead(chunks: Iterator[Chunk]) -> Iterator[Chunk]:
    """The next chunk is read in a thread while the caller checks this one: pandas' parser
    lets go of the GIL while it splits lines, so the two overlap (about a tenth faster on
    two cores). Errors reach the caller as they were raised."""
    with ThreadPoolExecutor(1, thread_name_prefix="read-ahead") as pool:
        ahead = pool.submit(next, chunks, None)
        while (chunk := ahead.result()) is not None:
            ahead = pool.submit(next, chunks, None)
            yield chunk


def _csv_module_chunks(layout: _Layout, *, skip: int) -> Iterator[Chunk]:
    """The records after the first ``skip``, read by the csv module."""
    with _after_header(layout) as handle:
        reader = csv.reader(handle, delimiter=layout.delimiter)
        records = itertools.islice(reader, skip, None)
        first_row = layout.header_row + 1 + skip
        try:
            while batch := list(itertools.islice(records, _chunk_rows(layout.width))):
                count = len(batch)
                chunk = layout.chunk(first_row, _rectangle(batch, layout.width))
                del batch
                yield chunk
                first_row += count
        except csv.Error as exc:
            line = layout.header.lines + reader.line_num  # the reader began after the header
            raise InputError(f"{layout.path}: line {line} cannot be read as CSV ({exc})") from None


@contextmanager
def _after_header(layout: _Layout) -> Iterator[IO[str]]:
    """The CSV open as text past its header: the lines pandas skipped, as _header_by read them."""
    with layout.path.open("r", encoding=layout.encoding, errors="replace", newline="") as handle:
        for _ in range(layout.header.lines):
            handle.readline()
        yield handle


def _rectangle(records: list[list[Any]], width: int) -> list[Table]:
    """Records of any lengths as columns, at least ``width`` of them; missing cells are ""."""
    table = np.full((len(records), max(width, *map(len, records))), "", dtype=object)
    for index, record in enumerate(records):
        table[index, : len(record)] = record
    return list(np.ascontiguousarray(table.T))


# ---------------------------------------------------------------- Excel


def _open_excel(
    path: Path,
    sheet: str | None,
    ignore: Sequence[str],
    keep_ignored: bool,
    wanted: int | None = None,
) -> Sheet:
    """Every Excel format through python-calamine. calamine reads some cells as empty or as
    a date where Excel shows more (see cells.py): those are put back from the file itself."""
    import python_calamine

    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        with path.open("rb") as handle:
            if not handle.read(4).startswith(_XLSX_MAGIC):
                raise InputError(
                    f"{path}: not a valid Excel workbook (.xlsx files are zip archives)"
                )
    if suffix != ".xls" and _zip_kind(path) == "numbers":
        raise InputError(NUMBERS.format(path=path))
    parts = None
    try:
        workbook = python_calamine.CalamineWorkbook.from_path(str(path))
        name, warnings = _choose_sheet(path, workbook, sheet)
        if suffix in (".xlsx", ".xlsm"):
            found = xlsx_cells(path, name)
            parts = _cut(path, name)  # None: small enough to read whole
        elif suffix == ".xls":
            found = FoundCells(xls_error_cells(path, name), {})
        elif suffix == ".ods":
            found = ods_cells(path, name)
        else:
            found = FoundCells({}, {})
        rows: Iterator[list[Any]]
        if parts is None:
            worksheet = workbook.get_sheet_by_name(name)
            # iter_rows starts at row 1 but at the first column that holds anything.
            first_column = worksheet.start[1] if worksheet.start else 0
            rows = worksheet.iter_rows()
            if not found.merged:  # xlsx: from its XML (parts lose them); others: calamine's
                found = FoundCells(found.marks, found.shows_time, _calamine_merges(worksheet))
        else:
            first_column, rows = 0, rows_of(parts, name)  # column A first in every part
    except InputError:
        raise
    except Exception as exc:  # calamine raises its own error types for every kind of bad file
        if parts is not None:
            parts.close()
        raise InputError(f"{path}: not a valid spreadsheet ({exc})") from None
    try:
        opened = _excel_sheet(
            path, name, rows, found, (first_column, wanted), parts, ignore, keep_ignored
        )
    except BaseException:
        if parts is not None:
            parts.close()
        raise
    opened.info = dataclasses.replace(opened.info, warnings=(*warnings, *opened.info.warnings))
    return opened


def _calamine_merges(worksheet: Any) -> tuple[Range, ...]:
    """calamine's merged ranges (0-based) as Excel numbers them; none where it has none."""
    ranges = getattr(worksheet, "merged_cell_ranges", None) or ()
    return tuple((r1 + 1, c1 + 1, r2 + 1, c2 + 1) for (r1, c1), (r2, c2) in ranges)


def _cut(path: Path, name: str) -> Parts | None:
    try:
        return cut(path, name)
    except OSError as exc:  # the temporary folder: full, or not writable
        raise InputError(
            f"{path}: this sheet is cut into parts in the temporary folder to bound memory, "
            f"and they could not be written ({exc.strerror or exc}); free some space there "
            "(or set TMPDIR), or save the sheet as CSV"
        ) from None


def _excel_sheet(
    path: Path,
    name: str,
    rows: Iterator[list[Any]],
    found: FoundCells,
    placing: tuple[int, int | None],  # (the first column read, --header-row)
    parts: Parts | None,
    ignore: Sequence[str],
    keep_ignored: bool,
) -> Sheet:
    first_column, wanted = placing
    suffix = path.suffix.lower()
    warnings: tuple[str, ...] = ()
    if suffix == ".xlsb":
        warnings = (
            f"{path.name}: Excel error cells (#N/A …) read as empty in .xlsb files; "
            "save as .xlsx to see them named",
        )
    leading = _leading(rows, wanted or 0, blank=_blank)
    index = header_index(path, leading, wanted)
    if index is None:
        raise InputError(f"{path}: sheet {name!r} is empty (no header row)")
    header, row_number = leading[index], index + 1
    rows = itertools.chain(leading[row_number:], rows)  # the rows below the header
    width = len(header)
    while width and _empty(header[width - 1]):
        width -= 1
    read = read_header(path, header[:width], ignore)
    info = _info(
        read, ignore, path=path, kind="excel", sheet=name, warnings=warnings, header_row=row_number
    )
    positions = tuple(read.indexes.get(name) for name in FIELDS)
    pick = _picker(read.indexes, width)
    placed = _Marks(found, first_column)
    merged = _Merges(found.merged, first_column, row_number, positions)
    chunk_width = width
    narrow = None if keep_ignored else _Narrow.of(read.indexes, width)
    if narrow is not None:  # (the marks and merges above go by the sheet's own columns)
        info = dataclasses.replace(info, ignored_at=())
        positions = tuple(narrow.indexes.get(name) for name in FIELDS)
        pick, chunk_width = _picker(narrow.indexes, narrow.width), narrow.width

    def chunks() -> Iterator[Chunk]:
        first_row = row_number + 1
        while batch := list(itertools.islice(rows, _chunk_rows(width))):
            # Rows from two parts: as wide as the wider. A part whose cells beyond some
            # column are all empty reads narrower than the header: as wide as the header.
            longest = max(width, *map(len, batch))
            if min(map(len, batch)) != longest:
                batch = [row + [""] * (longest - len(row)) for row in batch]
            columns = [np.array(column, dtype=object) for column in zip(*batch, strict=True)]
            placed.put(columns, first_row)
            merged.put(columns, first_row)
            records = len(batch)
            del batch
            if narrow is not None:
                columns = narrow.apply(columns, text_only=False)
            yield Chunk(first_row, columns, chunk_width, positions, pick)
            first_row += records

    return Sheet(info, chunks(), None if parts is None else parts.close)


def _choose_sheet(path: Path, workbook: Any, wanted: str | None) -> tuple[str, tuple[str, ...]]:
    """(the sheet to read, warnings). A hidden sheet is read only when --sheet names it.
    Without --sheet: the sheet the workbook opens on (.xlsx/.xlsm) when it is visible, else
    the first visible one; the plan then names the sheets left unread."""
    import python_calamine

    sheets = list(workbook.sheets_metadata)
    names = [sheet.name for sheet in sheets]
    if not names:
        raise InputError(f"{path}: the workbook has no sheets")
    hidden = [
        sheet.name for sheet in sheets if sheet.visible != python_calamine.SheetVisibleEnum.Visible
    ]
    if wanted:
        name = _named_sheet(path, names, wanted)
        if name in hidden:
            return name, (f"sheet {name!r} is hidden in the workbook (read: --sheet names it)",)
        return name, ()
    readable = [
        sheet.name
        for sheet in sheets
        if sheet.name not in hidden and sheet.typ == python_calamine.SheetTypeEnum.WorkSheet
    ]
    if not readable:
        raise InputError(
            f"{path}: the workbook has no visible worksheet (a hidden one is read only when "
            "named); name one with --sheet"
        )
    active = active_sheet(path) if path.suffix.lower() in (".xlsx", ".xlsm") else None
    name = active if active is not None and active in readable else readable[0]
    warnings = []
    if others := [other for other in readable if other != name]:
        warnings.append(
            f"workbook has other sheet(s) {', '.join(map(repr, others))} (not read; "
            "--sheet NAME reads one)"
        )
    if hidden:
        warnings.append(f"workbook has hidden sheet(s) {', '.join(map(repr, hidden))} (not read)")
    return name, tuple(warnings)


def _named_sheet(path: Path, names: list[str], wanted: str) -> str:
    if wanted in names:
        return wanted
    lowered = {name.lower(): name for name in names}
    if wanted.lower() in lowered:
        return lowered[wanted.lower()]
    raise InputError(
        f"{path}: no sheet named {wanted!r}; the sheets are " + ", ".join(map(repr, names))
    )


class _Merges:
    """Merged ranges as Excel shows them: every cell of a range shows its top-left value,
    but calamine reads the others as empty (and an empty cell would take --codes/--from).
    A range within one column the job reads fills that column; a range across two of them,
    or reaching into the header row, cannot be read one way: its cells become MergedCells,
    which make the row invalid with the reason."""

    def __init__(
        self,
        ranges: tuple[Range, ...],
        first_column: int,
        header_row: int,
        positions: tuple[int | None, ...],
    ) -> None:
        self._fills: list[list[Any]] = []  # [first row, last row, source, target, value]
        self._marks: list[tuple[int, int, list[int], MergedCells]] = []
        for top, left, bottom, right in ranges:
            low, high = left - 1 - first_column, right - 1 - first_column
            read = [(i, p) for i, p in enumerate(positions) if p is not None and low <= p <= high]
            if bottom <= header_row or not read:
                continue
            where = f"{column_letters(left)}{top}:{column_letters(right)}{bottom}"
            if len(read) > 1:
                across = " and ".join(FIELDS[i] for i, _ in read)
                why = MergedCells(f"cells {where} are merged across {across}")
            elif top <= header_row:
                why = MergedCells(f"cells {where} are merged with the header row")
            else:
                self._fills.append([top, bottom, low, read[0][1], ""])
                continue
            self._marks.append((max(top, header_row + 1), bottom, [p for _, p in read], why))

    def put(self, columns: list[Table], first_row: int) -> None:
        end_row = first_row + len(columns[0])  # one past the chunk's last row
        for fill in self._fills:
            top, bottom, source, target, _ = fill
            if top >= end_row or bottom < first_row:
                continue
            if top >= first_row:  # the top-left cell is in this chunk: keep its value
                fill[4] = columns[source][top - first_row] if 0 <= source < len(columns) else ""
            self._put(columns, first_row, end_row, top, bottom, [target], fill[4])
        for top, bottom, targets, why in self._marks:
            if top < end_row and bottom >= first_row:
                self._put(columns, first_row, end_row, top, bottom, targets, why)

    @staticmethod
    def _put(
        columns: list[Table],
        first_row: int,
        end_row: int,
        top: int,
        bottom: int,
        targets: list[int],
        value: Any,
    ) -> None:
        low, high = max(top, first_row) - first_row, min(bottom + 1, end_row) - first_row
        for target in targets:
            if target < len(columns):
                if isinstance(value, str) and value.__class__ is not str:
                    for index in range(low, high):  # numpy would make a marker a plain str
                        columns[target][index] = value
                else:
                    columns[target][low:high] = np.full(high - low, value, dtype=object)


class _Marks:
    """What cells.py found ({(row, column): value}, as Excel numbers them) put in place."""

    def __init__(self, found: FoundCells, first_column: int) -> None:
        self._by_row: dict[int, list[tuple[int, str]]] = {}
        for (row, column), value in found.marks.items():
            self._by_row.setdefault(row, []).append((column - 1 - first_column, value))
        self._rows = sorted(self._by_row)
        self._timed = {column - 1 - first_column: rows for column, rows in found.shows_time.items()}

    def put(self, columns: list[Table], first_row: int) -> None:
        end_row = first_row + len(columns[0])
        start = bisect.bisect_left(self._rows, first_row)
        end = bisect.bisect_left(self._rows, end_row)
        for row in self._rows[start:end]:
            for column, value in self._by_row[row]:
                if 0 <= column < len(columns) and _empty(columns[column][row - first_row]):
                    columns[column][row - first_row] = value  # not empty: an error, a formula
        for column, rows in self._timed.items():
            if not 0 <= column < len(columns):
                continue
            cells = columns[column]
            low, high = np.searchsorted(rows, [first_row, end_row])
            for row in rows[low:high].tolist():
                cell = cells[row - first_row]
                # calamine gives a bare date for a midnight whatever the format shows
                if isinstance(cell, dt.date) and not isinstance(cell, dt.datetime):
                    cells[row - first_row] = dt.datetime.combine(cell, dt.time(0))
