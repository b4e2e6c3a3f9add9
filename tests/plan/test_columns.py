"""The column-by-column loader against the row-by-row rules it must agree with.

The reference here reads the same file one row at a time (``Validator.check`` on every
RawRow) and coalesces with plain dicts: what the loader did before pandas did the column
work. Sheets are generated with the mistakes people make, in small chunks so that chunk
boundaries fall inside one lead's rows.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bulk_delete.errors import DateOrderNeeded
from bulk_delete.plan.build import Plan, RequestTally, build_plan
from bulk_delete.plan.rows import Validator, ValidRow
from bulk_delete.plan.rules import PlanOptions, load_tz
from bulk_delete.records import InvalidRow, Request
from bulk_delete.sheet import read as sheets
from bulk_delete.sheet.headers import read_header
from bulk_delete.sheet.read import RawRow, open_sheet

from ..cell_fixtures import CODE_CELLS, DATE_CELLS, HOOK_CELLS, LEAD_CELLS, LEADS, OPTIONS


def random_csv(rng: random.Random, rows: int) -> str:
    out = io.StringIO()
    out.write("ProspectId,Codes,FromDate,ToDate,Webhook\n")
    writer = csv.writer(out, lineterminator="\n")
    for _ in range(rows):
        kind = rng.random()
        if kind < 0.04:
            out.write("\n")  # a blank line
        elif kind < 0.06:
            out.write("  ,  \n")  # only spaces: blank too
        else:
            cells = [
                rng.choice(LEAD_CELLS),
                rng.choice(CODE_CELLS),
                rng.choice(DATE_CELLS),
                rng.choice(DATE_CELLS),
                rng.choice(HOOK_CELLS),
            ]
            if kind < 0.1:
                cells = cells[: rng.randint(1, 4)]  # a short row
            elif kind < 0.13:
                cells += ["", rng.choice(["", "note", " "])]  # cells beyond the header
            writer.writerow(cells)
    return out.getvalue()


def reference(path: Path, options: PlanOptions) -> dict[str, Any]:
    """The plan as the row-by-row loader made it."""
    validator = Validator(options.row_defaults(), load_tz(options.tz), options.date_order)
    valid: list[ValidRow] = []
    invalid: list[InvalidRow] = []
    blank = read = 0
    with open_sheet(path, sheet=options.sheet) as opened:
        for raw in opened:
            read += 1
            if raw is None:
                blank += 1
                continue
            checked = validator.check(raw)
            if isinstance(checked, ValidRow):
                valid.append(checked)
            else:
                invalid.append(checked)
    groups: dict[tuple[str, str, str, str], list[ValidRow]] = {}
    for row in valid:
        groups.setdefault((row.prospect_id, row.from_date, row.to_date, row.webhook), []).append(
            row
        )
    requests = []
    limit = options.max_codes_per_request
    for (lead, start, end, hook), rows in groups.items():
        union = sorted({code for row in rows for code in row.codes}, key=int)
        for at in range(0, len(union), limit):
            part = union[at : at + limit]
            source = tuple(sorted(row.row for row in rows if set(part) & set(row.codes)))
            requests.append(Request(lead, tuple(part), start, end, hook, source))
    tally = RequestTally()
    for request in requests:
        tally.add(request)
    return {
        "requests": requests,
        "invalid": invalid,
        "blank": blank,
        "read": read,
        "leads": len({row.prospect_id for row in valid}),
        "tally": tally,
    }


def planned(plan: Plan) -> dict[str, Any]:
    return {
        "requests": list(plan.requests()),
        "invalid": list(plan.invalid),
        "blank": plan.blank_rows,
        "read": plan.rows_read,
        "leads": plan.leads,
        "tally": plan.tally(),
    }


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 7 records: every sheet here crosses many chunk boundaries."""
    monkeypatch.setattr(sheets, "CHUNK_ROWS", 7)


@pytest.mark.usefixtures("small_chunks")
@pytest.mark.parametrize("seed", range(12))
def test_the_column_loader_plans_exactly_what_the_row_rules_say(
    write_csv: Callable[..., Path], seed: int
) -> None:
    rng = random.Random(seed)
    path = write_csv(random_csv(rng, 300))
    options = PlanOptions(**OPTIONS[seed % len(OPTIONS)])
    got, want = planned(build_plan(path, options)), reference(path, options)
    assert got["invalid"] == want["invalid"]  # the same rows, reasons and cells
    assert got["requests"] == want["requests"]
    assert (got["read"], got["blank"], got["leads"]) == (want["read"], want["blank"], want["leads"])
    assert got["tally"] == want["tally"]
    assert want["requests"]
    assert want["invalid"]


