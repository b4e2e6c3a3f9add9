"""Excel cells that read as empty but are not: error cells and formulas with no saved value.

An empty cell takes the value of --codes/--from/--to, so a cell that only *reads* as empty
would quietly send something the sheet does not say. calamine reads error cells (#N/A, #REF!)
and formulas whose value was never saved (a file written by a program, not by Excel) as
empty. It also reads a date-time at midnight as a bare date, whatever the cell's format, and a
bare date in ToDate means the whole day. Each function here finds such cells in the file
itself and returns them as {(row, column): marker}, 1-based as Excel shows them, for the reader
to put in place. Most sheets have none, and a quick scan says so.
"""

from __future__ import annotations

import html
import posixpath
import re
import zipfile
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from xml.etree.ElementTree import Element  # the type only: parsing goes through defusedxml

import numpy as np
import numpy.typing as npt
from defusedxml import ElementTree  # a hostile workbook's XML (entity bombs) is refused

from .markers import ErrorCell, FormulaWithoutValue

Marks = dict[tuple[int, int], str]
# A merged range: first row, first column, last row, last column (1-based, as Excel shows).
Range = tuple[int, int, int, int]


@dataclass(frozen=True)
class FoundCells:
    """What a worksheet's XML says that calamine does not: ``marks`` for cells that read as
    empty, and, for each column, the sorted rows of cells whose format shows a time of day
    (a date-time at midnight there is that midnight, not the whole day)."""

    marks: Marks
    shows_time: dict[int, npt.NDArray[np.int64]]
    merged: tuple[Range, ...] = ()


_TABLE = "{urn:oasis:names:tc:opendocument:xmlns:table:1.0}"
_CALCEXT = "{urn:org:documentfoundation:names:experimental:calc:xmlns:calcext:1.0}"
_BLOCK = 1 << 20
_SHEET_BLOCK = 4 << 20
# Tags may carry a namespace prefix (<x:c>) in files written by some libraries.
# A formula or an error-typed cell; the scan then reads the one cell around it.
_AFTER_TAG_NAME = (b" ", b">", b"/", b"\t", b"\n", b"\r")
_ERROR_TYPE = re.compile(rb'\st="e"')
_CELL_START = re.compile(rb"<(?:\w+:)?c[\s>/]")
_CELL_END = re.compile(rb"</(?:\w+:)?c>")
_ROW_END = re.compile(rb"</(?:\w+:)?row>")
_REFERENCE = re.compile(rb'\sr="([A-Z]+[0-9]+)"')
_VALUE = re.compile(rb"<(?:\w+:)?v>([^<]*)</(?:\w+:)?v>")
_FORMULA = re.compile(rb"<(?:\w+:)?f\b[^>]*?(?:/>|>([^<]*)</(?:\w+:)?f>)")
# Excel's built-in formats that show a time of day (the rest of 14-22 and 45-47 are dates).
_BUILTIN_TIME_FORMATS = frozenset({18, 19, 20, 21, 22, 45, 46, 47})
_MERGE_CELL = re.compile(
    rb'<(?:\w+:)?mergeCell\s[^>]*?ref="([A-Z]+)([0-9]+)(?::([A-Z]+)([0-9]+))?"'
)


def xlsx_cells(path: Path, sheet: str) -> FoundCells:
    """Error cells, formulas with no saved value and date-times shown with a time, in one
    worksheet of an .xlsx/.xlsm workbook. The worksheet XML is scanned as bytes, block by
    block: a regular expression finds the cells of interest and only those are read."""
    with zipfile.ZipFile(path) as archive:
        member = worksheet_member(archive, sheet)
        return _scan_worksheet(archive, member, _time_styles(archive))


def worksheet_member(archive: zipfile.ZipFile, sheet: str) -> str:
    """The zip member of a sheet, by name (tags matched by local name: Strict Open XML
    files use other namespaces)."""
    workbook = ElementTree.fromstring(archive.read("xl/workbook.xml"))
    relation = next(
        (
            _attribute(element, "id")
            for element in workbook.iter()
            if _local(element.tag) == "sheet" and element.get("name") == sheet
        ),
        None,
    )
    relations = ElementTree.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
    for element in relations.iter():
        if _local(element.tag) == "Relationship" and element.get("Id") == relation:
            target = element.get("Target", "")
            if target.startswith("/"):
                return target.lstrip("/")
            return posixpath.normpath(posixpath.join("xl", target))
    raise ValueError(f"the workbook names no part for sheet {sheet!r}")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _attribute(element: Element, name: str) -> str | None:
    return next((value for key, value in element.attrib.items() if _local(key) == name), None)


