"""Text dates in the order people write them (issue 32, point 1): --date-order DMY|MDY|YMD.

Generated dates written in each order, with each separator, with and without times, plan the
same requests as the same dates in ISO; without the option such a sheet exits 2, naming its
rows and a date read both ways; Excel date cells need no option.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bulk_delete.cli.main import cli
from bulk_delete.commands.spec import RunSpec
from bulk_delete.errors import DateOrderNeeded, OptionError
from bulk_delete.plan.build import build_plan
from bulk_delete.plan.date_orders import ORDER_WORDS, read_ordered
from bulk_delete.plan.rules import PlanOptions, plan_fingerprint

LEAD = "3aee22bd-8419-422a-8242-c510df9af{:03d}"
ORDERS = ("DMY", "MDY", "YMD")
SEPARATORS = ("/", ".", "-")
ZONES = ("UTC", "Asia/Kolkata", "America/New_York")


def written(moment: dt.datetime, order: str, sep: str, style: dict[str, Any]) -> str:
    """A moment as a person writes it in ``order``: padded or not, a time in 24 or 12 hours."""
    width = 2 if style["padded"] else 1
    parts = {"D": f"{moment.day:0{width}d}", "M": f"{moment.month:0{width}d}"}
    parts["Y"] = f"{moment.year:04d}"
    text = sep.join(parts[letter] for letter in order)
    if not style["time"]:
        return text
    seconds = f":{moment.second:02d}" if style["seconds"] else ""
    if style["twelve"]:
        hour = moment.hour % 12 or 12
        return f"{text} {hour}:{moment.minute:02d}{seconds} {'PM' if moment.hour >= 12 else 'AM'}"
    return f"{text} {moment.hour:02d}:{moment.minute:02d}{seconds}"


def iso(moment: dt.datetime, style: dict[str, Any]) -> str:
    if not style["time"]:
        return moment.date().isoformat()
    return moment.strftime("%Y-%m-%d %H:%M:%S" if style["seconds"] else "%Y-%m-%d %H:%M")


moments = st.datetimes(min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2099, 12, 31))
styles = st.fixed_dictionaries(
    {
        "padded": st.booleans(),
        "time": st.booleans(),
        "seconds": st.booleans(),
        "twelve": st.booleans(),
    }
)


def sheet_text(rows: list[tuple[str, str]]) -> str:
    lines = ["ProspectId,Codes,FromDate,ToDate"]
    lines += [f"{LEAD.format(n % 7)},201,{start},{end}" for n, (start, end) in enumerate(rows)]
    return "\n".join(lines) + "\n"


def same_plan(ordered: Path, plain: Path, options: PlanOptions) -> None:
    """The same requests (ProspectId, codes, UTC window, rows) and the same invalid reasons."""
    got, want = build_plan(ordered, options), build_plan(plain, options)
    assert list(got.requests()) == list(want.requests())
    assert [(row.row, row.reason) for row in got.invalid] == [
        (row.row, row.reason) for row in want.invalid
    ]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    windows=st.lists(st.tuples(moments, moments), min_size=1, max_size=12),
    order=st.sampled_from(ORDERS),
    sep=st.sampled_from(SEPARATORS),
    style=styles,
    zone=st.sampled_from(ZONES),
)
def test_dates_in_each_order_plan_as_the_same_dates_in_iso(
    write_csv: Callable[..., Path],
    windows: list[tuple[dt.datetime, dt.datetime]],
    order: str,
    sep: str,
    style: dict[str, Any],
    zone: str,
) -> None:
    windows = [tuple(sorted(pair)) for pair in windows]  # type: ignore[misc]
    ordered = write_csv(
        sheet_text(
            [(written(a, order, sep, style), written(b, order, sep, style)) for a, b in windows]
        ),
        name="ordered.csv",
    )
    plain = write_csv(
        sheet_text([(iso(a, style), iso(b, style)) for a, b in windows]), name="iso.csv"
    )
    same_plan(ordered, plain, PlanOptions(tz=zone, date_order=order))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    days=st.lists(st.dates(dt.date(1990, 1, 1), dt.date(2099, 12, 31)), min_size=1, max_size=10),
    order=st.sampled_from(("DMY", "MDY")),
    sep=st.sampled_from(SEPARATORS),
)
def test_without_the_order_the_sheet_exits_2_naming_rows_and_never_guesses(
    write_csv: Callable[..., Path], days: list[dt.date], order: str, sep: str
) -> None:
    moments_ = [dt.datetime.combine(day, dt.time()) for day in days]
    style = {"padded": True, "time": False, "seconds": False, "twelve": False}
    texts = [written(moment, order, sep, style) for moment in moments_]
    path = write_csv(sheet_text([(text, "") for text in texts]))
    with pytest.raises(DateOrderNeeded) as refused:
        build_plan(path, PlanOptions())
    message = str(refused.value)
    assert "rows 2" in message or "row 2)" in message
    assert "--date-order" in message
    other = "MDY" if order == "DMY" else "DMY"
    if any(day.day > 12 for day in days):  # one order only: said, and still asked for
        assert f"read as {order} " in message
        assert f"pass --date-order {order}." in message
        assert f"--date-order {other}" not in message
    elif any(day.day != day.month for day in days):  # every date reads both ways
        ambiguous = next(  # the first that reads as two days
            text for text, day in zip(texts, days, strict=True) if day.day != day.month
        )
        assert f"{ambiguous!r} is " in message
        assert f"as {order}" in message
        assert f"as {other}" in message


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    windows=st.lists(
        st.tuples(moments, moments, st.booleans(), st.booleans()), min_size=1, max_size=6
    ),
    order=st.sampled_from(ORDERS),
    sep=st.sampled_from(SEPARATORS),
    style=styles,
)
def test_iso_dates_mixed_with_ordered_ones_read_as_iso_under_every_order(
    tmp_path_factory: pytest.TempPathFactory,
    windows: list[tuple[dt.datetime, dt.datetime, bool, bool]],
    order: str,
    sep: str,
    style: dict[str, Any],
) -> None:
    """ISO dates leave no order to guess: mixed in any way with dates in ``order`` (an ISO
    one first, or only ISO ones), `plan` reads them as ISO, never exits 70, and previews the
    same requests as the sheet all in ISO."""
    folder = tmp_path_factory.mktemp("mixed")
    rows, plain = [], []
    for start, end, start_iso, end_iso in windows:
        a, b = sorted((start, end))
        rows.append(
            tuple(
                iso(moment, style) if in_iso else written(moment, order, sep, style)
                for moment, in_iso in ((a, start_iso), (b, end_iso))
            )
        )
        plain.append((iso(a, style), iso(b, style)))
    (folder / "mixed.csv").write_text(sheet_text(rows))  # type: ignore[arg-type]
    (folder / "iso.csv").write_text(sheet_text(plain))
    runner = CliRunner()
    for name, extra in (("mixed", ["--date-order", order]), ("iso", [])):
        out = folder / f"{name}-preview.csv"
        done = runner.invoke(cli, ["plan", str(folder / f"{name}.csv"), "-o", str(out), *extra])
        assert done.exit_code == 0, done.output
    assert (folder / "mixed-preview.csv").read_bytes() == (folder / "iso-preview.csv").read_bytes()


def test_a_sheet_all_in_iso_says_no_date_is_written_in_the_order(tmp_path: Path) -> None:
    sheet = tmp_path / "iso.csv"
    sheet.write_text(sheet_text([("2024-01-01", "2024-06-30 18:00")]))
    for order in ORDERS:
        done = CliRunner().invoke(cli, ["plan", str(sheet), "--date-order", order])
        assert done.exit_code == 0, done.output
        assert (
            f"dates read     as {order} ({ORDER_WORDS[order]}); no date of the sheet is "
            "written so (ISO dates and date cells read as they are)"
        ) in done.output


def test_one_date_is_shown_read_both_ways(write_csv: Callable[..., Path]) -> None:
    path = write_csv(sheet_text([("01/02/2024", "05/02/2024"), ("2024-03-01", "")]))
    with pytest.raises(DateOrderNeeded) as refused:
        build_plan(path, PlanOptions())
    assert str(refused.value) == (
        f"{path}: 1 row(s) (row 2) hold text dates that are not YYYY-MM-DD, and their order was "
        "not given: '01/02/2024' is 1 February 2024 as DMY, 2 January 2024 as MDY: pass "
        "--date-order DMY or --date-order MDY. (Excel date cells need no option.)"
    )


def test_a_day_above_12_says_the_order_found_and_still_asks(write_csv: Callable[..., Path]) -> None:
    path = write_csv(sheet_text([("01/02/2024", "29/02/2024")]))
    with pytest.raises(DateOrderNeeded) as refused:
        build_plan(path, PlanOptions())
    message = str(refused.value)
    assert "'01/02/2024' is 1 February 2024 as DMY, 2 January 2024 as MDY" in message
    assert "all of them read as DMY (day/month/year: '29/02/2024' is 29 February 2024" in message
    assert message.endswith("pass --date-order DMY. (Excel date cells need no option.)")


def test_the_date_read_both_ways_is_one_that_reads_as_two_days(
    write_csv: Callable[..., Path],
) -> None:
    path = write_csv(sheet_text([("01/01/2024", "03/03/2024"), ("01/02/2024", "")]))
    with pytest.raises(DateOrderNeeded, match="'01/02/2024' is 1 February 2024 as DMY, 2 Jan"):
        build_plan(path, PlanOptions())
    path = write_csv(sheet_text([("01/01/2024", "03/03/2024")]))  # each reads one day: asked
    with pytest.raises(DateOrderNeeded) as refused:
        build_plan(path, PlanOptions())
    message = str(refused.value)
    assert (
        "they read the same as DMY or as MDY ('01/01/2024' is 1 January 2024 either way), but "
        "the order is still needed: pass --date-order DMY or --date-order MDY" in message
    )
    assert "as DMY, 1 January" not in message  # no example "read both ways" as one day


def test_dates_that_agree_on_no_order_are_named(write_csv: Callable[..., Path]) -> None:
    path = write_csv(sheet_text([("31/01/2024", "01/31/2024")]))
    with pytest.raises(
        DateOrderNeeded, match="'31/01/2024' reads as DMY; '01/31/2024' reads as MDY"
    ):
        build_plan(path, PlanOptions())


@pytest.mark.parametrize(
    ("text", "order", "reason"),
    [
        ("01/02/24", "DMY", "'01/02/24' has a two-digit year: write the year in full"),
        ("2024/02/01", "DMY", "'2024/02/01' is not a date written DMY (day/month/year)"),
        ("13/01/2024", "MDY", "'13/01/2024' is not a real date read as MDY"),
        ("01/02/2024 13:00 PM", "DMY", "'01/02/2024 13:00 PM' has no hour 13 on a 12-hour clock"),
        ("01/02/2024 24:00", "DMY", "'01/02/2024 24:00' is not a real time"),
        ("01/02-2024", "DMY", "'01/02-2024' is not a date (use YYYY-MM-DD"),
    ],
)
def test_what_the_order_cannot_read_is_an_invalid_row(
    write_csv: Callable[..., Path], text: str, order: str, reason: str
) -> None:
    path = write_csv(sheet_text([(text, ""), ("2024-01-01", "2024-01-31")]))
    plan = build_plan(path, PlanOptions(date_order=order))
    [bad] = plan.invalid
    assert bad.row == 2
    assert reason in bad.reason
    assert len(list(plan.requests())) == 1


def test_twelve_hour_times_read_as_the_clock_says() -> None:
    assert read_ordered("1/2/2024 12:30 AM", "MDY") == (dt.date(2024, 1, 2), dt.time(0, 30))
    assert read_ordered("1/2/2024 12:30 PM", "MDY") == (dt.date(2024, 1, 2), dt.time(12, 30))
    assert read_ordered("1/2/2024 2:05:09 p.m.", "MDY") == (dt.date(2024, 1, 2), dt.time(14, 5, 9))


def test_excel_date_cells_need_no_order_and_are_unaffected(write_xlsx: Callable[..., Path]) -> None:
    rows: list[list[Any]] = [["ProspectId", "Codes", "FromDate", "ToDate"]]
    rows += [[LEAD.format(1), 201, dt.datetime(2024, 2, 1), dt.datetime(2024, 2, 29, 18, 0)]]
    path = write_xlsx(rows, formats={"C2": "dd/mm/yyyy", "D2": "dd/mm/yyyy hh:mm"})
    plain = list(build_plan(path, PlanOptions(tz="Asia/Kolkata")).requests())
    for order in ORDERS:
        assert (
            list(build_plan(path, PlanOptions(tz="Asia/Kolkata", date_order=order)).requests())
            == plain
        )
    assert (plain[0].from_date, plain[0].to_date) == ("2024-01-31 18:30:00", "2024-02-29 12:30:00")


def test_the_options_read_dates_in_the_same_order() -> None:
    spec = RunSpec.from_values(
        {"from_date": "01/02/2024", "to_date": "29.02.2024", "date_order": "dmy"}
    )
    assert spec.date_order == "DMY"
    assert spec.plan_options.row_defaults().from_date == "2024-02-01 00:00:00"
    with pytest.raises(OptionError, match=r"--from: FromDate|--from: '01/02/2024' is 1 February"):
        RunSpec.from_values({"from_date": "01/02/2024"})
    with pytest.raises(OptionError, match="--date-order: must be one of DMY, MDY, YMD"):
        RunSpec.from_values({"date_order": "DDMMYY"})


def test_the_order_is_part_of_the_fingerprint_and_old_plans_keep_theirs(tmp_path: Path) -> None:
    sheet = tmp_path / "s.csv"
    sheet.write_text(sheet_text([("2024-01-01", "")]))
    before = {"codes", "from", "to", "webhook", "tz", "sheet", "max_codes_per_request"}
    assert set(PlanOptions().as_dict()) == before  # a checkpoint made before still resumes
    plain = plan_fingerprint(sheet, PlanOptions())
    assert plan_fingerprint(sheet, PlanOptions(date_order="DMY")) != plain
    assert plan_fingerprint(sheet, PlanOptions(header_row=1)) != plain


def test_the_cli_previews_of_a_dd_mm_sheet_and_its_iso_twin_are_equal(tmp_path: Path) -> None:
    """The bar: a DD/MM sheet with --date-order DMY gives the preview of the same sheet in ISO;
    the plan shows each window as read, in --tz and UTC; without the option, exit 2."""
    dmy, iso_ = tmp_path / "dmy.csv", tmp_path / "iso.csv"
    dmy.write_text(sheet_text([("01/02/2024", "29/02/2024 18:00"), ("15.03.2024", "1.4.2024")]))
    iso_.write_text(sheet_text([("2024-02-01", "2024-02-29 18:00"), ("2024-03-15", "2024-04-01")]))
    runner = CliRunner()
    for sheet, extra in ((dmy, ["--date-order", "DMY"]), (iso_, [])):
        out = tmp_path / f"{sheet.stem}-preview.csv"
        done = runner.invoke(
            cli, ["plan", str(sheet), "--tz", "Asia/Kolkata", "-o", str(out), *extra]
        )
        assert done.exit_code == 0, done.output
    assert (tmp_path / "dmy-preview.csv").read_bytes() == (
        tmp_path / "iso-preview.csv"
    ).read_bytes()
    done = runner.invoke(cli, ["plan", str(dmy), "--tz", "Asia/Kolkata", "--date-order", "DMY"])
    assert "dates read     as DMY (day/month/year): '01/02/2024' is 1 February 2024" in done.output
    assert "2024-02-01 00:00:00 → 2024-02-29 18:00:00 Asia/Kolkata  (1 request(s))" in done.output
    assert "= 2024-01-31 18:30:00 → 2024-02-29 12:30:00 UTC" in done.output
    done = runner.invoke(cli, ["plan", str(dmy)])
    assert done.exit_code == 2
    assert "2 row(s) (rows 2, 3)" in done.output
    assert "pass --date-order DMY" in done.output
    assert "To send it" not in done.output
