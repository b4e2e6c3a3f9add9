"""The HTML report's charts, each drawn by hand as inline SVG text.

No plotting library: a chart here is a few dozen rects, lines and texts, and drawing them by
hand keeps the report free of numpy and matplotlib (whose import alone took longer than the
rest of `report`), keeps every label where a test can find it, and lets the charts follow the
report's own rules: the rate in the limit's own window, silences cut from the time axis,
labels that never overlap. There is still no JavaScript and nothing fetched: the page opens
from a mail attachment.

svg: the shapes, the house style, label placement and the ``Chart`` each chart returns;
timeline: calls per window against the limit, and the refusals; counts: outcomes by code,
answer times and verification. Each chart takes plain data (store/report_data.py) and none
knows the page it goes on (cli/report_page.py).
"""
