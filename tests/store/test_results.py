"""The results workbook, and `export` to .xlsx through the same writer, read back with openpyxl
as the person it is forwarded to would see it."""

from __future__ import annotations

import datetime as dt
import stat
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pytest
import xlsxwriter
from openpyxl.utils import get_column_letter

from bulk_delete.commands import export
from bulk_delete.records import InvalidRow as PlannedInvalid
from bulk_delete.records import Request
from bulk_delete.store.checkpoint import Checkpoint
from bulk_delete.store.results_workbook import (
    InvalidSheetRow,
    RequestRow,
    ResultsSummary,
    write_results,
)
from bulk_delete.store.workbook import Book, Table, open_book

TZ = "Asia/Kolkata"
UTC = dt.UTC
GUID = "0f5e1d7c-3b1a-4c8e-9d2f-6a7b8c9d0e1f"
START = dt.datetime(2026, 11, 1, 18, 30, tzinfo=UTC)  # midnight in Kolkata


def _summary(**overrides: object) -> ResultsSummary:
    fields: dict[str, object] = {
        "asked": "sheet leads.xlsx",
        "codes": (201, 202),
        "window_from": START,
        "window_to": START + dt.timedelta(days=1),
        "tz": TZ,
        "plan": (("rows read", 5), ("requests", 3), ("invalid rows", 2)),
        "outcomes": (("queued", 2), ("failed", 1)),
        "rate_achieved": 4.5,
        "refusals": 7,
        "learned_limit": "20 calls / 5 s",
        "share": 0.5,
    }
    fields.update(overrides)
    return ResultsSummary(**fields)  # type: ignore[arg-type]


def _requests(count: int = 3) -> Iterator[RequestRow]:
    for n in range(count):
        yield RequestRow(
            prospect_id=GUID,
            codes=(201, 202),
            from_date=START,
            to_date=START + dt.timedelta(hours=n),
            outcome="queued" if n else "failed",
            reason="" if n else '=HYPERLINK("http://x")',
            source_rows=(n + 2,) if n else (2, 9),
            http_status=200,
            attempts=1,
            updated_at=START,
            extra=(f"Lead {n}", f"lead{n}@example.com"),
        )


def _write(tmp_path: Path, **kwargs: object) -> openpyxl.Workbook:
    path = tmp_path / "out" / "results.xlsx"
    invalid = [
        InvalidSheetRow(row=4, reason="ProspectId is not a GUID", cells=("-1", "201", "+tomorrow")),
        InvalidSheetRow(row=7, reason="no codes", cells=(GUID, "@SUM(A1)", "")),
    ]
    write_results(
        path,
        _summary(**kwargs),
        _requests(),
        invalid,
        extra_columns=("Name", "Email"),
        sheet_columns=("ProspectId", "ActivityEventList", "FromDate"),
    )
    return openpyxl.load_workbook(path)


def test_three_sheets_in_order(tmp_path: Path) -> None:
    assert _write(tmp_path).sheetnames == ["Summary", "Requests", "Invalid rows"]


def test_file_is_private_and_no_temporary_is_left(tmp_path: Path) -> None:
    _write(tmp_path)
    files = list((tmp_path / "out").iterdir())
    assert [f.name for f in files] == ["results.xlsx"]
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600


def test_requests_header_frozen_and_filtered(tmp_path: Path) -> None:
    for name in ("Requests", "Invalid rows"):
        sheet = _write(tmp_path)[name]
        assert sheet.freeze_panes == "A2"
        assert sheet.auto_filter.ref is not None
        assert sheet.auto_filter.ref.startswith("A1:")


def test_requests_carry_extra_columns_and_sheet_rows(tmp_path: Path) -> None:
    sheet = _write(tmp_path)["Requests"]
    rows = list(sheet.iter_rows(values_only=True))
    header = rows[0]
    assert header[-2:] == ("Name", "Email")
    assert f"FromDate ({TZ})" in header
    assert sheet.auto_filter.ref == f"A1:L{len(rows)}"
    by_name = [dict(zip(header, row, strict=True)) for row in rows[1:]]
    assert [r["Email"] for r in by_name] == [f"lead{n}@example.com" for n in range(3)]
    assert [r["sheet rows"] for r in by_name] == ["2, 9", 3, 4]
    assert by_name[1]["outcome"] == "queued"


