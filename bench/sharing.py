"""Sections 5 and 8: bulk-delete on an account it shares, side by side with the two peers.

Section 5 (`sharing`) and (f) (`bursty`) give each client its own emulator, so its own window,
with the emulator's honest background integration (a fixed schedule, jittered latency) as the
neighbour; the neighbour's calls and refusals come from the emulator's per-caller stats, taken
just before and just after each client, so they cover that client's run only. (g)
(`concurrent`) runs two purges at once on one emulator; (h) (`allowance`) a daily allowance
smaller than the run. Every bulk-delete process gets its own state directory (the ledger)
unless the case is about sharing one, so the benches never touch the user's own ledger.
"""

from __future__ import annotations

import json
import os
import sqlite3
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bulk_delete.config import RateLimit
from bulk_delete.emulator.knobs import EmulatorConfig, background_share, parse_background
from bulk_delete.emulator.server import NEXT_DAY_PATH
from bulk_delete.store.ledger import FILE_NAME as LEDGER_FILE

from .common import KEYS, PYTHON, ROOT, Emulator, Measured, leads_csv, measure, table

CLI = [PYTHON, "-m", "bulk_delete"]
LATENCY = ("--latency", "0.15", "--jitter", "0.05", "--seed", "1")
CLIENTS = ("bulk-delete", "hand-written loop", "aiolimiter script")
NEIGHBOUR = ("--background", "10/5s")
BURSTY = ("--background", "10/5s,burst=5")
NO_COUNT = ("--no-count-refusals",)

# name, emulator knobs, requests, calls/s available to us, our extra options, peers' calls/5 s
Situation = tuple[str, tuple[str, ...], int, float, tuple[str, ...], int]
SHARING: list[Situation] = [
    ("(a) idle account, 25/5s", ("--rate", "25/5s"), 150, 25 / 5, (), 25),
    ("(b) real limit 10/5s, configured 25/5s", ("--rate", "10/5s"), 80, 10 / 5, (), 25),
    (
        "(c) 403-style refusals at 10/5s",
        ("--rate", "10/5s", "--limit-status", "403"),
        60,
        10 / 5,
        (),
        25,
    ),
    (
        "(d) a steady neighbour spends 10 of 25 per 5 s, refusals count",
        ("--rate", "25/5s", *NEIGHBOUR),
        120,
        15 / 5,
        (),
        25,
    ),
    (
        "(d') as (d), refusals don't count",
        ("--rate", "25/5s", *NEIGHBOUR, *NO_COUNT),
        120,
        15 / 5,
        (),
        25,
    ),
    (
        "(e) as (d), with --share 0.6 (peers set to 15/5s)",
        ("--rate", "25/5s", *NEIGHBOUR),
        120,
        15 / 5,
        ("--share", "0.6"),
        15,
    ),
]

BURSTS: list[Situation] = [
    (
        "(f) a bursty neighbour (10 per 5 s, 5 at once), refusals count",
        ("--rate", "25/5s", *BURSTY),
        120,
        15 / 5,
        (),
        25,
    ),
    (
        "(f') as (f), refusals don't count",
        ("--rate", "25/5s", *BURSTY, *NO_COUNT),
        120,
        15 / 5,
        (),
        25,
    ),
]


def ours(sheet: Path, checkpoint: Path, summary: Path, *extra: str) -> list[str]:
    return [
        *CLI,
        "run",
        str(sheet),
        "--checkpoint",
        str(checkpoint),
        "--yes",
        "--open-window",  # the bench sheets have no dates
        "--quiet",
        "--codes",
        "201",
        "--summary-json",
        str(summary),
        *extra,
    ]


def loop(url: str, sheet: Path, calls: int, max_seconds: int = 300) -> list[str]:
    return [
        PYTHON,
        str(ROOT / "bench" / "baseline_loop.py"),
        url,
        str(sheet),
        "--calls",
        str(calls),
        "--max-seconds",
        str(max_seconds),
    ]


def aiolimiter(url: str, sheet: Path, calls: int) -> list[str]:
    return [
        PYTHON,
        str(ROOT / "bench" / "baseline_aiolimiter.py"),
        url,
        str(sheet),
        "--calls",
        str(calls),
    ]


