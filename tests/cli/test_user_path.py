"""The user's own path, as shipped (issue 18, and the prompt and job cases of issue 24).

Shipped files are used unmodified; what a person types is typed on a real terminal where a
terminal matters (the confirmation prompt).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import signal
import sqlite3
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pexpect
import pytest
from click.testing import CliRunner

from bulk_delete.cli.main import cli
from bulk_delete.config import RateLimit
from bulk_delete.emulator.server import Emulator, EmulatorConfig
from bulk_delete.store import checkpoint as checkpoints
from bulk_delete.summary import json_fields

from ..conftest import demo_env, leads_csv, run_cli, start_cli, terminal, until

ROOT = Path(__file__).parents[2]
JOBS = sorted((ROOT / "jobs").glob("*.toml"))
SCHEMA = json.loads((ROOT / "bulk_delete" / "summary.schema.json").read_text())
AS_OF = "2025-03-01"  # the emulator's data set is from 2024-2025: a night it has data for
G = "00000000-0000-4000-8000-{:012d}"


def valid_summary(path: Path) -> dict[str, Any]:
    facts: dict[str, Any] = json.loads(path.read_text())
    jsonschema.validate(facts, SCHEMA)
    return facts


# ---------------------------------------------------------------- shipped jobs, unmodified


@pytest.mark.parametrize("job_file", JOBS, ids=[path.stem for path in JOBS])
async def test_every_shipped_job_dry_runs_unmodified(
    emulator: Any, tmp_path: Path, job_file: Path
) -> None:
    emu = await emulator(dataset_leads=300)
    done = await run_cli("job", str(job_file), "--dry-run", "--as-of", AS_OF, env=demo_env(emu.url))
    assert done.returncode == 0, done.stderr
    assert "Dry run: nothing was sent. To send it:" in done.stdout
    assert f"job {job_file} --as-of {AS_OF}" in done.stdout  # the command without --dry-run
    assert emu.records == []
    if "discover = true" in job_file.read_text():
        assert re.search(r"Found \d+ activities of code 201", done.stdout), done.stdout
        assert "2024-10-31 18:30:00 → 2024-11-30 18:29:59 UTC" in done.stdout  # D-120 … D-91


async def test_the_nightly_discover_job_purges_what_it_found_as_of_a_date(
    emulator: Any, tmp_path: Path
) -> None:
    # the shipped job paces at its plan's 4 calls a second: a small data set keeps it short
    emu = await emulator(dataset_leads=50, webhook_delay=0.05)
    job_file = ROOT / "jobs" / "nightly-discover-purge.toml"
    state = tmp_path / "state"
    summary = tmp_path / "s.json"
    done = await run_cli(
        "job",
        str(job_file),
        "--as-of",
        AS_OF,
        "--state-dir",
        str(state),
        "--summary-json",
        str(summary),
        env=demo_env(emu.url),
    )
    assert done.returncode == 0, done.stderr
    leads = int(re.search(r"([\d,]+) lead\(s\) in all", done.stdout).group(1))  # type: ignore[union-attr]
    assert 0 < leads == len(emu.records)
    assert (state / f"nightly-discover-purge-{AS_OF}.sqlite").is_file()
    facts = valid_summary(summary)
    assert facts["window"] == {
        "tz": "Asia/Kolkata",
        "from_local": "2024-11-01 00:00:00",
        "to_local": "2024-11-30 23:59:59",
        "from_utc": "2024-10-31 18:30:00",
        "to_utc": "2024-11-30 18:29:59",
    }
    census = emu.census(frozenset({"201", "202"}), facts["window"]["from_utc"], "2024-11-30")
    await asyncio.sleep(0.2)  # the emulator carries the deletes out
    after = emu.census(frozenset({"201", "202"}), "2024-10-31 18:30:00", "2024-11-30 18:29:59")
    assert after["in_window"] == 0
    assert after["outside"] == census["outside"]


async def test_a_job_with_an_absolute_window_resumes_one_checkpoint(
    emulator: Any, tmp_path: Path
) -> None:
    """A job retried nightly (q1-2025-cleanup) sends each request once, not once a night."""
    emu = await emulator(rate="off")
    job_file = tmp_path / "q1.toml"
    (tmp_path / "ids.csv").write_text("ProspectId\n" + G.format(1) + "\n" + G.format(2) + "\n")
    job_file.write_text(
        'input = "ids.csv"\ncodes = [203]\nrate = "off"\nconfirm = true\n'
        '[window]\nfrom = "2025-01-01"\nto = "2025-03-31"\n'
    )
    for night in ("2026-06-01", "2026-06-02"):
        done = await run_cli("job", str(job_file), "--as-of", night, env=demo_env(emu.url))
        assert done.returncode == 0, done.stderr
    assert len(emu.records) == 2
    assert [path.name for path in (tmp_path / "state").glob("*.sqlite")] == ["q1.sqlite"]


async def test_a_copy_of_a_job_under_another_name_does_not_send_again(
    emulator: Any, tmp_path: Path
) -> None:
    emu = await emulator(rate="off")
    (tmp_path / "ids.csv").write_text("ProspectId\n" + G.format(1) + "\n")
    text = 'input = "ids.csv"\ncodes = [203]\nrate = "off"\nconfirm = true\n'
    text += "[window]\nolder_than_days = 90\nwindow_days = 30\n"
    (tmp_path / "nightly.toml").write_text(text)
    (tmp_path / "nightly-copy.toml").write_text(text)
    env = demo_env(emu.url)
    first = await run_cli("job", str(tmp_path / "nightly.toml"), env=env)
    assert first.returncode == 0, first.stderr
    dry = await run_cli("job", str(tmp_path / "nightly-copy.toml"), "--dry-run", env=env)
    assert "(another job) holds these same requests" in dry.stdout
    copy = await run_cli("job", str(tmp_path / "nightly-copy.toml"), env=env)
    assert copy.returncode == 2
    assert "nightly-" in copy.stderr
    assert "--force" in copy.stderr
    assert len(emu.records) == 1
    forced = await run_cli("job", str(tmp_path / "nightly-copy.toml"), "--force", env=env)
    assert forced.returncode == 0, forced.stderr
    assert len(emu.records) == 2


async def test_a_job_names_its_own_keys_in_messages(emulator: Any, tmp_path: Path) -> None:
    emu = await emulator(rate="off", dataset_leads=300)
    job_file = tmp_path / "few.toml"
    job_file.write_text(
        'discover = true\ncodes = [201]\nrate = "off"\nmax_leads = 1\nconfirm = true\n'
        '[window]\nfrom = "2024-01-01"\nto = "2024-12-31"\n'
    )
    done = await run_cli("job", str(job_file), env=demo_env(emu.url))
    assert done.returncode == 2
    assert "more than max_leads 1" in done.stderr
    assert "--max-leads" not in done.stderr
    assert emu.records == []


# ---------------------------------------------------------------- open windows


async def test_an_open_window_is_refused_unless_said(emulator: Any, tmp_path: Path) -> None:
    emu = await emulator(rate="off")
    sheet = tmp_path / "leads.csv"
    sheet.write_text(f"ProspectId,Codes,ToDate\n{G.format(1)},201,2025-02-01\n")
    plan = await run_cli("plan", str(sheet))
    assert "NO FROMDATE            1 request(s)" in plan.stdout
    args = ("run", str(sheet), "--checkpoint", str(tmp_path / "c.sqlite"), "--yes")
    done = await run_cli(*args, env=demo_env(emu.url))
    assert done.returncode == 2
    assert "1 without FromDate" in done.stderr
    assert "--open-window" in done.stderr
    assert emu.calls == 0
    done = await run_cli(*args, "--open-window", env=demo_env(emu.url))
    assert done.returncode == 0, done.stderr
    assert [record["ToDate"] for record in emu.records] == ["2025-02-01 23:59:59"]


async def test_a_near_miss_header_sends_nothing(emulator: Any, tmp_path: Path) -> None:
    emu = await emulator(rate="off")
    for header, column in (("Form Date", "FromDate"), ("ActivtyEvent", "ActivityEventList")):
        sheet = tmp_path / "leads.csv"
        sheet.write_text(f"ProspectId,Codes,{header}\n{G.format(1)},201,2025-02-01\n")
        args = ("run", str(sheet), "--checkpoint", str(tmp_path / "c.sqlite"), "--yes")
        done = await run_cli(*args, "--open-window", env=demo_env(emu.url))
        assert done.returncode == 2
        assert f"did you mean {column}?" in done.stderr
    assert emu.calls == 0


# ---------------------------------------------------------------- --summary-json on every exit


def test_the_schema_names_every_summary_field() -> None:
    def names(schema: dict[str, Any], prefix: str = "") -> set[str]:
        found = set()
        for name, sub in schema.get("properties", {}).items():
            found.add(prefix + name)
            if name == "failures":
                found |= names(sub["items"], prefix + name + "[].")
            elif name in ("this_run", "totals", "window", "verification") and not prefix:
                found |= names(sub, prefix + name + ".")
        return found

    restore = SCHEMA["properties"]["restore"]["oneOf"][1]["properties"]
    assert names(SCHEMA) | {
        f"previous_verification.{f}" for f in SCHEMA["properties"]["verification"]["properties"]
    } | {f"restore.{f}" for f in restore} == set(json_fields())


async def test_the_summary_is_written_on_every_exit(emulator: Any, tmp_path: Path) -> None:
    emu = await emulator(rate="off", dataset_leads=300)
    sheet = leads_csv(tmp_path / "leads.csv", 3)
    env = demo_env(emu.url)

    async def summary_of(*args: str, env: dict[str, str] = env) -> dict[str, Any]:
        path = tmp_path / "s.json"
        path.unlink(missing_ok=True)
        done = await run_cli(*args, "--summary-json", str(path), env=env)
        facts = valid_summary(path)
        assert facts["exit_code"] == done.returncode, done.stderr
        return facts

    send = ("run", str(sheet), "--yes")
    facts = await summary_of(*send, "--checkpoint", str(tmp_path / "open.sqlite"))
    assert (facts["exit_code"], facts["this_run"]["result"]) == (2, "not started")
    assert "open window" in facts["error"]
    assert (facts["totals"]["requests"], facts["totals"]["pending"]) == (3, 3)  # the saved plan
    facts = await summary_of(*send, "--checkpoint", str(tmp_path / "c.sqlite"), "--codes", "x1")
    assert facts["exit_code"] == 2
    assert "--codes" in facts["error"]
    discover = ("run", "--discover", "--codes", "201", "--from", "2024-01-01", "--to", "2024-12-31")
    facts = await summary_of(
        *discover, "--max-leads", "1", "--checkpoint", str(tmp_path / "d.sqlite"), "--yes"
    )
    assert facts["exit_code"] == 2
    assert "more than --max-leads 1" in facts["error"]
    assert facts["window"]["from_utc"] == "2024-01-01 00:00:00"
    wrong = {**env, "LSQ_SECRET_KEY": "wrong-secret"}
    facts = await summary_of(
        *send, "--open-window", "--checkpoint", str(tmp_path / "k.sqlite"), env=wrong
    )
    assert facts["exit_code"] == 3
    assert "401" in facts["error"]
    checkpoint = tmp_path / "c.sqlite"
    with checkpoints.lock(checkpoint):
        facts = await summary_of(*send, "--open-window", "--checkpoint", str(checkpoint))
    assert facts["exit_code"] == 75
    assert "is in use" in facts["error"]
    facts = await summary_of(*send, "--open-window", "--checkpoint", str(checkpoint))
    assert (facts["exit_code"], facts["error"], facts["totals"]["queued"]) == (0, "", 3)
    for facts_text in ((tmp_path / "s.json").read_text(),):
        assert "demo-secret-key" not in facts_text


async def test_a_dry_run_writes_its_summary(tmp_path: Path) -> None:
    sheet = leads_csv(tmp_path / "leads.csv", 1)
    summary = tmp_path / "s.json"
    done = await run_cli(
        "run",
        str(sheet),
        "--dry-run",
        "--checkpoint",
        str(tmp_path / "c.sqlite"),
        "--summary-json",
        str(summary),
    )
    assert done.returncode == 0
    facts = json.loads(summary.read_text())
    assert (facts["exit_code"], facts["this_run"]["result"]) == (0, "dry run")


# ---------------------------------------------------------------- plan → the next command


@pytest.mark.e2e
async def test_plan_ends_with_the_command_that_sends_it(emulator: Any, tmp_path: Path) -> None:
    emu = await emulator(rate="off")
    sheet = tmp_path / "my leads.csv"  # a space: the command must be quoted for the shell
    sheet.write_text(f"ProspectId,FromDate,ToDate\n{G.format(1)},2025-01-01,2025-01-31\n")
    plan = await run_cli(
        "plan", str(sheet), "--codes", "201", "--tz", "Asia/Kolkata", "-o", str(tmp_path / "p.csv")
    )
    command = plan.stdout.strip().splitlines()[-1].strip()
    words = shlex.split(command)
    assert words[1:] == [
        "run",
        str(sheet),
        "--codes",
        "201",
        "--tz",
        "Asia/Kolkata",
        "--checkpoint",
        str(tmp_path / "my leads.sqlite"),
    ]
    # The command as printed, typed on a terminal and confirmed, sends exactly the plan.
    child = await asyncio.to_thread(terminal, words[1:], demo_env(emu.url))
    await asyncio.to_thread(child.expect, r"\[y/N\]")
    child.sendline("y")
    await asyncio.to_thread(child.expect, pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert [record["FromDate"] for record in emu.records] == ["2024-12-31 18:30:00"]


@pytest.mark.e2e
async def test_ctrl_d_at_the_prompt_is_not_a_yes(emulator: Any, tmp_path: Path) -> None:
    emu = await emulator(rate="off")
    sheet = leads_csv(tmp_path / "leads.csv", 3)
    args = ["run", str(sheet), "--checkpoint", str(tmp_path / "c.sqlite"), "--open-window"]
    child = await asyncio.to_thread(terminal, args, demo_env(emu.url))
    await asyncio.to_thread(child.expect, r"\[y/N\]")
    child.sendeof()
    await asyncio.to_thread(child.expect, pexpect.EOF)
    child.close()
    assert child.exitstatus == 2
    assert "not confirmed (end of input), nothing sent" in (child.before or "")
    assert emu.records == []


@pytest.mark.e2e
async def test_ctrl_c_at_the_prompt_exits_130_at_once(emulator: Any, tmp_path: Path) -> None:
    emu = await emulator(rate="off")
    sheet = leads_csv(tmp_path / "leads.csv", 3)
    summary = tmp_path / "s.json"
    args = ["run", str(sheet), "--checkpoint", str(tmp_path / "c.sqlite"), "--open-window"]
    child = await asyncio.to_thread(
        terminal, [*args, "--summary-json", str(summary)], demo_env(emu.url)
    )
    await asyncio.to_thread(child.expect, r"\[y/N\]")
    child.sendintr()
    await asyncio.to_thread(child.expect, pexpect.EOF, 10)
    child.close()
    assert child.exitstatus == 130
    assert "SIGINT at the prompt: not confirmed, nothing sent" in (child.before or "")
    assert emu.records == []
    assert valid_summary(summary)["exit_code"] == 130


@pytest.mark.e2e
async def test_sighup_stops_like_sigterm(emulator: Any, tmp_path: Path) -> None:
    emu = await emulator(rate="off", latency=0.2)
    sheet = leads_csv(tmp_path / "leads.csv", 60)
    checkpoint = tmp_path / "c.sqlite"
    summary = tmp_path / "s.json"
    process = await start_cli(
        "run",
        str(sheet),
        "--checkpoint",
        str(checkpoint),
        "--yes",
        "--open-window",
        "--rate",
        "off",
        "--concurrency",
        "2",
        "--no-preflight",
        "--summary-json",
        str(summary),
        env=demo_env(emu.url),
    )
    await until(lambda: len(emu.records) >= 4, process)
    process.send_signal(signal.SIGHUP)
    await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 130
    facts = valid_summary(summary)
    assert (facts["exit_code"], facts["this_run"]["result"]) == (130, "interrupted")
    with sqlite3.connect(checkpoint) as db:
        assert db.execute("SELECT result FROM runs").fetchall() == [("interrupted",)]


# ---------------------------------------------------------------- help, flags, stdin/stdout


@pytest.mark.parametrize("name", ["plan", "run", "job", "verify", "status", "export"])
def test_every_command_has_examples_and_its_exit_codes(name: str) -> None:
    text = CliRunner().invoke(cli, [name, "--help"], terminal_width=100).output
    assert "Examples:" in text or "Example:" in text
    assert f"bulk-delete {name} " in text
    assert "Exit codes:" in text
    assert "  2    " in text


def test_numbers_are_typed_in_help() -> None:
    text = CliRunner().invoke(cli, ["run", "--help"], terminal_width=100).output
    assert re.search(r"--max-attempts INTEGER", text)
    assert re.search(r"--timeout FLOAT", text)
    assert re.search(r"--share FRACTION", text)
    assert "-y, --yes" in text
    assert "-o, --out FILE" in text


def test_plan_reads_standard_input(tmp_path: Path) -> None:
    text = f"ProspectId,Codes,FromDate,ToDate\n{G.format(1)},201,2025-01-01,2025-01-31\n"
    result = CliRunner().invoke(cli, ["plan", "-"], input=text)
    assert result.exit_code == 0, result.output
    assert "requests               1" in result.output
    assert "save the sheet to a file" in result.output  # run can't resume from a pipe
    assert "Plan for standard input (CSV" in result.output  # not a temporary file's name
    binary = CliRunner().invoke(cli, ["plan", "-"], input=b"garbage\x00\x01\x02")
    assert binary.exit_code == 2
    assert "error: standard input: not a text file" in binary.stderr
    assert "bulk-delete-stdin" not in binary.stderr + result.output
    result = CliRunner().invoke(cli, ["run", "-", "--checkpoint", str(tmp_path / "c.sqlite")])
    assert result.exit_code == 2


async def test_export_writes_standard_output(emulator: Any, tmp_path: Path) -> None:
    emu = await emulator(rate="off")
    sheet = leads_csv(tmp_path / "leads.csv", 2)
    checkpoint = tmp_path / "c.sqlite"
    args = ("run", str(sheet), "--checkpoint", str(checkpoint), "-y", "--open-window")
    assert (await run_cli(*args, env=demo_env(emu.url))).returncode == 0
    done = await run_cli("export", str(checkpoint), "-o", "-")
    assert done.returncode == 0
    lines = done.stdout.splitlines()
    assert lines[0].startswith("ProspectId,ActivityEventList")
    assert len(lines) == 3


async def test_rate_off_is_for_the_local_emulator_only(tmp_path: Path) -> None:
    sheet = leads_csv(tmp_path / "leads.csv", 1)
    env = {**demo_env("https://api-in21.leadsquared.com")}
    args = ("run", str(sheet), "--checkpoint", str(tmp_path / "c.sqlite"), "-y", "--open-window")
    done = await run_cli(*args, "--rate", "off", env=env)
    assert done.returncode == 2
    assert "--rate off is a test setting for the local emulator" in done.stderr
    assert "off: no limiter" in CliRunner().invoke(cli, ["run", "--help"]).output


async def test_rate_off_is_refused_for_a_name_that_starts_with_127(tmp_path: Path) -> None:
    sheet = leads_csv(tmp_path / "leads.csv", 1)
    env = demo_env("https://127.api-in21.leadsquared.com")
    args = ("run", str(sheet), "--checkpoint", str(tmp_path / "c.sqlite"), "-y", "--open-window")
    done = await run_cli(*args, "--rate", "off", env=env)
    assert done.returncode == 2
    assert "is a test setting for the local emulator" in done.stderr


@pytest.mark.e2e(seconds=18)
async def test_the_demo_runs_what_it_prints() -> None:
    """`make demo` as shipped; then every command it printed, typed again unmodified from the
    repository's folder (against an emulator at the demo's own address, since a checkpoint
    resumes only with the host its requests went to: the run resumes, nothing is sent twice)."""
    demo = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bulk_delete.emulator.demo",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(demo.communicate(), 120)
    assert demo.returncode == 0
    printed = [line[4:] for line in out.decode().splitlines() if line.startswith("=== .venv/")]
    assert [shlex.split(line)[1] for line in printed] == ["run", "export", "run", "export"]
    port = re.search(r"emulator listening on http://127\.0\.0\.1:(\d+)", err.decode())
    assert port is not None, err.decode()
    emu = Emulator(EmulatorConfig(rate=RateLimit.parse("off")))
    await emu.start(port=int(port.group(1)))
    try:
        for line in printed:
            again = await asyncio.create_subprocess_exec(
                *shlex.split(line),
                cwd=ROOT,
                env={**os.environ, **demo_env(emu.url)},
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            _stdout, stderr = await again.communicate()
            assert again.returncode in (0, 1), stderr.decode()  # 1: the samples' invalid rows
    finally:
        await emu.stop()
    assert emu.records == []  # everything was queued by the demo already
