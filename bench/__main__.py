"""`make bench`: bulk-delete measured side by side with what users write instead.

Sections (each prints a table; all figures go to bench/results/latest.json):
  1. throughput at the limit — 25/5s strict emulator, 150 ms and 800 ms median latency
  2. coalescing — a long-layout sheet, 3 codes per lead on separate rows
  3. client overhead — limiter off, zero latency, 20,000 requests
  4. scale — `plan` of 1,000,000 rows; resume of a 1,000,000-request checkpoint, half done
  5. sharing — a real account: idle, a lower real limit, 403-style refusals, a steady
     neighbour (the emulator's background integration) in windows that count refusals and
     in windows that don't, and --share on that
  6. discover — --discover over the emulator's data set: the dry run, the purge, a SIGTERM
     during the listing and its resume
  7. loader — `plan` of a 1,000,000-row CSV and of 300,000-row workbooks, each against a bare
     pandas read of the same file (pd.read_csv(dtype=str), pd.read_excel(engine="calamine"));
     peak memory for 1,000,000-row workbooks of 4 and 10 columns
  8. issue 20's account situations (bench/sharing.py): bursty — (f) a neighbour calling in
     bursts, both counting modes; concurrent — (g) two purges at once on one account, with
     and without the shared ledger, and (g′) two on one ledger beside a steady neighbour;
     allowance — (h) a daily allowance smaller than the run
  9. backup — issue 21: a sheet run with --backup (Retrieve per code, then the delete) and the
     same run without, strict 25/5s at 150 ms: calls of all kinds against the limit; the dry
     run's predicted backup calls against those made
  10. results — issue 22: `python -m bench.results_report` (report of 100,000 calls, workbook of
     100,000 requests, `bulk-delete report` on a checkpoint and on a folder of 365 nights)
  11. million — issue 34: `python -m bench.million_rows` (1,100,000 requests: the results
     workbook and `export -o x.xlsx` beside plain XlsxWriter constant_memory, time and peak)
  12. moving — issue 30 (bench/sharing.py): (i) a neighbour that comes and goes, (i') a steady
     one that stops, (j) an idle account with transient faults at 25/1s and 25/5s, (k) a ramp
     over five minutes; side by side with the peers, BENCH_REPEATS times (default 3)

Run a part with `python -m bench loader scale` and so on (default: all).
"""

from __future__ import annotations

import json
import os
import platform
import random
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bulk_delete.emulator.server import _activities as emulated_activities
from bulk_delete.store.backup_file import read_backup

from .common import KEYS, PYTHON, ROOT, Emulator, Measured, leads_csv, measure, table
from .sharing import allowance, bursty, concurrent, moving, sharing
from .workbooks import leads_xlsx

RESULTS = ROOT / "bench" / "results"
LIMIT = 25 / 5
CLI = [PYTHON, "-m", "bulk_delete"]


