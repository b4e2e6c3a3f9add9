"""1,100,000 requests into .xlsx: the results workbook and `export -o x.xlsx`, each beside plain
XlsxWriter in constant-memory mode writing the same rows, in the same run.

    python -m bench.million_rows [REQUESTS] [OUT_FOLDER]

A real checkpoint of REQUESTS (default 1,100,000) requests is made (all queued, every tenth
failed with a reason, a window in Asia/Kolkata), then four processes run one after the other,
each timed (wall) with its peak RSS (``wait4``):

- ours: the results workbook, as `run` writes it (commands/results.py → store/workbook.py);
- plain: XlsxWriter with ``constant_memory`` writing the same cells from the same SQLite rows
  (dates converted to the run's zone, as ours does), ``write_row`` per row, a new sheet every
  1,048,575 rows: what a person writes by hand;
- ours: `bulk-delete export CK -o x.xlsx` as a process (start-up included);
- plain: the export's cells the same way.

Then each workbook is checked: its request rows are counted across its sheets (reading the
sheets' XML, not Excel), and must be every request. Prints a table; the bar is ours ≤ 1.2 ×
plain in time and ≤ 100 MB peak.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from pathlib import Path
from typing import IO
from zoneinfo import ZoneInfo

from bulk_delete.records import Request
from bulk_delete.store.checkpoint import Checkpoint

TZ = "Asia/Kolkata"
ZONE = ZoneInfo(TZ)
BAR_TIME, BAR_MB = 1.2, 100


def make_checkpoint(path: Path, count: int) -> None:
    """``count`` requests, queued; every tenth failed with LeadSquared's reason."""
    path.unlink(missing_ok=True)
    with Checkpoint.open(path) as checkpoint:
        planned = (
            Request(
                str(uuid.UUID(int=n)),
                ("201", "202"),
                "2024-12-31 18:30:00",
                "2025-01-31 18:29:59",
                "",
                (n + 2,),
            )
            for n in range(count)
        )
        options = {"tz": TZ, "from": "2025-01-01", "to": "2025-01-31", "codes": ["201", "202"]}
        checkpoint.store_plan(
            planned, [], source="leads.csv", fingerprint="f", options=options, extra={}
        )
        checkpoint.mark_queued_up_to(count)
        checkpoint._db.execute(
            "UPDATE requests SET status = 'failed', http_status = 500, error = ?"
            " WHERE seq % 10 = 0",
            ("MXInvalidActivityEventException: Activity event(s) 5 are system activities",),
        )


# ---------------------------------------------------------------- what each process runs


def ours_results(checkpoint: str, out: str) -> None:
    from bulk_delete.commands.results import plan_window, write_workbook

    write_workbook(Path(checkpoint), Path(out), plan_window(Path(checkpoint)))


def plain_results(checkpoint: str, out: str) -> None:
    """The results workbook's Requests cells, written by XlsxWriter as a person would."""
    import sqlite3

    db = sqlite3.connect(checkpoint)
    rows = db.execute(
        "SELECT prospect_id, codes, from_date, to_date, status, error, source_rows,"
        " http_status, attempts, updated_at FROM requests ORDER BY seq"
    )
    headers = ["ProspectId", "ActivityEventList", "FromDate", "ToDate", "outcome", "reason"]
    headers += ["sheet rows", "http status", "attempts", "updated"]
    _plain(
        out,
        headers,
        (
            (pid, codes.replace(";", ","), local(f), local(t), status, error, int(rows_),
             http, attempts, local(updated))
            for pid, codes, f, t, status, error, rows_, http, attempts, updated in rows
        ),
    )  # fmt: skip


def plain_export(checkpoint: str, out: str) -> None:
    """The export's cells (UTC dates, then the zone's, as text and date cells)."""
    import sqlite3

    db = sqlite3.connect(checkpoint)
    rows = db.execute(
        "SELECT prospect_id, codes, from_date, to_date, webhook, status, attempts, http_status,"
        " error, source_rows, updated_at, verified, remaining, verified_at FROM requests"
        " ORDER BY seq"
    )
    headers = ["ProspectId", "ActivityEventList", "FromDate", "ToDate", f"FromDate ({TZ})"]
    headers += [f"ToDate ({TZ})", "StatusWebhookURL", "status", "attempts", "http_status"]
    headers += ["error", "source_rows", "updated_at", "verified", "remaining", "verified_at"]
    headers += ["FromDate (as written)", "ToDate (as written)"]
    _plain(
        out,
        headers,
        (
            (pid, codes, date(f), date(t), local(f), local(t), hook, status, attempts, http,
             error, rows_, date(updated), verified, remaining, date(verified_at), "", "")
            for pid, codes, f, t, hook, status, attempts, http, error, rows_, updated,
            verified, remaining, verified_at in rows
        ),
    )  # fmt: skip


