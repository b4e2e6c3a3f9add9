"""report data → timeline charts: calls per second against the limit, and the refusals (429).

Long runs are downsampled before drawing: at most ``MAX_POINTS`` time buckets of equal width,
each the sum of the seconds it covers (a second with no call counts as nought), so a night of
100,000 calls stays a small page and every refusal is still counted in the refusal chart; its
total is written on the chart and in ``data-total``. The rate chart divides each bucket by its
width, so its height stays calls per second however wide the buckets are.

Times are drawn in the run's own zone (``ReportData.tz``): the person reading the report
thinks of the night in local time, and the axis label names the zone.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final
from zoneinfo import ZoneInfo

import matplotlib.dates as mdates
import numpy as np
from matplotlib.figure import Figure

from ...store.report_data import ReportData
from .svg import BLUE, GREY, RED, Chart, svg

MAX_POINTS: Final = 600  # time buckets drawn; a night of 100,000 calls stays a small page


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


def rate_chart(data: ReportData) -> Chart:
    buckets = _buckets(data)

    def draw(figure: Figure) -> None:
        axes = figure.subplots()
        rate = buckets.calls / buckets.width
        times = _numbers([*buckets.starts, buckets.end])
        axes.stairs(rate, times, fill=True, color=BLUE, alpha=0.35, label="calls per second")
        axes.stairs(rate, times, color=BLUE, linewidth=1)
        _draw_limits(axes, data, buckets.end)
        _time_axis(axes, data.tz)
        axes.set_ylabel("calls per second")
        axes.set_ylim(bottom=0)
        axes.legend(loc="upper right", frameon=False)

    title = "Calls per second against the limit"
    return Chart(name="rate", title=title, svg=svg("rate", draw))


def _draw_limits(axes: Any, data: ReportData, end: dt.datetime) -> None:
    tz = ZoneInfo(data.tz)
    steps = [step for step in data.limits if step.per_second is not None]
    if not steps:
        return
    times = _numbers([dt.datetime.fromtimestamp(step.since, tz) for step in steps] + [end])
    values = [step.per_second for step in steps]
    axes.stairs(values, times, color=RED, linestyle="--", linewidth=1.5, label="limit")
    for step, moment in zip(steps[1:], times[1:], strict=False):
        axes.axvline(moment, color=GREY, linestyle=":", linewidth=1)
        axes.annotate(
            step.label,
            (moment, step.per_second),
            xytext=(4, 6),
            textcoords="offset points",
            fontsize=9,
            color=RED,
            bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none"},
        )


def refusal_chart(data: ReportData) -> Chart:
    buckets = _buckets(data)
    total = int(buckets.refusals.sum())

    def draw(figure: Figure) -> None:
        axes = figure.subplots()
        times = _numbers([*buckets.starts, buckets.end])
        axes.stairs(buckets.refusals, times, fill=True, color=RED, alpha=0.8)
        _time_axis(axes, data.tz)
        unit = "second" if buckets.width == 1 else f"{buckets.width} s"
        axes.set_ylabel(f"refusals (429) per {unit}")
        axes.set_ylim(bottom=0, top=max(1, int(buckets.refusals.max(initial=0))) * 1.1)

    title = f"Refusals (HTTP 429): {total:,} in total"
    return Chart(name="refusals", title=title, svg=svg("refusals", draw), total=total)


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
