"""→ report_page: one self-contained HTML file that shows how a run went, to forward by email.

The page opens from an attachment with no network: no script, no stylesheet, font or image is
fetched. Charts are inline SVG (cli/charts/), the style sheet is inline, fonts are the
reader's own system stack.

This module assembles the page: which charts the data allows and in what order, and the
template around them. The template is Jinja2 with autoescaping, so a title, a headline or a
note taken from a sheet or a checkpoint's label shows as text and never as markup; only the
charts' own SVG is passed through as it is. The page is built from a plain ``ReportData``:
whoever reads the checkpoint fills it (``report_data`` does so from a ``CallLog``, in
store/report_data.py, re-exported here with the page's other names).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo

import jinja2

from ..files import replacing
from ..store.report_data import LimitStep, Night, ReportData, report_data
from .charts.counts import latency_chart, outcome_chart, verification_chart
from .charts.svg import Chart
from .charts.timeline import MAX_BARS, rate_chart, refusal_chart

__all__ = [
    "MAX_BARS",
    "Chart",
    "LimitStep",
    "Night",
    "ReportData",
    "charts",
    "render_report",
    "report_data",
    "write_report",
]


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
        drawn.append(rate_chart(data))
        if any(data.refusals):  # an empty refusal chart reads as a chart that failed to draw
            drawn.append(refusal_chart(data))
    if data.outcomes:
        drawn.append(outcome_chart(data.outcomes))
    if data.latencies:
        drawn.append(latency_chart(data.latencies))
    if data.verification:
        drawn.append(verification_chart(data.verification))
    return drawn


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
