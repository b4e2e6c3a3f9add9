"""Text cells as a spreadsheet program will read them back: never a formula, never cut short
without saying so. The CSV writers and both workbook writers (row_files.py,
results_workbook.py) put every text cell through here.

``csv_safe`` puts a ``'`` before a formula's first character (``= + - @``) wherever a field
could begin, in any list separator; ``excel_text`` cuts a text past ``EXCEL_CELL_LIMIT``
(32,767) characters with a note of its length.

Why: docs/design/workbooks.md.
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
