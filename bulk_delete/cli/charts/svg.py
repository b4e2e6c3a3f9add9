"""shapes → svg: the few shapes the report's charts draw, as inline SVG text, in one style.

Plain ``rect``, ``line`` and ``text`` elements, nothing that points outside; every text is
escaped here. Labels never overlap: a chart places its texts through one ``Labels``, which takes
the first free candidate place, measured with ``text_width`` (an upper bound in DejaVu Sans).

Why: docs/design/report.md.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape
from typing import Final

from markupsafe import Markup

INK, BLUE, RED, GREY, GREEN = "#1d2733", "#2f6db5", "#c0392b", "#8795a1", "#2e8b57"
MUTED, GRID = "#5b6875", "#e3e8ee"
WIDTH: Final = 900  # the page draws charts 900 px wide (its column, less the figure's padding)
FONT: Final = 11  # px, every text of a chart
FAMILY: Final = 'system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif'

_NARROW: Final = frozenset("fijlrtI.,:;'|()/-[] ")
_WIDE: Final = frozenset("mwMW%—≥+")


@dataclass(frozen=True, kw_only=True)
class Chart:
    """One chart of the page: its SVG, and the name and title the page shows it under."""

    name: str
    title: str
    svg: Markup
    total: int | None = None  # what the chart counts, written in data-total


def svg(name: str, height: float, parts: Iterable[str]) -> Markup:
    """A chart as one ``<svg>`` element (an HTML page gives inline SVG its namespace)."""
    body = "".join(parts)
    return Markup(  # noqa: S704 - built here from escaped text and numbers only
        f'<svg role="img" aria-label="{escape(name)} chart" viewBox="0 0 {WIDTH} {height:g}" '
        f'width="{WIDTH}" height="{height:g}" font-family="{escape(FAMILY)}" '
        f'font-size="{FONT}" fill="{INK}">{body}</svg>'
    )


def text_width(content: str, size: float = FONT, bold: bool = False) -> float:
    """An upper bound on the width of ``content`` at ``size`` px."""
    ems = sum(
        0.42 if c in _NARROW else 1.0 if c in _WIDE else 0.8 if c.isupper() else 0.66
        for c in content
    )
    return ems * size * (1.1 if bold else 1.0)


@dataclass(frozen=True)
class Box:
    left: float
    top: float
    right: float
    bottom: float

    def meets(self, other: Box, pad: float) -> bool:
        return not (
            self.right + pad <= other.left
            or other.right + pad <= self.left
            or self.bottom + pad <= other.top
            or other.bottom + pad <= self.top
        )


@dataclass(frozen=True, kw_only=True)
class Label:
    """A text to place: at (x, y) on its baseline, anchored start, middle or end."""

    x: float
    y: float
    content: str
    anchor: str = "start"
    size: float = FONT
    fill: str = INK
    bold: bool = False
    halo: bool = False  # a white outline: legible over bars and lines
    css: str = ""

    def box(self) -> Box:
        width = text_width(self.content, self.size, self.bold)
        left = self.x - {"start": 0.0, "middle": width / 2, "end": width}[self.anchor]
        return Box(left, self.y - 0.95 * self.size, left + width, self.y + 0.3 * self.size)

    def svg(self) -> str:
        weight = ' font-weight="bold"' if self.bold else ""
        halo = ' stroke="#fff" stroke-width="3" paint-order="stroke"' if self.halo else ""
        css = f' class="{self.css}"' if self.css else ""
        return (
            f'<text x="{self.x:.1f}" y="{self.y:.1f}" text-anchor="{self.anchor}" '
            f'font-size="{self.size:g}" fill="{self.fill}"{weight}{halo}{css}>'
            f"{escape(self.content)}</text>"
        )


class Labels:
    """Every text of one chart, none over another."""

    PAD: Final = 3.0
    ROW: Final = 17.0  # px between the rows a label may take: a box's height and the pad

    def __init__(self) -> None:
        self._boxes: list[Box] = []
        self.parts: list[str] = []

    def free(self, label: Label) -> bool:
        """Clear of every label placed, and inside the chart (a tick's time at the right end
        would be cut by the chart's edge: "19:31:2")."""
        box = label.box()
        if box.left < 0 or box.right > WIDTH:
            return False
        return not any(box.meets(placed, self.PAD) for placed in self._boxes)

    def place(self, label: Label) -> bool:
        """Place it if its place is free; say whether it was."""
        if not self.free(label):
            return False
        self._boxes.append(label.box())
        self.parts.append(label.svg())
        return True

    def first_free(self, candidates: Sequence[Label]) -> Label | None:
        """Place the first candidate whose place is free; None when none is."""
        for label in candidates:
            if self.place(label):
                return label
        return None

    def first_row(self, label: Label, rows: Iterable[float]) -> Label | None:
        """Place ``label`` on the first of the baselines ``rows`` where it is free."""
        return self.first_free([dataclasses.replace(label, y=y) for y in rows])

    def keep(self, box: Box) -> None:
        """Hold a box no label may cover (a legend's swatch)."""
        self._boxes.append(box)


def rect(x: float, y: float, w: float, h: float, fill: str, css: str = "") -> str:
    cls = f' class="{css}"' if css else ""
    return f'<rect{cls} x="{x:.2f}" y="{y:.2f}" width="{w:.2f}" height="{h:.2f}" fill="{fill}"/>'


def line(
    x1: float,
    y1: float,
    x2: float,
    y2: float,
    stroke: str,
    *,
    width: float = 1.0,
    dash: str = "",
    css: str = "",
) -> str:
    dashed = f' stroke-dasharray="{dash}"' if dash else ""
    cls = f' class="{css}"' if css else ""
    return (
        f'<line{cls} x1="{x1:.2f}" y1="{y1:.2f}" x2="{x2:.2f}" y2="{y2:.2f}" stroke="{stroke}" '
        f'stroke-width="{width:g}"{dashed}/>'
    )


@dataclass(frozen=True)
class Scale:
    """A linear map from data (``low``…``high``) to pixels (``start``…``end``)."""

    low: float
    high: float
    start: float
    end: float

    def __call__(self, value: float) -> float:
        span = self.high - self.low or 1.0
        return self.start + (value - self.low) / span * (self.end - self.start)


def nice_ticks(high: float, count: int = 5) -> list[float]:
    """0 and round steps (1, 2 or 5 × 10^n) up to at least ``high``."""
    if high <= 0:
        return [0.0, 1.0]
    raw = high / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    if step < 1 and high >= 1:
        step = 1.0
    return [n * step for n in range(math.ceil(high / step - 1e-9) + 1)]


def number(value: float) -> str:
    """A count as the headline writes it: 12,345."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def y_axis(scale: Scale, ticks: Sequence[float], left: float, right: float, labels: Labels) -> str:
    """Grid lines across the plot and their values at the left."""
    parts = []
    for tick in ticks:
        y = scale(tick)
        parts.append(line(left, y, right, y, GRID))
        labels.place(Label(x=left - 6, y=y + 4, content=number(tick), anchor="end", fill=MUTED))
    return "".join(parts)


def tick_room(ticks: Sequence[float]) -> float:
    """Room at the left of a plot for its widest tick value."""
    return max(text_width(number(t)) for t in ticks) + 22


def legend(items: Sequence[tuple[str, str, bool]], right: float, y: float, labels: Labels) -> str:
    """A row of (name, colour, dashed line or box) ending at ``right``, on baseline ``y``."""
    parts = []
    x = right
    for name, colour, dashed in reversed(items):
        x -= text_width(name)  # (from its start: the swatch sits by the text in any font)
        label = Label(x=x, y=y, content=name, fill=MUTED)
        x -= 5
        swatch = (
            line(x - 14, y - 4, x, y - 4, colour, width=2, dash="5 3")
            if dashed
            else rect(x - 11, y - 10, 11, 11, colour)
        )
        labels.place(label)
        labels.keep(Box(x - 14, y - 11, x, y + 1))
        parts.append(swatch)
        x -= 14 + 16
    return "".join(parts)


def title(x: float, y: float, content: str, labels: Labels) -> None:
    """An axis's title, written across above it (a long one reads better than turned)."""
    labels.place(Label(x=x, y=y, content=content, fill=MUTED))
