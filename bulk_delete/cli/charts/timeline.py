"""report data → timeline charts: calls per window against the limit, and the refusals (429).

The rate is counted in the limit's own window (5 s at 25/5s), so a run that kept its limit
never draws above the line; a long run's bars (at most ``MAX_BARS``) each show their busiest
window, and refusal bars sum theirs. Silences over ``IDLE`` seconds are cut from the axis and
marked. Times are in the run's own zone (``ReportData.tz``).

Why: docs/design/report.md.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final
from zoneinfo import ZoneInfo

from ...store.report_data import LimitStep, ReportData
from ..summary_text import duration
from .svg import (
    BLUE,
    GREY,
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
    rect,
    svg,
    tick_room,
    title,
    y_axis,
)

DEFAULT_WINDOW: Final = 5  # seconds: LeadSquared counts its limits per 5 s
IDLE: Final = 300  # seconds without a call that are cut from the time axis
MAX_CUTS: Final = 6  # the longest silences cut; shorter ones stay on the axis
MAX_BARS: Final = 600  # bars drawn; a night of 100,000 calls stays a small page
GAP: Final = 34  # px of axis for a cut silence
MIN_SPAN: Final = 60  # px for the shortest stretch of calls
HEIGHT: Final = 300
TOP, BOTTOM = 34, HEIGHT - 44  # the plot's top and bottom, in px
_TICK_STEPS: Final = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800)
_TICK_STEPS_LONG: Final = (21600, 43200, 86400)


@dataclass(frozen=True)
class Stretch:
    """A stretch of calls: epoch seconds ``start``…``end``, drawn from ``left`` to ``right``."""

    start: int
    end: int
    left: float = 0.0
    right: float = 0.0

    def x(self, moment: float) -> float:
        return self.left + (moment - self.start) / (self.end - self.start) * (
            self.right - self.left
        )


@dataclass(frozen=True)
class Bar:
    start: int  # epoch seconds
    end: int
    calls: int  # in the busiest window of the bar
    refusals: int  # in all its windows


@dataclass(frozen=True)
class Timeline:
    window: int  # seconds a bar's window spans
    group: int  # windows per bar
    spans: list[Stretch]
    bars: list[Bar]

    def span_at(self, moment: float) -> Stretch:
        starts = [span.start for span in self.spans]
        return self.spans[max(0, bisect.bisect_right(starts, moment) - 1)]

    def x(self, moment: float) -> float:
        span = self.span_at(moment)
        return span.x(min(max(moment, span.start), span.end))

    def per(self) -> str:
        """How long a bar is, as the axis titles say it."""
        return _seconds_text(self.window * self.group)


def timeline(data: ReportData) -> Timeline:
    """The calls in windows and bars, silences cut (not yet laid out: see ``laid_out``)."""
    window = rate_window_of(data.limits)
    counts = _windows(data, window)
    indexes = sorted(counts)
    runs = _stretches(indexes, window)
    group = max(1, math.ceil(sum(last - first + 1 for first, last in runs) / MAX_BARS))
    bars = [bar for first, last in runs for bar in _bars(counts, first, last, window, group)]
    spans = [Stretch(first * window, (last + 1) * window) for first, last in runs]
    return Timeline(window, group, spans, bars)


def rate_window_of(limits: Sequence[LimitStep]) -> int:
    """The limit's window in whole seconds (its first known period), else LeadSquared's 5 s."""
    period = next((step.period for step in limits if step.period), None)
    return max(1, round(period)) if period else DEFAULT_WINDOW


def _windows(data: ReportData, window: int) -> dict[int, tuple[int, int]]:
    """(calls, refusals) in each window that saw a call, by the window's index."""
    counts: dict[int, tuple[int, int]] = {}
    for second, calls, refused in zip(data.seconds, data.calls, data.refusals, strict=True):
        index = second // window
        before = counts.get(index, (0, 0))
        counts[index] = (before[0] + calls, before[1] + refused)
    return counts


def _stretches(indexes: Sequence[int], window: int) -> list[tuple[int, int]]:
    """First and last window index of each stretch of calls, split at the longest silences."""
    silences = sorted(
        (later - earlier, n)
        for n, (earlier, later) in enumerate(itertools.pairwise(indexes), 1)
        if (later - earlier - 1) * window > IDLE
    )
    cuts = sorted(n for _, n in silences[-MAX_CUTS:])
    bounds = [0, *cuts, len(indexes)]
    return [(indexes[a], indexes[b - 1]) for a, b in itertools.pairwise(bounds)]


