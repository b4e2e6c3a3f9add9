"""figure → svg: a matplotlib figure as inline SVG text that fetches nothing, in one style.

The page is opened from a mail attachment with no network, so the SVG keeps nothing that
points outside: the XML prolog, the DOCTYPE (which names a URL), the metadata block and the
namespace declarations are dropped. An HTML parser gives inline ``<svg>`` its namespace by
itself, and a page with no ``http`` in it at all is easy to check.

Text stays text (``svg.fonttype: none``): small files, in the page's own fonts. The ids
matplotlib writes are salted with the chart's name, so two charts on one page never share a
clip path, and the same data draws the same bytes (no date in the metadata either).
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, cast

import matplotlib
from markupsafe import Markup
from matplotlib.figure import Figure

# No window, no display: figures are drawn off screen (we never import pyplot, and SVG output
# goes through its own backend; Agg is named so nothing ever tries a GUI).
matplotlib.use("Agg")

INK, BLUE, RED, GREY, GREEN = "#1d2733", "#2f6db5", "#c0392b", "#8795a1", "#2e8b57"

_STYLE: Final[dict[str, Any]] = {
    "svg.fonttype": "none",  # text as text: small files, the page's own fonts
    "font.family": "sans-serif",
    "font.size": 10,
    "axes.edgecolor": GREY,
    "axes.labelcolor": INK,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e3e8ee",
    "xtick.color": INK,
    "ytick.color": INK,
}

_SVG_NOISE: Final = (
    re.compile(r"<\?xml[^>]*\?>\s*"),
    re.compile(r"<!DOCTYPE[^>]*>\s*"),
    re.compile(r"<metadata>.*?</metadata>\s*", re.DOTALL),
    re.compile(r'\s+xmlns(?::\w+)?="[^"]*"'),
)


@dataclass(frozen=True, kw_only=True)
class Chart:
    """One chart of the page: its SVG, and the name and title the page shows it under."""

    name: str
    title: str
    svg: Markup
    total: int | None = None  # what the chart counts, written in data-total


def svg(name: str, draw: Callable[[Figure], None], height: float = 3.2) -> Markup:
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
