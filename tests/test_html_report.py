"""The HTML run report: self-contained, one SVG per chart, refusals all counted, small."""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
import stat
from pathlib import Path
from typing import Any

import pytest

from bulk_delete.cli.html_report import (
    MAX_POINTS,
    Night,
    ReportData,
    charts,
    render_report,
    report_data,
    write_report,
)
from bulk_delete.store.calls import CallLog
from tests.report_fixtures import night_log

TZ = "Europe/Berlin"


def _data(log: CallLog, **extra: Any) -> ReportData:
    return report_data(
        log,
        title="Bulk delete — last night",
        tz=TZ,
        headline=[("requests", "300"), ("queued", "290")],
        generated_at=dt.datetime(2026, 11, 2, 6, 0, tzinfo=dt.UTC),
        **extra,
    )


def _refusals_in(log: CallLog) -> int:
    return sum(second.refusals for second in log.per_second())


def test_the_page_fetches_nothing(tmp_path: Path) -> None:
    page = render_report(_data(night_log(tmp_path / "ck.sqlite", 300)))
    assert "http://" not in page
    assert "https://" not in page
    assert "<script" not in page
    assert "@import" not in page
    assert re.findall(r"url\((?!#)", page) == []  # clip paths point inside the page only
    links = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', page)
    assert all(link.startswith("#") for link in links), links


def test_one_svg_per_chart(tmp_path: Path) -> None:
    data = _data(night_log(tmp_path / "ck.sqlite", 300), verification=[("gone", 280)])
    page = render_report(data)
    names = re.findall(r'data-chart="(\w+)"', page)
    assert names == ["rate", "refusals", "outcomes", "latency", "verification"]
    assert page.count("<svg") == len(names)
    figures = re.findall(r"<figure.*?</figure>", page, re.DOTALL)
    assert all(figure.count("<svg") == 1 for figure in figures)


def test_refusal_chart_counts_every_refusal(tmp_path: Path) -> None:
    log = night_log(tmp_path / "ck.sqlite", 300)
    expected = _refusals_in(log)
    assert expected > 0
    page = render_report(_data(log))
    assert re.search(r'data-chart="refusals" data-total="(\d+)"', page)[1] == str(expected)  # type: ignore[index]
    assert f"Refusals (HTTP 429): {expected:,} in total" in page


def test_a_long_run_is_downsampled_and_still_counts_every_refusal(tmp_path: Path) -> None:
    log = night_log(tmp_path / "ck.sqlite", 100_000)
    data = _data(
        log,
        nights=[
            Night(date=dt.date(2026, 11, 1), requests=9, queued=8, refused=1, verified=None, left=1)
        ],
    )
    assert len(data.seconds) > MAX_POINTS
    refusal_chart = next(c for c in charts(data) if c.name == "refusals")
    assert refusal_chart.total == _refusals_in(log)
    path = tmp_path / "report.html"
    write_report(path, data)
    assert path.stat().st_size < 2_000_000
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_outcomes_by_status_when_none_are_given(tmp_path: Path) -> None:
    log = night_log(tmp_path / "ck.sqlite", 300)
    data = _data(log)
    refused = _refusals_in(log)
    assert data.outcomes == {
        "HTTP 200": {"queued": 300 - refused},
        "HTTP 429": {"refused": refused},
    }
    outcome_chart = next(c for c in charts(data) if c.name == "outcomes")
    assert outcome_chart.total == 300


def test_limit_changes_are_labelled(tmp_path: Path) -> None:
    data = _data(night_log(tmp_path / "ck.sqlite", 300))
    assert [step.label for step in data.limits] == [
        "limit 25 calls / 5 s",
        "lowered to 20 calls / 5 s",
    ]
    assert "lowered to 20 calls / 5 s" in render_report(data)


def test_headline_comes_first_and_text_is_escaped(tmp_path: Path) -> None:
    data = _data(night_log(tmp_path / "ck.sqlite", 30))
    data = ReportData(**{**data.__dict__, "headline": [("<b>sheet</b>", "=1+1")]})
    page = render_report(data)
    assert "&lt;b&gt;sheet&lt;/b&gt;" in page
    assert page.index("=1+1") < page.index("<svg")


def test_nights_one_line_each(tmp_path: Path) -> None:
    nights = [
        Night(
            date=dt.date(2026, 11, 1), requests=300, queued=250, refused=40, verified=240, left=50
        ),
        Night(date=dt.date(2026, 11, 2), requests=50, queued=50, refused=0, verified=None, left=0),
    ]
    page = render_report(_data(night_log(tmp_path / "ck.sqlite", 30), nights=nights))
    rows = re.findall(r"<tr><td>(\d{4}-\d\d-\d\d)</td>(.*?)</tr>", page, re.DOTALL)
    assert [row[0] for row in rows] == ["2026-11-01", "2026-11-02"]
    cells = [re.findall(r"<td>([^<]*)</td>", row[1]) for row in rows]
    assert cells == [["300", "250", "40", "240", "50"], ["50", "50", "0", "—", "0"]]


def test_an_empty_log_gives_a_page_without_charts(tmp_path: Path) -> None:
    data = _data(CallLog.create(sqlite3.connect(tmp_path / "ck.sqlite")))
    assert charts(data) == []
    assert "<svg" not in render_report(data)


@pytest.mark.parametrize("tz", ["UTC", "America/New_York"])
def test_time_axis_is_in_the_runs_zone(tmp_path: Path, tz: str) -> None:
    data = report_data(night_log(tmp_path / "ck.sqlite", 30), title="t", tz=tz, headline=[])
    assert f"time ({tz})" in render_report(data)
