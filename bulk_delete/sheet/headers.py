"""header row → columns: which column is which, and no column silently left out.

Every header cell is one of the five columns the job reads (by name or alias), a near miss of
one ("Form Date", "From_Dt": an error, as ignoring it would change what is deleted), or listed
in the plan as ignored. ``--ignore-column`` leaves out a near miss on purpose. The header is row
1 unless it holds no known column, then the first of rows 1-10 holding ProspectId and another
known column; ``--header-row N`` names it outright.

Why, and how close is close: docs/design/headers.md.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError

# Headers match case-insensitively, ignoring spaces, underscores, hyphens, . : ( ).
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
ALIAS_TO_FIELD = {alias: name for name, aliases in HEADER_ALIASES.items() for alias in aliases}

# Aliases in two words, for abbreviations of the second one ("From_Dt").
_TWO_WORDS = (
    ("from", "date", "FromDate"),
    ("start", "date", "FromDate"),
    ("to", "date", "ToDate"),
    ("end", "date", "ToDate"),
    ("activity", "codes", "ActivityEventList"),
    ("activity", "events", "ActivityEventList"),
    ("event", "code", "ActivityEventList"),
    ("webhook", "url", "StatusWebhookURL"),
)
_NO_FUZZ_BELOW = 6
_TWO_EDITS_FROM = 12
_NOTE = re.compile(r"^(.*?)\s*\(([^()]*)\)\s*$")

# What bulk-delete itself writes: a preview (plan --out) and an export.
_PREVIEW = frozenset({"body", "sourcerows"})
_EXPORT = frozenset({"status", "attempts", "sourcerows"})


# A title above the header: the header is looked for this far down from the first row that
# is not blank.
HEADER_SEARCH_ROWS = 10


def header_index(path: Path, rows: Sequence[Sequence[Any]], wanted: int | None) -> int | None:
    """Which of a sheet's first rows (``rows[i]`` is row i + 1) is its header: row ``wanted``
    (--header-row), else as the module says; None when every row given is blank."""
    if wanted is not None:
        if wanted > len(rows):
            raise InputError(
                f"{path}: --header-row {wanted}: the sheet has only {len(rows)} row(s)"
            )
        if _blank_row(rows[wanted - 1]):
            raise InputError(f"{path}: --header-row {wanted}: the sheet's row {wanted} is empty")
        return wanted - 1
    first = next((index for index, row in enumerate(rows) if not _blank_row(row)), None)
    if first is None or known_fields(rows[first]):
        return first
    # "Rows 1-10" count from the first row that is not blank, as it is "row 1" above.
    for index in range(first + 1, min(len(rows), first + HEADER_SEARCH_ROWS)):
        fields = known_fields(rows[index])
        if "ProspectId" in fields and len(fields) > 1:
            return index
    return first


def known_fields(row: Sequence[Any]) -> set[str]:
    """The columns a row names, by their names or aliases."""
    return {field for cell in row if (field := ALIAS_TO_FIELD.get(normalise_header(cell)))}


def _blank_row(row: Sequence[Any]) -> bool:
    return all(cell is None or not str(cell).strip() for cell in row)


def normalise_header(name: Any) -> str:
    return re.sub(r"[\s_\-.:()]+", "", str(name or "")).lower()


@dataclass(frozen=True)
class Header:
    """What a header row says: field → column index and → header as written, the headers
    left out (as written), and which file of ours it is ("preview", "export" or "")."""

    indexes: dict[str, int]
    written: dict[str, str]
    ignored: tuple[str, ...]
    written_by: str
    ignored_at: tuple[int, ...] = ()  # the column of each of ``ignored``


def read_header(path: Path, header: Sequence[Any], ignore: Sequence[str] = ()) -> Header:
    """The columns of a header row. Raises InputError for a duplicated column, a near miss
    or no ProspectId column."""
    skip = {normalise_header(name) for name in ignore}
    indexes: dict[str, int] = {}
    written: dict[str, str] = {}
    others: list[tuple[int, str]] = []
    for index, name in enumerate(header):
        text = str(name if name is not None else "").strip()
        if not text:
            continue
        normal = normalise_header(text)
        field_name = ALIAS_TO_FIELD.get(normal)
        if field_name is None or normal in skip:
            others.append((index, text))
            continue
        if field_name in indexes:
            raise InputError(
                f"{path}: two columns mean {field_name}: {written[field_name]!r} and {name!r}"
            )
        indexes[field_name] = index
        written[field_name] = text
    misses = [
        f"column {text!r} looks like {like} (did you mean {like}?); rename it, or pass "
        f"--ignore-column {text!r} to leave it out"
        for _, text in others
        if normalise_header(text) not in skip and (like := near_miss(text, indexes))
    ]
    if misses:
        raise InputError(f"{path}: " + "; ".join(misses))
    if "ProspectId" not in indexes:
        shown = ", ".join(repr(str(h).strip()) for h in header if str(h or "").strip()) or "none"
        raise InputError(
            f"{path}: no ProspectId column (accepted headers: ProspectId, LeadId, "
            f"Prospect ID, Lead ID); the header row has {shown} (a header on another row: "
            "--header-row N)"
        )
    names = {normalise_header(text) for _, text in others}
    written_by = "preview" if names >= _PREVIEW else "export" if names >= _EXPORT else ""
    return Header(
        indexes,
        written,
        tuple(text for _, text in others),
        written_by,
        tuple(index for index, _ in others),
    )


def near_miss(name: str, present: dict[str, int] | None = None) -> str | None:
    """The column a header resembles without being it, or None (see the module's rules).
    ``present``: the columns the sheet has plainly (a noted copy of one is no near miss)."""
    noted = _NOTE.match(name)
    if noted and (field_name := ALIAS_TO_FIELD.get(normalise_header(noted.group(1)))):
        return None if field_name in (present or {}) else field_name
    normal = normalise_header(name)
    if not normal or normal in ALIAS_TO_FIELD:
        return None
    for first, second, field_name in _TWO_WORDS:
        rest = normal[len(first) :]
        if normal.startswith(first) and len(rest) >= 2 and _abbreviates(rest, second):
            return field_name
    for alias, field_name in ALIAS_TO_FIELD.items():
        if len(alias) < _NO_FUZZ_BELOW or alias[0] != normal[0]:
            continue
        if abs(len(alias) - len(normal)) > 2:
            continue
        if _distance(normal, alias) <= 1:
            return field_name
        if len(alias) >= _TWO_EDITS_FROM and _distance(normal, alias, change=2) <= 2:
            return field_name
    return None


def _abbreviates(short: str, word: str) -> bool:
    """``short`` is ``word`` with letters left out (not all of it), starting like it."""
    if short[0] != word[0] or len(short) >= len(word):
        return False
    letters = iter(word)
    return all(letter in letters for letter in short)


def _distance(a: str, b: str, *, change: int = 1) -> int:
    """Damerau-Levenshtein distance (optimal string alignment); a changed letter costs
    ``change`` (2: only added, dropped and swapped letters count as one edit)."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else change
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[-1]
