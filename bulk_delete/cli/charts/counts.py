"""report data → count charts: outcomes by code, how long LeadSquared took, verification.

These count requests and calls rather than follow time: stacked bars of each code's outcomes
(every bar's total written at its end, each part's count inside it when it is wide enough to
read), a histogram of answer times with its median, 95th and 99th percentiles marked, and one
bar per state of the verification. Counts are written with thousands separators, as the
headline writes them.

An outcome keeps one colour across every report (queued green, failed red, …), so a reader who
has seen one page reads the next at a glance; an outcome we did not foresee is drawn grey,
after the known ones. Past ``MAX_LATENCIES`` answer times the histogram keeps evenly spaced
samples of the sorted times: the shape and the percentiles hold, the page stays small.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import StrMethodFormatter

from .svg import BLUE, GREEN, GREY, INK, RED, Chart, svg

MAX_LATENCIES: Final = 200_000  # samples kept for the histogram (evenly spaced when more)

_OUTCOME_COLOURS: Final = {
    "queued": GREEN,
    "failed": RED,
    "refused": "#e67e22",
    "invalid": "#8e44ad",
    "pending": GREY,
}


def _thousands() -> StrMethodFormatter:
    """A tick formatter of its own for each axis (a formatter belongs to one axis)."""
    return StrMethodFormatter("{x:,.0f}")


def outcome_chart(outcomes: Mapping[str, Mapping[str, int]]) -> Chart:
    codes = list(outcomes)
    kinds = sorted({kind for counts in outcomes.values() for kind in counts}, key=_outcome_order)
    total = sum(sum(counts.values()) for counts in outcomes.values())
    widest = max(sum(counts.values()) for counts in outcomes.values())

    def draw(figure: Figure) -> None:
        axes = figure.subplots()
        left = np.zeros(len(codes))
        for kind in kinds:
            widths = np.array([outcomes[code].get(kind, 0) for code in codes], dtype=float)
            colour = _OUTCOME_COLOURS.get(kind, GREY)
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
        _requests_axis(axes)
        axes.legend(loc="lower right", frameon=False, ncols=min(len(kinds), 4))

    return Chart(
        name="outcomes",
        title="Outcomes by code",
        svg=svg("outcomes", draw, height=max(2.2, 0.45 * len(codes) + 1.4)),
        total=total,
    )


def _requests_axis(axes: Any) -> None:
    """Horizontal bars of requests, read top down in the order given, with room for labels."""
    axes.margins(x=0.08)
    axes.xaxis.set_major_formatter(_thousands())
    axes.invert_yaxis()
    axes.set_xlabel("requests")
    axes.grid(axis="y", visible=False)


def _outcome_order(kind: str) -> tuple[int, str]:
    order = list(_OUTCOME_COLOURS)
    return (order.index(kind) if kind in order else len(order), kind)


def latency_chart(latencies: Sequence[float]) -> Chart:
    samples = np.asarray(latencies, dtype=float)
    if samples.size > MAX_LATENCIES:
        samples = np.sort(samples)[:: math.ceil(samples.size / MAX_LATENCIES)]
    p50, p95, p99 = np.percentile(samples, [50, 95, 99])

    def draw(figure: Figure) -> None:
        axes = figure.subplots()
        axes.hist(samples * 1000, bins=60, color=BLUE, alpha=0.85)
        for value, name in ((p50, "median"), (p95, "95%"), (p99, "99%")):
            axes.axvline(value * 1000, color=INK, linestyle="--", linewidth=1)
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
    return Chart(name="latency", title=title, svg=svg("latency", draw))


def verification_chart(states: Sequence[tuple[str, int]]) -> Chart:
    def draw(figure: Figure) -> None:
        axes = figure.subplots()
        names = [name for name, _ in states]
        counts = [count for _, count in states]
        bars = axes.barh(names, counts, color=[GREEN, RED, GREY, BLUE][: len(states)])
        axes.bar_label(bars, labels=[f"{c:,}" for c in counts], padding=3, fontsize=9)
        _requests_axis(axes)

    height = max(1.8, 0.45 * len(states) + 1.2)
    chart_svg = svg("verification", draw, height=height)
    return Chart(name="verification", title="Verification: read back after the run", svg=chart_svg)
