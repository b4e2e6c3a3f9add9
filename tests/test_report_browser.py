"""The HTML report in a real browser: the system's headless Chromium, driven by Playwright.

Only the page itself may be loaded: any other request (a CDN script, a web font, an image) is
recorded and aborted, and fails the test. Every chart must render with a size, and the console
must stay free of errors. A screenshot is left in the test's temporary folder.

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

from bulk_delete.cli.html_report import Night, charts, report_data, write_report
from tests.report_fixtures import night_log

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


@pytest.fixture
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
    log = night_log(tmp_path / "ck.sqlite", 3000)
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
    assert len(charts(data)) == 5
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
    assert figures.count() == 5
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