@pytest.mark.usefixtures("small_chunks")
def test_a_lead_whose_rows_cross_chunk_boundaries_is_one_request(
    write_csv: Callable[..., Path],
) -> None:
    lead, other = LEADS[0], LEADS[1]
    lines = ["ProspectId,Code,FromDate,ToDate"]
    lines += [f"{lead},{200 + n},2024-01-01,2024-01-31" for n in range(1, 18)]  # rows 2-18
    lines += [f"{other},300,2024-01-01,2024-01-31", f"{lead.upper()},218,2024-01-01,2024-01-31"]
    plan = build_plan(write_csv("\n".join(lines) + "\n"), PlanOptions(max_codes_per_request=10))
    requests = list(plan.requests())
    assert [(r.prospect_id, len(r.codes)) for r in requests] == [(lead, 10), (lead, 8), (other, 1)]
    assert requests[0].source_rows == tuple(range(2, 12))
    assert requests[1].source_rows == (*range(12, 19), 20)  # the last row, past other's
    assert plan.leads == 2
    assert plan.tally().requests == 3


@pytest.mark.usefixtures("small_chunks")
def test_chunk_boundaries_in_a_workbook(write_xlsx: Callable[..., Path]) -> None:
    lead = LEADS[0]
    rows: list[list[Any]] = [["ProspectId", "Code"]]
    rows += [[lead, 200 + n] for n in range(1, 16)]
    rows += [[], [lead, "216"]]
    plan = build_plan(write_xlsx(rows), PlanOptions(from_date="2024-01-01"))
    [request] = plan.requests()
    assert request.codes == tuple(str(200 + n) for n in range(1, 17))
    assert request.source_rows == (*range(2, 17), 18)
    assert (plan.rows_read, plan.blank_rows) == (17, 1)


def test_mixed_date_formats_in_one_column(write_csv: Callable[..., Path]) -> None:
    froms = [
        "2024-03-01",  # a day: from its start, in --tz
        "2024-03-01 10:30",  # a time in --tz
        "2024-03-01T10:30:00+00:00",  # an explicit offset wins over --tz
        "2024-03-01 10:30:00Z",
        "2024-03-01 10:30:00.250",  # fractions of a second are dropped, not rounded
        "2024/03/01",  # not ISO: read only as --date-order says (YMD)
        "2024-3-1 10:30",
    ]
    text = "ProspectId,Code,FromDate,ToDate\n" + "".join(
        f"{LEADS[n % len(LEADS)]},201,{cell},2024-03-31\n" for n, cell in enumerate(froms)
    )
    plan = build_plan(write_csv(text), PlanOptions(tz="Asia/Kolkata", date_order="YMD"))
    by_row = {r.source_rows[0]: r.from_date for r in plan.requests()}
    assert by_row == {
        2: "2024-02-29 18:30:00",
        3: "2024-03-01 05:00:00",
        4: "2024-03-01 10:30:00",
        5: "2024-03-01 10:30:00",
        6: "2024-03-01 05:00:00",
        7: "2024-02-29 18:30:00",
        8: "2024-03-01 05:00:00",
    }
    assert {r.to_date for r in plan.requests()} == {"2024-03-31 18:29:59"}
    assert list(plan.invalid) == []
    with pytest.raises(DateOrderNeeded, match=r"rows 7, 8\) .* pass --date-order YMD"):
        build_plan(write_csv(text), PlanOptions(tz="Asia/Kolkata"))
    text += f"{LEADS[0]},201,not a date,2024-03-31\n"
    [bad] = build_plan(write_csv(text), PlanOptions(date_order="YMD")).invalid
    assert (bad.row, bad.reason) == (
        9,
        "FromDate 'not a date' is not a date (use YYYY-MM-DD or YYYY-MM-DD HH:MM:SS)",
    )


