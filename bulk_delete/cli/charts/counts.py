"""report data → count charts: outcomes by code, how long LeadSquared took, verification.

Stacked bars of each code's outcomes (one colour per outcome across every report, unforeseen
ones grey), a histogram of answer times with its median, 95th and 99th percentiles (sampled
past ``MAX_LATENCIES``, its long tail gathered in the last bar), and one bar per verification
state.

Why: docs/design/report.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Final

from markupsafe import Markup

from .svg import (
    BLUE,
    GREEN,
    GREY,
    GRID,
    INK,
    MUTED,
    RED,
    WIDTH,
    Chart,
    Label,
    Labels,
    Scale,
    legend,
    line,
    nice_ticks,
    number,
    rect,
    svg,
    text_width,
    tick_room,
    title,
    y_axis,
)

MAX_LATENCIES: Final = 200_000  # samples kept for the histogram (evenly spaced when more)
BINS: Final = 60
TAIL: Final = 2.0  # answer times past this many times the 99th percentile share the last bar
ROW, BAR = 30, 18  # px per row of a bar chart, and the bar's height in it
TOP, BOTTOM, HEIGHT = 34, 256, 300  # the histogram's plot, and its chart's height

_OUTCOME_COLOURS: Final = {
    "queued": GREEN,
    "failed": RED,
    "refused": "#e67e22",
    "invalid": "#8e44ad",
    "pending": GREY,
}
_STATE_COLOURS: Final = (GREEN, RED, GREY, BLUE)

Part = tuple[str, int, str]  # (what, how many, colour)


def outcome_chart(outcomes: Mapping[str, Mapping[str, int]]) -> Chart:
    kinds = sorted({kind for counts in outcomes.values() for kind in counts}, key=_outcome_order)
    rows = [
        (code, [(kind, counts.get(kind, 0), _colour(kind)) for kind in kinds])
        for code, counts in outcomes.items()
    ]
    items = [(kind, _colour(kind), False) for kind in kinds]
    total = sum(sum(counts.values()) for counts in outcomes.values())
    chart_svg = _bar_rows("outcomes", rows, items)
    return Chart(name="outcomes", title="Outcomes by code", svg=chart_svg, total=total)


def verification_chart(states: Sequence[tuple[str, int]]) -> Chart:
    rows = [
        (name, [(name, count, _STATE_COLOURS[n % len(_STATE_COLOURS)])])
        for n, (name, count) in enumerate(states)
    ]
    chart_svg = _bar_rows("verification", rows, [])
    return Chart(name="verification", title="Verification: read back after the run", svg=chart_svg)


def _colour(kind: str) -> str:
    return _OUTCOME_COLOURS.get(kind, GREY)


def _outcome_order(kind: str) -> tuple[int, str]:
    order = list(_OUTCOME_COLOURS)
    return (order.index(kind) if kind in order else len(order), kind)


def _bar_rows(
    name: str, rows: Sequence[tuple[str, Sequence[Part]]], items: Sequence[tuple[str, str, bool]]
) -> Markup:
    """Horizontal bars, one row each, read top down in the order given."""
    labels = Labels()
    height = TOP + ROW * len(rows) + 40
    names = [_cut(row_name) for row_name, _ in rows]
    totals = [sum(count for _, count, _ in parts) for _, parts in rows]
    left = max(text_width(n) for n in names) + 24
    room = max(text_width(number(t)) for t in totals) + 10
    ticks = nice_ticks(max(max(totals), 1))
    scale = Scale(0, ticks[-1], left, WIDTH - 16 - room)
    bottom = TOP + ROW * len(rows)
    parts = [legend(items, WIDTH - 16, TOP - 14, labels)] if items else []
    parts += _count_axis(scale, ticks, bottom, labels)
    for n, (row_name, (_, row_parts)) in enumerate(zip(names, rows, strict=True)):
        y = TOP + ROW * n + (ROW - BAR) / 2
        labels.place(Label(x=left - 8, y=y + BAR / 2 + 4, content=row_name, anchor="end"))
        parts += _stack(scale, y, row_parts, labels)
    title(left, height - 6, "requests", labels)
    return svg(name, height, [*parts, *labels.parts])


def _stack(scale: Scale, y: float, parts: Sequence[Part], labels: Labels) -> list[str]:
    """One bar of parts side by side, the total after it; a part's count inside it only when
    there are several parts and it fits."""
    drawn, x = [], scale.start
    shown = [part for part in parts if part[1] > 0]
    for what, count, colour in shown:
        width = scale(count) - scale(0)
        drawn.append(rect(x, y, width, BAR, colour, f"part {what}"))
        inside = Label(
            x=x + width / 2, y=y + BAR / 2 + 4, content=number(count), anchor="middle", fill="#fff"
        )
        if len(shown) > 1 and text_width(inside.content) + 8 <= width:
            labels.place(inside)
        x += width
    total = sum(count for _, count, _ in parts)
    labels.place(Label(x=x + 6, y=y + BAR / 2 + 4, content=number(total), bold=True))
    return drawn


def _count_axis(scale: Scale, ticks: Sequence[float], bottom: float, labels: Labels) -> list[str]:
    parts = []
    for tick in ticks:
        x = scale(tick)
        parts.append(line(x, TOP - 4, x, bottom, GRID))
        labels.place(Label(x=x, y=bottom + 16, content=number(tick), anchor="middle", fill=MUTED))
    return parts


def _cut(text: str, most: int = 28) -> str:
    return text if len(text) <= most else text[: most - 1] + "…"


# ---------------------------------------------------------------- answer times


def latency_chart(latencies: Sequence[float]) -> Chart:
    samples = sorted(latencies)
    if len(samples) > MAX_LATENCIES:
        samples = samples[:: math.ceil(len(samples) / MAX_LATENCIES)]
    marks = [(name, percentile(samples, p) * 1000) for name, p in _MARKS]
    slowest = samples[-1] * 1000
    upper = max(slowest if slowest <= marks[-1][1] * TAIL else marks[-1][1] * TAIL, 1.0)
    counts = _histogram([s * 1000 for s in samples], upper)
    ticks = nice_ticks(max(counts) * 1.1)
    left = tick_room(ticks)
    y_scale = Scale(0, ticks[-1], BOTTOM, TOP)
    x_scale = Scale(0, upper, left, WIDTH - 16)
    labels = Labels()
    parts = [y_axis(y_scale, ticks, left, WIDTH - 16, labels)]
    width = (x_scale.end - x_scale.start) / BINS
    parts += [
        rect(
            left + n * width,
            y_scale(count),
            max(width - 1, 0.6),
            y_scale(0) - y_scale(count),
            BLUE,
            "bin",
        )
        for n, count in enumerate(counts)
        if count
    ]
    parts += _marks(marks, x_scale, labels)
    parts += _ms_axis(x_scale, labels)
    tail = sum(1 for s in samples if s * 1000 > upper)
    axis = "milliseconds from call to answer"
    if tail:
        axis += f" (the last bar holds {tail:,} slower, up to {slowest:,.0f} ms)"
    title(left, HEIGHT - 8, axis, labels)
    title(left, TOP - 14, "calls", labels)
    chart_title = f"How long LeadSquared took to answer ({len(samples):,} calls)"
    return Chart(
        name="latency", title=chart_title, svg=svg("latency", HEIGHT, [*parts, *labels.parts])
    )


_MARKS: Final = (("median", 50.0), ("95%", 95.0), ("99%", 99.0))


def percentile(ordered: Sequence[float], p: float) -> float:
    """The ``p``th percentile of sorted values, interpolated between neighbours (as numpy's
    default and a spreadsheet's PERCENTILE do)."""
    k = (len(ordered) - 1) * p / 100
    low = math.floor(k)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def _histogram(values: Sequence[float], upper: float) -> list[int]:
    counts = [0] * BINS
    for value in values:
        counts[min(int(value / upper * BINS) if upper else 0, BINS - 1)] += 1
    return counts


def _marks(marks: Sequence[tuple[str, float]], scale: Scale, labels: Labels) -> list[str]:
    """A dashed line at each percentile and its name and value, each on the first free row."""
    parts = []
    for name, value in marks:
        x = scale(min(value, scale.high))
        parts.append(line(x, TOP - 4, x, BOTTOM, INK, dash="4 3"))
        text = f"{name} {value:,.0f} ms"
        anchor = "end" if x > WIDTH - 160 else "start"
        dx = -4 if anchor == "end" else 4
        label = Label(x=x + dx, y=0, content=text, anchor=anchor, halo=True)
        labels.first_row(label, (TOP + 12 + Labels.ROW * row for row in range(6)))
    return parts


def _ms_axis(scale: Scale, labels: Labels) -> list[str]:
    parts = [line(scale.start, BOTTOM, scale.end, BOTTOM, GREY)]
    for tick in nice_ticks(scale.high, 8):
        if tick > scale.high:
            break
        x = scale(tick)
        label = Label(x=x, y=BOTTOM + 16, content=number(tick), anchor="middle", fill=MUTED)
        if labels.place(label):
            parts.append(line(x, BOTTOM, x, BOTTOM + 4, GREY))
    return parts