def _time_styles(archive: zipfile.ZipFile) -> frozenset[int]:
    """Indexes of the cell styles whose number format is a date format showing a time."""
    try:
        styles = ElementTree.fromstring(archive.read("xl/styles.xml"))
    except KeyError:
        return frozenset()
    custom = {
        int(element.get("numFmtId", "-1")): element.get("formatCode", "")
        for element in styles.iter()
        if _local(element.tag) == "numFmt"
    }
    cell_xfs = next((e for e in styles if _local(e.tag) == "cellXfs"), None)
    timed = set()
    xfs = [] if cell_xfs is None else [e for e in cell_xfs if _local(e.tag) == "xf"]
    for index, xf in enumerate(xfs):
        number = int(xf.get("numFmtId", "0"))
        if number in _BUILTIN_TIME_FORMATS or (
            number in custom and _date_format_with_time(custom[number])
        ):
            timed.add(index)
    return frozenset(timed)


def _date_format_with_time(code: str) -> bool:
    """A custom format that shows a date-time with its time: the rule openpyxl's date
    detection and our reader used (an hour or a second appears outside quotes and [colors])."""
    bare = re.sub(r'"[^"]*"|\[[^\]]*\]|\\.', "", code).lower()
    return any(letter in bare for letter in "dmy") and ("h" in bare or "s" in bare)


def _scan_worksheet(archive: zipfile.ZipFile, member: str, timed: frozenset[int]) -> FoundCells:
    """Each block is first searched for plain bytes (fast); a regular expression runs only
    on a block that holds what it looks for."""
    attributes = [b' s="%d"' % index for index in sorted(timed)]
    ids = b"|".join(b"%d" % index for index in sorted(timed))
    # A cell start tag with one of the styles: its r="B12" (r comes first as Excel writes
    # it, or after the style).
    styled = [
        re.compile(rb'<(?:\w+:)?c\sr="([A-Z]+)([0-9]+)"[^>]*?\ss="(?:' + ids + rb')"'),
        re.compile(rb'<(?:\w+:)?c\s[^>]*?\bs="(?:' + ids + rb')"[^>]*?\sr="([A-Z]+)([0-9]+)"'),
    ]
    marks: Marks = {}
    shows_time: dict[bytes, array[int]] = {}
    merged: list[Range] = []
    with archive.open(member) as handle:
        for block in row_blocks(handle):
            if b"mergeCell" in block:  # <mergeCells> follow <sheetData>: the last block
                merged += [_range(*found) for found in _MERGE_CELL.findall(block)]
            for at in _formula_or_error_offsets(block):
                _mark_cell(block, at, marks)
            styles = sum(block.count(attribute) for attribute in attributes)
            for pattern in styled:
                if styles <= 0:  # (rows have styles too: then the second pattern runs)
                    break
                found = pattern.findall(block)
                for letters, row in found:
                    shows_time.setdefault(letters, array("q")).append(int(row))
                styles -= len(found)
    return FoundCells(
        marks,
        {
            column_number(letters.decode()): _sorted(np.asarray(rows, dtype=np.int64))
            for letters, rows in shows_time.items()
        },
        tuple(merged),
    )


def _range(first: bytes, top: bytes, last: bytes, bottom: bytes) -> Range:
    """``B2:C4`` → (2, 2, 4, 3); a single cell ``B2`` is a range of one."""
    last, bottom = last or first, bottom or top
    return int(top), column_number(first.decode()), int(bottom), column_number(last.decode())


def active_sheet(path: Path) -> str | None:
    """The name of the sheet an .xlsx workbook opens on: Excel's ``<workbookView
    activeTab="N">``, the N-th of its ``<sheet>`` entries (the first when it says nothing)."""
    with zipfile.ZipFile(path) as archive:
        workbook = ElementTree.fromstring(archive.read("xl/workbook.xml"))
    tab, names = "0", list[str]()
    for element in workbook.iter():
        if _local(element.tag) == "workbookView" and element.get("activeTab"):
            tab = element.get("activeTab", "0")
        elif _local(element.tag) == "sheet":
            names.append(element.get("name", ""))
    index = int(tab) if tab.isdigit() else 0
    return names[index] if index < len(names) else None