def test_date_cells_and_text_dates_in_one_workbook_column(
    write_xlsx: Callable[..., Path],
) -> None:
    lead = LEADS[0]
    path = write_xlsx(
        [
            ["ProspectId", "Code", "FromDate", "ToDate"],
            [lead, 201, dt.datetime(2024, 3, 1), dt.datetime(2024, 3, 31)],  # days
            [lead, 202, "2024-03-01", "2024-03-31"],  # the same days as text
            [lead, 203, dt.datetime(2024, 3, 1, 9), dt.datetime(2024, 3, 31, 0, 0)],
            [lead, 204, "2024-03-01 09:00", "2024-03-31 00:00"],
        ],
        # A date-time format shows the midnight in D4: it is 00:00, not the whole day.
        formats={
            "C2": "yyyy-mm-dd",
            "D2": "yyyy-mm-dd",
            "C4": "yyyy-mm-dd hh:mm",
            "D4": "yyyy-mm-dd hh:mm",
        },
    )
    plan = build_plan(path, PlanOptions())
    windows = {r.codes: (r.from_date, r.to_date) for r in plan.requests()}
    assert windows == {
        ("201", "202"): ("2024-03-01 00:00:00", "2024-03-31 23:59:59"),
        ("203", "204"): ("2024-03-01 09:00:00", "2024-03-31 00:00:00"),
    }


def test_code_cells_holding_floats(
    write_xlsx: Callable[..., Path], write_csv: Callable[..., Path]
) -> None:
    lead = LEADS[0]
    workbook = write_xlsx(
        [
            ["ProspectId", "Code"],
            [lead, 201.0],  # a number cell: Excel keeps every number as a float
            [lead, "202.0"],  # the same as text
            [lead, 2147483647.0],  # the largest code there is
            [lead, 2147483648.0],
            [lead, 201.5],
            [lead, 1],
            [lead, True],  # equal to 1 in Python; a different cell in Excel
        ]
    )
    plan = build_plan(workbook, PlanOptions())
    [request] = plan.requests()
    assert request.codes == ("1", "201", "202", "2147483647")
    assert request.source_rows == (2, 3, 4, 7)
    assert [(r.row, r.reason) for r in plan.invalid] == [
        (
            5,
            "activity code '2147483648' is longer than any LeadSquared code "
            "(they are at most 2,147,483,647)",
        ),
        (6, "activity code '201.5' is not a positive whole number"),
        (8, "activity code 'True' is not a positive whole number"),
    ]
    text = write_csv(f"ProspectId,Code\n{lead},201.0\n{lead},201.00;202.\n")
    [request] = build_plan(text, PlanOptions()).requests()
    assert request.codes == ("201", "202")


@pytest.mark.usefixtures("small_chunks")
def test_a_row_longer_than_pandas_reads_hands_the_rest_to_the_csv_module(
    write_csv: Callable[..., Path],
) -> None:
    lead = LEADS[0]
    long_row = f"{lead},201" + ",x" * (sheets.SPARE_COLUMNS + 5)
    lines = [f"{lead},{300 + n}" for n in range(20)] + [long_row, f'{lead},"202,\n203"']
    path = write_csv("ProspectId,Code\n" + "\n".join(lines) + "\n")
    with open_sheet(path) as opened:
        rows = [row for row in opened if row]
    assert [row.row for row in rows] == list(range(2, 24))
    assert rows[20] == RawRow(22, (lead, "201", None, None, None), sheets.SPARE_COLUMNS + 5)
    assert rows[21].cells[1] == "202,\n203"
    plan = build_plan(path, PlanOptions())
    assert [(r.row, r.reason) for r in plan.invalid] == [
        (22, f"{sheets.SPARE_COLUMNS + 5} more non-empty cell(s) than the header has columns")
    ]
    assert planned(plan) == reference(path, PlanOptions())


@pytest.mark.parametrize("seed", range(6))
def test_pandas_and_the_csv_module_read_the_same_records(
    write_csv: Callable[..., Path], seed: int
) -> None:
    """The two CSV readers agree on quoting, embedded newlines, CRLF, blank and short rows."""
    rng = random.Random(seed)
    pieces = ['"a,b"', '"say ""hi"""', '"two\nlines"', "", " ", "x y", "é", LEADS[0], "201"]
    lines = []
    for _ in range(60):
        if rng.random() < 0.1:
            lines.append("")
            continue
        lines.append(",".join(rng.choice(pieces) for _ in range(rng.randint(1, 7))))
    newline = rng.choice(["\n", "\r\n"])
    path = write_csv("ProspectId,Codes,Note,FromDate,ToDate" + newline + newline.join(lines))
    with open_sheet(path) as opened:
        by_pandas = list(opened)
    header = ["ProspectId", "Codes", "Note", "FromDate", "ToDate"]
    indexes = read_header(path, header).indexes
    layout = sheets._Layout(path, "utf-8-sig", sheets._CsvHeader(1, 1, header, ","), 5, indexes)
    by_csv = [row for chunk in sheets._csv_module_chunks(layout, skip=0) for row in chunk.rows()]
    assert [r.cells if r else None for r in by_pandas] == [r.cells if r else None for r in by_csv]
    assert by_pandas == by_csv


