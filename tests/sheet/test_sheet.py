"""file → rows: the loader, through real files."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bulk_delete.errors import InputError
from bulk_delete.sheet.read import RawRow, open_sheet

G1 = "3aee22bd-8419-422a-8242-c510df9af021"


def rows_of(path: Path, sheet: str | None = None) -> list[RawRow | None]:
    with open_sheet(path, sheet=sheet) as opened:
        return list(opened)


@pytest.mark.parametrize("sep", [",", ";", "\t", "|"])
def test_delimiter_is_sniffed(write_csv: Callable[..., Path], sep: str) -> None:
    path = write_csv(f"ProspectId{sep}Codes\n{G1}{sep}163\n")
    with open_sheet(path) as opened:
        assert opened.info.delimiter == sep
        assert [r.cells[:2] for r in opened if r] == [(G1, "163")]


@pytest.mark.parametrize(
    "header",
    ["ProspectId", "prospect_id", "Prospect ID", "LEAD-ID", "LeadId", " lead id "],
)
def test_prospect_id_aliases(write_csv: Callable[..., Path], header: str) -> None:
    [row] = rows_of(
        write_csv(f"{header},Activity Codes,Start Date,End_Date,Webhook\n{G1},163,a,b,c\n")
    )
    assert row is not None
    assert row.cells == (G1, "163", "a", "b", "c")


def test_utf8_bom_is_invisible(write_csv: Callable[..., Path]) -> None:
    path = write_csv(f"\ufeffProspectId,Codes\n{G1},163\n")
    [row] = rows_of(path)
    assert row is not None
    assert row.cells[0] == G1


def test_non_utf8_falls_back_to_cp1252_with_a_warning(write_csv: Callable[..., Path]) -> None:
    path = write_csv(f"ProspectId,Codes,Note\n{G1},163,Café Müller\n", encoding="cp1252")
    with open_sheet(path) as opened:
        assert opened.info.encoding == "cp1252"
        assert "not UTF-8" in opened.info.warnings[0]
        assert len([r for r in opened if r]) == 1


def test_row_numbers_are_as_excel_shows_them(write_csv: Callable[..., Path]) -> None:
    path = write_csv(f'\nProspectId,Codes\n{G1},163\n\n,\n{G1},"163,\n166"\n{G1},170\n')
    rows = rows_of(path)
    # header is row 2 (a blank line above it); blank lines are rows too, as in Excel
    assert [r.row if r else None for r in rows] == [3, None, None, 6, 7]


def test_extra_cells_are_counted_not_fatal(write_csv: Callable[..., Path]) -> None:
    rows = rows_of(write_csv(f"ProspectId,Codes\n{G1},163,x,y\n{G1},163,,\n"))
    assert [r.extra_cells for r in rows if r] == [2, 0]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"\n\n  \n", "no header row"),
        (b"Name,Codes\nx,1\n", "no ProspectId column"),
        (b"\x00\x01\x02binary\xff" * 20, "not a text file"),
        (b"PK\x03\x04rest-of-a-zip", "Excel workbook named like a CSV"),
        (b"ProspectId,LeadId\n", "two columns mean ProspectId"),
    ],
)
def test_bad_csv_files(
    write_csv: Callable[..., Path], tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        rows_of(path)


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        rows_of(tmp_path / "nope.csv")


def test_xlsx_first_sheet_by_default_and_by_name(write_xlsx: Callable[..., Path]) -> None:
    path = write_xlsx([["ProspectId", "Codes"], [G1, 163]], extra_sheets=["Other"])
    assert [r.cells[:2] for r in rows_of(path) if r] == [(G1, 163)]
    assert [r.cells[:2] for r in rows_of(path, sheet="leads") if r] == [(G1, 163)]
    with pytest.raises(InputError, match=r"no sheet named 'Nope'.*'Leads', 'Other'"):
        rows_of(path, sheet="Nope")


def test_xlsx_that_is_not_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "fake.xlsx"
    path.write_text("ProspectId,Codes\n")
    with pytest.raises(InputError, match="not a valid Excel workbook"):
        rows_of(path)


def test_xlsx_cells_keep_types_errors_and_row_numbers(write_xlsx: Callable[..., Path]) -> None:
    path = write_xlsx(
        [
            [],
            ["ProspectId", "Codes", "FromDate", "ToDate"],
            [G1, 163.0, dt.datetime(2024, 1, 2, 3, 4, 5), dt.datetime(2024, 1, 31)],
            ["#N/A", "=1+1", None, None],
        ],
        formats={"D3": "yyyy-mm-dd"},
    )
    rows = [r for r in rows_of(path) if r]
    assert rows[0].row == 3
    assert rows[0].cells[:4] == (G1, 163.0, dt.datetime(2024, 1, 2, 3, 4, 5), dt.date(2024, 1, 31))
    assert rows[1].row == 4
    assert rows[1].cells[0] == "#N/A"


@pytest.mark.parametrize(
    ("text", "cells"),
    [
        (f"ProspectId,Codes,Name\n{G1},163\n", (G1, "163", None, None, None)),  # short row
        (f"ProspectId,Codes,Name\n{G1}\n", (G1, None, None, None, None)),
        (f"Name,ProspectId,Codes\nx,{G1}\n", (G1, None, None, None, None)),
        (f"ProspectId,Codes,From,To\n{G1},163,2024-01-01\n", (G1, "163", "2024-01-01", None, None)),
    ],
)
def test_short_rows_read_as_empty_cells(
    write_csv: Callable[..., Path], text: str, cells: tuple[object, ...]
) -> None:
    [row] = rows_of(write_csv(text))
    assert row is not None
    assert row.cells == cells
    assert row.extra_cells == 0


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_with_a_bom_is_read_and_named(tmp_path: Path, codec: str) -> None:
    """Excel's "Unicode Text" save: UTF-16 with a BOM, tab-separated."""
    text = "ProspectId\tCodes\tNote\n3aee22bd-8419-422a-8242-c510df9af021\t201\tJosé\n"
    path = tmp_path / "unicode.txt.csv"
    path.write_bytes("\ufeff".encode(codec) + text.encode(codec))
    with open_sheet(path) as sheet:
        rows = list(sheet)
        assert sheet.info.encoding == codec.upper().replace("-LE", "LE").replace("-BE", "BE")
        assert sheet.info.delimiter == "\t"
    assert rows == [RawRow(2, ("3aee22bd-8419-422a-8242-c510df9af021", "201", None, None, None))]


