"""→ html_report: one self-contained HTML file that shows how a run went, to forward by email.

The page opens from an attachment with no network: no script, no stylesheet, font or image is
fetched. Charts are inline SVG, the style sheet is inline, fonts are the reader's own system
stack. The namespace declarations matplotlib writes (``xmlns="http://…"``) are dropped too: an
HTML parser gives inline ``<svg>`` its namespace by itself, and a page with no ``http`` in it
at all is easy to check.

Charts come from matplotlib (Agg backend, SVG output), not Vega-Lite: Vega-Lite draws in the
browser with JavaScript (vega, vega-lite and vega-embed inlined, ~1 MB, and scripts some mail
clients and viewers refuse), or needs vl-convert's bundled Deno engine to render SVG ahead of
time. matplotlib renders static SVG in-process from the data we already hold, is a wheel on
every platform, and its text stays text (``svg.fonttype: none``), so the SVGs stay small.

Long runs are downsampled before drawing: at most ``MAX_POINTS`` time buckets, each the sum of
the seconds it covers, so every refusal is still counted in the refusal chart (its total is
written on the chart and in ``data-total``). The page is built by a Jinja2 template with
autoescaping, from a plain ``ReportData``: whoever reads the checkpoint fills it
(``report_data`` does so from a ``CallLog``).
"""

from __future__ import annotations

import datetime as dt
import io
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, cast
from zoneinfo import ZoneInfo

import jinja2
import matplotlib
import matplotlib.dates as mdates
import numpy as np
from markupsafe import Markup
from matplotlib.figure import Figure
from matplotlib.ticker import StrMethodFormatter

from ..files import replacing
from ..store.calls import CallLog

# No window, no display: figures are drawn off screen (we never import pyplot, and SVG output
# goes through its own backend; Agg is named so nothing ever tries a GUI).
matplotlib.use("Agg")

MAX_POINTS: Final = 600  # time buckets drawn; a night of 100,000 calls stays a small page
MAX_LATENCIES: Final = 200_000  # samples kept for the histogram (evenly spaced when more)

_INK, _BLUE, _RED, _GREY, _GREEN = "#1d2733", "#2f6db5", "#c0392b", "#8795a1", "#2e8b57"
_OUTCOME_COLOURS: Final = {
    "queued": _GREEN,
    "failed": _RED,
    "refused": "#e67e22",
    "invalid": "#8e44ad",
    "pending": _GREY,
}


def _thousands() -> StrMethodFormatter:
    """A tick formatter of its own for each axis (a formatter belongs to one axis)."""
    return StrMethodFormatter("{x:,.0f}")


_STYLE: Final[dict[str, Any]] = {
    "svg.fonttype": "none",  # text as text: small files, the page's own fonts
    "font.family": "sans-serif",
    "font.size": 10,
    "axes.edgecolor": _GREY,
    "axes.labelcolor": _INK,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e3e8ee",
    "xtick.color": _INK,
    "ytick.color": _INK,
}


@dataclass(frozen=True, kw_only=True)
class LimitStep:
    """From ``since`` (epoch seconds) on, calls were held to ``per_second``."""

    since: float
    per_second: float | None
    label: str = ""


@dataclass(frozen=True, kw_only=True)
class Night:
    """One night of a job: what it asked and what is left."""

    date: dt.date
    requests: int
    queued: int
    refused: int
    verified: int | None
    left: int


@dataclass(frozen=True, kw_only=True)
class ReportData:
    """Everything the page shows, as plain data."""

    title: str
    tz: str
    headline: Sequence[tuple[str, str]]  # ("Queued", "290 of 300"), shown first
    notes: Sequence[str] = ()  # a sentence or two under the headline
    seconds: Sequence[int] = ()  # epoch seconds of each second that saw a call
    calls: Sequence[int] = ()  # calls started in that second
    refusals: Sequence[int] = ()  # of which refused (429)
    limits: Sequence[LimitStep] = ()
    outcomes: Mapping[str, Mapping[str, int]] = field(default_factory=dict)  # code → outcome
    latencies: Sequence[float] = ()  # seconds from call to answer
    verification: Sequence[tuple[str, int]] = ()
    nights: Sequence[Night] = ()
    generated_at: dt.datetime | None = None