def env_for(url: str, state: Path | None = None) -> dict[str, str]:
    """The demo keys, the emulator as host, and a state directory of the bench's own."""
    return {**KEYS, "LSQ_HOST": url, **({"XDG_STATE_HOME": str(state)} if state else {})}


def _watched(emulator: Emulator, command: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Runs one client; the emulator's stats just before and after it (the neighbour runs
    from the emulator's start, so only the difference belongs to this client's run)."""
    before = emulator.stats()
    result = measure(command, env=env)
    return {"result": result, "before": before, "after": emulator.stats()}


def _caller(stat: dict[str, Any], caller: str) -> dict[str, int]:
    return stat["callers"].get(caller, {"calls": 0, "refused": 0})  # type: ignore[no-any-return]


def _side_by_side(
    work: Path,
    situations: list[Situation],
    tag: str,
) -> tuple[dict[str, Any], list[list[Any]]]:
    out: dict[str, Any] = {}
    rows = []
    for number, (name, knobs, count, available, extra, peer_calls) in enumerate(situations):
        sheet = leads_csv(work / f"{tag}-{count}.csv", count)
        emulators = [Emulator(*knobs, *LATENCY) for _ in range(3)]
        try:
            urls = [e.url for e in emulators]
            summary = work / f"{tag}-summary-{number}.json"
            checkpoint = work / f"{tag}-{number}.sqlite"
            commands = [
                ours(sheet, checkpoint, summary, *extra),
                loop(urls[1], sheet, peer_calls),
                aiolimiter(urls[2], sheet, peer_calls),
            ]
            envs = [
                env_for(urls[0], work / f"{tag}-state-{number}"),
                env_for(urls[1]),
                env_for(urls[2]),
            ]
            with ThreadPoolExecutor(3) as pool:
                done = list(pool.map(_watched, emulators, commands, envs))
        finally:
            for e in emulators:
                e.stop()
        for client, seen in zip(CLIENTS, done, strict=True):
            result: Measured = seen["result"]
            stat, before = seen["after"], seen["before"]
            refused = stat["outcomes"].get("rate_limited", 0)
            neighbour_calls = (
                _caller(stat, "background")["calls"] - _caller(before, "background")["calls"]
            )
            neighbour_refused = (
                _caller(stat, "background")["refused"] - _caller(before, "background")["refused"]
            )
            entry = {
                "accepted": stat["outcomes"].get("queued", 0),
                "requests": count,
                "exit_code": result.returncode,
                "share_of_available": round(stat["accepted_per_second"] / available, 4),
                "refusals_to_us": refused,
                "neighbour_calls": neighbour_calls,
                "neighbour_refusals": neighbour_refused,
                "neighbour_lost": round(neighbour_refused / neighbour_calls, 4)
                if neighbour_calls
                else 0.0,
                "refusals_on_the_account": refused + neighbour_refused,
                "max_calls_in_window": stat["max_calls_in_window"],
                "wall_seconds": round(result.wall, 1),
            }
            out[f"{name} — {client}"] = entry
            lost = count - entry["accepted"]
            # A client that drops refused deletes has no rate worth comparing: say what it lost.
            share = f"{entry['share_of_available']:.1%}" if not lost else f"lost {lost} deletes"
            neighbour = (
                f"{neighbour_refused}/{neighbour_calls} ({entry['neighbour_lost']:.1%})"
                if neighbour_calls
                else "–"
            )
            rows.append(
                [
                    name,
                    client,
                    f"{entry['accepted']}/{count}"
                    + (f" (exit {result.returncode})" if result.returncode else ""),
                    share,
                    refused,
                    neighbour,
                    entry["refusals_on_the_account"],
                    f"{result.wall:.0f} s",
                ]
            )
    return out, rows


SIDE_BY_SIDE_HEADERS = [
    "situation",
    "client",
    "accepted",
    "accepted/s vs available",
    "refusals to us",
    "neighbour refused/calls (lost)",
    "refusals on the account",
    "wall",
]


def sharing(work: Path) -> dict[str, Any]:
    """Issue 11's situations with issue 20's honest neighbour, each client on its own emulator."""
    out, rows = _side_by_side(work, SHARING, "share")
    print("\n## 5. Sharing a real account (150 ms median latency)\n")
    print(table(SIDE_BY_SIDE_HEADERS, rows))
    return out


def bursty(work: Path) -> dict[str, Any]:
    """(f): the neighbour sends its 10 calls per 5 s five at once, both counting modes."""
    out, rows = _side_by_side(work, BURSTS, "burst")
    print("\n## 8 (f). A bursty neighbour (150 ms median latency)\n")
    print(table(SIDE_BY_SIDE_HEADERS, rows))
    return out


CONCURRENT_REQUESTS = 60  # each
CONCURRENT_LIMIT = 25 / 5
BESIDE = "(g′) two purges, one ledger, beside a steady neighbour"
BESIDE_AVAILABLE = 15 / 5  # what the neighbour's 10 of 25/5s leaves


def concurrent(work: Path) -> dict[str, Any]:
    """(g): two purges at once on one account (one emulator at 25/5s), 60 requests each:
    sharing one state directory (the ledger), each its own (no ledger), and two of each peer;
    (g′) two sharing one ledger beside the steady neighbour of (d), their rate together against
    the 15 calls a window it leaves."""
    sheets = [
        leads_csv(work / f"two-{n}.csv", CONCURRENT_REQUESTS, first=n * CONCURRENT_REQUESTS)
        for n in range(2)
    ]
    out: dict[str, Any] = {}
    rows = []
    for case in ("bulk-delete, one ledger", "bulk-delete, no ledger", *CLIENTS[1:], BESIDE):
        beside = case == BESIDE
        with Emulator("--rate", "25/5s", *(NEIGHBOUR if beside else ()), *LATENCY) as emulator:
            tag = "beside" if beside else case.split(",")[-1].strip().replace(" ", "-")
            if case.startswith("bulk-delete") or beside:
                shared = case.endswith("one ledger") or beside
                commands = [
                    ours(sheets[n], work / f"two-{tag}-{n}.sqlite", work / f"two-{tag}-{n}.json")
                    for n in range(2)
                ]
                envs = [
                    env_for(emulator.url, work / f"two-{tag}-state-{0 if shared else n}")
                    for n in range(2)
                ]
            elif case == CLIENTS[1]:
                commands = [loop(emulator.url, sheets[n], 25) for n in range(2)]
                envs = [env_for(emulator.url)] * 2
            else:
                commands = [aiolimiter(emulator.url, sheets[n], 25) for n in range(2)]
                envs = [env_for(emulator.url)] * 2
            before = emulator.stats()
            with ThreadPoolExecutor(2) as pool:
                done = list(pool.map(lambda c, e: measure(c, env=e), commands, envs))
            stat = emulator.stats()
        runs = []
        for n, result in enumerate(done):
            if case.startswith("bulk-delete") or beside:
                summary = json.loads((work / f"two-{tag}-{n}.json").read_text())
                run = summary["this_run"]
                runs.append(
                    {
                        "exit_code": result.returncode,
                        "queued": run["queued"],
                        "calls_per_second": run["calls_per_second"] or 0.0,
                        "refusals": run["rate_limited_429"],
                        "shared_with": summary.get("shared_with", []),
                        "wall_seconds": round(result.wall, 1),
                    }
                )
            else:
                answer = json.loads(result.stdout.strip().splitlines()[-1])
                statuses = {int(k): v for k, v in answer["statuses"].items()}
                calls = sum(statuses.values())
                runs.append(
                    {
                        "exit_code": result.returncode,
                        "queued": statuses.get(200, 0),
                        "calls_per_second": calls / answer["seconds"] if answer["seconds"] else 0.0,
                        "refusals": statuses.get(429, 0),
                        "wall_seconds": round(result.wall, 1),
                    }
                )
        rate_sum = sum(r["calls_per_second"] for r in runs)
        entry = {
            "runs": runs,
            "sum_of_rates_share_of_limit": round(rate_sum / CONCURRENT_LIMIT, 4),
            "accepted_per_second_share_of_limit": round(
                stat["accepted_per_second"] / CONCURRENT_LIMIT, 4
            ),
            "accepted": stat["outcomes"].get("queued", 0),
            "refusals": stat["outcomes"].get("rate_limited", 0),
            "max_calls_in_window": stat["max_calls_in_window"],
        }
        neighbour = "–"
        if beside:
            calls, refused = (
                _caller(stat, "background")[key] - _caller(before, "background")[key]
                for key in ("calls", "refused")
            )
            entry["accepted_per_second_share_of_available"] = round(
                stat["accepted_per_second"] / BESIDE_AVAILABLE, 4
            )
            entry["neighbour_calls"], entry["neighbour_refusals"] = calls, refused
            entry["neighbour_lost"] = round(refused / calls, 4) if calls else 0.0
            neighbour = f"{refused}/{calls} ({entry['neighbour_lost']:.1%})"
        out[case] = entry
        lost = 2 * CONCURRENT_REQUESTS - entry["accepted"]
        together = (
            f"{entry['accepted_per_second_share_of_available']:.1%} of the 15 left"
            if beside
            else f"{entry['accepted_per_second_share_of_limit']:.1%}"
        )
        rows.append(
            [
                case,
                " / ".join(
                    f"{r['queued']}/{CONCURRENT_REQUESTS}"
                    + (f" (exit {r['exit_code']})" if r["exit_code"] else "")
                    for r in runs
                ),
                " / ".join(f"{r['calls_per_second']:.2f}/s" for r in runs),
                # A client that drops refused deletes has no rate worth comparing.
                f"{entry['sum_of_rates_share_of_limit']:.1%}" if not lost else "–",
                together if not lost else f"lost {lost} deletes",
                " / ".join(str(r["refusals"]) for r in runs),
                neighbour,
                stat["max_calls_in_window"],
                " / ".join(f"{r['wall_seconds']:.0f} s" for r in runs),
            ]
        )
    print("\n## 8 (g). Two purges at once on one account (25/5s, 60 requests each)\n")
    print(
        table(
            [
                "case",
                "accepted (each)",
                "call starts/s (each)",
                "sum of rates vs limit",
                "accepted/s on the account vs limit",
                "refusals (each)",
                "neighbour refused/calls (lost)",
                "most calls in a 5 s window",
                "wall (each)",
            ],
            rows,
        )
    )
    return out


DAILY_LIMIT = 50
DAILY_REQUESTS = 120


RESET_DAYS = 3  # 120 deletes and a preflight a day: three days of 50


def _rerun(
    emulator: Emulator, command: list[str], env: dict[str, str], summary: Path
) -> dict[str, Any]:
    """The same command again: its exit, the calls the emulator saw (the preflight included),
    and what its summary JSON says."""
    before = emulator.stats()["calls"]
    result = measure(command, env=env)
    written = json.loads(summary.read_text())
    return {
        "exit_code": result.returncode,
        "calls": emulator.stats()["calls"] - before,
        "deletes": written["this_run"]["calls"],
        "pending": written["totals"]["pending"],
    }


def _said(run: dict[str, Any]) -> str:
    return (
        f"exit {run['exit_code']}, {run['calls']} calls ({run['deletes']} deletes), "
        f"{run['pending']} pending"
    )


def next_day(emulator: Emulator, state: Path) -> None:
    """Midnight UTC for both ends, without waiting for it: the emulator's allowance day moves
    on (its control path), and the ledger's count of today's calls in this run's state
    directory becomes yesterday's, which is all midnight does to it (store/ledger.py)."""
    ask = urllib.request.Request(emulator.url + NEXT_DAY_PATH, method="POST")  # noqa: S310
    with urllib.request.urlopen(ask):  # noqa: S310 (the bench's own emulator, http)
        pass
    ledger = state / "bulk-delete" / LEDGER_FILE
    if ledger.is_file():
        with sqlite3.connect(ledger) as db:
            db.execute("UPDATE days SET day = day - 1")


