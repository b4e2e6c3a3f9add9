"""`bulk-delete run` end to end against the emulator on loopback: in-process through the CLI
(or the core itself), and as a real process only where a process is the point: signals,
kill -9 and a terminal."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bulk_delete.commands import run
from bulk_delete.commands.spec import RunSpec
from bulk_delete.config import Credentials, RateLimit
from bulk_delete.emulator.server import DEMO_ACCESS_KEY, DEMO_SECRET_KEY
from bulk_delete.plan import build

from ..conftest import demo_env, leads_csv, run_cli, send_sheet, start_cli, until
from ..helpers import QuickClock

DEMO_KEYS = Credentials(access_key=DEMO_ACCESS_KEY, secret_key=DEMO_SECRET_KEY)


def sent(emu: Any) -> Counter[str]:
    return Counter(record["ProspectId"] for record in emu.records)


async def test_clean_run_with_faults_queues_every_request_exactly_once(
    emulator: Any, tmp_path: Path
) -> None:
    """The async core awaited directly, with backoff on a quick clock."""
    emu = await emulator(
        rate="off", latency=0.01, transient_rate=0.1, html_rate=0.05, drop_rate=0.05, seed=5
    )
    spec = RunSpec.from_values(
        {
            "input": str(leads_csv(tmp_path / "leads.csv", 80)),
            "checkpoint": str(tmp_path / "c.sqlite"),
            "host": emu.url,
            "rate": "off",
            "max_attempts": 20,  # a 20 % fault rate must not fail a request by bad luck
            "open_window": True,  # the sheet has no dates: this tests the sending
        }
    )
    asked: list[run.Confirmation] = []

    def confirm(confirmation: run.Confirmation) -> bool:
        asked.append(confirmation)
        return True

    hooks = run.RunHooks(confirm=confirm)
    async with aiohttp.ClientSession() as session:
        summary = await run.run(
            spec, DEMO_KEYS, session=session, rng=random.Random(), hooks=hooks, clock=QuickClock()
        )
    assert asked == [run.Confirmation(requests=80, leads=80, host=emu.url)]
    assert summary.totals.complete
    assert len(sent(emu)) == 80
    assert set(sent(emu).values()) == {1}
    assert summary.totals.queued == 80
    assert summary.this_run.calls > 80  # the faults were retried
    assert summary.to_json()["totals"]["queued"] == 80


async def test_exit_1_with_invalid_rows_and_mx_failures_sent_once(
    emulator: Any, tmp_path: Path
) -> None:
    emu = await emulator(rate="off")
    sheet = leads_csv(
        tmp_path / "leads.csv",
        5,
        extra_rows="not-a-guid,201\n00000000-0000-4000-8000-000000000099,12\n",
    )
    done = await send_sheet(emu, sheet, tmp_path / "c.sqlite", "--rate", "off")
    assert done.returncode == 1
    assert emu.stats()["outcomes"] == {"user": 1, "queued": 5, "app_error": 1}  # MX: sent once
    assert "row 7: ProspectId 'not-a-guid' is not a GUID" in done.stdout
    assert "[permanent]" in done.stdout


async def test_401_stops_quickly_with_exit_3_and_stays_resumable(
    emulator: Any, tmp_path: Path
) -> None:
    emu = await emulator(rate="off")
    sheet = leads_csv(tmp_path / "leads.csv", 200)
    env = {**demo_env(emu.url), "LSQ_SECRET_KEY": "wrong-secret"}
    checkpoint = tmp_path / "c.sqlite"
    done = await send_sheet(emu, sheet, checkpoint, "--rate", "off", "--concurrency", "4", env=env)
    assert done.returncode == 3
    assert "HTTP 401" in done.stderr
    assert "LSQ_ACCESS_KEY" in done.stderr
    assert emu.stats()["outcomes"]["unauthorized"] <= 4
    assert "wrong-secret" not in done.stdout + done.stderr
    done = await send_sheet(emu, sheet, checkpoint, "--rate", "off")
    assert done.returncode == 0
    assert len(emu.records) == 200


@pytest.mark.e2e
async def test_kill_9_then_rerun_loses_nothing(emulator: Any, tmp_path: Path) -> None:
    emu = await emulator(rate="off", latency=0.02)
    sheet = leads_csv(tmp_path / "leads.csv", 400)
    checkpoint = tmp_path / "c.sqlite"
    args = [
        "run",
        str(sheet),
        "--checkpoint",
        str(checkpoint),
        "--yes",
        "--open-window",
        "--rate",
        "60/1s",
        "--concurrency",
        "4",
    ]
    process = await start_cli(*args, env=demo_env(emu.url))
    await until(lambda: len(emu.records) >= 20, process)
    process.kill()
    await process.wait()
    with sqlite3.connect(checkpoint) as db:
        queued_before = db.execute(
            "SELECT COUNT(*) FROM requests WHERE status = 'queued'"
        ).fetchone()[0]
    accepted_before = len(emu.records)
    assert 0 < queued_before <= accepted_before
    # The rerun, in-process and at full speed (another --rate may resume a checkpoint).
    done = await run_cli(*args[:-4], "--rate", "off", "--concurrency", "4", env=demo_env(emu.url))
    assert done.returncode == 0, done.stderr
    assert len(sent(emu)) == 400
    resent = len(emu.records) - 400
    assert resent == accepted_before - queued_before  # only calls whose answer was not recorded
    assert resent <= 4  # … which is at most what was in flight


@pytest.mark.e2e
async def test_sigterm_exits_130_and_resume_sends_nothing_twice(
    emulator: Any, tmp_path: Path
) -> None:
    emu = await emulator(rate="off", latency=0.3)
    sheet = leads_csv(tmp_path / "leads.csv", 150)
    args = [
        "run",
        str(sheet),
        "--checkpoint",
        str(tmp_path / "c.sqlite"),
        "--yes",
        "--open-window",
        "--rate",
        "30/1s",
    ]
    process = await start_cli(*args, env=demo_env(emu.url))
    await until(lambda: len(emu.records) >= 20, process)
    process.send_signal(signal.SIGTERM)
    _out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 130
    assert "Rerun the same command to resume" in err.decode()
    done = await run_cli(*args[:-2], "--rate", "off", env=demo_env(emu.url))
    assert done.returncode == 0
    assert len(emu.records) == 150
    assert set(sent(emu).values()) == {1}


@pytest.mark.e2e
async def test_limiter_holds_the_emulators_strict_window(emulator: Any, tmp_path: Path) -> None:
    emu = await emulator(rate="10/0.5s", latency=0.05, jitter=0.05)  # half-second windows
    sheet = leads_csv(tmp_path / "leads.csv", 25)
    done = await send_sheet(emu, sheet, tmp_path / "c.sqlite", "--rate", "10/0.5s")
    assert done.returncode == 0
    stats = emu.stats()
    assert stats["outcomes"] == {"user": 1, "queued": 25}  # the preflight, the deletes, no 429
    assert stats["max_calls_in_window"] <= 10


async def test_429_from_another_integration_is_waited_out(emulator: Any, tmp_path: Path) -> None:
    # 3 of the 5 a window; quarter-second windows: the same refusals, a quarter of the wait
    emu = await emulator(
        rate="5/0.25s", background=RateLimit.parse("3/0.25s"), background_jitter=0.01
    )
    sheet = leads_csv(tmp_path / "leads.csv", 8)
    done = await send_sheet(
        emu,
        sheet,
        tmp_path / "c.sqlite",
        "--rate",
        "5/0.25s",
        "--summary-json",
        str(tmp_path / "s.json"),
    )
    assert done.returncode == 0, done.stderr
    facts = json.loads((tmp_path / "s.json").read_text())
    assert facts["this_run"]["rate_limited_429"] >= 1
    assert facts["totals"]["queued"] == 8
    assert len(emu.records) == 8


async def test_resume_refuses_another_input(emulator: Any, tmp_path: Path) -> None:
    emu = await emulator(rate="off")
    first, second = leads_csv(tmp_path / "a.csv", 3), leads_csv(tmp_path / "b.csv", 3, start=10)
    checkpoint = tmp_path / "c.sqlite"
    assert (await send_sheet(emu, first, checkpoint, "--rate", "off")).returncode == 0
    done = await send_sheet(emu, second, checkpoint)
    assert done.returncode == 2
    assert "a.csv" in done.stderr
    assert "b.csv" in done.stderr
    done = await send_sheet(emu, first, checkpoint, "--codes", "5")
    assert done.returncode == 2
    assert "other options (codes)" in done.stderr
    assert len(emu.records) == 3


async def test_usage_errors_exit_2_before_any_call(emulator: Any, tmp_path: Path) -> None:
    emu = await emulator(rate="off")
    sheet = str(leads_csv(tmp_path / "leads.csv", 3))
    checkpoint = str(tmp_path / "c.sqlite")
    no_keys = {"LSQ_HOST": emu.url, "LSQ_ACCESS_KEY": "", "LSQ_SECRET_KEY": ""}
    cases = [
        (
            ("run", sheet, "--checkpoint", checkpoint, "--yes"),
            no_keys,
            "LSQ_ACCESS_KEY and LSQ_SECRET_KEY",
        ),
        (
            ("run", sheet, "--checkpoint", checkpoint, "--yes"),
            {**demo_env(emu.url), "LSQ_HOST": ""},
            "no host",
        ),
        (
            ("run", sheet, "--checkpoint", checkpoint, "--open-window"),
            demo_env(emu.url),
            "pass --yes",  # no TTY
        ),
        (
            ("run", sheet, "--checkpoint", checkpoint, "--yes", "--rate", "9 per s"),
            demo_env(emu.url),
            "rate",
        ),
        (
            ("run", str(tmp_path / "missing.csv"), "--checkpoint", checkpoint, "--yes"),
            demo_env(emu.url),
            "no such file",
        ),
    ]
    for args, env, message in cases:
        done = await run_cli(*args, env=env)
        assert done.returncode == 2, (args, done.stderr)
        assert message in done.stderr
        assert "Traceback" not in done.stderr
    assert emu.calls == 0


async def test_dry_run_is_plan_and_sends_nothing(emulator: Any, tmp_path: Path) -> None:
    emu = await emulator(rate="off")
    sheet = str(leads_csv(tmp_path / "leads.csv", 3))
    done = await run_cli(
        "run", sheet, "--checkpoint", str(tmp_path / "c.sqlite"), "--dry-run", env=demo_env(emu.url)
    )
    plan = await run_cli("plan", sheet)
    assert done.returncode == 0
    # The same plan; the command that sends it names the checkpoint given (plan suggests one).
    shown, to_send = done.stdout.split("Dry run: nothing was sent.")
    assert plan.stdout.split("Dry run: nothing was sent.")[0] == shown
    assert to_send.strip().endswith(f"--checkpoint {tmp_path / 'c.sqlite'}")
    assert emu.calls == 0
    assert not (tmp_path / "c.sqlite").exists()


async def test_secrets_never_leave_the_headers(emulator: Any, tmp_path: Path) -> None:
    secret = "S3cr3t/Key+with%chars"
    access = "u$access-key-42"
    emu = await emulator(
        rate="off",
        access_key=access,
        secret_key=secret,
        drop_rate=0.1,
        html_rate=0.1,
        transient_rate=0.1,
        seed=11,
    )
    sheet = str(leads_csv(tmp_path / "leads.csv", 30, extra_rows="bad,1\n"))
    env = {"LSQ_HOST": emu.url, "LSQ_ACCESS_KEY": access, "LSQ_SECRET_KEY": secret}
    outputs = []
    for auth in ("query", "header"):
        checkpoint = tmp_path / f"{auth}.sqlite"
        done = await send_sheet(
            emu,
            Path(sheet),
            checkpoint,
            "--rate",
            "off",
            "--auth",
            auth,
            "--max-attempts",
            "2",
            "--summary-json",
            str(tmp_path / f"{auth}.json"),
            "--again",  # (the same plan twice, once per way of sending the keys)
            env=env,
        )
        assert done.returncode == 1  # finished; the sheet's "bad,1" row is invalid
        export = tmp_path / f"{auth}.csv"
        await run_cli("export", str(checkpoint), "--out", str(export))
        status = await run_cli("status", str(checkpoint))
        outputs += [
            done.stdout,
            done.stderr,
            status.stdout,
            export.read_text(),
            (tmp_path / f"{auth}.json").read_text(),
        ]
        outputs += [f.read_bytes().decode("latin-1") for f in tmp_path.glob(f"{auth}.sqlite*")]
    assert emu.records  # the keys worked, both ways
    for text in outputs:
        for key in (secret, access, "S3cr3t", "access-key-42"):
            assert key not in text


async def test_status_and_export(emulator: Any, tmp_path: Path) -> None:
    import openpyxl

    emu = await emulator(rate="off")
    sheet = leads_csv(
        tmp_path / "leads.csv", 4, extra_rows="nope,201\n00000000-0000-4000-8000-000000000099,5\n"
    )
    checkpoint = tmp_path / "c.sqlite"
    await send_sheet(emu, sheet, checkpoint)
    status = await run_cli("status", str(checkpoint))
    assert status.returncode == 1
    assert "queued                 4 of 5" in status.stdout
    assert "invalid rows           1" in status.stdout
    csv_out = tmp_path / "out.csv"
    done = await run_cli("export", str(checkpoint), "--out", str(csv_out))
    assert done.returncode == 0
    lines = csv_out.read_text().splitlines()
    assert lines[0] == (
        "ProspectId,ActivityEventList,FromDate,ToDate,StatusWebhookURL,status,attempts,"
        "http_status,error,source_rows,updated_at,verified,remaining,verified_at,"
        "FromDate (as written),ToDate (as written)"
    )
    assert [line.split(",")[5] for line in lines[1:]] == ["queued"] * 4 + ["failed", "invalid"]
    xlsx_out = tmp_path / "failed.xlsx"
    await run_cli("export", str(checkpoint), "--out", str(xlsx_out), "--status", "failed,invalid")
    sheet_rows = list(openpyxl.load_workbook(xlsx_out).active.iter_rows(values_only=True))  # type: ignore[union-attr]
    assert [row[5] for row in sheet_rows[1:]] == ["failed", "invalid"]
    assert sheet_rows[2][8] == "ProspectId 'nope' is not a GUID"
    assert sheet_rows[2][9] == "6"
    bad = await run_cli("export", str(checkpoint), "--out", str(csv_out), "--status", "deleted")
    assert bad.returncode == 2
    missing = await run_cli("status", str(tmp_path / "none.sqlite"))
    assert missing.returncode == 2
    assert "no such checkpoint" in missing.stderr


@pytest.mark.e2e
async def test_a_terminal_is_asked_and_n_sends_nothing(emulator: Any, tmp_path: Path) -> None:
    """The confirmation prompt on a real pseudo-terminal, answered as a person would."""
    import pty

    emu = await emulator(rate="off")
    sheet = str(leads_csv(tmp_path / "leads.csv", 3))
    for answer, code, queued in ((b"n\n", 2, 0), (b"y\n", 0, 3)):
        master, slave = pty.openpty()
        process = await start_cli(
            "run",
            sheet,
            "--checkpoint",
            str(tmp_path / "c.sqlite"),
            "--open-window",
            env=demo_env(emu.url),
            stdin=slave,
        )
        os.write(master, answer)
        out, err = await asyncio.wait_for(process.communicate(), 60)
        os.close(master)
        os.close(slave)
        assert process.returncode == code, err.decode()
        assert "Send 3 delete request(s) for 3 lead(s) to http://127.0.0.1:" in err.decode()
        assert len(emu.records) == queued
        if answer == b"n\n":
            assert "not confirmed, nothing sent" in err.decode()
        else:
            assert "queued                 3 of 3" in out.decode()


@pytest.mark.e2e
async def test_second_ctrl_c_quits_at_once_and_the_checkpoint_stays_consistent(
    emulator: Any, tmp_path: Path
) -> None:
    emu = await emulator(rate="off", latency=5.0)  # calls in flight for a long time
    sheet = leads_csv(tmp_path / "leads.csv", 20)
    checkpoint = tmp_path / "c.sqlite"
    args = [
        "run",
        str(sheet),
        "--checkpoint",
        str(checkpoint),
        "--yes",
        "--open-window",
        "--rate",
        "off",
        "--concurrency",
        "4",
        "--no-preflight",  # it would take the slow emulator's 5 s
    ]
    process = await start_cli(*args, env=demo_env(emu.url))
    await until(lambda: emu.calls >= 4, process)
    process.send_signal(signal.SIGINT)
    await asyncio.sleep(0.5)
    started = asyncio.get_running_loop().time()
    process.send_signal(signal.SIGINT)
    _, err = await asyncio.wait_for(process.communicate(), 10)
    assert asyncio.get_running_loop().time() - started < 3  # did not wait for the 5 s calls
    assert process.returncode == 130
    assert "stopped at once" in err.decode()
    with sqlite3.connect(checkpoint) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    fast = await emulator(rate="off")
    done = await run_cli(*args, env=demo_env(fast.url))
    assert done.returncode == 0
    assert len(fast.records) == 20


async def test_a_service_that_looks_down_exits_3(emulator: Any, tmp_path: Path) -> None:
    emu = await emulator(rate="off", html_rate=1.0)
    sheet = leads_csv(tmp_path / "leads.csv", 60)
    done = await send_sheet(
        emu,
        sheet,
        tmp_path / "c.sqlite",
        "--rate",
        "off",
        "--give-up-after",
        "1",  # the breaker's first probe (1 s after it trips) fails past it
        "--no-preflight",  # which would stop it before the first delete (tested elsewhere)
    )
    assert done.returncode == 3
    assert "looks down: no call has succeeded for" in done.stderr
    assert "--give-up-after 1;" in done.stderr
    assert "pending" in done.stderr  # the summary says what is left for the rerun
    assert emu.calls < 90  # it stopped instead of burning 60 * 6 attempts


async def test_a_short_outage_mid_run_ends_with_everything_queued(
    emulator: Any, tmp_path: Path
) -> None:
    # over before the breaker's first probe, 1 s after it trips
    emu = await emulator(rate="off", latency=0.01, outage_after=0.3, outage_seconds=1.0)
    sheet = leads_csv(tmp_path / "leads.csv", 60)
    done = await send_sheet(emu, sheet, tmp_path / "c.sqlite", "--rate", "40/1s")
    assert done.returncode == 0, done.stderr
    assert emu.stats()["outcomes"]["outage_503"] >= 5  # it did trip the breaker
    assert emu.stats()["outcomes"]["outage_503"] <= 20  # … and then held back
    assert set(sent(emu).values()) == {1}
    assert len(sent(emu)) == 60


async def test_a_redirect_is_never_followed_and_names_the_location(
    emulator: Any, tmp_path: Path
) -> None:
    elsewhere = await emulator(rate="off")
    hostile = await emulator(rate="off", redirect_to=elsewhere.url)
    sheet = leads_csv(tmp_path / "leads.csv", 5)
    for auth in ("header", "query"):
        done = await send_sheet(
            hostile,
            sheet,
            tmp_path / f"{auth}.sqlite",
            "--rate",
            "off",
            "--auth",
            auth,
            "--concurrency",
            "1",
        )
        assert done.returncode == 3
        assert f"redirect to {elsewhere.url}" in done.stderr
        assert "--host" in done.stderr
        assert DEMO_SECRET_KEY not in done.stdout + done.stderr  # the query-string Location too
    assert elsewhere.calls == 0  # the keys never reached the other host
    assert hostile.stats()["outcomes"] == {"redirected": 2}


async def test_a_bug_exits_70_with_one_line_and_a_private_traceback(
    emulator: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    emu = await emulator(rate="off")

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ZeroDivisionError(f"a bug, near {DEMO_SECRET_KEY}")

    monkeypatch.setattr(build, "build_plan", broken)  # (run imports it where a sheet is read)
    done = await send_sheet(emu, leads_csv(tmp_path / "leads.csv", 3), tmp_path / "c.sqlite")
    assert done.returncode == 70  # never 1, which a scheduler may take for "finished"
    [line] = done.stderr.strip().splitlines()
    assert "internal error (ZeroDivisionError)" in line
    report = Path(line.rsplit(" ", 1)[1])
    assert "Traceback" in report.read_text()
    assert DEMO_SECRET_KEY not in report.read_text()  # keys are blanked out of the report
    assert oct(report.stat().st_mode & 0o777) == "0o600"
    report.unlink()


async def test_bad_values_are_usage_errors_and_old_dates_are_invalid_rows(
    emulator: Any, tmp_path: Path
) -> None:
    emu = await emulator(rate="off")
    sheet = leads_csv(tmp_path / "leads.csv", 2)
    for value in ("nan", "inf", "-1", "soon"):
        done = await send_sheet(emu, sheet, tmp_path / "c.sqlite", "--timeout", value)
        assert done.returncode == 2
        assert "--timeout: must be a positive number of seconds" in done.stderr
    old = tmp_path / "old.csv"
    old.write_text(
        "ProspectId,Codes,FromDate\n00000000-0000-4000-8000-000000000001,201,0001-01-01\n"
    )
    done = await send_sheet(emu, old, tmp_path / "old.sqlite", "--tz", "Asia/Kolkata")
    assert done.returncode == 2  # its one row is invalid: nothing to send
    assert "row 2: FromDate 0001-01-01 is outside the years 1900–9999" in done.stderr
    assert emu.calls == 0


async def test_run_and_status_report_the_same_achieved_rate(emulator: Any, tmp_path: Path) -> None:
    emu = await emulator(rate="off")
    checkpoint = tmp_path / "c.sqlite"
    done = await send_sheet(
        emu,
        leads_csv(tmp_path / "leads.csv", 12),
        checkpoint,
        "--rate",
        "10/0.5s",  # half-second windows
        "--summary-json",
        str(tmp_path / "s.json"),
    )
    assert done.returncode == 0
    rate = json.loads((tmp_path / "s.json").read_text())["this_run"]["calls_per_second"]
    assert 16 < rate <= 20
    status = await run_cli("status", str(checkpoint))
    assert f"{rate:.2f} calls/s" in status.stdout
    assert f"{rate:.2f} calls/s" in done.stdout