@dataclass(frozen=True, kw_only=True)
class Chart:
    name: str
    title: str
    svg: Markup
    total: int | None = None  # what the chart counts, written in data-total


def report_data(
    log: CallLog,
    *,
    title: str,
    tz: str,
    headline: Sequence[tuple[str, str]],
    run: int | None = None,
    outcomes: Mapping[str, Mapping[str, int]] | None = None,
    **rest: Any,
) -> ReportData:
    """ReportData from a call log (every run when ``run`` is None) and the headline numbers.
    Without ``outcomes``, the delete calls are grouped by their HTTP status."""
    seconds = log.per_second(run)
    return ReportData(
        title=title,
        tz=tz,
        headline=headline,
        seconds=[s.second for s in seconds],
        calls=[s.calls for s in seconds],
        refusals=[s.refusals for s in seconds],
        limits=_limit_steps(log, run),
        outcomes=outcomes if outcomes is not None else _by_status(log, run),
        latencies=log.latencies(run),
        **rest,
    )


def _limit_steps(log: CallLog, run: int | None) -> list[LimitStep]:
    steps: list[LimitStep] = []
    for change in log.limits(run):
        rate = change.per_second
        text = "no limit" if rate is None else f"{change.calls} calls / {change.period:g} s"
        before = steps[-1].per_second if steps else None
        verb = "limit" if not steps else ("lowered to" if (rate or 0) < (before or 0) else "now")
        steps.append(LimitStep(since=change.since, per_second=rate, label=f"{verb} {text}"))
    return steps


def _by_status(log: CallLog, run: int | None) -> dict[str, dict[str, int]]:
    grouped: dict[str, dict[str, int]] = {}
    for (status, verdict), count in log.verdicts_by_status(run, "delete").items():
        code = "no answer" if status is None else f"HTTP {status}"
        grouped.setdefault(code, {})[verdict] = count
    return grouped


def render_report(data: ReportData) -> str:
    """The whole page as text."""
    return _TEMPLATE.render(
        data=data,
        charts=charts(data),
        generated=_local_text(data.generated_at, data.tz) if data.generated_at else "",
    )


def write_report(path: Path, data: ReportData) -> None:
    """The page at ``path``: 0600, whole or not at all."""
    page = render_report(data)
    with replacing(path, "w", encoding="utf-8") as handle:
        handle.write(page)


def charts(data: ReportData) -> list[Chart]:
    """Every chart the data allows, in reading order."""
    drawn: list[Chart] = []
    if data.seconds:
        drawn.append(_rate_chart(data))
        drawn.append(_refusal_chart(data))
    if data.outcomes:
        drawn.append(_outcome_chart(data.outcomes))
    if data.latencies:
        drawn.append(_latency_chart(data.latencies))
    if data.verification:
        drawn.append(_verification_chart(data.verification))
    return drawn


@dataclass(frozen=True)
class _Buckets:
    starts: list[dt.datetime]  # in the run's zone
    width: int  # seconds per bucket
    calls: np.ndarray[Any, np.dtype[np.int64]]
    refusals: np.ndarray[Any, np.dtype[np.int64]]
    end: dt.datetime


def _buckets(data: ReportData) -> _Buckets:
    """Seconds summed into at most MAX_POINTS buckets of equal width (empty seconds count)."""
    seconds = np.asarray(data.seconds, dtype=np.int64)
    first, last = int(seconds.min()), int(seconds.max())
    width = max(1, math.ceil((last - first + 1) / MAX_POINTS))
    index = (seconds - first) // width
    size = int(index.max()) + 1
    calls = np.bincount(index, weights=np.asarray(data.calls), minlength=size).astype(np.int64)
    refused = np.bincount(index, weights=np.asarray(data.refusals), minlength=size)
    tz = ZoneInfo(data.tz)
    starts = [dt.datetime.fromtimestamp(first + n * width, tz) for n in range(size)]
    end = dt.datetime.fromtimestamp(first + size * width, tz)
    return _Buckets(starts, width, calls, refused.astype(np.int64), end)