def allowance(work: Path) -> dict[str, Any]:
    """(h): a daily allowance of 50 calls and a 120-request run. bulk-delete by default (it
    learns the allowance from the refusal) and with --daily-limit 50 (its ledger stops it
    first), each rerun at once (the allowance has not reset), then again after ``next_day``;
    the peers against the same."""
    sheet = leads_csv(work / "daily.csv", DAILY_REQUESTS)
    knobs = ("--rate", "25/5s", "--daily-limit", str(DAILY_LIMIT), *LATENCY)
    cases = ("bulk-delete", "bulk-delete --daily-limit 50", *CLIENTS[1:])
    emulators = [Emulator(*knobs) for _ in cases]
    try:
        commands, envs = [], []
        for n, (case, emulator) in enumerate(zip(cases, emulators, strict=True)):
            if case.startswith("bulk-delete"):
                extra = ("--daily-limit", str(DAILY_LIMIT)) if "--daily" in case else ()
                commands.append(
                    ours(sheet, work / f"daily-{n}.sqlite", work / f"daily-{n}.json", *extra)
                )
                envs.append(env_for(emulator.url, work / f"daily-state-{n}"))
            elif case == CLIENTS[1]:
                commands.append(loop(emulator.url, sheet, 25, max_seconds=60))
                envs.append(env_for(emulator.url))
            else:
                commands.append(aiolimiter(emulator.url, sheet, 25))
                envs.append(env_for(emulator.url))
        with ThreadPoolExecutor(len(cases)) as pool:
            done = list(pool.map(lambda c, e: measure(c, env=e), commands, envs))
        first = [e.stats() for e in emulators]
        # The first run's summaries, read before the reruns write theirs over them.
        summaries = [
            json.loads((work / f"daily-{n}.json").read_text())
            if case.startswith("bulk-delete")
            else {}
            for n, case in enumerate(cases)
        ]
        reruns: list[dict[str, Any] | None] = []
        days: list[list[dict[str, Any]]] = []
        for n, case in enumerate(cases):
            if not case.startswith("bulk-delete"):
                reruns.append(None)
                days.append([])
                continue
            summary = work / f"daily-{n}.json"
            reruns.append(_rerun(emulators[n], commands[n], envs[n], summary))  # at once
            days.append([])
            while len(days[n]) < RESET_DAYS and (not days[n] or days[n][-1]["exit_code"]):
                next_day(emulators[n], work / f"daily-state-{n}")  # the allowance resets
                days[n].append(_rerun(emulators[n], commands[n], envs[n], summary))
        last = [e.stats() for e in emulators]
    finally:
        for e in emulators:
            e.stop()
    out: dict[str, Any] = {}
    rows = []
    for n, case in enumerate(cases):
        stat, result = first[n], done[n]
        refused_daily = stat["outcomes"].get("allowance_used", 0)
        entry: dict[str, Any] = {
            "exit_code": result.returncode,
            "calls": stat["calls"],  # every API call, the preflight included
            "accepted": stat["outcomes"].get("queued", 0),
            "allowance_refusals": refused_daily,
            "calls_after_the_first_allowance_refusal": max(0, refused_daily - 1),
            "rate_refusals": stat["outcomes"].get("rate_limited", 0),
            "wall_seconds": round(result.wall, 1),
        }
        rerun = reruns[n]
        if rerun is not None:
            summary = summaries[n]
            entry["summary_error"] = summary.get("error", "")
            entry["pending"] = summary["totals"]["pending"]
            entry["rerun_at_once"] = rerun
            entry["reruns_after_reset"] = days[n]
            entry["leads_deleted"] = last[n]["leads_deleted"]
            entry["leads_deleted_twice"] = last[n]["leads_deleted_twice"]
        out[case] = entry
        rows.append(
            [
                case,
                result.returncode,
                entry["calls"],
                entry["accepted"],
                refused_daily,
                entry["calls_after_the_first_allowance_refusal"],
                f"{entry['pending']} pending"
                if rerun is not None
                else f"lost {DAILY_REQUESTS - entry['accepted']}",
                entry.get("summary_error", "–") or "–",
                _said(rerun) if rerun else "–",
                "; ".join(f"day {d + 2}: {_said(day)}" for d, day in enumerate(days[n]))
                + f" → {entry['leads_deleted']} leads deleted, {entry['leads_deleted_twice']} twice"
                if rerun
                else "–",
                f"{result.wall:.0f} s",
            ]
        )
    print("\n## 8 (h). A daily allowance of 50 calls, 120 requests (25/5s)\n")
    print(
        table(
            [
                "client",
                "exit",
                "calls (preflight incl.)",
                "accepted",
                "refusals naming 86400 s",
                "calls after the first of them",
                "the rest",
                "summary `error`",
                "rerun at once",
                "reruns after each reset",
                "wall",
            ],
            rows,
        )
    )
    return out


