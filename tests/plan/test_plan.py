"""rows → plan: validation outcomes, coalescing, splitting, and the summary."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bulk_delete.config import RateLimit
from bulk_delete.errors import OptionError
from bulk_delete.plan.build import build_plan, summarise
from bulk_delete.plan.rules import PlanOptions
from bulk_delete.records import Request

from ..conftest import demo_env, run_cli

G = "00000000-0000-4000-8000-{:012d}"
G1 = "3aee22bd-8419-422a-8242-c510df9af021"
G2 = "3aee22bd-8419-422a-8242-c510df9af022"
G3 = "3aee22bd-8419-422a-8242-c510df9af023"


def requests(path: Path, **options: object) -> list[Request]:
    return list(build_plan(path, PlanOptions(**options)).requests())  # type: ignore[arg-type]


def test_long_layout_coalesces_per_lead_and_window(write_csv: Callable[..., Path]) -> None:
    path = write_csv(
        "ProspectId,Code,FromDate,ToDate\n"
        f"{G1},166,2024-01-01,2024-01-31\n"
        f"{G2},163,2024-01-01,2024-01-31\n"
        f"{G1.upper()},163,2024-01-01,2024-01-31\n"
        f"{G1},163,2024-01-01,2024-01-31\n"  # exact duplicate collapses
        f"{G1},170,2024-02-01,2024-02-28\n"  # another window: another request
    )
    got = requests(path)
    assert [(r.prospect_id, r.codes, r.source_rows) for r in got] == [
        (G1, ("163", "166"), (2, 4, 5)),
        (G2, ("163",), (3,)),
        (G1, ("170",), (6,)),
    ]
    assert got[0].from_date == "2024-01-01 00:00:00"
    assert got[0].to_date == "2024-01-31 23:59:59"


def test_wide_layout_with_options_filling_gaps(write_csv: Callable[..., Path]) -> None:
    path = write_csv(f"Lead ID;Codes\n{G1};163|166\n{G2};\n")
    got = requests(path, codes=("170",), to_date="2024-06-30", tz="Asia/Kolkata")
    assert [(r.prospect_id, r.codes, r.from_date, r.to_date) for r in got] == [
        (G1, ("163", "166"), "", "2024-06-30 18:29:59"),
        (G2, ("170",), "", "2024-06-30 18:29:59"),
    ]


def test_prospect_id_only_sheet_with_codes_option(write_csv: Callable[..., Path]) -> None:
    got = requests(write_csv(f"ProspectId\n{G1}\n{G2}\n"), codes=("163",))
    assert [r.body() for r in got] == [
        {"ProspectId": G1, "ActivityEventList": ["163"]},
        {"ProspectId": G2, "ActivityEventList": ["163"]},
    ]


def test_body_is_the_api_shape(write_csv: Callable[..., Path]) -> None:
    path = write_csv(
        "ProspectId,Codes,FromDate,ToDate,StatusWebhookURL\n"
        f"{G1},166 163,2018-04-30 18:30:00,2018-06-20 18:29:59,https://myurl\n"
    )
    [request] = requests(path)
    assert json.loads(request.body_json()) == {
        "ProspectId": G1,
        "ActivityEventList": ["163", "166"],
        "FromDate": "2018-04-30 18:30:00",
        "ToDate": "2018-06-20 18:29:59",
        "StatusWebhookURL": "https://myurl",
    }


def test_max_codes_splits_and_keeps_contributing_rows(write_csv: Callable[..., Path]) -> None:
    path = write_csv(f"ProspectId,Codes\n{G1},1 2 3\n{G1},4\n{G1},5\n")
    got = requests(path, max_codes_per_request=2)
    assert [(r.codes, r.source_rows) for r in got] == [
        (("1", "2"), (2,)),
        (("3", "4"), (2, 3)),
        (("5",), (4,)),
    ]


def test_invalid_rows_keep_row_numbers_and_reasons_and_are_never_requests(
    write_csv: Callable[..., Path],
) -> None:
    path = write_csv(
        "ProspectId,Codes,FromDate,ToDate,Webhook\n"
        f"{G1},163,,,\n"
        "abc,163,,,\n"
        f"{G2},x1,,,\n"
        f"{G3},163,2024-05-01,2024-04-01,\n"
        f"{G3},163,2024-12-32,,\n"
        f"{G3},163,,,ftp://nope\n"
        ",163,,,\n"
        "\n"
        f"{G3},,,,\n"
        f"{G3},163,,,,surplus\n"
    )
    plan = build_plan(path, PlanOptions())
    assert [r.prospect_id for r in plan.requests()] == [G1]
    reasons = {row.row: row.reason for row in plan.invalid}
    assert reasons[3] == "ProspectId 'abc' is not a GUID"
    assert "activity code 'x1'" in reasons[4]
    assert "after ToDate" in reasons[5]
    assert "FromDate '2024-12-32' is not a real date" in reasons[6]
    assert "StatusWebhookURL 'ftp://nope'" in reasons[7]
    assert reasons[8] == "ProspectId is empty"
    assert "no activity codes" in reasons[10]
    assert "more non-empty cell" in reasons[11]
    assert plan.blank_rows == 1
    assert plan.rows_read == 10


def test_excel_errors_and_formulas_name_the_cell(write_xlsx: Callable[..., Path]) -> None:
    path = write_xlsx([["ProspectId", "Codes"], ["#N/A", 163], [G1, "#DIV/0!"], [G2, "=1+1"]])
    plan = build_plan(path, PlanOptions())
    reasons = {row.row: row.reason for row in plan.invalid}
    assert "Excel error #N/A" in reasons[2]
    assert "Excel error #DIV/0!" in reasons[3]
    assert "formula without a saved value" in reasons[4]  # not empty: --codes must not fill it
    with_codes = build_plan(path, PlanOptions(codes=("999",)))
    assert 4 in {row.row for row in with_codes.invalid}
    assert "999" not in {code for request in with_codes.requests() for code in request.codes}


def test_excel_dates_follow_the_date_rules(write_xlsx: Callable[..., Path]) -> None:
    import datetime as dt

    path = write_xlsx(
        [
            ["ProspectId", "Codes", "From", "To"],
            [G1, 163, dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 31)],
        ],
        formats={"C2": "yyyy-mm-dd", "D2": "yyyy-mm-dd"},
    )
    [request] = requests(path)
    assert (request.from_date, request.to_date) == ("2024-01-01 00:00:00", "2024-01-31 23:59:59")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"from_date": "2024-05-01", "to_date": "2024-04-01"}, "after ToDate"),
        ({"from_date": "01/05/2024"}, "from_date"),
        ({"tz": "Mars/Olympus"}, "IANA time zone"),
        ({"webhook": "nope"}, "webhook"),
        ({"max_codes_per_request": 0}, "at least 1"),
    ],
)
def test_bad_options_are_option_errors(
    write_csv: Callable[..., Path], options: dict[str, object], message: str
) -> None:
    with pytest.raises(OptionError, match=message):
        build_plan(write_csv(f"ProspectId\n{G1}\n"), PlanOptions(**options))  # type: ignore[arg-type]


def test_summary_counts_codes_dates_and_undated(write_csv: Callable[..., Path]) -> None:
    path = write_csv(
        "ProspectId,Codes,FromDate,ToDate\n"
        f"{G1},163,2024-01-01,2024-01-31\n"
        f"{G2},163 166,,\n"
        f"{G3},166,2023-06-01,\n"
        "bad,1,,\n"
    )
    summary = summarise(build_plan(path, PlanOptions()), RateLimit.parse("5/1s"))
    assert summary.requests == 3
    assert summary.leads == 3
    assert summary.invalid_rows == 1
    assert dict(summary.tally.code_counts) == {"163": 2, "166": 2}
    assert summary.tally.without_dates == 1
    assert summary.tally.earliest_from == "2023-06-01 00:00:00"
    assert summary.tally.latest_to == "2024-01-31 23:59:59"
    assert summary.eta_seconds == pytest.approx(0.6)
    assert summary.invalid_groups[0].kind == "ProspectId is not a GUID"
    assert summary.invalid_groups[0].first_rows == (5,)


@pytest.mark.parametrize(
    ("text", "calls", "period"),
    [
        ("25/5s", 25, 5.0),
        ("5/1s", 5, 1.0),
        ("10/5", 10, 5.0),
        ("Lite", 2, 5.0),
        ("pro", 5, 5.0),
        ("standard", 15, 5.0),
        ("enterprise", 25, 5.0),
        ("off", 0, 1.0),
    ],
)
def test_rate_parsing(text: str, calls: int, period: float) -> None:
    rate = RateLimit.parse(text)
    assert (rate.calls, rate.period) == (calls, period)


@pytest.mark.parametrize("text", ["fast", "0/5s", "25/0s", "25 per 5"])
def test_bad_rates(text: str) -> None:
    with pytest.raises(OptionError):
        RateLimit.parse(text)


def test_invalid_rows_spool_out_of_memory_and_read_back_in_order(
    write_csv: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from bulk_delete.plan.build import InvalidRows

    monkeypatch.setattr(InvalidRows, "SPOOL_BYTES", 1024)  # spill to disk after a few rows
    lines = ["ProspectId,Codes,From"] + [f"bad-{n},163,{'x' if n % 2 else ''}" for n in range(500)]
    plan = build_plan(write_csv("\n".join(lines) + "\n"), PlanOptions())
    assert plan.invalid._file._rolled  # type: ignore[attr-defined]  # it is on disk
    assert len(plan.invalid) == 500
    rows = list(plan.invalid)
    assert [r.row for r in rows] == list(range(2, 502))
    assert rows[1].reasons == (
        ("ProspectId is not a GUID", "ProspectId 'bad-1' is not a GUID"),
        ("bad FromDate", "FromDate 'x' is not a date (use YYYY-MM-DD or YYYY-MM-DD HH:MM:SS)"),
    )
    assert rows[1].from_date == "x"
    assert [r.row for r in plan.invalid][:3] == [2, 3, 4]  # re-iterable
    groups = {g.kind: (g.count, g.first_rows) for g in plan.invalid.groups()}
    assert groups == {
        "ProspectId is not a GUID": (500, (2, 3, 4, 5, 6)),
        "bad FromDate": (250, (3, 5, 7, 9, 11)),
    }


def test_a_requests_extra_cells_are_its_first_rows_in_the_sheets_column_order(
    write_csv: Callable[..., Path],
) -> None:
    path = write_csv(
        "Email,ProspectId,Code,Name\n"
        f"a@x.io,{G1},166,Asha\n"
        f'b@x.io,{G2},163,Bén "B"\n'
        f"c@x.io,{G1},163,Asha 2\n"
        f"not-a-guid-row,oops,163,Nobody\n"
    )
    plan = build_plan(path, PlanOptions())
    assert plan.source.ignored == ("Email", "Name")
    got = list(plan.requests())
    assert [json.loads(r.extra) for r in got] == [["a@x.io", "Asha"], ["b@x.io", 'Bén "B"']]
    split = requests(path, max_codes_per_request=1)  # both parts of a split carry them
    assert [(r.codes, json.loads(r.extra)) for r in split if r.prospect_id == G1] == [
        (("163",), ["a@x.io", "Asha"]),
        (("166",), ["a@x.io", "Asha"]),
    ]


def test_excel_extra_cells_keep_numbers_and_a_sheet_without_others_keeps_none(
    write_xlsx: Callable[..., Path], write_csv: Callable[..., Path]
) -> None:
    path = write_xlsx([["ProspectId", "Codes", "Score", "Note"], [G1, 163, 42, None]])
    assert [json.loads(r.extra) for r in requests(path)] == [[42, ""]]
    plain = build_plan(write_csv(f"ProspectId,Code\n{G1},163\n"), PlanOptions())
    assert not plain.extra
    assert [r.extra for r in plain.requests()] == [""]


async def test_an_export_is_not_planned_again(emulator: Any, tmp_path: Path) -> None:
    """Its invalid rows have no dates and its queued rows were sent: planning it would widen."""
    emu = await emulator(rate="off")
    sheet = tmp_path / "leads.csv"
    sheet.write_text(
        "ProspectId,Codes,FromDate,ToDate\n"
        f"{G.format(1)},201,2025-01-01,2025-01-31\n{G.format(2)},201,2025-05-01,2025-04-01\n"
    )
    checkpoint = tmp_path / "c.sqlite"
    done = await run_cli(
        "run", str(sheet), "--checkpoint", str(checkpoint), "-y", env=demo_env(emu.url)
    )
    assert done.returncode == 1  # one invalid row
    assert (
        await run_cli("export", str(checkpoint), "-o", str(tmp_path / "ex.csv"))
    ).returncode == 0
    plan = await run_cli("plan", str(tmp_path / "ex.csv"))
    assert plan.returncode == 2
    assert "is a bulk-delete export (outcomes), not a sheet to plan" in plan.stderr