def _rate_chart(data: ReportData) -> Chart:
    buckets = _buckets(data)

    def draw(figure: Figure) -> None:
        axes = figure.subplots()
        rate = buckets.calls / buckets.width
        times = _numbers([*buckets.starts, buckets.end])
        axes.stairs(rate, times, fill=True, color=_BLUE, alpha=0.35, label="calls per second")
        axes.stairs(rate, times, color=_BLUE, linewidth=1)
        _draw_limits(axes, data, buckets.end)
        _time_axis(axes, data.tz)
        axes.set_ylabel("calls per second")
        axes.set_ylim(bottom=0)
        axes.legend(loc="upper right", frameon=False)

    title = "Calls per second against the limit"
    return Chart(name="rate", title=title, svg=_svg("rate", draw))


def _draw_limits(axes: Any, data: ReportData, end: dt.datetime) -> None:
    tz = ZoneInfo(data.tz)
    steps = [step for step in data.limits if step.per_second is not None]
    if not steps:
        return
    times = _numbers([dt.datetime.fromtimestamp(step.since, tz) for step in steps] + [end])
    values = [step.per_second for step in steps]
    axes.stairs(values, times, color=_RED, linestyle="--", linewidth=1.5, label="limit")
    for step, moment in zip(steps[1:], times[1:], strict=False):
        axes.axvline(moment, color=_GREY, linestyle=":", linewidth=1)
        axes.annotate(
            step.label,
            (moment, step.per_second),
            xytext=(4, 6),
            textcoords="offset points",
            fontsize=9,
            color=_RED,
            bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none"},
        )


def _refusal_chart(data: ReportData) -> Chart:
    buckets = _buckets(data)
    total = int(buckets.refusals.sum())

    def draw(figure: Figure) -> None:
        axes = figure.subplots()
        times = _numbers([*buckets.starts, buckets.end])
        axes.stairs(buckets.refusals, times, fill=True, color=_RED, alpha=0.8)
        _time_axis(axes, data.tz)
        unit = "second" if buckets.width == 1 else f"{buckets.width} s"
        axes.set_ylabel(f"refusals (429) per {unit}")
        axes.set_ylim(bottom=0, top=max(1, int(buckets.refusals.max(initial=0))) * 1.1)

    title = f"Refusals (HTTP 429): {total:,} in total"
    return Chart(name="refusals", title=title, svg=_svg("refusals", draw), total=total)


def _outcome_chart(outcomes: Mapping[str, Mapping[str, int]]) -> Chart:
    codes = list(outcomes)
    kinds = sorted({kind for counts in outcomes.values() for kind in counts}, key=_outcome_order)
    total = sum(sum(counts.values()) for counts in outcomes.values())
    widest = max(sum(counts.values()) for counts in outcomes.values())

    def draw(figure: Figure) -> None:
        axes = figure.subplots()
        left = np.zeros(len(codes))
        for kind in kinds:
            widths = np.array([outcomes[code].get(kind, 0) for code in codes], dtype=float)
            colour = _OUTCOME_COLOURS.get(kind, _GREY)
            bars = axes.barh(codes, widths, left=left, color=colour, label=kind)
            inside = [f"{int(w):,}" if w >= 0.08 * widest else "" for w in widths]
            axes.bar_label(bars, labels=inside, label_type="center", color="white", fontsize=9)
            left += widths
        for y, bar_total in enumerate(left):
            axes.annotate(
                f"{int(bar_total):,}",
                (bar_total, y),
                xytext=(4, 0),
                textcoords="offset points",
                va="center",
                fontsize=9,
            )
        axes.margins(x=0.08)
        axes.xaxis.set_major_formatter(_thousands())
        axes.invert_yaxis()
        axes.set_xlabel("requests")
        axes.grid(axis="y", visible=False)
        axes.legend(loc="lower right", frameon=False, ncols=min(len(kinds), 4))

    return Chart(
        name="outcomes",
        title="Outcomes by code",
        svg=_svg("outcomes", draw, height=max(2.2, 0.45 * len(codes) + 1.4)),
        total=total,
    )