# ------------------------------------------------------------------ issue 30: a load that moves

REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))
FAULTS = ("--transient-rate", "0.04", "--html-rate", "0.02", "--drop-rate", "0.02")
STOPS_AT = 60.0  # seconds after the emulator starts: (i') the steady neighbour stops

# name, emulator knobs, requests, the clients that run it (ours alone, or side by side)
Moving = tuple[str, tuple[str, ...], int, tuple[str, ...]]
MOVING: list[Moving] = [
    (
        "(i) a neighbour that comes and goes (10/5s, 40 s on, 40 s off), refusals count",
        ("--rate", "25/5s", "--background", "10/5s,on=40,off=40"),
        800,
        CLIENTS,
    ),
    (
        f"(i') a steady 10/5s neighbour that stops {STOPS_AT:g} s in",
        ("--rate", "25/5s", "--background", f"10/5s,until={STOPS_AT:g}"),
        300,
        CLIENTS[:1],
    ),
    ("(j) an idle account, transient faults, 25/1s", ("--rate", "25/1s", *FAULTS), 600, CLIENTS),
    ("(j) an idle account, transient faults, 25/5s", ("--rate", "25/5s", *FAULTS), 300, CLIENTS),
    (
        "(k) a neighbour ramping from 0 to 15/5s and back over 5 minutes",
        ("--rate", "25/5s", "--background", "15/5s,ramp=300"),
        1000,
        CLIENTS,
    ),
]


