"""→ report_page: one self-contained HTML file that shows how a run went, to forward by email.

``render_report(data)`` / ``write_report(path, data)`` assemble the page from a ``ReportData``:
the charts the data allows (``charts``), inline SVG and style, nothing fetched, in a Jinja2
template with autoescaping (only the charts' SVG passes through as it is). ``report_data`` is
re-exported here with the page's other names.

Why: docs/design/report.md.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo

import jinja2
from markupsafe import Markup, escape

from ..errors import OptionError
from ..files import replacing, storage_cause
from ..store.reasons import ROWS_SHOWN, Reason
from ..store.report_data import LimitStep, Night, ReportData, Section, report_data
from .charts.counts import latency_chart, outcome_chart, verification_chart
from .charts.nights import nights_chart
from .charts.svg import Chart
from .charts.timeline import MAX_BARS, rate_chart, refusal_chart

__all__ = [
    "MAX_BARS",
    "Chart",
    "LimitStep",
    "Night",
    "ReportData",
    "Section",
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
        shown=ROWS_SHOWN,
        generated=_local_text(data.generated_at, data.tz) if data.generated_at else "",
    )


def write_report(path: Path, data: ReportData) -> None:
    """The page at ``path``: 0600, whole or not at all."""
    page = render_report(data)
    try:
        with replacing(path, "w", encoding="utf-8") as handle:
            handle.write(page)
    except OSError as error:  # a full disk, a folder we may not write: said as export says it
        raise OptionError(
            f"cannot write {path}: {storage_cause(error) or error.strerror}"
        ) from None


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
    if data.nights:
        drawn.append(nights_chart(data.nights))
    return drawn


def with_command(value: str) -> Markup:
    """A fact as text, with the command in it (``bulk-delete …``) set as code to copy."""
    before, found, command = value.partition("bulk-delete ")
    if not found or (before and not before.endswith(": ")):
        return escape(value)
    return escape(before) + Markup("<code>%s</code>") % (found + command)


def first_rows(group: Reason) -> str:
    """A reason's first sheet rows (or leads), then how many more."""
    shown = [str(row) for row in group.rows] or list(group.leads)
    more = (group.of or group.count) - len(shown) if group.rows or group.leads else 0
    return ", ".join(shown) + (f" … and {more:,} more" if more > 0 else "")


def _local_text(moment: dt.datetime, tz: str) -> str:
    return moment.astimezone(ZoneInfo(tz)).strftime(f"%Y-%m-%d %H:%M ({tz})")


_ENVIRONMENT: Final = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
_ENVIRONMENT.globals.update(with_command=with_command, first_rows=first_rows)
_TEMPLATE: Final = _ENVIRONMENT.from_string(
    """{% macro facts(section) -%}
<section class="facts {{ section.tone }}" data-section="{{ section.title }}">
<h2>{{ section.title }}</h2>
<dl>{% for label, value in section.facts %}
<dt>{{ label }}</dt><dd>{{ with_command(value) }}</dd>{% endfor %}</dl>
</section>
{%- endmacro %}
{% macro reasons(name, groups, what, where="Sheet rows") -%}
<table class="reasons" data-reasons="{{ name }}">
<thead><tr><th>Reason</th><th>{{ what }}</th>
<th>{% if where == "Leads" %}Leads, the first {{ shown }}{% else -%}
Sheet rows, the first {{ shown }} (leads where there is no row){% endif %}</th></tr></thead>
<tbody>{% for group in groups %}
<tr><td class="why">{{ group.reason }}
{%- if group.example %}<br><small>e.g. {{ group.example }}</small>{% endif %}
{%- if group.transient %}<br><small>a rerun
{{- " sends" if where != "Leads" else " posts" }} these again</small>{% endif %}</td>
<td>{{ "{:,}".format(group.count) }}</td>
<td class="rows">{{ first_rows(group) }}</td></tr>
{% endfor %}</tbody>
</table>
{%- endmacro %}
<!DOCTYPE html>
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
  table.nights td:nth-child(2), table.nights th:nth-child(2) { text-align: left; }
  h2 { font-size: 18px; margin: 28px 0 10px; }
  footer { color: #5b6875; font-size: 12px; margin-top: 28px; }
  .account { color: #1d2733; margin: 0 0 2px; font-weight: 600; }
  section.facts { background: #fff; border-radius: 8px; margin: 0 0 16px; padding: 12px 16px;
                  box-shadow: 0 1px 2px rgba(0,0,0,.08); border-left: 4px solid #c9d2dc; }
  section.facts.good { border-left-color: #2e8b57; }
  section.facts.warn { border-left-color: #e67e22; }
  section.facts.bad { border-left-color: #c0392b; }
  section.facts h2 { margin: 0 0 8px; }
  dl { display: grid; grid-template-columns: minmax(140px, max-content) 1fr; gap: 4px 16px;
       margin: 0; }
  dt { color: #5b6875; }
  dd { margin: 0; overflow-wrap: anywhere; }
  code { font: 13px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
         background: #eef2f6; padding: 1px 4px; border-radius: 4px; }
  table.reasons td { vertical-align: top; }
  table.reasons td.rows { text-align: left; font-size: 13px; color: #3b4753; }
  table.reasons td.why { text-align: left; }
</style>
</head>
<body>
<main>
<h1>{{ data.title }}</h1>
{% if data.account %}<p class="account">{{ data.account }}</p>{% endif %}
{% if generated %}<p class="when">Report made {{ generated }}</p>{% endif %}
{% for section in data.purged %}{{ facts(section) }}{% endfor %}
<section class="headline">
{% for label, value in data.headline %}
  <div class="number"><span class="value">{{ value }}</span>
  <span class="label">{{ label }}</span></div>
{% endfor %}
</section>
{% if data.notes %}<ul class="notes">{% for note in data.notes %}<li>{{ note }}</li>
{% endfor %}</ul>{% endif %}
{% if data.failures %}
<h2>Failed {{ data.failed }}, by reason</h2>
{% if data.failed == "requests" %}{{ reasons("failures", data.failures, "Requests") }}
{%- else %}{{ reasons("failures", data.failures, data.failed.capitalize(), "Leads") }}{% endif %}
{% if data.more_failures %}<p>… and {{ "{:,}".format(data.more_failures) }} more reason(s):
see the results workbook.</p>{% endif %}
{% endif %}
{% if data.invalid %}
<h2>Invalid rows (never sent), by reason</h2>
{{ reasons("invalid", data.invalid, "Rows") }}
{% endif %}
{% for section in data.checked %}{{ facts(section) }}{% endfor %}
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
<thead><tr><th>Night</th><th>Job</th><th>Requests</th><th>Activities</th><th>Queued</th>
<th>Refused (429)</th><th>Verified</th><th>Left</th><th>Ended</th></tr></thead>
<tbody>
{% for night in data.nights %}
<tr><td>{{ night.date.isoformat() }}</td><td>{{ night.job }}</td>
<td>{{ "{:,}".format(night.requests) }}</td>
<td>{{ "—" if night.activities is none else "{:,}".format(night.activities) }}</td>
<td>{{ "{:,}".format(night.queued) }}</td><td>{{ "{:,}".format(night.refused) }}</td>
<td>{{ "—" if night.verified is none else "{:,}".format(night.verified) }}</td>
<td>{{ "{:,}".format(night.left) }}</td><td>{{ night.ended }}</td></tr>
{% endfor %}
</tbody>
</table>
{% endif %}
<footer>{{ data.footer }} Times are in {{ data.tz }}.</footer>
</main>
</body>
</html>
"""
)
