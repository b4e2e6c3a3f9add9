"""nights → chart: a job's requests and activities, night by night, in date order.

One bar per night of the requests its plan held (every job's nights of that date added up),
and beside it, where the listing counted them, the activities found to delete. A year of
nights is 365 bars: each is as wide as the plot allows (at least a pixel, and without the gap
between bars past a few dozen nights). Dates are written under the axis only as often as they
fit (``Labels`` drops a date that would touch the one before), first and last kept.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Final

from ...store.report_data import Night
from . import svg as draw

HEIGHT: Final = 300
TOP, BOTTOM = 34, HEIGHT - 44


def nights_chart(nights: Sequence[Night]) -> draw.Chart:
    """Requests and activities per night (nights of several jobs on one date added up)."""
    dates, requests, activities = _per_date(nights)
    labels = draw.Labels()
    ticks = draw.nice_ticks(max([*requests, *activities, 1]))
    scale = draw.Scale(0, ticks[-1], BOTTOM, TOP)
    left = draw.tick_room(ticks)
    right = draw.WIDTH - 16
    slot = (right - left) / len(dates)
    counted = any(activities)
    parts = [draw.y_axis(scale, ticks, left, right, labels)]
    items = [("requests", draw.BLUE, False)] + (
        [("activities", draw.GREEN, False)] if counted else []
    )
    parts.append(draw.legend(items, right, TOP - 14, labels))
    for n in range(len(dates)):
        parts += _bars(
            left + n * slot, slot, requests[n], activities[n] if counted else None, scale
        )
    parts.append(draw.line(left, BOTTOM, right, BOTTOM, draw.MUTED))
    _date_axis(dates, left, slot, labels)
    draw.title(left, TOP - 14, "per night", labels)
    chart_svg = draw.svg("nights", HEIGHT, [*parts, *labels.parts])
    return draw.Chart(
        name="nights", title="Requests and activities per night", svg=chart_svg, total=sum(requests)
    )


def _per_date(nights: Sequence[Night]) -> tuple[list[dt.date], list[int], list[int]]:
    by: dict[dt.date, list[int]] = {}
    for night in nights:
        both = by.setdefault(night.date, [0, 0])
        both[0] += night.requests
        both[1] += night.activities or 0
    dates = sorted(by)
    return dates, [by[day][0] for day in dates], [by[day][1] for day in dates]


def _bars(
    x: float, slot: float, requests: int, activities: int | None, scale: draw.Scale
) -> list[str]:
    """A night's bars in its slot: requests, and activities beside them when counted."""
    gap = slot * 0.2 if slot >= 6 else 0.0
    bars = [(requests, draw.BLUE, "requests")]
    if activities is not None:
        bars.append((activities, draw.GREEN, "activities"))
    width = max((slot - gap) / len(bars), 0.5)
    drawn = []
    for n, (value, colour, css) in enumerate(bars):
        top = scale(value)
        drawn.append(draw.rect(x + gap / 2 + n * width, top, width, BOTTOM - top, colour, css))
    return drawn


def _date_axis(dates: Sequence[dt.date], left: float, slot: float, labels: draw.Labels) -> None:
    """Dates under the bars, as many as fit: the first and last, then evenly between."""
    order = [0, len(dates) - 1, *range(1, len(dates) - 1)] if len(dates) > 1 else [0]
    last = len(dates) - 1
    for n in order:
        x, anchor = left + (n + 0.5) * slot, "middle"
        if n == 0 and last:  # the ends inside the chart, whatever the slot
            x, anchor = left, "start"
        elif n == last and last:
            x, anchor = left + len(dates) * slot, "end"
        labels.place(
            draw.Label(
                x=x, y=BOTTOM + 16, content=dates[n].isoformat(), anchor=anchor, fill=draw.MUTED
            )
        )
