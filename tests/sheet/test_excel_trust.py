"""Excel reads what Excel shows (issue 23.3), and files that are not what their name says
(18.4): hidden sheets, the active sheet, merged cells, Apple Numbers and OpenDocument."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from click.testing import CliRunner

from bulk_delete.cli.main import cli
from bulk_delete.errors import InputError
from bulk_delete.plan.build import build_plan
from bulk_delete.plan.rules import PlanOptions
from bulk_delete.records import InvalidRow
from bulk_delete.sheet import read as sheets
from bulk_delete.sheet.read import open_sheet

GUIDS = [f"3aee22bd-8419-422a-8242-c510df9af{n:03d}" for n in range(100)]
OLD, NEW = GUIDS[:3], GUIDS[10:12]


def workbook(path: Path, sheets_: list[tuple[str, list[list[Any]], str]], active: int) -> Path:
    """Sheets as (name, rows, state), the workbook opening on sheet ``active``."""
    book = openpyxl.Workbook()
    for index, (name, rows, state) in enumerate(sheets_):
        worksheet = book.active if index == 0 else book.create_sheet(name)
        assert worksheet is not None
        worksheet.title = name
        for row in rows:
            worksheet.append(row)
        worksheet.sheet_state = state
    book.active = active
    book.save(path)
    return path


def leads(guids: list[str]) -> list[list[Any]]:
    return [["ProspectId", "Codes"], *[[guid, 301] for guid in guids]]


def planned(path: Path, **options: Any) -> list[str]:
    return [request.prospect_id for request in build_plan(path, PlanOptions(**options)).requests()]


@pytest.mark.parametrize("state", ["hidden", "veryHidden"])
def test_a_hidden_first_sheet_is_not_read(tmp_path: Path, state: str) -> None:
    path = workbook(
        tmp_path / "leads.xlsx",
        [("OLD_DO_NOT_USE", leads(OLD), state), ("Leads", leads(NEW), "visible")],
        active=1,
    )
    plan = build_plan(path, PlanOptions())
    assert [request.prospect_id for request in plan.requests()] == NEW
    assert plan.source.sheet == "Leads"
    assert "workbook has hidden sheet(s) 'OLD_DO_NOT_USE' (not read)" in plan.source.warnings


def test_the_plan_names_the_sheet_read_and_the_hidden_one(tmp_path: Path) -> None:
    path = workbook(
        tmp_path / "leads.xlsx",
        [("OLD_DO_NOT_USE", leads(OLD), "hidden"), ("Leads", leads(NEW), "visible")],
        active=1,
    )
    result = CliRunner().invoke(cli, ["plan", str(path)])
    assert result.exit_code == 0, result.output
    assert "(sheet 'Leads')" in result.stdout
    assert "warning: workbook has hidden sheet(s) 'OLD_DO_NOT_USE' (not read)" in result.stdout


def test_a_hidden_sheet_is_read_when_named(tmp_path: Path) -> None:
    path = workbook(
        tmp_path / "leads.xlsx",
        [("OLD_DO_NOT_USE", leads(OLD), "hidden"), ("Leads", leads(NEW), "visible")],
        active=1,
    )
    plan = build_plan(path, PlanOptions(sheet="OLD_DO_NOT_USE"))
    assert [request.prospect_id for request in plan.requests()] == OLD
    assert plan.source.warnings == (
        "sheet 'OLD_DO_NOT_USE' is hidden in the workbook (read: --sheet names it)",
    )


def test_the_active_sheet_is_read_and_the_others_named(tmp_path: Path) -> None:
    path = workbook(
        tmp_path / "leads.xlsx",
        [("Summary", leads(OLD), "visible"), ("Leads", leads(NEW), "visible")],
        active=1,
    )
    plan = build_plan(path, PlanOptions())
    assert [request.prospect_id for request in plan.requests()] == NEW
    assert plan.source.warnings == (
        "workbook has other sheet(s) 'Summary' (not read; --sheet NAME reads one)",
    )


def test_a_hidden_active_sheet_gives_way_to_the_first_visible(tmp_path: Path) -> None:
    path = workbook(
        tmp_path / "leads.xlsx",
        [
            ("Gone", leads(OLD), "veryHidden"),
            ("Leads", leads(NEW), "visible"),
            ("Old", leads(OLD), "hidden"),
        ],
        active=0,
    )
    patched = tmp_path / "patched.xlsx"  # (openpyxl moves activeTab off a hidden sheet)
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(patched, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "xl/workbook.xml":
                data = re.sub(rb'activeTab="\d+"', b'activeTab="0"', data)
                assert b'activeTab="0"' in data
            target.writestr(info, data)
    assert planned(patched) == NEW


def test_a_workbook_with_only_hidden_sheets_needs_sheet(tmp_path: Path) -> None:
    path = workbook(
        tmp_path / "leads.xlsx",
        [("A", leads(OLD), "visible"), ("B", leads(OLD), "hidden")],
        active=0,
    )
    hidden = tmp_path / "hidden.xlsx"  # (openpyxl refuses to save such a workbook)
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(hidden, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "xl/workbook.xml":
                data = data.replace(b'state="visible"', b'state="hidden"')
            target.writestr(info, data)
    with pytest.raises(InputError, match="the workbook has no visible worksheet"):
        open_sheet(hidden)
    assert planned(hidden, sheet="A") == OLD


# ---------------------------------------------------------------- merged cells


def merged_workbook(path: Path, rows: list[list[Any]], *ranges: str) -> Path:
    book = openpyxl.Workbook()
    worksheet = book.active
    assert worksheet is not None
    worksheet.title = "Leads"
    for row in rows:
        worksheet.append(row)
    for cells in ranges:
        worksheet.merge_cells(cells)
    book.save(path)
    return path


def test_a_vertical_merge_fills_its_column(tmp_path: Path) -> None:
    """Before: B3 read empty and took --codes 999; Excel shows 301 there."""
    path = merged_workbook(
        tmp_path / "leads.xlsx",
        [["ProspectId", "Codes"], [GUIDS[0], 301], [GUIDS[1], None], [GUIDS[2], None]],
        "B2:B3",
    )
    requests = list(build_plan(path, PlanOptions(codes=("999",))).requests())
    assert [(r.prospect_id, r.codes, r.source_rows) for r in requests] == [
        (GUIDS[0], ("301",), (2,)),
        (GUIDS[1], ("301",), (3,)),
        (GUIDS[2], ("999",), (4,)),
    ]


def test_a_merge_with_an_unread_column_gives_its_value(tmp_path: Path) -> None:
    """A1:B-style merge whose top-left is another column: Excel shows that value."""
    path = merged_workbook(
        tmp_path / "leads.xlsx",
        [["ProspectId", "Note", "Codes"], [GUIDS[0], 302, None]],
        "B2:C2",
    )
    [request] = build_plan(path, PlanOptions(codes=("999",))).requests()
    assert request.codes == ("302",)


def test_a_merge_across_two_read_columns_makes_the_rows_invalid(tmp_path: Path) -> None:
    path = merged_workbook(
        tmp_path / "leads.xlsx",
        [
            ["ProspectId", "Codes", "FromDate"],
            [GUIDS[0], 301, "2024-01-01"],
            [GUIDS[1], 302, None],
            [GUIDS[2], 303, "2024-01-01"],
        ],
        "B3:C3",
    )
    plan = build_plan(path, PlanOptions(codes=("999",)))
    assert [r.prospect_id for r in plan.requests()] == [GUIDS[0], GUIDS[2]]
    [bad] = list(plan.invalid)
    assert isinstance(bad, InvalidRow)
    assert bad.row == 3
    assert bad.reason == "cells B3:C3 are merged across ActivityEventList and FromDate"


def test_a_merge_into_the_header_row_makes_its_rows_invalid(tmp_path: Path) -> None:
    path = merged_workbook(
        tmp_path / "leads.xlsx",
        [["ProspectId", "Codes"], [GUIDS[0], None], [GUIDS[1], 301]],
        "B1:B2",
    )
    plan = build_plan(path, PlanOptions(codes=("999",)))
    assert [r.prospect_id for r in plan.requests()] == [GUIDS[1]]
    assert [bad.reason for bad in plan.invalid] == ["cells B1:B2 are merged with the header row"]


def test_a_merge_across_chunks_and_parts_is_filled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The top-left cell in one chunk (and part), the rest of the range in the next ones."""
    from bulk_delete.sheet import cells, parts

    monkeypatch.setattr(parts, "PART_CELLS", 8)
    monkeypatch.setattr(parts, "MIN_PART_BYTES", 1)
    monkeypatch.setattr(cells, "_SHEET_BLOCK", 64)
    monkeypatch.setattr(sheets, "CHUNK_ROWS", 4)
    rows: list[list[Any]] = [["ProspectId", "Codes"]]
    rows += [[guid, 301 if n == 2 else None] for n, guid in enumerate(GUIDS[:20])]
    path = merged_workbook(tmp_path / "leads.xlsx", rows, "B4:B15")
    cut = parts.cut(path, "Leads")
    assert cut is not None  # it is cut into parts
    cut.close()
    requests = list(build_plan(path, PlanOptions(codes=("999",))).requests())
    by_row = {request.source_rows[0]: request.codes for request in requests}
    assert len(by_row) == 20
    assert {row for row, codes in by_row.items() if codes == ("301",)} == set(range(4, 16))


