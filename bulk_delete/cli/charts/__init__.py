"""The HTML report's charts, each drawn by matplotlib as inline SVG text.

matplotlib (Agg backend, SVG output), not Vega-Lite: Vega-Lite draws in the browser with
JavaScript (vega, vega-lite and vega-embed inlined, ~1 MB, and scripts some mail clients and
viewers refuse), or needs vl-convert's bundled Deno engine to render SVG ahead of time.
matplotlib renders static SVG in-process from the data we already hold, is a wheel on every
platform, and its text stays text (``svg.fonttype: none``), so the SVGs stay small.

svg: a figure as SVG with nothing that points outside, the house style and the ``Chart`` each
chart returns; timeline: calls and refusals over time, downsampled; counts: outcomes by code,
answer times and verification. Each chart takes plain data (store/report_data.py) and none
knows the page it goes on (cli/html_report.py).
"""
