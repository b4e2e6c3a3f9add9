"""Cell rules: one function per column, table-driven."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from bulk_delete.rows import (
    CellError,
    CodeError,
    DateError,
    parse_code_cell,
    parse_date_cell,
    parse_webhook,
)

UTC = dt.UTC
KOLKATA = ZoneInfo("Asia/Kolkata")


@pytest.mark.parametrize(
    ("cell", "codes"),
    [
        ("163", ("163",)),
        (163, ("163",)),
        (163.0, ("163",)),
        ("166, 163", ("163", "166")),
        ("163;166|170 171", ("163", "166", "170", "171")),
        ("1000,99,163,99", ("99", "163", "1000")),  # numeric order, not text order
        ("163.0", ("163",)),
        ("", ()),
        (None, ()),
        (float("nan"), ()),
    ],
)
def test_codes_are_positive_integers_as_sorted_unique_strings(
    cell: object, codes: tuple[str, ...]
) -> None:
    assert parse_code_cell(cell) == codes


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("abc", "activity code 'abc' is not a positive whole number"),
        ("0", "activity code '0' is not"),
        ("-5", "activity code '-5' is not"),
        ("16.5", "activity code '16.5' is not"),
        ("163,x", "activity code 'x' is not"),
        ("#N/A", "activity codes cell holds the Excel error #N/A"),
    ],
)
def test_bad_codes_are_refused_with_the_value(cell: str, message: str) -> None:
    with pytest.raises(CodeError) as info:
        parse_code_cell(cell)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("cell", "end", "tz", "expected"),
    [
        ("2024-03-31 10:00:00", False, UTC, "2024-03-31 10:00:00"),
        ("2024-03-31T10:00:00", False, UTC, "2024-03-31 10:00:00"),
        ("2024-03-31T10:00:00Z", False, KOLKATA, "2024-03-31 10:00:00"),  # offset wins over --tz
        ("2024-03-31T10:00:00+05:30", False, UTC, "2024-03-31 04:30:00"),
        ("2024-03-31T10:00:00-04:00", False, UTC, "2024-03-31 14:00:00"),
        ("2024-03-31", False, UTC, "2024-03-31 00:00:00"),
        ("2024-03-31", True, UTC, "2024-03-31 23:59:59"),  # date-only ToDate = end of day
        ("2024-05-01", False, KOLKATA, "2024-04-30 18:30:00"),  # the API page's own example
        ("2024-06-20", True, KOLKATA, "2024-06-20 18:29:59"),
        ("2024-03-31 10:00:00.75", False, UTC, "2024-03-31 10:00:00"),
        (dt.datetime(2024, 3, 31, 10, 0), False, KOLKATA, "2024-03-31 04:30:00"),
        (dt.date(2024, 3, 31), True, UTC, "2024-03-31 23:59:59"),
        ("", True, UTC, ""),
        (None, False, UTC, ""),
    ],
)
def test_dates_become_api_utc(cell: object, end: bool, tz: dt.tzinfo, expected: str) -> None:
    assert parse_date_cell(cell, end_of_day=end, tz=tz) == expected


def test_naive_times_follow_dst_of_the_zone() -> None:
    new_york = ZoneInfo("America/New_York")
    assert (
        parse_date_cell("2024-01-15 12:00:00", end_of_day=False, tz=new_york)
        == "2024-01-15 17:00:00"
    )
    assert (
        parse_date_cell("2024-07-15 12:00:00", end_of_day=False, tz=new_york)
        == "2024-07-15 16:00:00"
    )


@pytest.mark.parametrize(
    "cell", ["31/03/2024", "03/31/2024", "2024-02-30", "yesterday", "2024-13-01", "#VALUE!"]
)
def test_ambiguous_or_impossible_dates_are_refused(cell: str) -> None:
    with pytest.raises(DateError):
        parse_date_cell(cell, end_of_day=False, tz=UTC)


def test_webhook_must_be_http_url() -> None:
    assert parse_webhook(" https://hooks.example.com/x ") == "https://hooks.example.com/x"
    assert parse_webhook("") == ""
    for bad in ("ftp://x", "hooks.example.com", "https://", "http://a b"):
        with pytest.raises(CellError):
            parse_webhook(bad)
