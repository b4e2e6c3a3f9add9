"""Excel cells that read as empty but are not: error cells and formulas with no saved value.

An empty cell takes the value of --codes/--from/--to, so a cell that only *reads* as empty
would quietly send something the sheet does not say. openpyxl reads a formula whose value was
never saved (a file written by a program, not by Excel) as empty; calamine reads error cells
(#N/A, #REF!) in .xls and .ods files as empty. Each function here finds such cells in the
file itself and returns them as {(row, column): marker}, 1-based as Excel shows them, for the
reader to put in place of the empty value. Most sheets have none, and a quick scan says so.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import IO

from defusedxml import ElementTree  # a hostile workbook's XML (entity bombs) is refused


class FormulaWithoutValue(str):
    """A cell with a formula but no value saved (the text is the formula)."""

    __slots__ = ()


class ErrorCell(str):
    """An Excel error cell (#N/A, #REF!, …) where the reader saw an empty cell."""

    __slots__ = ()


Marks = dict[tuple[int, int], str]

_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_TABLE = "{urn:oasis:names:tc:opendocument:xmlns:table:1.0}"
_CALCEXT = "{urn:org:documentfoundation:names:experimental:calc:xmlns:calcext:1.0}"
_BLOCK = 1 << 20


def xlsx_formulas_without_value(archive: zipfile.ZipFile, member: str) -> Marks:
    """Cells of one worksheet XML that hold a formula but no value."""
    with archive.open(member) as handle:
        if not _contains(handle, (b"<f>", b"<f ", b"<f/")):
            return {}
    marks: Marks = {}
    with archive.open(member) as handle:
        for _, element in ElementTree.iterparse(handle):
            if element.tag != _MAIN + "c":
                continue
            formula = element.find(_MAIN + "f")
            if formula is not None and not element.findtext(_MAIN + "v") and element.get("r"):
                marks[_coordinate(element.get("r", ""))] = FormulaWithoutValue(
                    "=" + (formula.text or "")
                )
            element.clear()
    return marks


def xls_error_cells(path: Path, sheet: str) -> Marks:
    """Error cells of one sheet of a legacy .xls workbook (small: 65,536 rows at most)."""
    import xlrd

    book = xlrd.open_workbook(str(path), on_demand=True)
    try:
        worksheet = book.sheet_by_name(sheet)
        marks: Marks = {}
        for row in range(worksheet.nrows):
            for column, kind in enumerate(worksheet.row_types(row)):
                if kind == xlrd.XL_CELL_ERROR:
                    code = worksheet.cell_value(row, column)
                    text = xlrd.error_text_from_code.get(code, "#VALUE!")
                    marks[(row + 1, column + 1)] = ErrorCell(text)
        return marks
    finally:
        book.release_resources()


def ods_error_cells(path: Path, sheet: str) -> Marks:
    """Error cells of one table of an OpenDocument spreadsheet (content.xml)."""
    with zipfile.ZipFile(path) as archive, archive.open("content.xml") as handle:
        if not _contains(handle, (b'value-type="error"',)):
            return {}
    marks: Marks = {}
    row = column = 0
    inside = False
    with zipfile.ZipFile(path) as archive, archive.open("content.xml") as handle:
        for event, element in ElementTree.iterparse(handle, events=("start", "end")):
            tag = element.tag
            if tag == _TABLE + "table":
                inside = event == "start" and element.get(_TABLE + "name") == sheet
                row = 0
            elif not inside:
                continue
            elif tag == _TABLE + "table-row" and event == "start":
                column = 0
            elif tag == _TABLE + "table-row":
                row += int(element.get(_TABLE + "number-rows-repeated", "1"))
                element.clear()
            elif tag in (_TABLE + "table-cell", _TABLE + "covered-table-cell") and event == "end":
                repeat = int(element.get(_TABLE + "number-columns-repeated", "1"))
                if element.get(_CALCEXT + "value-type") == "error":
                    text = "".join(element.itertext()).strip() or "#VALUE!"
                    for offset in range(min(repeat, 1024)):
                        marks[(row + 1, column + offset + 1)] = ErrorCell(text)
                column += repeat
    return marks


def _contains(handle: IO[bytes], needles: tuple[bytes, ...]) -> bool:
    """Whether a stream holds any of ``needles``, read in blocks (constant memory)."""
    overlap = max(map(len, needles)) - 1
    tail = b""
    while block := handle.read(_BLOCK):
        window = tail + block
        if any(needle in window for needle in needles):
            return True
        tail = window[-overlap:]
    return False


def _coordinate(reference: str) -> tuple[int, int]:
    """``B12`` → (12, 2)."""
    letters = reference.rstrip("0123456789")
    column = 0
    for letter in letters.upper():
        column = column * 26 + ord(letter) - 64
    return int(reference[len(letters) :]), column
