"""The HTML report's charts, each drawn by hand as inline SVG text.

svg: the shapes, the house style, label placement and the ``Chart`` each chart returns;
timeline: calls per window against the limit, and the refusals; counts: outcomes by code,
answer times and verification. Each chart takes plain data (store/report_data.py) and none
knows the page it goes on (cli/report_page.py). No plotting library, no JavaScript.

Why: docs/design/report.md.
"""