def column_letters(number: int) -> str:
    """2 → ``B``, 27 → ``AA``."""
    letters = ""
    while number > 0:
        number, rest = divmod(number - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _sorted(rows: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Sorted and distinct (rows come in order, so this is usually a check)."""
    return rows if bool(np.all(rows[1:] > rows[:-1])) else np.unique(rows)


def _formula_or_error_offsets(block: bytes) -> Iterator[int]:
    """Offsets of formulas (<f>, <x:f>) and error types (t="e"), found with bytes.find:
    they are few, and a regular expression would visit every byte in Python's engine."""
    for needle in (b't="e"', b"<f", b":f"):
        at = block.find(needle)
        while at >= 0:
            if needle == b't="e"' or block[at + 2 : at + 3] in _AFTER_TAG_NAME:
                yield at
            at = block.find(needle, at + 1)


def _mark_cell(block: bytes, at: int, marks: Marks) -> None:
    """The cell around offset ``at``: an error cell, or a formula without a saved value."""
    start = block.rfind(b"<", 0, at + 1)
    while start >= 0 and not _CELL_START.match(block, start):
        start = block.rfind(b"<", 0, start)
    if start < 0:
        return
    open_end = block.find(b">", start)
    if open_end < 0:
        return
    tag = block[start : open_end + 1]
    reference = _REFERENCE.search(tag)
    if reference is None:
        return
    where = _coordinate(reference.group(1).decode())
    error = _ERROR_TYPE.search(tag) is not None
    if tag.endswith(b"/>"):  # no value and no formula
        if error:
            marks[where] = ErrorCell("#VALUE!")
        return
    end = _CELL_END.search(block, open_end)
    body = block[open_end + 1 : end.start() if end else len(block)]
    value = _VALUE.search(body)
    text = html.unescape(value.group(1).decode()) if value else ""
    if error:
        marks[where] = ErrorCell(text or "#VALUE!")
    elif not text and (formula := _FORMULA.search(body)):
        marks[where] = FormulaWithoutValue("=" + html.unescape((formula.group(1) or b"").decode()))


def _last_row_end(block: bytes) -> int:
    """The offset just after the last </row> (or </x:row>) in ``block``, or -1."""
    at = block.rfind(b"row>")
    while at >= 0:
        found = _ROW_END.search(block, max(0, at - 16), at + 4)
        if found and found.end() == at + 4:
            return at + 4
        at = block.rfind(b"row>", 0, at)
    return -1


def row_blocks(handle: IO[bytes]) -> Iterator[bytes]:
    """The worksheet XML in blocks of about 4 MB that end after a row: a cell never spans
    two blocks."""
    tail = b""
    while block := handle.read(_SHEET_BLOCK):
        block = tail + block
        cut = _last_row_end(block)
        if cut < 0:
            tail = block
            continue
        yield block[:cut]
        tail = block[cut:]
    if tail:
        yield tail


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


def ods_cells(path: Path, sheet: str) -> FoundCells:
    """Error cells and merged ranges of one table of an OpenDocument spreadsheet
    (content.xml; calamine gives no merged ranges for these). A quick scan first: most
    files have neither, and are then not parsed."""
    with zipfile.ZipFile(path) as archive, archive.open("content.xml") as handle:
        if not _contains(handle, (b'value-type="error"', b"-spanned=")):
            return FoundCells({}, {})
    marks: Marks = {}
    merged: list[Range] = []
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
                down = int(element.get(_TABLE + "number-rows-spanned", "1"))
                across = int(element.get(_TABLE + "number-columns-spanned", "1"))
                if down > 1 or across > 1:
                    merged.append((row + 1, column + 1, row + down, column + across))
                column += repeat
    return FoundCells(marks, {}, tuple(merged))


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
    return int(reference[len(letters) :]), column_number(letters)


def column_number(letters: str) -> int:
    """``B`` → 2, ``AA`` → 27."""
    column = 0
    for letter in letters.upper():
        column = column * 26 + ord(letter) - 64
    return column