def throughput(work: Path) -> dict[str, Any]:
    sheet = leads_csv(work / "300.csv", 300)
    out: dict[str, Any] = {}
    rows = []
    for latency, jitter in ((0.15, 0.05), (0.8, 0.2)):
        knobs = [
            "--rate",
            "25/5s",
            "--latency",
            str(latency),
            "--jitter",
            str(jitter),
            "--seed",
            "1",
        ]
        emulators = [Emulator(*knobs) for _ in range(3)]
        try:
            env = [{**KEYS, "LSQ_HOST": e.url} for e in emulators]
            summary = work / f"summary-{latency}.json"
            commands = [
                [
                    *CLI,
                    "run",
                    str(sheet),
                    "--checkpoint",
                    str(work / f"t{latency}.sqlite"),
                    "--yes",
                    "--open-window",  # the bench sheets have no dates
                    "--quiet",
                    "--codes",
                    "201",
                    "--rate",
                    "enterprise",
                    "--summary-json",
                    str(summary),
                ],
                [
                    PYTHON,
                    str(ROOT / "bench" / "baseline_loop.py"),
                    emulators[1].url,
                    str(sheet),
                    "--max-seconds",
                    "30",
                ],
                [
                    PYTHON,
                    str(ROOT / "bench" / "baseline_aiolimiter.py"),
                    emulators[2].url,
                    str(sheet),
                ],
            ]
            with ThreadPoolExecutor(3) as pool:  # each has its own emulator, so its own window
                done = list(
                    pool.map(
                        lambda pair: measure(pair[0], env=pair[1]), zip(commands, env, strict=True)
                    )
                )
            stats = [e.stats() for e in emulators]
        finally:
            for e in emulators:
                e.stop()
        ours = json.loads(summary.read_text())
        for name, result, stat in zip(
            ("bulk-delete", "hand-written loop", "aiolimiter script"), done, stats, strict=True
        ):
            accepted = stat["outcomes"].get("queued", 0)
            share = stat["accepted_per_second"] / LIMIT
            entry = {
                "accepted": accepted,
                "calls": stat["calls"],
                "rate_limited_429": stat["outcomes"].get("rate_limited", 0),
                "accepted_per_second": round(stat["accepted_per_second"], 3),
                "share_of_limit": round(share, 4),
                "max_calls_in_window": stat["max_calls_in_window"],
                "wall_seconds": round(result.wall, 1),
            }
            out[f"{name} @ {int(latency * 1000)} ms"] = entry
            rows.append(
                [
                    name,
                    f"{int(latency * 1000)} ms",
                    accepted,
                    f"{share:.1%}",
                    entry["rate_limited_429"],
                    stat["max_calls_in_window"],
                    f"{result.wall:.1f} s",
                ]
            )
        out[f"bulk-delete @ {int(latency * 1000)} ms"]["job_reported_calls_per_second"] = ours[
            "this_run"
        ]["calls_per_second"]
    print("\n## 1. Throughput at the limit (emulator strict 25/5s, 300 leads)\n")
    print(
        table(
            [
                "client",
                "median latency",
                "accepted",
                "accepted/s vs limit",
                "429s",
                "max calls in a 5 s window",
                "wall",
            ],
            rows,
        )
    )
    return out


def coalescing(work: Path) -> dict[str, Any]:
    sheet = leads_csv(work / "long.csv", 1000, codes_per_lead=3, long_layout=True)
    preview = work / "preview.csv"
    done = measure([*CLI, "plan", str(sheet), "--out", str(preview)])
    requests = sum(1 for _ in preview.open()) - 1
    rows = 3000
    result = {
        "rows": rows,
        "requests": requests,
        "calls_saved": rows - requests,
        "minutes_at_enterprise": round(requests / LIMIT / 60, 1),
        "minutes_one_call_per_row": round(rows / LIMIT / 60, 1),
        "plan_seconds": round(done.wall, 2),
    }
    print("\n## 2. Coalescing (long layout: 1,000 leads × 3 codes on separate rows)\n")
    print(
        table(
            ["", "calls", "time at 25/5s"],
            [
                ["one call per row", rows, f"{result['minutes_one_call_per_row']} min"],
                ["bulk-delete", requests, f"{result['minutes_at_enterprise']} min"],
            ],
        )
    )
    return result


