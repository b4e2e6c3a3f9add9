"""Shared plumbing for the benchmarks: processes measured with wait4, the emulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bulk_delete.emulator.server import DEMO_ACCESS_KEY, DEMO_SECRET_KEY

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
KEYS = {"LSQ_ACCESS_KEY": DEMO_ACCESS_KEY, "LSQ_SECRET_KEY": DEMO_SECRET_KEY}


@dataclass
class Measured:
    returncode: int
    wall: float
    cpu: float
    max_rss_mb: float
    stdout: str


def measure(command: list[str], *, env: dict[str, str] | None = None) -> Measured:
    """Run a command; its own CPU time and peak RSS come from wait4 (this child only)."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.DEVNULL, env={**os.environ, **(env or {})}
        )
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.monotonic() - started
        out.seek(0)
        text = out.read().decode()
    return Measured(
        os.waitstatus_to_exitcode(status),
        wall,
        usage.ru_utime + usage.ru_stime,
        usage.ru_maxrss / 1024,
        text,
    )


class Emulator:
    """`bulk-delete emulator` in its own process (so its CPU is not the client's)."""

    def __init__(self, *args: str) -> None:
        self._dir = tempfile.TemporaryDirectory()
        port_file = Path(self._dir.name) / "port"
        self.process = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "bulk_delete",
                "emulator",
                "--port",
                "0",
                "--port-file",
                str(port_file),
                *args,
            ],
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("emulator did not start")
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{port_file.read_text().strip()}"

    def stats(self) -> dict[str, Any]:
        return self.get("/__emulator/stats")

    def get(self, path: str) -> dict[str, Any]:
        with urllib.request.urlopen(self.url + path) as response:  # noqa: S310
            return json.loads(response.read())  # type: ignore[no-any-return]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        self._dir.cleanup()

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def leads_csv(
    path: Path,
    count: int,
    *,
    codes_per_lead: int = 1,
    long_layout: bool = False,
    columns: int = 2,
    first: int = 0,
    other_columns: int = 0,
) -> Path:
    """count leads (numbered from first); the long layout repeats each lead once per code.
    ``other_columns``: that many more text columns the job does not use (Name, Email, then
    notes), as a CRM export has."""
    others = ["Name", "Email", *(f"Note {i}" for i in range(1, other_columns - 1))]
    others = others[:other_columns]
    with path.open("w") as handle:
        header = ["ProspectId", "ActivityEventList", "FromDate", "ToDate"][:columns]
        handle.write(",".join(header + others) + "\n")
        for n in range(first, first + count):
            lead = f"{n:08x}-0000-4000-8000-{n:012x}"
            dates = ["2024-01-01", "2024-06-30"][: max(0, columns - 2)]
            texts = [f"Lead {n}", f"lead{n}@example.com"]
            texts = [*texts, *(f"note {i} of {n}" for i in range(1, other_columns - 1))]
            texts = texts[:other_columns]
            if long_layout:
                for code in range(201, 201 + codes_per_lead):
                    handle.write(",".join([lead, str(code), *dates, *texts]) + "\n")
            else:
                codes = ";".join(str(c) for c in range(201, 201 + codes_per_lead))
                handle.write(",".join([lead, codes, *dates, *texts]) + "\n")
    return path


def table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