def _free_over(knobs: tuple[str, ...], stat: dict[str, Any]) -> float:
    """What the background left of the limit (calls/s), on average over the client's span of
    accepted calls (the emulator's wall times)."""
    limit = RateLimit.parse(knobs[knobs.index("--rate") + 1])
    if "--background" not in knobs:
        return limit.per_second
    config = EmulatorConfig(**parse_background(knobs[knobs.index("--background") + 1]))
    first, last = stat["first_accepted_wall"], stat["last_accepted_wall"]
    began = stat["background"]["began_wall"]
    assert config.background is not None
    assert None not in (first, last, began)
    steps = max(1, int((last - first) / 0.1))
    spent = sum(
        background_share(config, first - began + (k + 0.5) * (last - first) / steps)
        for k in range(steps)
    )
    return limit.per_second - config.background.per_second * spent / steps


def _call_log(checkpoint: Path) -> list[tuple[float, int | None, int]]:
    """The deletes' attempts as our run recorded them: (started, HTTP status, attempt)."""
    with sqlite3.connect(checkpoint) as db:
        return db.execute(
            "SELECT started, status, attempt FROM calls WHERE kind = 'delete' ORDER BY started"
        ).fetchall()


def _pace_while_busy(calls: list[tuple[float, int | None, int]], limit: float) -> float:
    """Our calls a second (every attempt: the server counted each) until the last request's
    first call, against the limit: after it only a few retries wait out their backoff."""
    starts = [started for started, _, _ in calls]
    busy = max(started for started, _, attempt in calls if attempt == 1)
    inside = [started for started in starts if started <= busy]
    return (len(inside) - 1) / (busy - inside[0]) / limit if busy > inside[0] else 0.0