def ods(path: Path, rows: list[str]) -> Path:
    """A minimal OpenDocument spreadsheet whose content.xml holds ``rows`` (table-row XML)."""
    content = (
        '<?xml version="1.0" encoding="UTF-8"?><office:document-content '
        'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2">'
        '<office:body><office:spreadsheet><table:table table:name="Leads">'
        + "".join(rows)
        + "</table:table></office:spreadsheet></office:body></office:document-content>"
    )
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(
            "mimetype",
            "application/vnd.oasis.opendocument.spreadsheet",
            compress_type=zipfile.ZIP_STORED,
        )
        archive.writestr("content.xml", content)
        archive.writestr(
            "META-INF/manifest.xml",
            '<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest='
            '"urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"><manifest:file-entry '
            'manifest:full-path="/" manifest:media-type='
            '"application/vnd.oasis.opendocument.spreadsheet"/></manifest:manifest>',
        )
    return path


def text(value: str) -> str:
    cell = '<table:table-cell office:value-type="string">'
    return f"{cell}<text:p>{value}</text:p></table:table-cell>"


def test_an_ods_vertical_merge_fills_its_column(tmp_path: Path) -> None:
    path = ods(
        tmp_path / "leads.ods",
        [
            f"<table:table-row>{text('ProspectId')}{text('Codes')}</table:table-row>",
            f"<table:table-row>{text(GUIDS[0])}<table:table-cell table:number-rows-spanned="
            '"2" office:value-type="float" office:value="301"><text:p>301</text:p>'
            "</table:table-cell></table:table-row>",
            f"<table:table-row>{text(GUIDS[1])}<table:covered-table-cell/></table:table-row>",
        ],
    )
    requests = list(build_plan(path, PlanOptions(codes=("999",))).requests())
    assert [r.codes for r in requests] == [("301",), ("301",)]