def overhead(work: Path) -> dict[str, Any]:
    count = 20_000
    sheet = leads_csv(work / "20k.csv", count)
    summary = work / "overhead.json"
    with Emulator("--rate", "off") as emulator:
        done = measure(
            [
                *CLI,
                "run",
                str(sheet),
                "--checkpoint",
                str(work / "overhead.sqlite"),
                "--yes",
                "--open-window",  # the bench sheets have no dates
                "--quiet",
                "--rate",
                "off",
                "--codes",
                "201",
                "--summary-json",
                str(summary),
            ],
            env={**KEYS, "LSQ_HOST": emulator.url},
        )
        stats = emulator.stats()
    facts = json.loads(summary.read_text())
    send_seconds = facts["this_run"]["send_seconds"]
    result = {
        "requests": count,
        "queued": facts["totals"]["queued"],
        "send_seconds": send_seconds,
        "requests_per_second": round(count / send_seconds, 1),
        "requests_per_second_whole_process": round(count / done.wall, 1),
        "cpu_seconds_per_1000": round(done.cpu / count * 1000, 3),
        "wall_seconds": round(done.wall, 2),
        "emulator_accepted": stats["outcomes"].get("queued", 0),
        "max_rss_mb": round(done.max_rss_mb, 1),
    }
    print(
        "\n## 3. Client overhead (limiter off, zero latency, 20,000 requests, "
        "checkpoint writes included)\n"
    )
    print(
        table(
            [
                "requests/s (send phase)",
                "requests/s (whole process)",
                "CPU s per 1,000",
                "peak RSS",
            ],
            [
                [
                    result["requests_per_second"],
                    result["requests_per_second_whole_process"],
                    result["cpu_seconds_per_1000"],
                    f"{result['max_rss_mb']} MB",
                ]
            ],
        )
    )
    return result


def scale(work: Path) -> dict[str, Any]:
    sheet = leads_csv(work / "1m.csv", 1_000_000, columns=4)
    planned = measure([*CLI, "plan", str(sheet)])
    # The same with ten columns the plan does not read (Name, Email, notes), as a CRM export has.
    wide = leads_csv(work / "1m-wide.csv", 1_000_000, columns=4, other_columns=10)
    planned_wide = measure([*CLI, "plan", str(wide)])
    wide.unlink()
    # The wrong file: 1,000,000 rows, every one invalid (names where GUIDs should be).
    wrong = work / "1m-invalid.csv"
    with wrong.open("w") as handle:
        handle.write("ProspectId,ActivityEventList\n")
        handle.writelines(f"Lead number {n},201\n" for n in range(1_000_000))
    planned_wrong = measure([*CLI, "plan", str(wrong)])
    # A checkpoint of 1,000,000 requests, the first half already queued (setup, not measured),
    # built in its own process so this one stays small (see bench/setup_checkpoint.py).
    checkpoint_path = work / "1m.sqlite"
    subprocess.run(
        [PYTHON, "-m", "bench.setup_checkpoint", str(sheet), str(checkpoint_path)], check=True
    )
    with Emulator("--rate", "off") as emulator:
        started = time.time()
        with tempfile.TemporaryFile() as out:
            process = subprocess.Popen(
                [
                    *CLI,
                    "run",
                    str(sheet),
                    "--checkpoint",
                    str(checkpoint_path),
                    "--yes",
                    "--open-window",  # the bench sheets have no dates
                    "--quiet",
                    "--rate",
                    "off",
                ],
                stdout=out,
                stderr=subprocess.DEVNULL,
                env={**os.environ, **KEYS, "LSQ_HOST": emulator.url},
            )
            first = None
            while first is None and process.poll() is None and time.time() - started < 120:
                first = emulator.stats()["first_accepted_wall"]
                time.sleep(0.02)
            process.send_signal(signal.SIGTERM)
            _, _, usage = os.wait4(process.pid, 0)
        first_record = emulator.stats()
    result = {
        "plan_rows": 1_000_000,
        "plan_seconds": round(planned.wall, 2),
        "plan_max_rss_mb": round(planned.max_rss_mb, 1),
        "plan_wide_seconds": round(planned_wide.wall, 2),
        "plan_wide_max_rss_mb": round(planned_wide.max_rss_mb, 1),
        "plan_all_invalid_seconds": round(planned_wrong.wall, 2),
        "plan_all_invalid_max_rss_mb": round(planned_wrong.max_rss_mb, 1),
        "resume_requests": 1_000_000,
        "resume_already_queued": 500_000,
        "resume_seconds_to_first_request": round((first or 0) - started, 2) if first else None,
        "resume_max_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "resume_sent_before_stop": first_record["outcomes"].get("queued", 0),
    }
    print("\n## 4. Scale\n")
    print(
        table(
            ["benchmark", "time", "peak RSS"],
            [
                [
                    "`plan` of 1,000,000 rows (4 columns)",
                    f"{result['plan_seconds']} s",
                    f"{result['plan_max_rss_mb']} MB",
                ],
                [
                    "`plan` of 1,000,000 rows (4 columns and 10 it does not read)",
                    f"{result['plan_wide_seconds']} s",
                    f"{result['plan_wide_max_rss_mb']} MB",
                ],
                [
                    "`plan` of 1,000,000 rows, all invalid (the wrong file)",
                    f"{result['plan_all_invalid_seconds']} s",
                    f"{result['plan_all_invalid_max_rss_mb']} MB",
                ],
                [
                    "resume of 1,000,000 requests, half done: to the first request",
                    f"{result['resume_seconds_to_first_request']} s",
                    f"{result['resume_max_rss_mb']} MB",
                ],
            ],
        )
    )
    return result


