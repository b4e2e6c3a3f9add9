"""→ export: write tables (the plan preview, invalid rows, outcomes) as CSV or .xlsx.

The format follows the file name: ``.xlsx`` writes a workbook through the results workbook's
writer (workbook.py: formats, widths, a frozen header, continuation sheets past Excel's last
row), any other name writes UTF-8 CSV. In a workbook, the API's dates (UTC, and the plan's --tz
beside them) are date cells; a sheet's own text ("as written") stays text. Writers take plain
rows and know nothing of where they come from.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Protocol

from ..config import DEFAULT_TZ
from ..errors import OptionError, StorageError
from ..files import make_folders, open_private, replacing, storage_cause
from ..records import InvalidRow, Request
from ..timetext import is_utc, to_local
from .cell_text import csv_safe
from .checkpoint import Outcome, Pending

PREVIEW_COLUMNS = (
    "ProspectId",
    "ActivityEventList",
    "FromDate",
    "ToDate",
    "StatusWebhookURL",
    "source_rows",
    "body",
)
# Invalid rows were never converted: their cells are the sheet's own text, named so.
INVALID_COLUMNS = (
    "row",
    "reason",
    "ProspectId",
    "ActivityEventList",
    "FromDate (as written)",
    "ToDate (as written)",
    "StatusWebhookURL",
)
EXPORT_COLUMNS = (
    "ProspectId",
    "ActivityEventList",
    "FromDate",
    "ToDate",
    "StatusWebhookURL",
    "status",
    "attempts",
    "http_status",
    "error",
    "source_rows",
    "updated_at",
    "verified",
    "remaining",
    "verified_at",
    "FromDate (as written)",  # invalid rows only: the sheet's text, never a converted date
    "ToDate (as written)",
)
_FROM, _TO = 2, 3  # where FromDate and ToDate (UTC, as sent) are in the preview and the export


class RowWriter(Protocol):
    def __call__(self, row: Sequence[Any]) -> None: ...


def join_rows(rows: Iterable[int]) -> str:
    return ";".join(str(row) for row in rows)


@contextmanager
def open_table(
    path: str | Path, columns: Sequence[str], sheet: str = "Rows"
) -> Iterator[RowWriter]:
    """A writer for one table; the header is written first. The table lands under its name
    only when complete (see ``files.replacing``); nothing is sent while one is written.
    ``sheet``: the workbook's sheet (and "SHEET (2)" … past Excel's last row)."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".xlsx":
            with _xlsx_writer(path, columns, sheet) as write:
                yield write
            return
        with replacing(path, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(columns)
            yield lambda row: writer.writerow([csv_safe(value) for value in row])
    except OSError as exc:
        cause = storage_cause(exc) or exc.strerror or exc
        raise OptionError(f"cannot write {path}: {cause}") from None


@contextmanager
def stream_table(handle: IO[str], columns: Sequence[str]) -> Iterator[RowWriter]:
    """A CSV writer on an open stream (standard output); the header is written first."""
    writer = csv.writer(handle)
    writer.writerow(columns)
    yield lambda row: writer.writerow([csv_safe(value) for value in row])
    handle.flush()


@contextmanager
def _xlsx_writer(path: Path, columns: Sequence[str], sheet: str) -> Iterator[RowWriter]:
    from .workbook import GUID_WIDTH, Table, open_book  # (a CSV needs no workbook writer)

    dates = [n for n, name in enumerate(columns) if _is_date_column(name)]
    with open_book(path) as book:
        table = Table(book, sheet, columns)
        if columns and columns[0] == "ProspectId":
            table.widths[0] = GUID_WIDTH

        def write(row: Sequence[Any]) -> None:
            cells = list(row)
            for n in dates:
                cells[n] = _api_date(cells[n])
            table.write(cells)

        yield write
        table.finish()


_DATE_COLUMNS = frozenset({"FromDate", "ToDate", "updated_at", "verified_at"})


def _is_date_column(name: str) -> bool:
    """The API's dates: "FromDate", and "FromDate (Asia/Kolkata)" beside it; never a sheet's
    own text, "FromDate (as written)"."""
    return name.split(" (")[0] in _DATE_COLUMNS and not name.endswith("(as written)")


def _api_date(value: Any) -> Any:
    """``YYYY-MM-DD HH:MM:SS`` (the API's format) as a date cell's value; anything else as
    it is."""
    if isinstance(value, str) and len(value) == 19 and value[10] == " ":
        with contextlib.suppress(ValueError):
            return dt.datetime.fromisoformat(value)
    return value


def local_columns(tz: str) -> tuple[str, ...]:
    """The dates again in the plan's --tz, beside the UTC ones; none when --tz is UTC."""
    return () if is_utc(tz) else (f"FromDate ({tz})", f"ToDate ({tz})")


def _with_local(columns: Sequence[str], tz: str) -> tuple[str, ...]:
    return (*columns[: _TO + 1], *local_columns(tz), *columns[_TO + 1 :])


def _local_row(row: Sequence[Any], tz: str) -> tuple[Any, ...]:
    """``row`` with its UTC FromDate and ToDate also shown in ``tz`` right after them."""
    if is_utc(tz):
        return tuple(row)
    local = (to_local(row[_FROM], tz), to_local(row[_TO], tz))
    return (*row[: _TO + 1], *local, *row[_TO + 1 :])


def preview_columns(tz: str = DEFAULT_TZ) -> tuple[str, ...]:
    return _with_local(PREVIEW_COLUMNS, tz)


def preview_row(request: Request, tz: str = DEFAULT_TZ) -> tuple[Any, ...]:
    row = (
        request.prospect_id,
        ";".join(request.codes),
        request.from_date,
        request.to_date,
        request.webhook,
        join_rows(request.source_rows),
        request.body_json(),
    )
    return _local_row(row, tz)


def export_columns(tz: str = DEFAULT_TZ) -> tuple[str, ...]:
    return _with_local(EXPORT_COLUMNS, tz)


def export_row(row: Sequence[Any], tz: str = DEFAULT_TZ) -> tuple[Any, ...]:
    """A checkpoint row (``Checkpoint.export_rows``) as the export shows it."""
    return _local_row(row, tz)


def invalid_row(row: InvalidRow) -> tuple[Any, ...]:
    return (
        row.row,
        row.reason,
        row.prospect_id,
        row.codes,
        row.from_date,
        row.to_date,
        row.webhook,
    )


def write_invalid(path: str | Path, rows: Iterable[InvalidRow]) -> int:
    count = 0
    with open_table(path, INVALID_COLUMNS, "Invalid rows") as write:
        for row in rows:
            write(invalid_row(row))
            count += 1
    return count


class OutcomeLog:
    """`--log-file`: one JSON line per request outcome, flushed as written; no body, no keys."""

    def __init__(self, handle: IO[str], path: Path | None, wall: Callable[[], float]) -> None:
        self._handle = handle
        self._path = path
        self._wall = wall  # what stamps each line (the run's clock)

    @classmethod
    @contextmanager
    def open(cls, path: Path | None, wall: Callable[[], float]) -> Iterator[OutcomeLog | None]:
        if path is None:
            yield None
            return
        try:
            make_folders(path.parent)
            handle = open_private(path, "a", encoding="utf-8")
        except OSError as error:
            raise OptionError(f"cannot write {path}: {error.strerror}") from None
        try:
            yield cls(handle, path, wall)
        finally:
            # Each line is flushed as written: only a line that already failed (and stopped
            # the run) can still be in the buffer, so closing must not raise it again.
            with contextlib.suppress(OSError):
                handle.close()

    def __call__(self, item: Pending, outcome: Outcome) -> None:
        line = {
            "time": dt.datetime.fromtimestamp(self._wall(), dt.UTC).isoformat(timespec="seconds"),
            "seq": outcome.seq,
            "ProspectId": item.prospect_id,
            "status": outcome.status,
            "transient": outcome.transient,
            "attempts": outcome.attempts,
            "rate_limited": outcome.rate_limited,
            "http_status": outcome.http_status,
            "error": outcome.error,
        }
        try:
            self._handle.write(json.dumps(line) + "\n")
            self._handle.flush()
        except OSError as error:  # sending has begun: the run stops (exit 3), nothing is lost
            raise StorageError(
                f"cannot write the log {self._path}: {storage_cause(error) or error.strerror}. "
                "Every outcome is recorded in the checkpoint; free some space and rerun the "
                "same command to resume."
            ) from None