# ---------------------------------------------------------------- what the file really is


def numbers_file(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("Index/Document.iwa", b"\x00iwa")
        archive.writestr("Metadata/Properties.plist", b"plist")
    return path


NUMBERS = re.escape("is an Apple Numbers file: in Numbers use File → Export To → Excel (or CSV)")


@pytest.mark.parametrize("name", ["leads.numbers", "leads.csv", "leads.xlsx", "leads.txt"])
def test_an_apple_numbers_file_is_named_so(tmp_path: Path, name: str) -> None:
    """Before: "this is an Excel workbook named like a CSV; rename it .xlsx", which is false."""
    path = numbers_file(tmp_path / name)
    with pytest.raises(InputError, match=NUMBERS):
        open_sheet(path)


def test_a_numbers_package_folder_is_named_so(tmp_path: Path) -> None:
    folder = tmp_path / "leads.numbers"
    folder.mkdir()
    with pytest.raises(InputError, match=NUMBERS):
        open_sheet(folder)


def test_an_ods_named_csv_is_named_so(tmp_path: Path) -> None:
    row = f"<table:table-row>{text('ProspectId')}</table:table-row>"
    path = ods(tmp_path / "leads.csv", [row])
    with pytest.raises(InputError, match=r"OpenDocument spreadsheet named like a CSV; rename"):
        open_sheet(path)


def test_an_xlsx_named_csv_keeps_its_message(write_xlsx: Callable[..., Path]) -> None:
    path = write_xlsx([["ProspectId"]], name="leads.csv")
    with pytest.raises(InputError, match=r"Excel workbook named like a CSV; rename it \.xlsx"):
        open_sheet(path)


def test_a_merged_error_cell_stays_an_error_down_its_range(tmp_path: Path) -> None:
    path = merged_workbook(
        tmp_path / "leads.xlsx",
        [["ProspectId", "Codes"], [GUIDS[0], "=NA()"], [GUIDS[1], None]],
        "B2:B3",
    )
    plan = build_plan(path, PlanOptions(codes=("999",)))
    assert list(plan.requests()) == []
    assert [bad.row for bad in plan.invalid] == [2, 3]


def test_a_part_narrower_than_the_header_reads_as_wide(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A part whose last columns are all empty is as wide as the header (it used to stop the
    plan with an IndexError)."""
    from bulk_delete.sheet import cells, parts

    monkeypatch.setattr(parts, "PART_CELLS", 8)
    monkeypatch.setattr(parts, "MIN_PART_BYTES", 1)
    monkeypatch.setattr(cells, "_SHEET_BLOCK", 64)
    monkeypatch.setattr(sheets, "CHUNK_ROWS", 5)  # chunks of narrow parts only
    rows: list[list[Any]] = [["ProspectId", "Codes"]]
    rows += [[guid, 301] if n < 3 else [guid] for n, guid in enumerate(GUIDS[:30])]
    path = merged_workbook(tmp_path / "leads.xlsx", rows)
    requests = list(build_plan(path, PlanOptions(codes=("999",))).requests())
    assert [r.codes for r in requests] == [("301",)] * 3 + [("999",)] * 27
