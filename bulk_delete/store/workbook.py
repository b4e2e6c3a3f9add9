"""→ workbook: the one .xlsx writer, its formats, and tables longer than a sheet.

``with open_book(path) as book:`` then a ``Table(book, name, headers)`` per table, ``write`` per
row and ``finish``. Strings are written as text (never a formula or a hyperlink); dates are
naive ``datetime`` values in the zone the header names. A table past ``MAX_ROWS`` goes on in
"Name (2)" … (``Table.sheets`` names them). The file is 0600, renamed into place when complete.
XlsxWriter in ``constant_memory`` mode: rows stream to disk, and no numpy is loaded.

Why XlsxWriter, and the rest: docs/design/workbooks.md.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import xlsxwriter

from ..files import replacing
from .cell_text import excel_text

MAX_ROWS = 1_048_576  # Excel's rows per sheet, the header's included
DATE_FORMAT = "yyyy-mm-dd hh:mm:ss"
MAX_WIDTH = 80  # a long reason wraps the view rather than pushing every column off screen
MIN_WIDTH = 8
GUID_WIDTH = 38  # a 36-character GUID and a margin


class Styles:
    """The house formats, made once per workbook."""

    def __init__(self, book: Any) -> None:
        self.header = book.add_format({"bold": True, "bg_color": "#DDE4EE", "bottom": 1})
        self.date = book.add_format({"num_format": DATE_FORMAT})
        self.title = book.add_format({"bold": True, "font_size": 14})
        self.section = book.add_format({"bold": True, "font_color": "#1F3B63"})
        self.number = book.add_format({"num_format": "#,##0"})
        self.rate = book.add_format({"num_format": "0.00"})
        self.percent = book.add_format({"num_format": "0%"})


class Book:
    """An open workbook: XlsxWriter's, and its formats."""

    def __init__(self, book: Any) -> None:
        self.xlsx = book
        self.styles = Styles(book)

    def sheet(self, name: str) -> Any:
        return self.xlsx.add_worksheet(name)


@contextmanager
def open_book(path: Path) -> Iterator[Book]:
    """A workbook at ``path``: 0600, whole or not at all."""
    with replacing(path, "wb") as handle, _scratch_folder(path) as scratch:
        book = xlsxwriter.Workbook(
            handle,
            {
                "constant_memory": True,
                "strings_to_formulas": False,
                "strings_to_urls": False,
                "strings_to_numbers": False,
                "tmpdir": str(scratch),
            },
        )
        try:
            yield Book(book)
        except BaseException:
            # Closing releases the streamed sheets' open files; the half-written workbook is
            # then removed with the temporary it went to.
            with contextlib.suppress(Exception):
                book.close()
            raise
        book.close()


@contextmanager
def _scratch_folder(path: Path) -> Iterator[Path]:
    """A private folder beside ``path`` for XlsxWriter's streamed sheets, removed whatever
    happens: a signal can land between XlsxWriter's making a temporary file and its removing
    it, where no handler of ours would know the file's name."""
    scratch = Path(
        tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".sheets", dir=path.resolve().parent)
    )
    try:
        yield scratch
    finally:
        try:
            shutil.rmtree(scratch, ignore_errors=True)
        finally:  # a second signal inside the first removal
            shutil.rmtree(scratch, ignore_errors=True)


class Table:
    """One table written row by row, on as many sheets as it needs, each column as wide as its
    widest cell (up to MAX_WIDTH)."""

    def __init__(self, book: Book, name: str, headers: Sequence[str]) -> None:
        self.book, self.name, self.headers = book, name, tuple(headers)
        self.widths = [len(header) + 2 for header in headers]
        self.sheets: list[str] = []
        self.rows = 0  # rows written under the header, on every sheet
        self._row = 0  # the next row on the current sheet
        self._sheet: Any = None
        self._next_sheet()

    def write(self, cells: Sequence[object]) -> None:
        if self._row >= MAX_ROWS:
            self._finish_sheet()
            self._next_sheet()
        self._put_row(cells, None)
        self.rows += 1

    def finish(self) -> None:
        self._finish_sheet()

    def _next_sheet(self) -> None:
        number = len(self.sheets) + 1
        name = self.name if number == 1 else f"{self.name} ({number})"
        self._sheet = self.book.sheet(name)
        self.sheets.append(name)
        self._row = 0
        self._put_row(self.headers, self.book.styles.header)

    def _put_row(self, cells: Sequence[object], style: Any) -> None:
        widths, sheet, styles, row = self.widths, self._sheet, self.book.styles, self._row
        for column, value in enumerate(cells):
            width = put(sheet, styles, row, column, value, style)
            if column >= len(widths):
                widths.append(MIN_WIDTH)
            if width > widths[column]:
                widths[column] = width
        self._row += 1

    def _finish_sheet(self) -> None:
        """Header frozen, filter over every column, widths that fit (set last: XlsxWriter
        writes the column widths when the file is closed, even when streaming)."""
        sheet = self._sheet
        sheet.freeze_panes(1, 0)
        sheet.autofilter(0, 0, max(self._row - 1, 0), len(self.widths) - 1)
        for column, width in enumerate(self.widths):
            sheet.set_column(column, column, min(max(width, MIN_WIDTH), MAX_WIDTH))


def put(sheet: Any, styles: Styles, row: int, column: int, value: object, style: Any) -> int:
    """Write one cell by its Python type; return the width it needs. (Text is tried first:
    it is most cells, and this runs for every cell of a million-row sheet.)"""
    if type(value) is str and value:
        value = excel_text(value)  # cut to a cell's 32,767 characters, and said
        sheet.write_string(row, column, value, style)  # never a formula, never a link
        return len(value) + 2
    if value is None or value == "":
        if style is not None:
            sheet.write_blank(row, column, None, style)
        return 0
    if isinstance(value, dt.datetime):
        sheet.write_datetime(row, column, value, style or styles.date)
        return len(DATE_FORMAT) + 2
    if isinstance(value, bool):
        sheet.write_boolean(row, column, value, style)
        return 6
    if isinstance(value, int | float):
        sheet.write_number(row, column, value, style)
        return len(f"{value:,}") + 2
    text = excel_text(str(value))
    sheet.write_string(row, column, text, style)
    return len(text) + 2