def _outcome_order(kind: str) -> tuple[int, str]:
    order = list(_OUTCOME_COLOURS)
    return (order.index(kind) if kind in order else len(order), kind)


def _latency_chart(latencies: Sequence[float]) -> Chart:
    samples = np.asarray(latencies, dtype=float)
    if samples.size > MAX_LATENCIES:
        samples = np.sort(samples)[:: math.ceil(samples.size / MAX_LATENCIES)]
    p50, p95, p99 = np.percentile(samples, [50, 95, 99])

    def draw(figure: Figure) -> None:
        axes = figure.subplots()
        axes.hist(samples * 1000, bins=60, color=_BLUE, alpha=0.85)
        for value, name in ((p50, "median"), (p95, "95%"), (p99, "99%")):
            axes.axvline(value * 1000, color=_INK, linestyle="--", linewidth=1)
            axes.text(
                value * 1000,
                0.97,
                f" {name} {value * 1000:,.0f} ms",
                transform=axes.get_xaxis_transform(),
                rotation=90,
                va="top",
                ha="right",
                fontsize=9,
            )
        axes.xaxis.set_major_formatter(_thousands())
        axes.yaxis.set_major_formatter(_thousands())
        axes.set_xlabel("milliseconds from call to answer")
        axes.set_ylabel("calls")

    title = f"How long LeadSquared took to answer ({samples.size:,} calls)"
    return Chart(name="latency", title=title, svg=_svg("latency", draw))


def _verification_chart(states: Sequence[tuple[str, int]]) -> Chart:
    def draw(figure: Figure) -> None:
        axes = figure.subplots()
        names = [name for name, _ in states]
        counts = [count for _, count in states]
        bars = axes.barh(names, counts, color=[_GREEN, _RED, _GREY, _BLUE][: len(states)])
        axes.bar_label(bars, labels=[f"{c:,}" for c in counts], padding=3, fontsize=9)
        axes.margins(x=0.08)
        axes.xaxis.set_major_formatter(_thousands())
        axes.invert_yaxis()
        axes.set_xlabel("requests")
        axes.grid(axis="y", visible=False)

    height = max(1.8, 0.45 * len(states) + 1.2)
    svg = _svg("verification", draw, height=height)
    return Chart(name="verification", title="Verification: read back after the run", svg=svg)


def _numbers(moments: Sequence[dt.datetime]) -> Any:
    """Moments as matplotlib's date numbers (days), which ``stairs`` and ``axvline`` take."""
    return mdates.date2num(moments)  # type: ignore[no-untyped-call]


def _time_axis(axes: Any, tz: str) -> None:
    locator = mdates.AutoDateLocator(tz=ZoneInfo(tz), maxticks=8)  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_locator(locator)
    formatter = mdates.ConciseDateFormatter(  # type: ignore[no-untyped-call]
        locator,
        tz=ZoneInfo(tz),
        offset_formats=["", "%Y", "%Y-%m", "%Y-%m-%d", "%Y-%m-%d", "%Y-%m-%d %H:%M"],
    )
    axes.xaxis.set_major_formatter(formatter)
    axes.set_xlabel(f"time ({tz})")


_SVG_NOISE: Final = (
    re.compile(r"<\?xml[^>]*\?>\s*"),
    re.compile(r"<!DOCTYPE[^>]*>\s*"),
    re.compile(r"<metadata>.*?</metadata>\s*", re.DOTALL),
    re.compile(r'\s+xmlns(?::\w+)?="[^"]*"'),
)


