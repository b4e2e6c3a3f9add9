"""Cells that used to be read silently one way (issue 24): a codes cell of separators only,
local times that --tz skips or repeats, and a preview of ours fed back as input."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner

from bulk_delete.cli.main import cli
from bulk_delete.commands.spec import RunSpec
from bulk_delete.errors import InputError, OptionError
from bulk_delete.plan.build import build_plan
from bulk_delete.plan.rules import DateError, PlanOptions, load_tz, parse_date_cell

G1 = "3aee22bd-8419-422a-8242-c510df9af021"
G2 = "3aee22bd-8419-422a-8242-c510df9af022"
NEW_YORK = load_tz("America/New_York")


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


# ---------------------------------------------------------------- codes


@pytest.mark.parametrize("cell", [",,,", ";", " | ", ", ;"])
def test_a_codes_cell_of_separators_is_invalid_not_empty(
    write_csv: Callable[..., Path], cell: str
) -> None:
    """Before: it read as empty and --codes filled it silently."""
    path = write_csv(f'ProspectId,Codes\n{G1},"{cell}"\n{G2},\n')
    plan = build_plan(path, PlanOptions(codes=("999",)))
    assert [(r.prospect_id, r.codes) for r in plan.requests()] == [(G2, ("999",))]
    [bad] = list(plan.invalid)
    assert (bad.row, bad.reason) == (2, f"no code in {cell.strip()!r}")


def test_codes_option_of_separators_is_refused() -> None:
    with pytest.raises(OptionError, match=r"--codes: no code in ','"):
        RunSpec.from_values({"codes": ","})


# ---------------------------------------------------------------- DST


def test_a_time_the_clocks_skip_is_refused() -> None:
    with pytest.raises(DateError) as raised:
        parse_date_cell("2025-03-09 02:30", end_of_day=False, tz=NEW_YORK)
    assert str(raised.value) == (
        "2025-03-09 02:30:00 does not exist in America/New_York (the clocks jump from 02:00 "
        "to 03:00); give an offset or another time"
    )


def test_a_time_that_happens_twice_is_refused() -> None:
    with pytest.raises(DateError) as raised:
        parse_date_cell(dt.datetime(2025, 11, 2, 1, 30), end_of_day=True, tz=NEW_YORK)
    assert str(raised.value) == (
        "2025-11-02 01:30:00 happens twice in America/New_York (at -04:00 and again at -05:00, "
        "when the clocks go back); give an offset like -04:00"
    )


def test_an_offset_or_a_time_either_side_is_fine() -> None:
    assert parse_date_cell("2025-03-09T02:30-05:00", end_of_day=False, tz=NEW_YORK) == (
        "2025-03-09 07:30:00"
    )
    assert parse_date_cell("2025-03-09 01:59:59", end_of_day=False, tz=NEW_YORK) == (
        "2025-03-09 06:59:59"
    )
    assert parse_date_cell("2025-03-09 03:00", end_of_day=False, tz=NEW_YORK) == (
        "2025-03-09 07:00:00"
    )


def test_dst_cells_make_their_rows_invalid(write_csv: Callable[..., Path]) -> None:
    path = write_csv(
        f"ProspectId,Codes,FromDate,ToDate\n"
        f"{G1},1,2025-03-09 02:30,2025-04-01\n"
        f"{G2},1,2025-03-01,2025-11-02 01:30\n"
        f"{G1},2,2025-03-09 03:30,2025-11-02 02:30\n"
    )
    plan = build_plan(path, PlanOptions(tz="America/New_York"))
    assert [r.source_rows for r in plan.requests()] == [(4,)]
    reasons = {bad.row: bad.reason for bad in plan.invalid}
    assert reasons[2].startswith("FromDate 2025-03-09 02:30:00 does not exist in America/New_York")
    assert reasons[3].startswith("ToDate 2025-11-02 01:30:00 happens twice in America/New_York")


def test_a_dst_option_exits_2(write_csv: Callable[..., Path]) -> None:
    path = write_csv(f"ProspectId,Codes\n{G1},1\n")
    zone = ("--tz", "America/New_York")
    code, _, err = invoke("plan", str(path), *zone, "--from", "2025-03-09 02:30")
    assert code == 2
    assert "--from: 2025-03-09 02:30:00 does not exist in America/New_York" in err


@pytest.mark.parametrize(
    ("zone", "day", "first", "last"),
    [
        # the clocks jump from 00:00 to 01:00: the day starts at 01:00 local (-02:00)
        ("America/Sao_Paulo", "2018-11-04", "2018-11-04 03:00:00", "2018-11-05 01:59:59"),
        # Beirut: 00:00 → 01:00 in March (a 23-hour day), 00:00 → 23:00 the day before in
        # October (the day before has 25 hours)
        ("Asia/Beirut", "2025-03-30", "2025-03-29 22:00:00", "2025-03-30 20:59:59"),
        ("Asia/Beirut", "2025-10-25", "2025-10-24 21:00:00", "2025-10-25 21:59:59"),
        ("America/New_York", "2025-03-09", "2025-03-09 05:00:00", "2025-03-10 03:59:59"),
        ("Asia/Kolkata", "2025-03-09", "2025-03-08 18:30:00", "2025-03-09 18:29:59"),
    ],
)
def test_a_whole_day_is_never_an_error_even_without_a_midnight(
    zone: str, day: str, first: str, last: str
) -> None:
    tz = load_tz(zone)
    assert parse_date_cell(day, end_of_day=False, tz=tz) == first
    assert parse_date_cell(day, end_of_day=True, tz=tz) == last
    assert parse_date_cell(dt.date.fromisoformat(day), end_of_day=True, tz=tz) == last


# ---------------------------------------------------------------- a preview fed back


def test_a_preview_fed_back_is_read_as_utc(write_csv: Callable[..., Path], tmp_path: Path) -> None:
    """Before: its UTC dates were read in --tz, and the window shifted a second time."""
    path = write_csv(f"ProspectId,Codes,From,To\n{G1},163,2024-01-01 09:00,2024-01-31\n")
    preview = tmp_path / "preview.csv"
    code, _, _ = invoke("plan", str(path), "--tz", "Asia/Kolkata", "--out", str(preview))
    assert code == 0
    [first] = build_plan(path, PlanOptions(tz="Asia/Kolkata")).requests()
    again = build_plan(preview, PlanOptions(tz="Asia/Kolkata"))
    [second] = again.requests()
    assert (second.from_date, second.to_date) == (first.from_date, first.to_date)
    assert (first.from_date, first.to_date) == ("2024-01-01 03:30:00", "2024-01-31 18:29:59")
    assert again.source.written_by == "preview"
    assert again.source.warnings[-1] == (
        "this is a bulk-delete preview: its dates are UTC and are read as UTC; "
        "--tz Asia/Kolkata applies to nothing here"
    )
    code, out, _ = invoke("plan", str(preview), "--tz", "Asia/Kolkata")
    assert code == 0
    assert "warning: this is a bulk-delete preview" in out
    assert "source_rows, body (not used by bulk-delete)" in out  # the ignored columns


def test_an_xlsx_preview_with_local_time_columns_is_ours_too(tmp_path: Path) -> None:
    """Another helper may add local-time copies: they are neither near misses nor read."""
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    header = ["ProspectId", "ActivityEventList", "FromDate", "FromDate (Asia/Kolkata)"]
    sheet.append([*header, "ToDate", "ToDate (Asia/Kolkata)", "source_rows", "body"])
    sheet.append([G1, "163", "2024-01-01 00:00:00", "x", "2024-01-02 00:00:00", "y", "2", "{}"])
    path = tmp_path / "preview.xlsx"
    book.save(path)
    [request] = build_plan(path, PlanOptions(tz="Asia/Kolkata")).requests()
    assert (request.from_date, request.to_date) == ("2024-01-01 00:00:00", "2024-01-02 00:00:00")


def test_an_export_fed_back_is_refused(write_csv: Callable[..., Path]) -> None:
    """An export is outcomes, not a sheet: its invalid rows have no dates (planned again they
    would purge whole histories) and its queued rows were sent already."""
    columns = "ProspectId,ActivityEventList,FromDate,ToDate,StatusWebhookURL,status,attempts"
    path = write_csv(
        f"{columns},http_status,error,source_rows,updated_at\n"
        f"{G1},163,2024-01-01 00:00:00,,,queued,1,200,,2,2024-01-01\n"
    )
    with pytest.raises(InputError, match="is a bulk-delete export"):
        build_plan(path, PlanOptions(tz="Asia/Kolkata", to_date="2024-02-01"))


def test_a_user_sheet_with_a_status_column_is_not_ours(write_csv: Callable[..., Path]) -> None:
    path = write_csv(f"ProspectId,Codes,From,Status\n{G1},163,2024-01-01 09:00,open\n")
    plan = build_plan(path, PlanOptions(tz="Asia/Kolkata"))
    assert plan.source.written_by == ""
    assert [r.from_date for r in plan.requests()] == ["2024-01-01 03:30:00"]


def test_the_preview_columns_are_what_recognition_expects(
    write_csv: Callable[..., Path], tmp_path: Path
) -> None:
    path = write_csv(f"ProspectId,Codes\n{G1},163\n")
    preview = tmp_path / "p.csv"
    invoke("plan", str(path), "--out", str(preview))
    with preview.open() as handle:
        header = next(csv.reader(handle))
    assert {"source_rows", "body"} <= set(header)
