"""Text cells as spreadsheets read them back (store/cell_text.py): no formula in a CSV under
any list separator, and no workbook cell cut silently at Excel's limit."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import openpyxl
from hypothesis import given, settings
from hypothesis import strategies as st

from bulk_delete.store.cell_text import EXCEL_CELL_LIMIT, csv_safe, excel_text

from ..conftest import run_cli, send_sheet

GUID = "00000000-0000-4000-8000-000000000001"
_FORMULA = ("=", "+", "-", "@")
# Cells made of what matters: formula starts, list separators, line breaks, quotes, spaces.
cells = st.text(st.sampled_from(list("=+-@;,\t\r\n\" 'x1(")), max_size=30)


def _fields_as_excel_splits(line: str, separator: str) -> list[str]:
    """The fields a spreadsheet whose list separator is ``separator`` sees in a CSV text: it
    splits at the separator and at line breaks, whatever the file's own quoting."""
    return re.split(f"[{re.escape(separator)}\r\n]", line)


@settings(max_examples=300, deadline=None)
@given(cell=cells, before=cells)
def test_no_field_starts_a_formula_under_any_list_separator(cell: str, before: str) -> None:
    out = io.StringIO()
    csv.writer(out).writerow([GUID, csv_safe(before), csv_safe(cell), "201"])
    for separator in (",", ";", "\t"):
        for field in _fields_as_excel_splits(out.getvalue(), separator):
            start = field.lstrip().lstrip('"').lstrip()
            assert not start.startswith(_FORMULA), (separator, field, out.getvalue())


def test_the_issue_s_cell_is_defused_and_plain_cells_are_untouched() -> None:
    assert csv_safe("x;=1+1;y") == "x;'=1+1;y"
    assert csv_safe("=1+1") == "'=1+1"
    for plain in (GUID, "201;202", "2025-01-01 00:00:00", "https://h.example/x?a=1", 3, None):
        assert csv_safe(plain) == plain


@settings(max_examples=50, deadline=None)
@given(size=st.integers(EXCEL_CELL_LIMIT - 3, EXCEL_CELL_LIMIT + 5000), wide=st.booleans())
def test_a_long_text_is_cut_to_the_limit_with_a_note(size: int, wide: bool) -> None:
    text = ("𝄞" if wide else "x") * size
    cut = excel_text(text)
    assert len(cut.encode("utf-16-le")) // 2 <= EXCEL_CELL_LIMIT
    if len(text.encode("utf-16-le")) // 2 <= EXCEL_CELL_LIMIT:
        assert cut == text
    else:
        assert cut.endswith(f"[cut to fit an Excel cell: {size:,} characters in all]")


async def test_workbooks_cut_a_long_cell_with_a_note(emulator: Any, tmp_path: Path) -> None:
    """An invalid row's 40,000-character cell: the results workbook and the export cut it
    with a note in the cell; the CSV export keeps it whole."""
    emu = await emulator()
    long = "y" * 40_000
    sheet = tmp_path / "leads.csv"
    sheet.write_text(f"ProspectId,ActivityEventList\n{GUID},201\n{long},201\n")
    checkpoint = tmp_path / "c.sqlite"
    done = await send_sheet(emu, sheet, checkpoint)
    assert done.returncode == 1, done.stderr  # the long row is invalid
    for args in (("-o", str(tmp_path / "e.xlsx")), ("-o", str(tmp_path / "e.csv"))):
        assert (await run_cli("export", str(checkpoint), *args)).returncode == 0
    note = "[cut to fit an Excel cell: 40,000 characters in all]"
    for path, name in ((tmp_path / "c-results.xlsx", "Invalid rows"), (tmp_path / "e.xlsx", "")):
        book = openpyxl.load_workbook(path, read_only=True)
        rows = book[name or book.sheetnames[0]].iter_rows(values_only=True)
        longest = max((v for row in rows for v in row if isinstance(v, str)), key=len)
        assert longest.startswith("yyyy")
        assert longest.endswith(note), path
        assert len(longest) <= EXCEL_CELL_LIMIT
    assert long in (tmp_path / "e.csv").read_text()