# (name, emulator knobs, requests, what is available to us in calls/s, our extra options,
#  the peers' configured calls per 5 s): the situations of a real, shared account.
DISCOVER_LEADS = 4200  # about 2,100 activities of code 201 in the window, on ~1,600 leads
DISCOVER_WINDOW = ("--codes", "201", "--from", "2024-01-01", "--to", "2025-06-30")


def discover(work: Path) -> dict[str, Any]:
    """Issue 12's bars at their own scale: the dry run, the purge, an interrupted listing."""
    census_query = "?codes=201&from=2024-01-01 00:00:00&to=2025-06-30 23:59:59".replace(" ", "%20")
    knobs = ["--rate", "25/5s", "--latency", "0.15", "--jitter", "0.05", "--seed", "1"]
    data = ["--dataset-leads", str(DISCOVER_LEADS), "--page-cap", "500", "--webhook-delay", "1"]
    with Emulator(*knobs, *data) as emulator:
        env = {**KEYS, "LSQ_HOST": emulator.url}
        before = emulator.get("/__emulator/census" + census_query)
        preview = work / "discover-preview.csv"
        dry = measure(
            [*CLI, "plan", "--discover", *DISCOVER_WINDOW, "--out", str(preview)], env=env
        )
        found = re.search(r"Found ([\d,]+) activities of code 201 on ([\d,]+) leads", dry.stdout)
        assert found is not None, dry.stdout
        activities, leads = (int(group.replace(",", "")) for group in found.groups())
        preview_lines = sum(1 for _ in preview.open()) - 1
        sent_by_dry_run = emulator.stats()["outcomes"].get("queued", 0)
        listed_by_dry_run = emulator.stats()["list_pages"]
        run = measure(
            [
                *CLI,
                "run",
                "--discover",
                *DISCOVER_WINDOW,
                "--checkpoint",
                str(work / "discover.sqlite"),
                "--yes",
                "--open-window",  # the bench sheets have no dates
                "--quiet",
            ],
            env=env,
        )
        time.sleep(2)  # the emulator carries the last queued deletes out
        stats = emulator.stats()
        after = emulator.get("/__emulator/census" + census_query)
    with Emulator(*knobs, *data, "--latency", "0.6") as emulator:  # slow pages: time to SIGTERM
        env = {**KEYS, "LSQ_HOST": emulator.url}
        small_pages = [
            *CLI,
            "run",
            "--discover",
            *DISCOVER_WINDOW,
            "--checkpoint",
            str(work / "discover-term.sqlite"),
            "--yes",
            "--open-window",  # the bench sheets have no dates
            "--quiet",
            "--max-leads",
            "1",
        ]
        process = subprocess.Popen(
            small_pages, env={**os.environ, **env}, stderr=subprocess.DEVNULL
        )
        while emulator.stats()["list_pages"] < 2 and process.poll() is None:
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        interrupted = process.wait(60)
        pages_before = emulator.stats()["list_pages"]
        resumed = measure(small_pages, env=env)  # the listing goes on, then the guard: exit 2
        term = emulator.stats()
    least = -(-activities // 500)  # list calls at the server's cap, at the least
    result = {
        "dataset_leads": DISCOVER_LEADS,
        "activities_found": activities,
        "leads_found": leads,
        "truth_in_window_before": before["in_window"],
        "preview_lines": preview_lines,
        "deleted_by_the_dry_run": sent_by_dry_run,
        "run_exit_code": run.returncode,
        "deletes_sent": stats["outcomes"].get("queued", 0),
        "left_in_window_after": after["in_window"],
        "outside_before": before["outside"],
        "outside_after": after["outside"],
        "list_calls_dry_run": listed_by_dry_run,
        "list_calls": stats["list_pages"] - listed_by_dry_run,
        "least_list_calls": least,
        "refusals": stats["outcomes"].get("rate_limited", 0),
        "run_wall_seconds": round(run.wall, 1),
        "sigterm_exit_code": interrupted,
        "pages_before_sigterm": pages_before,
        "resume_exit_code": resumed.returncode,
        "pages_read_twice": term["list_pages_read_twice"],
    }
    print("\n## 6. --discover (emulator data set, 25/5s, 150 ms latency)\n")
    print(
        table(
            ["what", "measured"],
            [
                [
                    "found by the dry run",
                    f"{activities:,} activities of code 201 on {leads:,} "
                    f"leads (the emulator holds {before['in_window']:,} in the window)",
                ],
                ["dry run: preview lines / deletes sent", f"{preview_lines:,} / {sent_by_dry_run}"],
                [
                    "run: deletes sent (one per lead) / exit",
                    f"{result['deletes_sent']:,} / {run.returncode}",
                ],
                ["left in the window afterwards", after["in_window"]],
                [
                    "outside codes and window: before → after",
                    f"{before['outside']:,} → {after['outside']:,}",
                ],
                [
                    "list calls: the run (the dry run; the least possible at a 500 cap)",
                    f"{result['list_calls']} ({listed_by_dry_run}; {least})",
                ],
                ["refusals", result["refusals"]],
                ["run wall time", f"{run.wall:.0f} s"],
                [
                    "SIGTERM during the listing: exit / pages read before",
                    f"{interrupted} / {pages_before}",
                ],
                ["resumed listing: pages read twice", term["list_pages_read_twice"]],
            ],
        )
    )
    return result


LOADER_RUNS = 3  # each file is read and planned this many times; the medians are shown


def loader(work: Path) -> dict[str, Any]:
    """Issue 14's bars: `bulk-delete plan` (the whole process: start, read, check, coalesce,
    print) against the bare pandas read alone (pandas imported, not counted)."""
    files = [
        (
            "csv",
            "CSV, 1,000,000 rows, 4 columns, two codes per cell",
            leads_csv(work / "1m-two-codes.csv", 1_000_000, codes_per_lead=2, columns=4),
        ),
        ("excel", "xlsx, 300,000 rows, date cells", leads_xlsx(work / "300k.xlsx", 300_000)),
        (
            "excel",
            "xlsx, 300,000 rows, ToDate shown with a time, #N/A every 1,000 rows",
            leads_xlsx(work / "300k-marked.xlsx", 300_000, to_shows_time=True, error_every=1000),
        ),
    ]
    result: dict[str, Any] = {}
    rows = []
    for kind, name, path in files:
        bare, planned = [], []
        for _ in range(LOADER_RUNS):  # alternated, so a slow moment of the machine hits both
            read = measure([PYTHON, "-m", "bench.bare_read", kind, str(path)])
            bare.append(float(read.stdout.split()[0]))
            planned.append(measure([*CLI, "plan", str(path)]))
            assert planned[-1].returncode == 0, planned[-1].stdout
        plan_seconds = _median([run.wall for run in planned])
        bare_seconds = _median(bare)
        result[path.name] = {
            "bare_read_seconds": [round(x, 2) for x in bare],
            "plan_seconds": [round(run.wall, 2) for run in planned],
            "ratio": round(plan_seconds / bare_seconds, 2),
            "plan_max_rss_mb": round(max(run.max_rss_mb for run in planned), 1),
            "summary": _plan_lines(planned[-1]),
        }
        rows.append(
            [
                name,
                f"{bare_seconds:.2f} s",
                f"{plan_seconds:.2f} s",
                f"**{plan_seconds / bare_seconds:.1f}×**",
                f"{result[path.name]['plan_max_rss_mb']} MB",
            ]
        )
    # Memory at Excel's size: 1 M rows, once with the four columns, once with six more the job
    # does not use. calamine holds the whole sheet while it reads (no bare read: it needs more).
    for others in (0, 6):
        path = leads_xlsx(work / f"1m-{4 + others}-columns.xlsx", 1_000_000, other_columns=others)
        planned_once = measure([*CLI, "plan", str(path)])
        path.unlink()
        result[path.name] = {
            "plan_seconds": round(planned_once.wall, 2),
            "plan_max_rss_mb": round(planned_once.max_rss_mb, 1),
        }
        rows.append(
            [
                f"xlsx, 1,000,000 rows, {4 + others} columns (once)",
                "–",
                f"{planned_once.wall:.2f} s",
                "–",
                f"{planned_once.max_rss_mb:.0f} MB",
            ]
        )
    print("\n## 7. Loader: `plan` against a bare pandas read of the same file\n")
    print(
        table(
            ["file", "bare pandas read", "`bulk-delete plan`", "ratio (bar 4×)", "peak RSS"], rows
        )
    )
    print(f"\n(medians of {LOADER_RUNS} runs each, alternated)")
    return result


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def _plan_lines(done: Measured) -> list[str]:
    return [line.strip() for line in done.stdout.splitlines() if "rows read" in line]


BACKUP_LEADS = 400  # the emulator's data set; the sheet takes the first that hold activities
BACKUP_REQUESTS = 100
BACKUP_CODES = (201, 202)
BACKUP_WINDOW = ("2024-01-01", "2025-06-30")


def backup(work: Path) -> dict[str, Any]:
    """Issue 21's throughput bar: a sheet run with --backup (a Retrieve per code, then the
    delete) against the same run without, each on a fresh strict emulator at 25/5s."""
    sheet, expected = _backup_sheet(work / "backup.csv")
    knobs = ["--rate", "25/5s", "--latency", "0.15", "--jitter", "0.05", "--seed", "1"]
    data = ["--dataset-leads", str(BACKUP_LEADS)]
    codes = ",".join(str(code) for code in BACKUP_CODES)
    census = f"?codes={codes}&from={BACKUP_WINDOW[0]}&to={BACKUP_WINDOW[1]}%2023:59:59"
    out: dict[str, Any] = {"requests": BACKUP_REQUESTS, "codes": list(BACKUP_CODES)}
    rows = []
    for name, extra in (("with --backup", True), ("without --backup", False)):
        with Emulator(*knobs, *data) as emulator:
            env = {**KEYS, "LSQ_HOST": emulator.url}
            before = emulator.get("/__emulator/census" + census)["in_window"]
            checkpoint, summary = work / f"backup-{extra}.sqlite", work / f"backup-{extra}.json"
            saved = work / f"backup-{extra}.jsonl.gz"
            options = ["--backup", str(saved)] if extra else []
            predicted = None
            if extra:
                dry = measure([*CLI, "plan", str(sheet), *options], env=env)
                predicted = _predicted_backup_calls(dry.stdout)
            run = measure(
                [
                    *CLI,
                    "run",
                    str(sheet),
                    *options,
                    "--checkpoint",
                    str(checkpoint),
                    "--yes",
                    "--open-window",
                    "--quiet",
                    "--rate",
                    "enterprise",
                    "--summary-json",
                    str(summary),
                ],
                env=env,
            )
            time.sleep(2)  # the emulator carries the last queued deletes out
            stats = emulator.stats()
            left = emulator.get("/__emulator/census" + census)["in_window"]
        ours = json.loads(summary.read_text())["this_run"]
        logged = _logged_calls(checkpoint)
        entry = {
            "exit_code": run.returncode,
            "emulator_calls": stats["calls"],
            "emulator_outcomes": stats["outcomes"],
            "retrieve_calls": stats["outcomes"].get("retrieve", 0),
            "queued": stats["outcomes"].get("queued", 0),
            "refused_429": stats["outcomes"].get("rate_limited", 0),
            "max_calls_in_window": stats["max_calls_in_window"],
            "summary_calls": ours["calls"],
            "summary_calls_per_second": ours["calls_per_second"],
            "summary_share_of_limit": ours["share_of_limit"],
            "logged": logged,
            "wall_seconds": round(run.wall, 1),
            "activities_deleted": before - left,
        }
        if extra:
            entry["dry_run_predicted_backup_calls"] = predicted
            ids = [row["ProspectActivityId"] for row in read_backup(saved)]
            entry["activities_saved"] = len(ids)
            entry["saved_ids_are_the_window_s"] = len(set(ids)) == len(ids) and set(ids) == expected
        out[name] = entry
        rows.append(
            [
                name,
                entry["retrieve_calls"],
                entry["queued"],
                logged["calls"],
                f"{logged['span']:.1f} s",
                f"{logged['per_second']:.3f}",
                f"{logged['share']:.1%}",
                f"{ours['share_of_limit']:.1%}" if ours["share_of_limit"] else "–",
                entry["refused_429"],
                stats["max_calls_in_window"],
                f"{run.wall:.1f} s",
            ]
        )
    print(f"\n## 8. --backup throughput (strict 25/5s, 150 ms, {BACKUP_REQUESTS} requests)\n")
    print(
        table(
            [
                "run",
                "Retrieve calls",
                "deletes queued",
                "calls (all kinds)",
                "span of starts",
                "calls/s",
                "share of limit (bar 95 %)",
                "summary's share",
                "429s",
                "max calls in a 5 s window",
                "wall",
            ],
            rows,
        )
    )
    ours = out["with --backup"]
    print(
        f"\n(calls: backup reads and deletes from the checkpoint's call log, the start-up's "
        f"preflight call left out; 429s as the emulator counted them)\n"
        f"dry run predicted {ours['dry_run_predicted_backup_calls']} backup calls; "
        f"made {ours['retrieve_calls']}. Backup holds {ours['activities_saved']} activities; "
        f"the emulator deleted {ours['activities_deleted']}; the saved ids are those of "
        f"the sheet's leads in the window, once each: {ours['saved_ids_are_the_window_s']}."
    )
    return out


def _backup_sheet(path: Path) -> tuple[Path, set[str]]:
    """The first data-set leads holding an activity of the codes in the window, so every
    request has something to read and delete (the leads as the emulator derives them), and
    the ids of those activities: what the backup should hold."""
    rng = random.Random("dataset-1")
    low, high = BACKUP_WINDOW[0], BACKUP_WINDOW[1] + " 23:59:59"
    chosen: list[str] = []
    expected: set[str] = set()
    for _ in range(BACKUP_LEADS):
        lead = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        inside = {
            activity["Id"]
            for activity in emulated_activities(lead, [])
            if activity["EventCode"] in BACKUP_CODES and low <= activity["CreatedOn"] <= high
        }
        if inside and len(chosen) < BACKUP_REQUESTS:
            chosen.append(lead)
            expected |= inside
    codes = ";".join(str(code) for code in BACKUP_CODES)
    with path.open("w") as handle:
        handle.write("ProspectId,ActivityEventList,FromDate,ToDate\n")
        for lead in chosen:
            handle.write(f"{lead},{codes},{BACKUP_WINDOW[0]},{BACKUP_WINDOW[1]}\n")
    return path, expected


def _predicted_backup_calls(text: str) -> int | None:
    found = re.search(r"about ([\d,]+) Retrieve call", text)
    return int(found.group(1).replace(",", "")) if found else None


def _logged_calls(checkpoint: Path) -> dict[str, Any]:
    """The calls the run recorded by kind; the rate is over backup reads and deletes (the
    start-up's one preflight call is left out, as the summary leaves it out)."""
    with sqlite3.connect(checkpoint) as db:
        rows = db.execute("SELECT kind, started, status FROM calls ORDER BY started").fetchall()
    starts = [started for kind, started, _ in rows if kind in ("backup", "delete")]
    span = starts[-1] - starts[0] if len(starts) > 1 else 0.0
    rate = (len(starts) - 1) / span if span else 0.0
    kinds: dict[str, int] = {}
    for kind, _, _ in rows:
        kinds[kind] = kinds.get(kind, 0) + 1
    return {
        "calls": len(starts),
        "by_kind": kinds,
        "refused": sum(1 for *_, status in rows if status == 429),
        "span": round(span, 2),
        "per_second": round(rate, 3),
        "share": round(rate / LIMIT, 4),
    }


def results(work: Path) -> dict[str, Any]:
    """Issue 22's figures: `python -m bench.results_report` (a report of 100,000 calls, a
    workbook of 100,000 requests, `bulk-delete report` on a checkpoint) as a section."""
    folder = work / "results"
    folder.mkdir()
    done = measure([PYTHON, "-m", "bench.results_report", str(folder)])
    print("\n## 9. Results: report and workbook of 100,000\n")
    print(done.stdout.rstrip())
    return {
        "exit_code": done.returncode,
        "lines": done.stdout.splitlines(),
        "wall_seconds": round(done.wall, 1),
        "peak_rss_mb": round(done.max_rss_mb),
    }


def million(work: Path) -> dict[str, Any]:
    """Issue 34's bar: `python -m bench.million_rows` (1,100,000 requests: the results
    workbook and `export -o x.xlsx`, each beside plain XlsxWriter in constant-memory mode)."""
    folder = work / "million"
    folder.mkdir()
    done = measure([PYTHON, "-m", "bench.million_rows", "1100000", str(folder)])
    print("\n## 11. 1,100,000 requests into .xlsx\n")
    print(done.stdout.rstrip())
    return {"exit_code": done.returncode, "lines": done.stdout.splitlines()}


SECTIONS = {
    "throughput": throughput,
    "coalescing": coalescing,
    "overhead": overhead,
    "scale": scale,
    "sharing": sharing,
    "discover": discover,
    "loader": loader,
    "bursty": bursty,
    "concurrent": concurrent,
    "allowance": allowance,
    "backup": backup,
    "results": results,
    "million": million,
    "moving": moving,
}


def main(argv: list[str]) -> int:
    wanted = argv or list(SECTIONS)
    unknown = [name for name in wanted if name not in SECTIONS]
    if unknown:
        print(f"unknown section(s) {unknown}; choose from {list(SECTIONS)}", file=sys.stderr)
        return 2
    RESULTS.mkdir(parents=True, exist_ok=True)
    latest = RESULTS / "latest.json"
    results: dict[str, Any] = json.loads(latest.read_text()) if latest.exists() else {}
    results |= {
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    began = time.monotonic()
    with tempfile.TemporaryDirectory() as scratch:
        for name in wanted:
            results[name] = SECTIONS[name](Path(scratch))
    results["total_seconds"] = round(time.monotonic() - began, 1)
    latest.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nAll figures: {latest} (this run: {results['total_seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
