"""Text cells as a spreadsheet program will read them back: never a formula, never cut short
without saying so. The CSV writers and both workbook writers (row_files.py,
results_workbook.py) put every text cell through here.

A CSV cell is read by Excel or LibreOffice, whose list separator may be ``;`` (most of Europe)
or a tab rather than the file's comma: a cell such as ``x;=1+1;y`` is then split there and its
middle part runs as a formula (OWASP, "CSV Injection"), and so is a line that a line break
inside a quoted cell starts. So a formula's first character (``= + - @``) gets a leading ``'``
wherever a field could begin: at the start of the cell and after any ``,`` ``;`` tab or line
break, past spaces and quotes. Only garbage reads that way here (GUIDs, codes and dates never
do), and the CSV export's text is changed, never its meaning.

An .xlsx cell holds at most 32,767 characters (Excel's limit; a longer one makes Excel repair
the file, and XlsxWriter cuts it without a word). A longer text is cut, and the cell ends with
a note of how long it was; the CSV export keeps it whole.
"""

from __future__ import annotations

import re
from typing import Any

EXCEL_CELL_LIMIT = 32767  # characters (UTF-16 code units) in one Excel cell
_STARTS = ("=", "+", "-", "@", "\t", "\r")
_FIELD_FORMULA = re.compile(r"(^|[,;\t\r\n])([\s\"]*)(?=[=+\-@])")


def csv_safe(value: Any) -> Any:
    """A cell that no spreadsheet runs as a formula, whatever its list separator."""
    if not isinstance(value, str) or not value:
        return value
    if value.startswith(_STARTS):
        value = "'" + value
    return _FIELD_FORMULA.sub(r"\1\2'", value)


def excel_text(text: str) -> str:
    """``text`` within Excel's cell limit: a longer one cut, ending with a note that says so."""
    if len(text) <= EXCEL_CELL_LIMIT // 2 or _units(text) <= EXCEL_CELL_LIMIT:
        return text
    note = f" … [cut to fit an Excel cell: {len(text):,} characters in all]"
    room = EXCEL_CELL_LIMIT - len(note)
    kept = text[:room]
    while _units(kept) > room:  # characters beyond the first plane take two units
        kept = kept[: room - (_units(kept) - room)]
    return kept + note


def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2