def test_dates_are_date_cells_in_the_runs_zone(tmp_path: Path) -> None:
    sheet = _write(tmp_path)["Requests"]
    header = [c.value for c in sheet[1]]
    cell = sheet.cell(row=2, column=header.index(f"FromDate ({TZ})") + 1)
    assert isinstance(cell.value, dt.datetime)
    assert cell.number_format == "yyyy-mm-dd hh:mm:ss"
    assert cell.value == START.astimezone(ZoneInfo(TZ)).replace(tzinfo=None)
    assert cell.value == dt.datetime(2026, 11, 2, 0, 0)


def test_guid_columns_are_wide_enough(tmp_path: Path) -> None:
    book = _write(tmp_path)
    assert book["Requests"].column_dimensions["A"].width >= 36
    assert book["Invalid rows"].column_dimensions["C"].width >= 36  # the ProspectId as written


def test_cells_that_look_like_formulas_stay_text(tmp_path: Path) -> None:
    book = _write(tmp_path)
    reason = book["Requests"]["F2"]
    assert reason.data_type == "s"
    assert reason.value == '=HYPERLINK("http://x")'
    invalid = list(book["Invalid rows"].iter_rows(min_row=2, values_only=True))
    assert invalid == [
        (4, "ProspectId is not a GUID", "-1", "201", "+tomorrow"),
        (7, "no codes", GUID, "@SUM(A1)", None),
    ]
    assert all(c.data_type == "s" for c in book["Invalid rows"][3][2:4])


def test_summary_says_what_was_asked_and_what_came_of_it(tmp_path: Path) -> None:
    sheet = _write(tmp_path, verification=(("verified", 2),), backup="backup.csv")["Summary"]
    pairs = {row[0]: row[1] for row in sheet.iter_rows(values_only=True) if row[0]}
    assert pairs["Activity codes"] == "201, 202"
    assert pairs[f"From ({TZ})"] == dt.datetime(2026, 11, 2, 0, 0)
    assert pairs["From (UTC)"] == dt.datetime(2026, 11, 1, 18, 30)
    assert pairs["requests"] == 3
    assert pairs["queued"] == 2
    assert pairs["Refusals (HTTP 429)"] == 7
    assert pairs["Learned limit"] == "20 calls / 5 s"
    assert pairs["Share of the account's limit"] == "50%"
    assert pairs["verified"] == 2
    assert pairs["Written to"] == "backup.csv"


def test_summary_leaves_out_what_did_not_happen(tmp_path: Path) -> None:
    sheet = _write(tmp_path, window_from=None, window_to=None)["Summary"]
    labels = {row[0] for row in sheet.iter_rows(values_only=True)}
    assert "Verification" not in labels
    assert "Backup" not in labels
    assert "From (UTC)" not in labels