def _back_at(calls: list[tuple[float, int | None, int]], after: float, need: int) -> float:
    """Seconds from ``after`` (wall) until a 5 s window of our accepted calls holds ``need``."""
    times = [started for started, status, _ in calls if status == 200 and started > after]
    for last in range(need - 1, len(times)):
        if times[last] - times[last - need + 1] < 5.0:
            return times[last] - after
    return float("inf")


def _moving_run(work: Path, situation: Moving, repeat: int) -> list[dict[str, Any]]:
    """One repeat of a situation: each client on its own emulator, at once."""
    name, knobs, count, clients = situation
    tag = f"moving-{abs(hash(name)) % 10_000}-{repeat}"
    sheet = leads_csv(work / f"{tag}.csv", count)
    limit = RateLimit.parse(knobs[knobs.index("--rate") + 1])
    period = ("--period", f"{limit.period:g}")
    emulators = [Emulator(*knobs, *LATENCY) for _ in clients]
    try:
        checkpoint = work / f"{tag}.sqlite"
        commands = [ours(sheet, checkpoint, work / f"{tag}.json", "--rate", str(limit))]
        if len(clients) > 1:
            seconds = int(count / limit.per_second * 2) + 60
            commands += [
                [*loop(emulators[1].url, sheet, limit.calls, seconds), *period],
                [*aiolimiter(emulators[2].url, sheet, limit.calls), *period],
            ]
        envs = [env_for(emulators[0].url, work / f"{tag}-state")]
        envs += [env_for(e.url) for e in emulators[1:]]
        with ThreadPoolExecutor(len(clients)) as pool:
            done = list(pool.map(_watched, emulators, commands, envs))
    finally:
        for e in emulators:
            e.stop()
    rows = []
    for client, seen in zip(clients, done, strict=True):
        stat, before = seen["after"], seen["before"]
        calls = _caller(stat, "background")["calls"] - _caller(before, "background")["calls"]
        refused = _caller(stat, "background")["refused"] - _caller(before, "background")["refused"]
        accepted = stat["outcomes"].get("queued", 0)
        entry: dict[str, Any] = {
            "client": client,
            "exit_code": seen["result"].returncode,
            "accepted": accepted,
            "requests": count,
            "refusals_to_us": stat["outcomes"].get("rate_limited", 0),
            "neighbour_calls": calls,
            "neighbour_refused": refused,
            "share_of_free": stat["accepted_per_second"] / _free_over(knobs, stat)
            if accepted > 1
            else 0.0,
            "wall_seconds": round(seen["result"].wall, 1),
        }
        if client == CLIENTS[0]:
            log = _call_log(checkpoint)
            entry["pace_while_busy"] = _pace_while_busy(log, limit.per_second)
            began = stat["background"]["began_wall"]
            if "until=" in " ".join(knobs) and began is not None:
                entry["back_at_90_percent_s"] = _back_at(log, began + STOPS_AT, 23)
        rows.append(entry)
    return rows


