"""Cells as people type them into a lead sheet (GUIDs half right, codes with stray separators,
dates in every shape) and plan options to read them with: what the generated sheets of the
column-by-column loader's tests are drawn from."""

from __future__ import annotations

from typing import Any

LEADS = [f"3aee22bd-8419-422a-8242-c510df9af{n:03d}" for n in range(6)]
LEAD_CELLS = [
    *LEADS,
    *LEADS,
    LEADS[0].upper(),
    f" {LEADS[1]} ",  # spaces around: valid, on the row-by-row path
    LEADS[2].replace("-", ""),
    LEADS[3][:-1] + "g",
    LEADS[4][:-1],
    LEADS[5] + "0",
    "é" + LEADS[0][1:],
    "",
    "#N/A",
]
CODE_CELLS = [
    "201",
    "202;203",
    "201.0",
    " 204 ",
    "205,206,207",
    "",
    "abc",
    "0",
    "3000000000",
    "7.5",
]
DATE_CELLS = [
    "",
    "2024-01-01",
    "2024-02-01 10:00",
    "2024-02-01T10:00:00+05:30",
    "2024-02-01 10:00:00Z",
    "2023-12-31 23:59:59",
    "2024-13-01",
    "01/02/2024",
    "13.01.2024 14:30",
    "2024/1/31",
    "0999-01-01",
    "  ",
]
HOOK_CELLS = ["", "", "https://hooks.example/x", "ftp://x", "https://user:pw@hooks.example/x"]
OPTIONS: list[dict[str, Any]] = [  # each date order: the cells written in the others are invalid
    {"date_order": "DMY"},
    {"codes": ("999",), "from_date": "2024-01-01", "max_codes_per_request": 2, "date_order": "MDY"},
    {
        "to_date": "2024-12-31",
        "tz": "Asia/Kolkata",
        "webhook": "https://hooks.example/y",
        "date_order": "YMD",
    },
]
