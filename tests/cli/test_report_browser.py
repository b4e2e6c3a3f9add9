"""The HTML report in a real browser: the system's headless Chromium, driven by Playwright.

Only the page itself may be loaded: any other request (a CDN script, a web font, an image) is
recorded and aborted, and fails the test. Every chart must render with a size, and the console
must stay free of errors. As the browser lays them out, a run that kept its limit has no bar
above its limit line, and no two texts of a chart overlap. A screenshot of the page is left in
the test's temporary folder (pytest keeps the last three runs' folders): report.png.

Playwright never downloads a browser here (no ``playwright install``): it drives the
Debian package's /usr/bin/chromium. Where that is missing the test is skipped, except in CI
(``CI`` set), where a missing browser is a failure: .ci/run installs it.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Request, Route, sync_playwright

from bulk_delete.cli.report_page import Night, charts, report_data, write_report
from bulk_delete.commands.report import report as report_of
from tests.report_fixtures import SYSTEM_REFUSAL, kept_log, nights_folder, troubled_run

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def need_browser(path: Path, env: Mapping[str, str]) -> None:
    """Skip where the browser is missing, unless in CI: there a missing browser fails."""
    if path.exists():
        return
    if env.get("CI"):
        pytest.fail(f"CI must run the browser test, and {path} is missing (.ci/run)")
    pytest.skip(f"no {path} here (apt-get install chromium); CI runs this test")


# One browser for the module (a launch is a second of CPU), on one worker of the suite's; each
# test opens its own page, in a context of its own.
pytestmark = pytest.mark.xdist_group("chromium")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    need_browser(CHROMIUM, os.environ)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def report(tmp_path: Path) -> Path:
    log = kept_log(tmp_path / "ck.sqlite", 3000)  # kept 25, then 20 per 5 s; verify 3 h later
    nights = [
        Night(
            date=dt.date(2026, 11, 1),
            requests=3000,
            queued=2700,
            refused=300,
            verified=2650,
            left=300,
        ),
    ]
    data = report_data(
        log,
        title="Bulk delete — night of 2026-11-01",
        tz="Europe/Berlin",
        headline=[("requests", "3,000"), ("queued", "2,700"), ("refused (429)", "300")],
        verification=[("gone", 2650), ("still there", 50)],
        nights=nights,
        generated_at=dt.datetime(2026, 11, 2, 6, 0, tzinfo=dt.UTC),
    )
    path = tmp_path / "report.html"
    write_report(path, data)
    assert len(charts(data)) == 6
    return path


def _open(browser: Browser, url: str, requests: list[str], errors: list[str]) -> Page:
    page = browser.new_page(viewport={"width": 1100, "height": 900})

    def only_the_page(route: Route, request: Request) -> None:
        requests.append(request.url)
        if request.url == url:
            route.continue_()
        else:
            route.abort()

    page.route("**/*", only_the_page)
    page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("requestfailed", lambda request: errors.append(f"failed: {request.url}"))
    page.goto(url, wait_until="load")
    return page


def test_report_renders_offline_in_chromium(browser: Browser, report: Path, tmp_path: Path) -> None:
    url = report.as_uri()
    requests: list[str] = []
    errors: list[str] = []
    page = _open(browser, url, requests, errors)
    figures = page.locator("figure.chart")
    assert figures.count() == 6
    for n in range(figures.count()):
        svg = figures.nth(n).locator("svg")
        assert svg.count() == 1
        box = svg.bounding_box()
        assert box is not None
        assert box["width"] > 300
        assert box["height"] > 100
    assert page.locator("table.nights tbody tr").count() == 1
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    assert (tmp_path / "report.png").stat().st_size > 10_000
    assert requests == [url]
    assert errors == []


def test_a_page_that_fetches_is_caught(browser: Browser, tmp_path: Path) -> None:
    """The net above holds: a page with a web font and an image is seen asking for them."""
    page_file = tmp_path / "leaky.html"
    page_file.write_text(
        "<!DOCTYPE html><html><head><link rel=stylesheet href='https://cdn.example/x.css'>"
        "</head><body><img src='http://example.invalid/a.png'></body></html>"
    )
    requests: list[str] = []
    errors: list[str] = []
    _open(browser, page_file.as_uri(), requests, errors)
    assert len(requests) == 3
    assert any("cdn.example" in error for error in errors)


@pytest.mark.parametrize(
    ("env", "outcome"),
    [({}, pytest.skip.Exception), ({"CI": "true"}, pytest.fail.Exception)],
)
def test_a_missing_browser_skips_locally_and_fails_in_ci(
    tmp_path: Path, env: dict[str, str], outcome: type[BaseException]
) -> None:
    with pytest.raises(outcome, match="chromium"):
        need_browser(tmp_path / "chromium", env)


# The boxes the browser drew: the rate chart's bars and limit lines, and every chart's texts.
_BARS_AND_LIMITS = """() => {
  const box = (e) => { const r = e.getBoundingClientRect();
    return {left: r.left, right: r.right, top: r.top, bottom: r.bottom}; };
  const chart = document.querySelector('figure[data-chart="rate"] svg');
  return {bars: [...chart.querySelectorAll('rect.calls')].map(box),
          limits: [...chart.querySelectorAll('line.limit')].map(box)};
}"""
_TEXTS = """() => [...document.querySelectorAll('figure.chart svg')].map((chart) =>
  [...chart.querySelectorAll('text')].map((e) => { const r = e.getBoundingClientRect();
    return {text: e.textContent, left: r.left, right: r.right, top: r.top, bottom: r.bottom}; }))