def test_xls_error_cells_are_named_not_empty(tmp_path: Path) -> None:
    import xlwt

    workbook = xlwt.Workbook()
    sheet = workbook.add_sheet("Leads")
    for column, name in enumerate(["ProspectId", "Codes"]):
        sheet.write(0, column, name)
    sheet.write(1, 0, "3aee22bd-8419-422a-8242-c510df9af021")
    sheet.row(1).set_cell_error(1, 0x2A)  # #N/A
    path = tmp_path / "legacy.xls"
    workbook.save(str(path))
    [row] = rows_of(path)
    assert row is not None
    assert row.cells[1] == "#N/A"


def test_ods_error_cells_are_named_not_empty(tmp_path: Path) -> None:
    import zipfile

    table = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"
    content = f"""<?xml version="1.0" encoding="UTF-8"?>
<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"
 xmlns:table="{table}" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"
 xmlns:calcext="urn:org:documentfoundation:names:experimental:calc:xmlns:calcext:1.0"
 office:version="1.2"><office:body><office:spreadsheet><table:table table:name="Leads">
<table:table-row><table:table-cell office:value-type="string"><text:p>ProspectId</text:p>
</table:table-cell><table:table-cell office:value-type="string"><text:p>Codes</text:p>
</table:table-cell></table:table-row>
<table:table-row><table:table-cell office:value-type="string">
<text:p>3aee22bd-8419-422a-8242-c510df9af021</text:p></table:table-cell>
<table:table-cell table:formula="of:=NA()" office:value-type="string" office:string-value=""
 calcext:value-type="error"><text:p>#N/A</text:p></table:table-cell></table:table-row>
</table:table></office:spreadsheet></office:body></office:document-content>"""
    manifest = """<?xml version="1.0" encoding="UTF-8"?>
<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0">
<manifest:file-entry manifest:full-path="/"
 manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>
<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>
</manifest:manifest>"""
    path = tmp_path / "calc.ods"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        archive.writestr("META-INF/manifest.xml", manifest)
        archive.writestr(
            "content.xml",
            "".join(line.strip() + " " for line in content.splitlines()).replace("> <", "><"),
        )
    [row] = rows_of(path)
    assert row is not None
    assert row.cells[1] == "#N/A"


def test_xlsx_formula_without_a_saved_value_is_not_empty(write_xlsx: Callable[..., Path]) -> None:
    path = write_xlsx([["ProspectId", "Codes"], ["3aee22bd-8419-422a-8242-c510df9af021", "=200+1"]])
    [row] = rows_of(path)
    assert row is not None
    assert row.cells[1] == "=200+1"  # openpyxl alone reads None here, which --codes would fill


@settings(max_examples=30, deadline=None)
@given(
    titles=st.integers(0, 2),
    before=st.integers(0, 4),
    after=st.integers(0, 4),
    note=st.text("abc ,;\n", max_size=8),
)
def test_a_quote_never_closed_is_named_not_read_into_one_cell(
    tmp_path_factory: pytest.TempPathFactory, titles: int, before: int, after: int, note: str
) -> None:
    """The csv module takes every line after an unclosed quote as that one cell: the rows
    there vanished, and the plan said "rows read 1", exit 0."""
    row = f"{G1},201,fine\n"
    text = "Title\n" * titles + "ProspectId,Codes,Note\n" + row * before
    text += f'{G1},201,"{note}\n' + row * after  # the quote opens and never closes
    path = tmp_path_factory.mktemp("quote") / "quote.csv"
    path.write_text(text)
    opened_at = titles + 2 + before  # the header's row, then each row before
    with pytest.raises(InputError, match=rf"row {opened_at} opens a quoted cell .* never closed"):
        rows_of(path)