def _bars(
    counts: dict[int, tuple[int, int]], first: int, last: int, window: int, group: int
) -> list[Bar]:
    bars = []
    for start in range(first, last + 1, group):
        windows = [
            counts.get(index, (0, 0)) for index in range(start, min(start + group, last + 1))
        ]
        busiest = max(calls for calls, _ in windows)
        refused = sum(refusals for _, refusals in windows)
        end = (start + len(windows)) * window
        bars.append(Bar(start * window, end, busiest, refused))
    return bars


def laid_out(line_of: Timeline, left: float, right: float = WIDTH - 16) -> Timeline:
    """Pixels for each stretch: by its length, at least MIN_SPAN, GAP between stretches."""
    spans = line_of.spans
    room = right - left - GAP * (len(spans) - 1) - MIN_SPAN * len(spans)
    seconds = sum(span.end - span.start for span in spans)
    placed, x = [], left
    for span in spans:
        width = MIN_SPAN + room * (span.end - span.start) / seconds
        placed.append(Stretch(span.start, span.end, x, x + width))
        x += width + GAP
    return Timeline(line_of.window, line_of.group, placed, line_of.bars)


def _seconds_text(seconds: int) -> str:
    return f"{seconds} s" if seconds < 60 or seconds % 60 else f"{seconds // 60} min"


# ---------------------------------------------------------------- the charts


def rate_chart(data: ReportData) -> Chart:
    line_of = timeline(data)
    limits = _limit_lines(data.limits, line_of.window)
    peak = max([*(bar.calls for bar in line_of.bars), *(limit.calls for limit in limits)])
    ticks = nice_ticks(peak * 1.12)
    line_of = laid_out(line_of, tick_room(ticks))
    scale = Scale(0, ticks[-1], BOTTOM, TOP)
    labels = Labels()
    parts = [_frame(line_of, ticks, scale, labels)]
    parts += [_bar(line_of, bar, bar.calls, scale, BLUE, "calls") for bar in line_of.bars]
    parts += _limits(line_of, limits, scale, labels)
    per = _seconds_text(line_of.window)
    what = f"calls per {per} window"
    if line_of.group > 1:
        what = f"calls in the busiest {per} window of each {line_of.per()}"
    title(line_of.spans[0].left, TOP - 14, what, labels)
    items = [(f"calls per {per}", BLUE, False), ("limit", RED, True)]
    parts.append(legend(items if limits else items[:1], WIDTH - 16, TOP - 14, labels))
    parts += _time_axis(line_of, data.tz, labels)
    chart_svg = svg("rate", HEIGHT, [*parts, *labels.parts])
    return Chart(name="rate", title=f"Calls per {per} window against the limit", svg=chart_svg)


def refusal_chart(data: ReportData) -> Chart:
    total = sum(data.refusals)
    line_of = timeline(data)
    ticks = nice_ticks(max(bar.refusals for bar in line_of.bars) * 1.1)
    line_of = laid_out(line_of, tick_room(ticks))
    scale = Scale(0, ticks[-1], BOTTOM, TOP)
    labels = Labels()
    parts = [_frame(line_of, ticks, scale, labels)]
    parts += [_bar(line_of, bar, bar.refusals, scale, RED, "refusals") for bar in line_of.bars]
    title(line_of.spans[0].left, TOP - 14, f"refusals (429) per {line_of.per()}", labels)
    parts += _time_axis(line_of, data.tz, labels)
    chart_svg = svg("refusals", HEIGHT, [*parts, *labels.parts])
    title_text = f"Refusals (HTTP 429): {total:,} in total"
    return Chart(name="refusals", title=title_text, svg=chart_svg, total=total)


def _bar(line_of: Timeline, bar: Bar, value: int, scale: Scale, colour: str, css: str) -> str:
    if not value:
        return ""
    left, right = line_of.x(bar.start), line_of.x(bar.end)
    width = max(right - left, 0.6)  # at least visible …
    left = min(left, line_of.span_at(bar.start).right - width)  # … and inside its stretch
    top = scale(value)
    return rect(left, top, width, scale(0) - top, colour, css)