"""


def test_a_kept_limit_has_no_bar_above_its_line(browser: Browser, report: Path) -> None:
    page = _open(browser, report.as_uri(), [], [])
    drawn = page.evaluate(_BARS_AND_LIMITS)
    assert len(drawn["bars"]) > 50
    assert drawn["limits"]
    over = []
    for bar in drawn["bars"]:
        under = [
            line["top"]
            for line in drawn["limits"]
            if line["left"] < bar["right"] - 0.1 and line["right"] > bar["left"] + 0.1
        ]
        assert under, f"no limit line over the bar at {bar}"
        if bar["top"] < min(under) - 0.5:  # (screen y grows downward)
            over.append(bar)
    assert over == []


def _overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return (
        min(a["right"], b["right"]) - max(a["left"], b["left"]) > 0.5
        and min(a["bottom"], b["bottom"]) - max(a["top"], b["top"]) > 0.5
    )


def test_no_two_labels_overlap(browser: Browser, report: Path) -> None:
    page = _open(browser, report.as_uri(), [], [])
    charts = page.evaluate(_TEXTS)
    assert len(charts) == 6
    clashes = [
        (a["text"], b["text"])
        for texts in charts
        for n, a in enumerate(texts)
        for b in texts[n + 1 :]
        if _overlap(a, b)
    ]
    assert sum(len(texts) for texts in charts) > 40
    assert clashes == []
    assert _cut_by_the_edge(page) == []


def _clashes(page: Page) -> list[tuple[str, str]]:
    return [
        (a["text"], b["text"])
        for texts in page.evaluate(_TEXTS)
        for n, a in enumerate(texts)
        for b in texts[n + 1 :]
        if _overlap(a, b)
    ]


def _visible(page: Page, text: str) -> bool:
    """Whether ``text`` is on the page where a reader sees it (not hidden, not zero-sized)."""
    found = page.get_by_text(text, exact=False)
    return any(found.nth(n).is_visible() for n in range(found.count()))


@pytest.fixture(scope="module")
def troubled_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report a real run wrote when SIGTERM stopped it: failures, invalid rows, exit 130."""
    return troubled_run(tmp_path_factory.mktemp("troubled"))


def test_a_stopped_run_with_failures_and_invalid_rows_says_so_in_visible_text(
    browser: Browser, troubled_report: Path, tmp_path: Path
) -> None:
    errors: list[str] = []
    page = _open(browser, troubled_report.as_uri(), [], errors)
    page.screenshot(path=str(tmp_path / "run-report.png"), full_page=True)
    said = [
        "Purge: leads.csv",  # the sheet, by its name
        "Activity codes",
        "5, 201",  # the codes
        "2025-01-01 00:00:00 → 2025-01-31 23:59:59",  # the window, in the run's zone …
        "2024-12-31 18:30:00 → 2025-01-31 18:29:59",  # … and in UTC
        "Window (Asia/Kolkata)",
        "keys of demo@example.com",  # the account, as the preflight found it
        "130: interrupted by a signal",  # the exit status in words
        "yes: stopped by a signal",
        "--checkpoint",  # the command that resumes
        SYSTEM_REFUSAL,  # a failure's reason …
        "2, 3, 4",  # … and its sheet rows
        "ProspectId '…' is not a GUID",  # an invalid row's reason …
        "e.g. ProspectId 'not-a-guid' is not a GUID",
        "82",  # … and its row
        "not a positive whole number",
    ]
    missing = [text for text in said if not _visible(page, text)]
    assert missing == []
    assert _clashes(page) == []
    assert _cut_by_the_edge(page) == []
    assert errors == []


_OUTSIDE = """() => [...document.querySelectorAll('figure.chart svg')].flatMap((chart) => {
  const edge = chart.getBoundingClientRect();
  return [...chart.querySelectorAll('text')].filter((e) => { const r = e.getBoundingClientRect();
    return r.left < edge.left - 0.5 || r.right > edge.right + 0.5; }).map((e) => e.textContent);
})"""


def _cut_by_the_edge(page: Page) -> list[str]:
    """Texts of a chart that reach past its edges (the browser cuts them there)."""
    found: list[str] = page.evaluate(_OUTSIDE)
    return found


def test_the_nightly_page_lists_each_jobs_nights_in_date_order_with_a_chart(
    browser: Browser, tmp_path: Path
) -> None:
    state = nights_folder(tmp_path / "state", 5)
    page_file = tmp_path / "nights.html"
    write_report(page_file, report_of(state, dt.datetime(2026, 1, 6, tzinfo=dt.UTC)))
    page = _open(browser, page_file.as_uri(), [], [])
    page.screenshot(path=str(tmp_path / "nights.png"), full_page=True)
    rows = page.locator("table.nights tbody tr")
    cells = [rows.nth(n).locator("td").all_inner_texts() for n in range(rows.count())]
    assert [row[:2] for row in cells] == [
        [f"2026-01-0{day}", job] for day in range(1, 6) for job in ("enquiries", "webinars")
    ]
    assert page.locator('figure[data-chart="nights"] rect.requests').count() == 5
    assert page.locator('figure[data-chart="nights"] rect.activities').count() == 5
    assert _visible(page, "Requests and activities per night")
    assert _clashes(page) == []
