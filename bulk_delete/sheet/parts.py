"""A worksheet too big to hold, cut into row ranges that calamine can hold one at a time.

calamine loads a whole sheet into memory before the first row comes out: about 100 bytes a
cell, so a million rows of ten columns take a gigabyte. A big .xlsx worksheet is therefore
cut, at row boundaries, into parts: each part is a copy of the workbook whose sheet holds
only some of the rows, every row and cell as it was (the ``r="B12"`` references keep their
places). The reader goes through the parts in order, so memory follows the part, not the
sheet. A sheet whose rows do not say their numbers cannot be cut, and is read whole.
"""

from __future__ import annotations

import itertools
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..files import create_private
from .cells import column_number, row_blocks, worksheet_member

PART_CELLS = 1_500_000  # cells per part: about 150 MB in calamine
CUT_ABOVE = 3  # parts: a sheet of more than 3 parts' cells (4.5 M; 1 M rows of 4 are read whole)
MIN_PART_BYTES = 1 << 20
_ROW_START = re.compile(rb"<(?:\w+:)?row[\s>/]")
_ROW_WITHOUT_NUMBER = re.compile(rb"<(?:\w+:)?row(?![^>]*\sr=)[\s>/]")
_SHEET_DATA = re.compile(rb"<((?:\w+:)?)sheetData\b[^>]*>")
_SHEET_DATA_END = re.compile(rb"</(?:\w+:)?sheetData>")
_ROOT = re.compile(rb"<((?:\w+:)?)worksheet\b")
_DIMENSION = re.compile(rb"<(?:\w+:)?dimension\b[^>]*/>")
_DIMENSION_REF = re.compile(rb'<(?:\w+:)?dimension\b[^>]*\sref="([A-Z]+)([0-9]+):([A-Z]+)([0-9]+)"')


class Parts:
    """The parts of one worksheet, as workbooks in a private temporary folder."""

    def __init__(self, paths: list[Path], folder: tempfile.TemporaryDirectory[str]) -> None:
        self.paths = paths
        self._folder = folder

    def close(self) -> None:
        self._folder.cleanup()


def cut(path: Path, sheet: str) -> Parts | None:
    """The sheet's parts, or None when it is small enough to read whole (or cannot be cut)."""
    part_cells = PART_CELLS
    with zipfile.ZipFile(path) as archive:
        member = worksheet_member(archive, sheet)
        with archive.open(member) as handle:
            head = handle.read(1 << 16)
        cells = _cells_estimate(head, archive.getinfo(member).file_size)
        if cells <= CUT_ABOVE * part_cells:
            return None
        folder = tempfile.TemporaryDirectory(prefix="bulk-delete-parts-")
        try:
            paths = _write_parts(archive, member, Path(folder.name), cells, part_cells)
        except BaseException:
            folder.cleanup()
            raise
        if paths is None:
            folder.cleanup()
            return None
        return Parts(paths, folder)


def _cells_estimate(head: bytes, xml_bytes: int) -> int:
    """From the sheet's <dimension>, or from its size when it has none (a cell of a big
    sheet is rarely less than 30 bytes of XML)."""
    found = _DIMENSION_REF.search(head)
    if found is None:
        return xml_bytes // 30
    first, last = column_number(found.group(1).decode()), column_number(found.group(3).decode())
    return (last - first + 1) * (int(found.group(4)) - int(found.group(2)) + 1)


def _write_parts(
    archive: zipfile.ZipFile, member: str, folder: Path, cells: int, part_cells: int
) -> list[Path] | None:
    """Write the parts; None (and nothing kept) when the sheet cannot be cut."""
    part_bytes = archive.getinfo(member).file_size * part_cells // max(cells, 1)
    part_bytes = max(MIN_PART_BYTES, part_bytes)
    paths: list[Path] = []
    prelude = epilogue = b""
    body: list[bytes] = []
    size = 0
    with archive.open(member) as handle:
        for block in row_blocks(handle):
            if not prelude:
                start = _ROW_START.search(block)
                data = _SHEET_DATA.search(block)
                root = _ROOT.search(block)
                if start is None or data is None or root is None or data.end() > start.start():
                    return None
                prelude = _DIMENSION.sub(b"", block[: start.start()])
                prefix, root_prefix = data.group(1), root.group(1)
                epilogue = b"</" + prefix + b"sheetData></" + root_prefix + b"worksheet>"
                block = block[start.start() :]
            end = _SHEET_DATA_END.search(block) if b"sheetData>" in block else None
            if end is not None:
                block = block[: end.start()]
            if _unnumbered_rows(block):
                return None  # rows numbered by their order: a part would renumber them
            body.append(block)
            size += len(block)
            if size >= part_bytes:
                paths.append(
                    _write_part(archive, member, folder, len(paths), prelude, body, epilogue)
                )
                body, size = [], 0
            if end is not None:
                break
    if body:
        paths.append(_write_part(archive, member, folder, len(paths), prelude, body, epilogue))
    return paths


def _unnumbered_rows(block: bytes) -> bool:
    """Whether a row in ``block`` lacks its r="N". Counted with bytes.count first (Excel
    writes r first); the regular expression runs only on a block that differs."""
    plain = block.count(b"<row ") == block.count(b'<row r="') and b"<row>" not in block
    if plain and b":row" not in block:
        return False
    return _ROW_WITHOUT_NUMBER.search(block) is not None


def _write_part(
    archive: zipfile.ZipFile,
    member: str,
    folder: Path,
    number: int,
    prelude: bytes,
    body: list[bytes],
    epilogue: bytes,
) -> Path:
    path = folder / f"part-{number:04d}.xlsx"
    create_private(path)  # it holds the sheet's lead IDs (and sits in a 0700 folder)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as part:  # written once, read once
        for info in archive.infolist():
            if info.filename == member:
                with part.open(member, "w", force_zip64=True) as sheet:
                    sheet.write(prelude)
                    for block in body:
                        sheet.write(block)
                    sheet.write(epilogue)
            else:
                with archive.open(info) as source, part.open(info.filename, "w") as target:
                    shutil.copyfileobj(source, target, 1 << 20)
    return path


def rows_of(parts: Parts, sheet: str) -> Iterator[list[Any]]:
    """Every row of the sheet, from row 1, each with column A at index 0, part after part;
    only one part is in memory at a time."""
    import python_calamine

    done = 0
    for path in parts.paths:
        worksheet = python_calamine.CalamineWorkbook.from_path(str(path)).get_sheet_by_name(sheet)
        pad: list[Any] = [""] * (worksheet.start[1] if worksheet.start else 0)
        rows = worksheet.iter_rows()
        for skipped in itertools.islice(rows, done):  # calamine starts every part at row 1
            if skipped.count("") != len(skipped):  # never: the rows before a part are empty
                raise RuntimeError(f"{path.name}: rows of an earlier part came again")
        for row in rows:
            done += 1
            yield [*pad, *row] if pad else list(row)
        del worksheet, rows