def _spread(values: list[float], style: str = "{:.1%}") -> str:
    low, high = min(values), max(values)
    return style.format(low) if low == high else f"{style.format(low)}–{style.format(high)}"


def moving(work: Path) -> dict[str, Any]:
    """Issue 30: (i) a neighbour that comes and goes, (i') a steady one that stops, (j) an idle
    account with transient faults at 25/1s and 25/5s, (k) a ramp over five minutes; each side
    by side with the peers (each on its own emulator), BENCH_REPEATS times (default 3)."""
    out: dict[str, Any] = {"repeats": REPEATS}
    rows = []
    for situation in MOVING:
        runs = [_moving_run(work, situation, repeat) for repeat in range(REPEATS)]
        out[situation[0]] = runs
        for index, client in enumerate(situation[3]):
            mine = [repeat[index] for repeat in runs]
            lost = [e["requests"] - e["accepted"] for e in mine]
            share = (
                _spread([e["share_of_free"] for e in mine])
                if not any(lost)
                else f"lost {_spread(lost, '{:d}')} deletes"
            )
            neighbour = (
                _spread([e["neighbour_refused"] / e["neighbour_calls"] for e in mine])
                + f" ({_spread([e['neighbour_refused'] for e in mine], '{:d}')} of "
                + f"{_spread([e['neighbour_calls'] for e in mine], '{:d}')})"
                if all(e["neighbour_calls"] for e in mine)
                else "–"
            )
            extra = "–"
            if "pace_while_busy" in mine[0]:
                extra = f"pace {_spread([e['pace_while_busy'] for e in mine])} of the limit"
            if "back_at_90_percent_s" in mine[0]:
                back = _spread([e["back_at_90_percent_s"] for e in mine], "{:.0f}")
                extra += f"; 90 % of the limit {back} s after it stopped"
            rows.append(
                [
                    situation[0],
                    client,
                    share,
                    _spread([e["refusals_to_us"] for e in mine], "{:d}"),
                    neighbour,
                    extra,
                    _spread([e["wall_seconds"] for e in mine], "{:.0f}") + " s",
                ]
            )
    print(f"\n## 11. A load that moves (issue 30; 150 ms median latency; {REPEATS} runs each)\n")
    print(
        table(
            [
                "situation",
                "client",
                "accepted/s vs what is free",
                "refusals to us",
                "neighbour lost (refused of calls)",
                "bulk-delete's pace / recovery",
                "wall",
            ],
            rows,
        )
    )
    return out