def test_a_naive_date_is_refused_not_guessed(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        _write(tmp_path, window_from=dt.datetime(2026, 11, 1))
    assert not (tmp_path / "out" / "results.xlsx").exists()


def test_rows_are_streamed_from_a_generator(tmp_path: Path) -> None:
    path = tmp_path / "big.xlsx"
    write_results(path, _summary(), _requests(2000))
    book = openpyxl.load_workbook(path, read_only=True)
    try:
        assert sum(1 for _ in book["Requests"].iter_rows(min_row=2)) == 2000
    finally:
        book.close()


# ---------------------------------------------------------------- past a sheet's last row


def _rows(book: openpyxl.Workbook, names: list[str]) -> list[tuple[object, ...]]:
    """The rows under the header of each sheet in ``names``, one after another; each sheet
    must start with the same header."""
    headers = {book[name]["A1"].value for name in names}
    assert len(headers) == 1
    return [row for name in names for row in book[name].iter_rows(min_row=2, values_only=True)]


def test_requests_past_a_sheet_go_on_in_continuation_sheets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past Excel's last row (here 5 rows a sheet), "Requests (2)" and on take the rest, each
    with its header frozen; nothing is dropped, and the Summary names the sheets."""
    monkeypatch.setattr("bulk_delete.store.workbook.MAX_ROWS", 5)
    path = tmp_path / "results.xlsx"
    write_results(path, _summary(), _requests(11))
    book = openpyxl.load_workbook(path)
    continued = ["Requests", "Requests (2)", "Requests (3)"]
    assert book.sheetnames == ["Summary", *continued, "Invalid rows"]
    assert [row[8] for row in _rows(book, continued)] == [1] * 11  # attempts
    assert [book[name].max_row for name in continued] == [5, 5, 4]  # each with its header
    assert all(book[name].freeze_panes == "A2" for name in continued)
    summary = [row for row in book["Summary"].iter_rows(values_only=True) if row[0]]
    assert ("On sheets", ", ".join(continued)) in [row[:2] for row in summary]


# ---------------------------------------------------------------- `export` to .xlsx

LEAD = "6a3e5a2e-4b0f-4bde-9f0e-0000000000{:02d}"


def _checkpoint(path: Path, requests: int) -> Path:
    planned = [
        Request(LEAD.format(n), ("201",), "2026-11-01 18:30:00", "", "", (n + 2,))
        for n in range(requests)
    ]
    invalid = [PlannedInvalid(row=99, reasons=(("bad", "no GUID"),), from_date="=1+1")]
    with Checkpoint.open(path) as checkpoint:
        checkpoint.store_plan(
            planned, invalid, source="leads.csv", fingerprint="f", options={"tz": TZ}, extra={}
        )
        checkpoint.mark_queued_up_to(requests - 1)
    return path


def test_an_export_workbook_is_formatted_as_the_results(tmp_path: Path) -> None:
    """One writer: a named sheet, header styled, frozen and filtered, GUIDs wide enough, the
    API's dates as date cells (UTC, and the plan's zone beside them); a sheet's own text, even
    one that looks like a formula, stays text."""
    out = tmp_path / "outcomes.xlsx"
    assert export.export(_checkpoint(tmp_path / "ck.sqlite", 3), out) == 4
    book = openpyxl.load_workbook(out)
    assert book.sheetnames == ["Requests"]
    sheet = book["Requests"]
    header = [cell.value for cell in sheet[1]]
    assert sheet["A1"].font.bold
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:{get_column_letter(len(header))}5"
    assert sheet.column_dimensions["A"].width >= 36
    first = dict(zip(header, [cell.value for cell in sheet[2]], strict=True))
    assert first["FromDate"] == dt.datetime(2026, 11, 1, 18, 30)
    assert first[f"FromDate ({TZ})"] == dt.datetime(2026, 11, 2, 0, 0)
    assert isinstance(first["updated_at"], dt.datetime)
    invalid = sheet.cell(5, header.index("FromDate (as written)") + 1)
    assert (invalid.value, invalid.data_type) == ("=1+1", "s")


def test_an_export_past_a_sheet_goes_on_in_continuation_sheets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bulk_delete.store.workbook.MAX_ROWS", 5)
    checkpoint = _checkpoint(tmp_path / "ck.sqlite", 11)
    assert export.export(checkpoint, tmp_path / "all.xlsx") == 12
    book = openpyxl.load_workbook(tmp_path / "all.xlsx")
    assert book.sheetnames == ["Requests", "Requests (2)", "Requests (3)"]
    rows = _rows(book, book.sheetnames)
    assert [row[0] for row in rows[:11]] == [LEAD.format(n) for n in range(11)]
    status = [cell.value for cell in book["Requests"][1]].index("status")
    assert [row[status] for row in rows] == ["queued"] * 10 + ["pending", "invalid"]


def test_a_stop_inside_the_writer_leaves_nothing_beside_the_workbook(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """XlsxWriter streams each sheet through a temporary file it names itself; a stop that
    lands between its making one and its removing it (a signal, at any byte) once left a
    tmpXXXX beside the results. Here the close fails as such a stop makes it fail."""
    opened: list[Book] = []

    def stopped(*_: object) -> None:
        raise KeyboardInterrupt

    def write_then_stop() -> None:
        with open_book(tmp_path / "out.xlsx") as book:
            opened.append(book)
            Table(book, "Requests", ["ProspectId"]).write(["x" * 100])
            assert list(tmp_path.iterdir()) != []  # the workbook's part and a streamed sheet
            monkeypatch.setattr(xlsxwriter.Workbook, "close", stopped)
            stopped()

    with pytest.raises(KeyboardInterrupt):
        write_then_stop()
    for sheet in opened[0].xlsx.worksheets():
        sheet.row_data_fh.close()  # what the close that failed would have closed
    assert list(tmp_path.iterdir()) == []