def test_the_row_checks_tell_true_from_one() -> None:
    """True == 1 in Python, so a cache keyed by the value alone mixed them up."""
    validator = Validator(PlanOptions().row_defaults(), load_tz("UTC"))
    one = validator.check(RawRow(2, (LEADS[0], 1, None, None, None)))
    true = validator.check(RawRow(3, (LEADS[0], True, None, None, None)))
    assert isinstance(one, ValidRow)
    assert one.codes == ("1",)
    assert isinstance(true, InvalidRow)


WORKBOOK = """<?xml version="1.0"?>
<x:workbook xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main"
 xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">
<x:sheets><x:sheet name="Other" sheetId="1" r:id="rId1"/>
<x:sheet name="Leads" sheetId="2" r:id="rId2"/></x:sheets></x:workbook>"""
RELATIONS = """<?xml version="1.0"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1" Type="worksheet" Target="worksheets/sheet1.xml"/>
<Relationship Id="rId2" Type="worksheet" Target="/xl/worksheets/sheet2.xml"/>
</Relationships>"""
STYLES = """<?xml version="1.0"?>
<x:styleSheet xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main">
<x:numFmts count="2"><x:numFmt numFmtId="164" formatCode="yyyy\\-mm\\-dd hh:mm"/>
<x:numFmt numFmtId="165" formatCode="&quot;h&quot;yyyy-mm-dd"/></x:numFmts>
<x:cellXfs count="5"><x:xf numFmtId="0"/><x:xf numFmtId="22"/><x:xf numFmtId="14"/>
<x:xf numFmtId="164"/><x:xf numFmtId="165"/></x:cellXfs></x:styleSheet>"""
SHEET = """<?xml version="1.0"?>
<x:worksheet xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><x:sheetData>
<x:row r="1"><x:c r="A1" t="s"><x:v>0</x:v></x:c></x:row>
<x:row r="2"><x:c r="A2"><x:v>1</x:v></x:c><x:c r="B2" t="e"><x:v>#REF!</x:v></x:c>
<x:c r="C2"><x:f>A1&amp;"x"</x:f></x:c><x:c r="D2"><x:f>A2+1</x:f><x:v>2</x:v></x:c>
<x:c r="E2" t="e"><x:f>NA()</x:f><x:v>#N/A</x:v></x:c></x:row>
<x:row r="3"><x:c r="A3" s="1"><x:v>45000</x:v></x:c><x:c r="B3" s="2"><x:v>45000</x:v></x:c>
<x:c r="C3" s="3"><x:v>45000</x:v></x:c><x:c r="D3" s="4"><x:v>45000</x:v></x:c></x:row>
</x:sheetData></x:worksheet>"""


@pytest.mark.parametrize("block", [1 << 20, 64])
def test_xlsx_marks_from_prefixed_xml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    """Error cells, formulas without a value and date-times shown with a time, found in
    XML with a namespace prefix, whatever the block size of the scan."""
    import zipfile

    from bulk_delete.sheet import cells
    from bulk_delete.sheet.markers import ErrorCell, FormulaWithoutValue

    monkeypatch.setattr(cells, "_SHEET_BLOCK", block)
    path = tmp_path / "prefixed.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("xl/workbook.xml", WORKBOOK)
        archive.writestr("xl/_rels/workbook.xml.rels", RELATIONS)
        archive.writestr("xl/styles.xml", STYLES)
        archive.writestr("xl/worksheets/sheet1.xml", SHEET.replace('t="e"', 't="n"'))
        archive.writestr("xl/worksheets/sheet2.xml", SHEET)
    found = cells.xlsx_cells(path, "Leads")
    assert found.marks == {(2, 2): "#REF!", (2, 3): '=A1&"x"', (2, 5): "#N/A"}
    assert isinstance(found.marks[(2, 2)], ErrorCell)
    assert isinstance(found.marks[(2, 3)], FormulaWithoutValue)
    assert {column: rows.tolist() for column, rows in found.shows_time.items()} == {
        1: [3],
        3: [3],
    }
    assert (2, 2) not in cells.xlsx_cells(path, "Other").marks


def test_an_unreadable_row_after_the_hand_over_is_an_input_error(
    write_csv: Callable[..., Path],
) -> None:
    """The csv module's errors reach the caller through the read-ahead thread, as exit 2."""
    from bulk_delete.errors import InputError

    lead = LEADS[0]
    long_row = f"{lead},201" + ",x" * (sheets.SPARE_COLUMNS + 5)
    huge = '"' + "9" * 200_000 + '"'  # longer than the csv module's field limit
    path = write_csv(f"ProspectId,Code\n{lead},201\n{long_row}\n{lead},{huge}\n")
    with pytest.raises(InputError, match=r"line 4 cannot be read as CSV \(field larger"):
        build_plan(path, PlanOptions())


