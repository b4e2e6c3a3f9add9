"""Regenerates the sample sheets (deterministic). Run: .venv/bin/python sample_inputs/generate.py

leads.csv  - wide layout: one row per lead, several codes in one cell, dates in local time.
leads.xlsx - long layout: one code per row, the lead repeated; a second sheet 'Notes'.
lead_ids.csv - only a ProspectId column, for the scheduled jobs in jobs/.
Both hold a few bad rows on purpose, so the preview shows what an invalid row looks like.
"""

from __future__ import annotations

import csv
import datetime as dt
import random
import uuid
from pathlib import Path

import openpyxl

HERE = Path(__file__).parent
rng = random.Random(2026)


def guid() -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def wide() -> None:
    rows: list[list[str]] = []
    for n in range(36):
        codes = rng.choice(["201", "201, 202", "203", "201;203", "202|204"])
        start = dt.date(2025, rng.randint(1, 6), rng.randint(1, 28))
        end = start + dt.timedelta(days=rng.randint(7, 90))
        rows.append([guid(), codes, start.isoformat(), end.isoformat(), "", f"Lead {n + 1}"])
    rows[3][4] = "https://hooks.example.com/leadsquared/deletes"
    rows[5][2] = ""  # no FromDate: everything up to ToDate
    rows[5][3] = "2025-03-31 18:00:00"
    rows[7][2] = rows[7][3] = ""  # no dates at all: the whole history of those codes
    rows[9][0] = rows[9][0].upper()  # upper-case GUIDs are fine
    rows.insert(12, ["", "", "", "", "", ""])  # a blank line
    rows[15][0] = "not-a-guid"
    rows[18][2], rows[18][3] = "2025-05-01", "2025-04-01"  # FromDate after ToDate
    rows[21][1] = "abc"
    rows[24][2] = "2025-02-30"  # a date the calendar does not have
    rows[27][1] = "12"  # a system activity code: LeadSquared refuses it (the emulator too)
    rows.append([rows[0][0], "204", rows[0][2], rows[0][3], "", "Lead 1 again"])  # coalesces
    with (HERE / "leads.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["ProspectId", "ActivityEventList", "FromDate", "ToDate", "StatusWebhookURL", "Name"]
        )
        writer.writerows(rows)


def long() -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "Leads"
    sheet.append(["Lead ID", "Activity Code", "From", "To"])
    for _ in range(24):
        lead = guid()
        start = dt.datetime(2025, rng.randint(1, 6), rng.randint(1, 28))
        end = start + dt.timedelta(days=30)
        for code in rng.sample([201, 202, 203, 204], k=rng.randint(1, 3)):
            sheet.append([lead, code, start, end])
    sheet.append(["#N/A", 201, None, None])
    sheet.append([guid(), 0, None, None])
    for row in sheet.iter_rows(min_row=2, min_col=3, max_col=4):
        for cell in row:
            cell.number_format = "yyyy-mm-dd"
    notes = workbook.create_sheet("Notes")
    notes.append(["This sheet is not read unless --sheet Notes is given."])
    workbook.save(HERE / "leads.xlsx")


def ids_only() -> None:
    """A sheet with only a ProspectId column: the codes and window come from a job file."""
    with (HERE / "lead_ids.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Lead ID"])
        writer.writerows([guid()] for _ in range(20))


if __name__ == "__main__":
    wide()
    long()
    ids_only()
