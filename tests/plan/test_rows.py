"""Cell rules: one function per column, table-driven."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from bulk_delete.plan.rules import (
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


@pytest.mark.parametrize(
    ("cell", "codes"),
    [
        ("2147483647", ("2147483647",)),  # the largest 32-bit code is a code
        ("99999999999999999", None),  # would have gone through a float as another number
        ("99999999999999999999999", None),
        (1e23, None),  # an Excel number cell that big is no code either
        (201.0, ("201",)),  # an Excel number cell holding a whole number is fine
    ],
)
def test_codes_are_whole_numbers_from_their_text_never_floats(
    cell: object, codes: tuple[str, ...] | None
) -> None:
    if codes is None:
        with pytest.raises(CodeError, match="longer than any LeadSquared code"):
            parse_code_cell(cell)
    else:
        assert parse_code_cell(cell) == codes


@pytest.mark.parametrize(
    ("cell", "end", "tz"),
    [
        ("0001-01-01", False, KOLKATA),  # overflowed in the time-zone arithmetic
        ("1899-12-31", False, UTC),
        ("1900-01-01 03:00:00", False, KOLKATA),  # 1899 once in UTC
        ("9999-12-31", True, ZoneInfo("America/New_York")),  # year 10000 once in UTC
        (dt.date(1, 1, 1), False, UTC),  # an Excel date cell
    ],
)
def test_dates_outside_1900_to_9999_are_invalid(cell: object, end: bool, tz: dt.tzinfo) -> None:
    with pytest.raises(DateError, match="outside the years 1900–9999"):
        parse_date_cell(cell, end_of_day=end, tz=tz)


def test_dates_always_have_a_four_digit_year() -> None:
    assert parse_date_cell("1900-01-01", end_of_day=False, tz=UTC) == "1900-01-01 00:00:00"
    assert parse_date_cell("9999-12-31", end_of_day=True, tz=UTC) == "9999-12-31 23:59:59"


def test_a_webhook_with_credentials_is_refused() -> None:
    with pytest.raises(CellError, match="credentials"):
        parse_webhook("https://user:pass@hooks.example.com/x")
    with pytest.raises(CellError, match="credentials"):
        parse_webhook("https://token@hooks.example.com/x")
    assert parse_webhook("https://hooks.example.com/x?sig=1") == "https://hooks.example.com/x?sig=1"


def test_long_values_are_cut_in_messages() -> None:
    with pytest.raises(DateError) as error:
        parse_date_cell("x" * 100_000, end_of_day=False, tz=UTC)
    assert len(str(error.value)) < 160
    assert "…" in str(error.value)
