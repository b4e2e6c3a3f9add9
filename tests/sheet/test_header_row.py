"""A title above the header (issue 32, point 2): found in the first 10 rows, or --header-row N.

Generated title rows above a generated header plan the same requests as the sheet without
them, found or named, in a CSV and a workbook; row numbers stay the sheet's own.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bulk_delete.cli.main import cli
from bulk_delete.errors import InputError
from bulk_delete.plan.build import Plan, build_plan
from bulk_delete.plan.rules import PlanOptions
from bulk_delete.sheet.headers import HEADER_ALIASES, known_fields

LEAD = "3aee22bd-8419-422a-8242-c510df9af{:03d}"
DATA = [  # ProspectId, codes, FromDate, ToDate; the third row is invalid on purpose
    {"ProspectId": LEAD.format(1), "ActivityEventList": "201", "FromDate": "2024-01-01"},
    {"ProspectId": LEAD.format(2), "ActivityEventList": "202;203", "ToDate": "2024-02-01"},
    {"ProspectId": "not-a-guid", "ActivityEventList": "201", "FromDate": "2024-01-01"},
    {"ProspectId": LEAD.format(1), "ActivityEventList": "204", "FromDate": "2024-01-01"},
]
FIELDS = ("ActivityEventList", "FromDate", "ToDate")

# A title cell may hold a line break or a quote: quoted in a CSV, it is still one row.
words = st.text('abcdefghijklmnopqrstuvwxyz QRS0123456789—:-\n",', min_size=1, max_size=20)
title_rows = st.lists(
    st.one_of(st.just([]), st.lists(words, min_size=1, max_size=4)), min_size=1, max_size=4
).filter(
    lambda rows: any(rows[:1]) and all(not known_fields(row) for row in rows)
)  # row 1 holds no known column (else it is the header), nor does any title
headers = st.tuples(
    st.sampled_from(HEADER_ALIASES["ProspectId"]),
    st.lists(st.sampled_from(FIELDS), min_size=1, max_size=3, unique=True),
    st.randoms(use_true_random=False),
)


def header_of(drawn: tuple[str, list[str], Any]) -> list[str]:
    """ProspectId (by some alias) and other known columns, by their aliases, in any order."""
    alias, fields, rng = drawn
    names = [alias] + [rng.choice(HEADER_ALIASES[name][:3]) for name in fields]
    rng.shuffle(names)
    return names


def table(header: list[str]) -> list[list[str]]:
    """The data rows under ``header`` (a sheet without a codes column takes --codes)."""
    fields = [known_fields([name]).pop() for name in header]
    return [[row.get(field, "") for field in fields] for row in DATA]


def csv_text(rows: Sequence[Sequence[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in rows:
        writer.writerow(row)
    return out.getvalue()


def shifted(plan: Plan, by: int) -> tuple[list[Any], list[tuple[int, str]]]:
    """The requests and invalid rows with row numbers as in the sheet without the titles."""
    requests = [
        (r.prospect_id, r.codes, r.from_date, r.to_date, tuple(n - by for n in r.source_rows))
        for r in plan.requests()
    ]
    return requests, [(row.row - by, row.reason) for row in plan.invalid]


OPTIONS = PlanOptions(codes=("999",))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(titles=title_rows, drawn=headers)
def test_title_rows_above_a_csv_header_change_nothing_but_the_row_numbers(
    write_csv: Callable[..., Path], titles: list[list[str]], drawn: tuple[str, list[str], Any]
) -> None:
    header = header_of(drawn)
    body = [header, *table(header)]
    plain = build_plan(write_csv(csv_text(body), name="plain.csv"), OPTIONS)
    titled = write_csv(csv_text([*titles, *body]), name="titled.csv")
    found = build_plan(titled, OPTIONS)
    named = build_plan(titled, PlanOptions(codes=("999",), header_row=len(titles) + 1))
    assert found.source.header_row == named.source.header_row == len(titles) + 1
    assert shifted(found, len(titles)) == shifted(plain, 0) == shifted(named, len(titles))


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(titles=title_rows, drawn=headers)
def test_title_rows_above_a_workbook_header_change_nothing_but_the_row_numbers(
    write_xlsx: Callable[..., Path], titles: list[list[str]], drawn: tuple[str, list[str], Any]
) -> None:
    header = header_of(drawn)
    body = [header, *table(header)]
    plain = build_plan(write_xlsx(body, name="plain.xlsx"), OPTIONS)
    titled = write_xlsx([*titles, *body], name="titled.xlsx")
    found = build_plan(titled, OPTIONS)
    named = build_plan(titled, PlanOptions(codes=("999",), header_row=len(titles) + 1))
    assert found.source.header_row == named.source.header_row == len(titles) + 1
    assert shifted(found, len(titles)) == shifted(plain, 0) == shifted(named, len(titles))


BODY = [
    ["ProspectId", "Codes", "FromDate"],
    *([r["ProspectId"], "201", "2024-01-01"] for r in DATA),
]
TITLED = [["Leads to purge — Q1"], ["prepared by data team"], *BODY]


def xls(path: Path, rows: list[list[str]]) -> Path:
    import xlwt

    workbook = xlwt.Workbook()
    sheet = workbook.add_sheet("Leads")
    for r, row in enumerate(rows):
        for c, cell in enumerate(row):
            sheet.write(r, c, cell)
    workbook.save(str(path))
    return path


def ods(path: Path, rows: list[list[str]]) -> Path:
    cells = "".join(
        "<table:table-row>"
        + "".join(
            f'<table:table-cell office:value-type="string"><text:p>{escape(c)}</text:p>'
            "</table:table-cell>"
            for c in row
        )
        + "</table:table-row>"
        for row in rows
    )
    content = (
        '<?xml version="1.0" encoding="UTF-8"?><office:document-content '
        'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2">'
        f'<office:body><office:spreadsheet><table:table table:name="Leads">{cells}'
        "</table:table></office:spreadsheet></office:body></office:document-content>"
    )
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?><manifest:manifest '
        'xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0">'
        '<manifest:file-entry manifest:full-path="/" '
        'manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>'
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
        "</manifest:manifest>"
    )
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        archive.writestr("META-INF/manifest.xml", manifest)
        archive.writestr("content.xml", content)
    return path


@pytest.mark.parametrize("kind", ["xls", "ods"])
def test_every_excel_format_finds_the_header_below_a_title(tmp_path: Path, kind: str) -> None:
    write = xls if kind == "xls" else ods
    plain = build_plan(write(tmp_path / f"plain.{kind}", BODY), PlanOptions())
    titled = write(tmp_path / f"titled.{kind}", TITLED)
    for options in (PlanOptions(), PlanOptions(header_row=3)):
        found = build_plan(titled, options)
        assert found.source.header_row == 3
        assert shifted(found, 2) == shifted(plain, 0)


def test_the_plan_names_the_header_row_and_rows_keep_their_numbers(tmp_path: Path) -> None:
    sheet = tmp_path / "titled.csv"
    sheet.write_text(csv_text(TITLED))
    done = CliRunner().invoke(cli, ["plan", str(sheet)])
    assert done.exit_code == 0, done.output
    assert "header         row 3 (the rows above it are not read)" in done.output
    assert "row 6: ProspectId 'not-a-guid' is not a GUID" in done.output
    assert "--header-row" not in done.output.split("Dry run:")[1]  # found, not typed
    done = CliRunner().invoke(cli, ["plan", str(sheet), "--header-row", "3"])
    assert done.exit_code == 0, done.output
    assert "--header-row 3" in done.output.split("Dry run:")[1]


def test_a_title_alone_is_not_taken_for_a_header(write_csv: Callable[..., Path]) -> None:
    """A header must hold ProspectId and another known column: "Lead ID" alone below a title
    is not found, and the error says how to name the row."""
    path = write_csv(csv_text([["Leads to purge"], ["Lead ID"], [LEAD.format(1)]]))
    with pytest.raises(InputError, match=r"no ProspectId column .* --header-row N"):
        build_plan(path, PlanOptions(codes=("201",)))
    plan = build_plan(path, PlanOptions(codes=("201",), header_row=2))
    assert [r.source_rows for r in plan.requests()] == [(3,)]


def test_the_header_is_looked_for_in_the_first_10_rows_only(write_csv: Callable[..., Path]) -> None:
    rows = [["Leads to purge"]] * 10 + BODY
    with pytest.raises(InputError, match="no ProspectId column"):
        build_plan(write_csv(csv_text(rows)), PlanOptions())
    plan = build_plan(write_csv(csv_text(rows)), PlanOptions(header_row=11))
    assert plan.invalid.groups()[0].first_rows == (14,)


def test_a_header_row_past_the_sheet_or_blank_is_refused(write_csv: Callable[..., Path]) -> None:
    path = write_csv(csv_text([*BODY, [], *BODY[1:]]))
    with pytest.raises(InputError, match=r"--header-row 6: the sheet's row 6 is empty"):
        build_plan(path, PlanOptions(header_row=6))
    with pytest.raises(InputError, match=r"--header-row 99: the sheet has only 10 row\(s\)$"):
        build_plan(path, PlanOptions(header_row=99))


def test_the_ten_rows_searched_count_from_the_first_that_is_not_blank(
    write_csv: Callable[..., Path], write_xlsx: Callable[..., Path]
) -> None:
    """Row 1 is "the first row that is not blank" (README): 12 blank rows, a title, then the
    header is found; 10 titles below the blank rows still hide it."""
    blank: list[list[str]] = [[]] * 12
    found = [*blank, ["Leads to purge"], *BODY]
    hidden = [*blank, *[["Leads to purge"]] * 10, *BODY]
    writers: list[Callable[[list[list[str]]], Path]] = [
        lambda rows: write_csv(csv_text(rows)),
        write_xlsx,
    ]
    for write in writers:
        plan = build_plan(write(found), PlanOptions())
        assert plan.source.header_row == 14
        assert plan.invalid.groups()[0].first_rows == (17,)
        with pytest.raises(InputError, match="no ProspectId column"):
            build_plan(write(hidden), PlanOptions())


@pytest.mark.parametrize("delimiter", [",", ";"])
def test_a_title_over_two_lines_is_one_row_and_loses_no_data_row(
    write_csv: Callable[..., Path], delimiter: str
) -> None:
    """A quoted title cell with a line break is one row, as Excel shows the CSV: the header
    is row 2 and the first lead is row 3, read and planned. Numbers stay the records' own
    below it too, on the csv module's path (a row too long for pandas) as on pandas'."""

    def text(rows: list[list[str]]) -> str:
        out = io.StringIO()
        csv.writer(out, delimiter=delimiter, lineterminator="\n").writerows(rows)
        return out.getvalue()

    title = text([["Report", "Leads to purge\nQ1"]])  # (its quote follows the delimiter)
    body = text([*BODY[:2], [LEAD.format(5), "201\n202", "2024-01-01"], *BODY[2:]])
    plan = build_plan(write_csv(title + body), PlanOptions())
    assert plan.source.header_row == 2
    assert [r.source_rows for r in plan.requests()] == [(3, 7), (4,), (5,)]
    assert [row.row for row in plan.invalid] == [6]
    long_row = [LEAD.format(7), "201", "2024-01-01", *["x"] * 20]  # past pandas' spare cells
    plan = build_plan(write_csv(title + body + text([long_row])), PlanOptions())
    assert plan.source.header_row == 2
    assert [r.source_rows for r in plan.requests()] == [(3, 7), (4,), (5,)]
    assert [row.row for row in plan.invalid] == [6, 8]