def _svg(name: str, draw: Callable[[Figure], None], height: float = 3.2) -> Markup:
    """The figure ``draw`` fills, as inline SVG text with nothing that points outside."""
    with matplotlib.rc_context(cast(Any, {**_STYLE, "svg.hashsalt": name})):
        figure = Figure(figsize=(9, height), layout="constrained")
        draw(figure)
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    for pattern in _SVG_NOISE:
        text = pattern.sub("", text)
    text = text.replace("<svg ", f'<svg role="img" aria-label="{name} chart" ', 1)
    return Markup(text)  # noqa: S704  (our own SVG, from matplotlib; no input text unescaped)


def _local_text(moment: dt.datetime, tz: str) -> str:
    return moment.astimezone(ZoneInfo(tz)).strftime(f"%Y-%m-%d %H:%M ({tz})")


_TEMPLATE: Final = jinja2.Environment(
    autoescape=True, undefined=jinja2.StrictUndefined
).from_string(
    """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ data.title }}</title>
<style>
  :root { color-scheme: light; }
  body { margin: 0; background: #f4f6f9; color: #1d2733;
         font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue",
               Arial, sans-serif; }
  main { max-width: 980px; margin: 0 auto; padding: 28px 24px 48px; }
  h1 { font-size: 24px; margin: 0 0 4px; }
  .when { color: #5b6875; margin: 0 0 20px; }
  .headline { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr));
              gap: 12px; margin-bottom: 16px; }
  .number { background: #fff; border-radius: 8px; padding: 14px 16px;
            box-shadow: 0 1px 2px rgba(0,0,0,.08); }
  .number .value { font-size: 26px; font-weight: 650; display: block; }
  .number .label { color: #5b6875; font-size: 13px; }
  .notes { margin: 0 0 20px; padding-left: 20px; }
  figure { background: #fff; border-radius: 8px; margin: 0 0 16px; padding: 14px 16px 8px;
           box-shadow: 0 1px 2px rgba(0,0,0,.08); }
  figcaption { font-weight: 650; margin-bottom: 6px; }
  figure svg { width: 100%; height: auto; display: block; }
  table { border-collapse: collapse; width: 100%; background: #fff; border-radius: 8px; }
  th, td { text-align: right; padding: 6px 12px; border-bottom: 1px solid #e3e8ee; }
  th:first-child, td:first-child { text-align: left; }
  h2 { font-size: 18px; margin: 28px 0 10px; }
  footer { color: #5b6875; font-size: 12px; margin-top: 28px; }
</style>
</head>
<body>
<main>
<h1>{{ data.title }}</h1>
{% if generated %}<p class="when">Report made {{ generated }}</p>{% endif %}
<section class="headline">
{% for label, value in data.headline %}
  <div class="number"><span class="value">{{ value }}</span>
  <span class="label">{{ label }}</span></div>
{% endfor %}
</section>
{% if data.notes %}<ul class="notes">{% for note in data.notes %}<li>{{ note }}</li>
{% endfor %}</ul>{% endif %}
{% for chart in charts %}
<figure class="chart" data-chart="{{ chart.name }}"
  {%- if chart.total is not none %} data-total="{{ chart.total }}"{% endif %}>
  <figcaption>{{ chart.title }}</figcaption>
  {{ chart.svg }}
</figure>
{% endfor %}
{% if data.nights %}
<h2>Night by night</h2>
<table class="nights">
<thead><tr><th>Night</th><th>Requests</th><th>Queued</th><th>Refused (429)</th>
<th>Verified</th><th>Left</th></tr></thead>
<tbody>
{% for night in data.nights %}
<tr><td>{{ night.date.isoformat() }}</td><td>{{ "{:,}".format(night.requests) }}</td>
<td>{{ "{:,}".format(night.queued) }}</td><td>{{ "{:,}".format(night.refused) }}</td>
<td>{{ "—" if night.verified is none else "{:,}".format(night.verified) }}</td>
<td>{{ "{:,}".format(night.left) }}</td></tr>
{% endfor %}
</tbody>
</table>
{% endif %}
<footer>"Queued" means LeadSquared accepted the delete request; it deletes the activities
afterwards. Times are in {{ data.tz }}.</footer>
</main>
</body>
</html>
"""
)