def local(text: str) -> dt.datetime | None:
    """A checkpoint's UTC text in the run's zone, as Excel wants it (no tzinfo)."""
    if not text:
        return None
    moment = dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
    return moment.astimezone(ZONE).replace(tzinfo=None)


def date(text: str) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if text else None


def _plain(out: str, headers: list[str], rows: object) -> None:
    import xlsxwriter

    book = xlsxwriter.Workbook(
        out, {"constant_memory": True, "default_date_format": "yyyy-mm-dd hh:mm:ss"}
    )
    sheet, row, number = None, 1_048_576, 0
    for cells in rows:  # type: ignore[attr-defined]
        if row >= 1_048_576:
            number += 1
            sheet = book.add_worksheet("Requests" if number == 1 else f"Requests ({number})")
            sheet.write_row(0, 0, headers)
            row = 1
        sheet.write_row(row, 0, cells)  # type: ignore[union-attr]
        row += 1
    book.close()


# ---------------------------------------------------------------- measuring


def measured(code: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one process."""
    began = time.perf_counter()
    process = subprocess.Popen(code, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    took = time.perf_counter() - began
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{code} failed")
    return took, usage.ru_maxrss / 1024


def _step(name: str, checkpoint: Path, out: Path) -> list[str]:
    script = f"from bench.million_rows import {name}; {name}({str(checkpoint)!r}, {str(out)!r})"
    return [sys.executable, "-c", script]


def request_rows(path: Path) -> int:
    """Rows under the header on every sheet named Requests…, read from the sheets' XML."""
    rows = 0
    with zipfile.ZipFile(path) as book:
        names = re.findall(rb'<sheet name="([^"]+)" sheetId="(\d+)"', book.read("xl/workbook.xml"))
        for name, number in names:
            if name.startswith(b"Requests"):
                with book.open(f"xl/worksheets/sheet{int(number)}.xml") as sheet:
                    rows += _count(sheet, b"<row ") - 1  # (the header)
    return rows


def _count(stream: IO[bytes], word: bytes) -> int:
    """``word`` in a stream read in chunks, also where it spans two of them."""
    found, tail = 0, b""
    while chunk := stream.read(1 << 20):
        text = tail + chunk
        found += text.count(word)
        tail = text[-(len(word) - 1) :]  # too short to hold one: never counted twice
    return found


def main(count: int, folder: Path) -> list[dict[str, object]]:
    checkpoint = folder / "million.sqlite"
    began = time.perf_counter()
    make_checkpoint(checkpoint, count)
    print(f"checkpoint of {count:,} requests made in {time.perf_counter() - began:.1f} s")
    export = [sys.executable, "-m", "bulk_delete", "export", str(checkpoint), "-o"]
    outs = {name: folder / f"{name}.xlsx" for name in ("ours", "plain", "export", "pexport")}
    steps = [
        ("results workbook", "ours", _step("ours_results", checkpoint, outs["ours"]), "ours"),
        ("results workbook", "plain", _step("plain_results", checkpoint, outs["plain"]), "plain"),
        ("export -o x.xlsx", "ours", [*export, str(outs["export"])], "export"),
        (
            "export -o x.xlsx",
            "plain",
            _step("plain_export", checkpoint, outs["pexport"]),
            "pexport",
        ),
    ]
    figures: list[dict[str, object]] = []
    for what, who, code, out in steps:
        took, peak = measured(code)
        rows = request_rows(outs[out])
        size = outs[out].stat().st_size / 1e6
        figures.append(
            {"what": what, "who": who, "seconds": took, "peak_mb": peak, "rows": rows, "mb": size}
        )
        print(
            f"{what:18} {who:6} {took:7.1f} s  peak {peak:6.0f} MB  {size:6.1f} MB  {rows:,} rows"
        )
        outs[out].unlink()
    for what in ("results workbook", "export -o x.xlsx"):
        ours, plain = (f for f in figures if f["what"] == what)
        ratio = float(ours["seconds"]) / float(plain["seconds"])  # type: ignore[arg-type]
        whole = ours["rows"] == count
        held = ratio <= BAR_TIME and float(ours["peak_mb"]) <= BAR_MB and whole  # type: ignore[arg-type]
        print(
            f"{what}: {ratio:.2f}× plain XlsxWriter, peak {ours['peak_mb']:.0f} MB, "
            f"{ours['rows']:,} of {count:,} requests: {'met' if held else 'MISSED'}"
        )
    return figures


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1_100_000
    if len(sys.argv) > 2:
        main(count, Path(sys.argv[2]))
    else:
        with tempfile.TemporaryDirectory(dir=".") as work:
            main(count, Path(work))