@pytest.fixture
def tiny_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cut every workbook into parts of a few rows (the scan reads 64-byte blocks)."""
    from bulk_delete.sheet import cells, parts

    monkeypatch.setattr(parts, "PART_CELLS", 8)
    monkeypatch.setattr(parts, "MIN_PART_BYTES", 1)
    monkeypatch.setattr(cells, "_SHEET_BLOCK", 64)


def wide_workbook(write_xlsx: Callable[..., Path]) -> Path:
    rng = random.Random(7)
    rows: list[list[Any]] = [[], ["Name", "ProspectId", "Code", "FromDate", "ToDate", "Note"]]
    for n in range(120):
        kind = rng.random()
        if kind < 0.08:
            rows.append([])  # a blank row
        elif kind < 0.12:
            rows.append(["only a name"])  # not blank: an invalid row
        else:
            rows.append(
                [
                    rng.choice(["", f"name {n}", " "]),
                    rng.choice(LEAD_CELLS),
                    rng.choice([201, 202.0, "203;204", "#N/A", "=1+1", "", True]),
                    rng.choice([dt.datetime(2024, 1, 1), "2024-02-01", None]),
                    rng.choice([dt.datetime(2024, 3, 31), dt.datetime(2024, 3, 31, 12), None]),
                    rng.choice(["", "note"]),
                    *([rng.choice(["", "x", " "])] if kind > 0.95 else []),  # beyond the header
                ]
            )
    formats = {f"E{row}": "yyyy-mm-dd hh:mm" for row in range(3, len(rows) + 1, 3)}
    return write_xlsx(rows, formats=formats)


@pytest.mark.usefixtures("tiny_parts")
def test_a_big_worksheet_cut_into_parts_reads_as_the_whole(
    write_xlsx: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Row numbers, cells, markers and time formats are the same part by part; only the
    memory differs."""
    from bulk_delete.sheet import parts

    path = wide_workbook(write_xlsx)
    cut = parts.cut(path, "Leads")
    assert cut is not None
    assert len(cut.paths) > 10
    cut.close()
    with open_sheet(path) as opened:
        by_parts = list(opened)
        columns = opened.info.columns
    plan = planned(build_plan(path, PlanOptions(codes=("999",))))
    monkeypatch.setattr(sheets, "cut", lambda *_: None)
    with open_sheet(path) as opened:
        whole = list(opened)
        assert opened.info.columns == columns
    assert [r.row if r else None for r in by_parts] == [r.row if r else None for r in whole]
    assert by_parts == whole
    assert plan == planned(build_plan(path, PlanOptions(codes=("999",))))
    assert plan["invalid"]
    assert plan["requests"]


def test_a_small_worksheet_is_read_whole(write_xlsx: Callable[..., Path]) -> None:
    from bulk_delete.sheet import parts

    assert parts.cut(wide_workbook(write_xlsx), "Leads") is None


@pytest.mark.usefixtures("tiny_parts")
def test_a_worksheet_whose_rows_are_not_numbered_is_read_whole(
    write_xlsx: Callable[..., Path], tmp_path: Path
) -> None:
    """Without r="N" a row's number is its place in the file: a part would renumber it."""
    import re
    import zipfile

    from bulk_delete.sheet import parts

    source = wide_workbook(write_xlsx)
    path = tmp_path / "unnumbered.xlsx"
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(path, "w") as copy:
        for info in original.infolist():
            data = original.read(info)
            if info.filename.startswith("xl/worksheets/"):
                data = re.sub(rb'(<row)( r="[0-9]+")', rb"\1", data, count=40)
            copy.writestr(info, data)
    assert parts.cut(path, "Leads") is None


@pytest.mark.usefixtures("tiny_parts")
def test_parts_are_private_and_gone_when_the_sheet_closes(
    write_xlsx: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    path = wide_workbook(write_xlsx)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    with open_sheet(path) as opened:
        next(iter(opened))
        [folder] = scratch.iterdir()
        assert folder.stat().st_mode & 0o777 == 0o700
        part_modes = {part.stat().st_mode & 0o777 for part in folder.iterdir()}
        assert part_modes == {0o600}
    assert list(scratch.iterdir()) == []
