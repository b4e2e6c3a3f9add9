"""Issue 33's bars for `restore`, on one strict emulator (25/5s, the bulk add 1/5s, 150 ms):
a purge with --backup, then the restore with Create (single); the restored activities purged
again with --backup, then restored with the bulk add. For each: the activities posted per
second against what the limit that applies allows (Create: 5 a second; the bulk add: 25 a
call, 1 call in 5 s), the dry run's predicted calls against the calls the emulator saw, and
none twice, none missing.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

from .common import KEYS, PYTHON, Emulator, measure, table

CLI = [PYTHON, "-m", "bulk_delete"]
LEADS = 120
CODES = "201;202;203"
WINDOW = ("2024-03-01", "2025-06-30")
KNOBS = ["--rate", "25/5s", "--bulk-rate", "1/5s", "--latency", "0.15", "--jitter", "0.05"]
KNOBS += ["--seed", "1", "--webhook-delay", "0.5"]


def restore(work: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"leads": LEADS, "codes": CODES.split(";")}
    rows = []
    with Emulator(*KNOBS) as emulator:
        env = {**KEYS, "LSQ_HOST": emulator.url}
        for first, mode in ((0, "single"), (LEADS, "bulk")):  # other leads: nothing posted twice
            sheet = _sheet(work / f"restore-{mode}.csv", first)
            backup = work / f"restore-{mode}.jsonl.gz"
            checkpoint = work / f"purge-{mode}.sqlite"
            options = ["--yes", "--quiet", "--backup", str(backup), "--no-results"]
            purge = measure(
                [*CLI, "run", str(sheet), "--checkpoint", str(checkpoint), *options], env=env
            )
            time.sleep(2)  # the deletes are carried out
            entry = _restored(emulator, env, work, backup, mode)
            entry["purge_exit_code"] = purge.returncode
            out[mode] = entry
            rows.append(_row(mode, entry))
    print(f"\n## 12. restore (strict 25/5s, the bulk add 1/5s, 150 ms, {LEADS} leads x 3 codes)\n")
    print(
        table(
            [
                "posting with",
                "activities",
                "Retrieve",
                "posts",
                "activities/s posted",
                "the limit allows",
                "share (bar 95 %)",
                "dry run: calls",
                "calls made",
                "twice",
                "429s",
                "wall",
            ],
            rows,
        )
    )
    return out


def _sheet(path: Path, first: int) -> Path:
    with path.open("w") as handle:
        handle.write("ProspectId,ActivityEventList,FromDate,ToDate\n")
        for n in range(first, first + LEADS):
            handle.write(f"{n:08x}-0000-4000-8000-{n:012x},{CODES},{WINDOW[0]},{WINDOW[1]}\n")
    return path


def _restored(
    emulator: Emulator, env: dict[str, str], work: Path, backup: Path, mode: str
) -> dict[str, Any]:
    before = emulator.stats()
    dry = measure([*CLI, "restore", str(backup), "--dry-run", "--post", mode], env=env)
    found = re.search(r"calls +about ([\d,]+)", dry.stdout)
    summary = work / f"restore-{mode}.json"
    checkpoint = work / f"restore-{mode}.sqlite"
    options = ["--yes", "--quiet", "--post", mode, "--summary-json", str(summary), "--no-results"]
    run = measure(
        [*CLI, "restore", str(backup), "--checkpoint", str(checkpoint), *options], env=env
    )
    after = emulator.stats()
    restored = json.loads(summary.read_text())["restore"]
    outcomes = {
        key: after["outcomes"].get(key, 0) - before["outcomes"].get(key, 0)
        for key in ("retrieve", "posted", "bulk_posted", "rate_limited", "bulk_rate_limited")
    }
    return {
        "exit_code": run.returncode,
        "activities": restored["activities"],
        "posted": restored["posted"],
        "posted_by_the_emulator": after["activities_posted"] - before["activities_posted"],
        "posted_twice": after["posted_twice"] - before["posted_twice"],
        "retrieve_calls": outcomes["retrieve"],
        "post_calls": outcomes["posted"] + outcomes["bulk_posted"],
        "refused_429": outcomes["rate_limited"] + outcomes["bulk_rate_limited"],
        **_sustained(checkpoint, mode, restored["limit_activities_per_second"]),
        "dry_run_calls": int(found.group(1).replace(",", "")) if found else None,
        "calls_made": after["calls"] - before["calls"],
        "wall_seconds": round(run.wall, 1),
    }


def _sustained(checkpoint: Path, mode: str, limit: float | None) -> dict[str, Any]:
    """The rate the posting kept from its first answer to its last (the checkpoint's
    ``measured_MODE``, which the next run's choice reads), over the limit: the summary's own
    figures are its busiest window's, as a purge's are, and a kept limit reads 100 % there."""
    with sqlite3.connect(checkpoint) as db:
        row = db.execute("SELECT value FROM meta WHERE key = ?", (f"measured_{mode}",)).fetchone()
    db.close()
    rate = float(row[0]) if row else None
    share = round(rate / limit, 4) if rate and limit else None
    return {
        "activities_per_second": None if rate is None else round(rate, 3),
        "limit_activities_per_second": limit,
        "share_of_limit": share,
    }


def _row(mode: str, entry: dict[str, Any]) -> list[Any]:
    share = entry["share_of_limit"]
    return [
        "Create (single)" if mode == "single" else "the bulk add",
        f"{entry['posted']}/{entry['activities']}",
        entry["retrieve_calls"],
        entry["post_calls"],
        entry["activities_per_second"],
        entry["limit_activities_per_second"],
        f"{share:.1%}" if share else "–",
        entry["dry_run_calls"],
        entry["calls_made"],
        entry["posted_twice"],
        entry["refused_429"],
        f"{entry['wall_seconds']:.1f} s",
    ]