def _frame(line_of: Timeline, ticks: Sequence[float], scale: Scale, labels: Labels) -> str:
    """The grid and its values, and each cut silence as a grey band with its length."""
    parts = [y_axis(scale, ticks, line_of.spans[0].left, line_of.spans[-1].right, labels)]
    for before, after in itertools.pairwise(line_of.spans):
        parts.append(rect(before.right + 4, TOP, GAP - 8, BOTTOM - TOP, "#f1f3f6", "idle"))
        text = f"idle {duration(after.start - before.end)}"
        middle = (before.right + after.left) / 2
        label = Label(x=middle, y=0, content=text, anchor="middle", fill=MUTED, halo=True)
        labels.first_row(label, (TOP + 14 + Labels.ROW * n for n in range(6)))
    return "".join(parts)


@dataclass(frozen=True)
class _Limit:
    since: float
    until: float
    calls: float  # per window
    label: str


def _limit_lines(steps: Sequence[LimitStep], window: int) -> list[_Limit]:
    """Each step with a limit, in calls per window; the last runs to the end, and the first
    from the start of its window (the limit held before the call that told it: the window's
    bar is drawn whole)."""
    lines: list[_Limit] = []
    for n, step in enumerate(steps):
        if step.calls is None or not step.period:
            continue
        since = step.since if lines else step.since // window * window
        until = steps[n + 1].since if n + 1 < len(steps) else math.inf
        lines.append(_Limit(since, until, step.calls * window / step.period, step.label))
    return lines


def _limits(line_of: Timeline, limits: list[_Limit], scale: Scale, labels: Labels) -> list[str]:
    """The limit per window as dashed red lines, broken at the silences, each step named."""
    parts = []
    for limit in limits:
        y = scale(limit.calls)
        for span in line_of.spans:
            start, end = max(limit.since, span.start), min(limit.until, span.end)
            if start < end:
                parts.append(
                    line(span.x(start), y, span.x(end), y, RED, width=1.5, dash="6 4", css="limit")
                )
        _name_limit(line_of.x(limit.since), y, limit.label, labels)
    return parts


def _name_limit(x: float, y: float, text: str, labels: Labels) -> None:
    """A step's name where it starts: above its line if there is room, else below."""
    end = x > WIDTH - 200
    label = Label(
        x=x - 4 if end else x + 4,
        y=y,
        content=text,
        anchor="end" if end else "start",
        fill=RED,
        halo=True,
    )
    above = (y - 5 - Labels.ROW * n for n in range(4))
    below = (y + 15 + Labels.ROW * n for n in range(3))
    labels.first_row(label, [*above, *below])


def _time_axis(line_of: Timeline, tz: str, labels: Labels) -> list[str]:
    """The axis under each stretch, ticks in the run's zone, and the axis title."""
    zone = ZoneInfo(tz)
    parts = []
    last_day: dt.date | None = None
    for span in line_of.spans:
        parts.append(line(span.left, BOTTOM, span.right, BOTTOM, GREY))
        step = _tick_step(span)
        for moment in _ticks(span, step, zone):
            local = dt.datetime.fromtimestamp(moment, zone)
            shown = local.strftime("%H:%M:%S" if step < 60 else "%H:%M")
            if local.date() != last_day:
                shown = local.strftime("%m-%d ") + shown if last_day else shown
                last_day = local.date()
            x = span.x(moment)
            if labels.place(Label(x=x, y=BOTTOM + 16, content=shown, anchor="middle", fill=MUTED)):
                parts.append(line(x, BOTTOM, x, BOTTOM + 4, GREY))
    first = dt.datetime.fromtimestamp(line_of.spans[0].start, zone)
    axis = f"time ({tz}), from {first:%Y-%m-%d %H:%M}"
    labels.place(
        Label(
            x=(line_of.spans[0].left + WIDTH - 16) / 2,
            y=HEIGHT - 8,
            content=axis,
            anchor="middle",
            fill=MUTED,
        )
    )
    return parts


def _tick_step(span: Stretch) -> int:
    """The shortest round step whose ticks stand 90 px apart or more."""
    per_px = (span.end - span.start) / max(span.right - span.left, 1)
    for step in (*_TICK_STEPS, *_TICK_STEPS_LONG):
        if step / per_px >= 90:
            return step
    return 86400 * math.ceil(90 * per_px / 86400)


def _ticks(span: Stretch, step: int, zone: ZoneInfo) -> list[int]:
    """Round local times (every ``step`` seconds) within the span."""
    offset = int(
        (dt.datetime.fromtimestamp(span.start, zone).utcoffset() or dt.timedelta()).total_seconds()
    )
    first = math.ceil((span.start + offset) / step) * step - offset
    return list(range(first, span.end + 1, step))
