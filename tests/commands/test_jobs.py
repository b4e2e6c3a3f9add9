"""Scheduled jobs: job files, relative windows, one checkpoint per run date, the lock."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bulk_delete.clock import system_wall
from bulk_delete.commands import run
from bulk_delete.commands.job_file import JobWindow, load_job
from bulk_delete.errors import CredentialsError, FatalAPIError, InputError, LockHeld, OptionError

from ..conftest import demo_env, run_cli, start_cli
from ..helpers import real_time

ROOT = Path(__file__).parents[2]
JOBS = ROOT / "jobs"
UTC = dt.UTC
G = "00000000-0000-4000-8000-{:012d}"


def write_job(tmp_path: Path, text: str, name: str = "job") -> Path:
    (tmp_path / "ids.csv").write_text("ProspectId\n00000000-0000-4000-8000-000000000001\n")
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


GOOD = 'input = "ids.csv"\ncodes = [201]\nconfirm = true\nopen_window = true\n'


def test_example_jobs_load() -> None:
    nightly = load_job(JOBS / "nightly-webinar-purge.toml", wall=system_wall)
    assert nightly.spec.codes == ("201", "202")
    assert nightly.window == JobWindow(older_than_days=90, window_days=30)
    assert nightly.spec.rate.calls == 25
    assert nightly.spec.input == (ROOT / "sample_inputs" / "lead_ids.csv").resolve()
    q1 = load_job(JOBS / "q1-2025-cleanup.toml", wall=system_wall)
    assert (q1.window.from_date, q1.window.to_date) == ("2025-01-01", "2025-03-31")
    assert (q1.spec.rate.calls, q1.spec.rate.period) == (15, 5.0)


@pytest.mark.parametrize(
    ("now", "tz", "expected"),
    [
        # 20:00 UTC on March 10 is already March 11 in India: the run date follows tz.
        (
            dt.datetime(2026, 3, 10, 20, 0, tzinfo=UTC),
            "Asia/Kolkata",
            ("2025-11-10 18:30:00", "2025-12-10 18:29:59"),
        ),
        (
            dt.datetime(2026, 3, 10, 20, 0, tzinfo=UTC),
            "UTC",
            ("2025-11-10 00:00:00", "2025-12-09 23:59:59"),
        ),
        # 03:00 UTC on March 10 is still March 9 in New York (and EST, UTC-5, in Nov/Dec).
        (
            dt.datetime(2026, 3, 10, 3, 0, tzinfo=UTC),
            "America/New_York",
            ("2025-11-09 05:00:00", "2025-12-09 04:59:59"),
        ),
    ],
)
def test_relative_window_follows_the_clock_and_tz(
    tmp_path: Path, now: dt.datetime, tz: str, expected: tuple[str, str]
) -> None:
    path = write_job(
        tmp_path, GOOD + f'tz = "{tz}"\n[window]\nolder_than_days = 90\nwindow_days = 30\n'
    )
    job = load_job(path, wall=system_wall)
    defaults = job.run_spec(now).plan_options.row_defaults()
    assert (defaults.from_date, defaults.to_date) == expected


def test_window_is_stable_all_day_and_moves_with_the_date(tmp_path: Path) -> None:
    job = load_job(write_job(tmp_path, GOOD + "[window]\nolder_than_days = 7\n"), wall=system_wall)
    morning = dt.datetime(2026, 5, 1, 0, 5, tzinfo=UTC)
    evening = dt.datetime(2026, 5, 1, 23, 55, tzinfo=UTC)
    assert job.run_spec(morning) == job.run_spec(evening)
    assert job.run_spec(morning).to_date == "2026-04-23"
    assert job.run_spec(morning).from_date == ""  # no window_days: everything older
    assert job.checkpoint(morning) == job.checkpoint(evening)
    assert job.checkpoint(morning).name == "job-2026-05-01.sqlite"
    assert job.checkpoint(morning + dt.timedelta(days=1)).name == "job-2026-05-02.sqlite"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("input = [unclosed\n", "not a valid TOML job file"),
        (GOOD + "colour = 'blue'\n", "unknown key 'colour'"),
        (GOOD + "concurrency = 'eight'\n", "job.toml: concurrency: must be a whole number"),
        ('input = "ids.csv"\nconfirm = "yes"\n', "confirm must be true or false"),
        (GOOD + "concurrency = -1\n", "concurrency: must be at least 1"),
        (GOOD + "timeout = nan\n", "timeout: must be a positive number"),
        ('input = "missing.csv"\n', "not found"),
        ("codes = [201]\n", "give either 'input'"),
        (GOOD + "[window]\nolder_than_days = 90\nto = '2025-01-01'\n", "both an absolute"),
        (GOOD + "[window]\nolder_than_days = -5\n", "must be positive"),
        (GOOD + "[window]\nolder_than_days = 'ninety'\n", "whole number of days"),
        (GOOD + "[window]\nsince = 3\n", "unknown key window.since"),
        (GOOD + "secret_key = 'abc123'\n", "literal key"),
        (GOOD + "access_key = 'u$xyz'\n", "literal key"),
        (
            GOOD + "[env]\nsecret_key = 'd41d8cd98f00b204e9800998ecf8427e'\n",
            "NAME of an environment variable",
        ),
        (GOOD + "[env]\nhost = 'https://api.leadsquared.com'\n", "NAME of an environment variable"),
        (GOOD + "[env]\naccess_key = 'u$xyz-literal'\n", "like LSQ_ACCESS_KEY"),
        (GOOD + "give_up_after = 0\n", "job.toml: give_up_after: must be a positive number"),
        (GOOD + "rate = '25/5s'\nplan = 'pro'\n", "either rate or plan"),
        (GOOD + "rate = 'fast'\n", "rate: 'fast'"),
        (GOOD + "tz = 'Nowhere'\n", "tz: 'Nowhere' is not an IANA"),
        (GOOD.replace("[201]", "['20x']"), "job.toml: codes: activity code '20x'"),
        (
            GOOD + "[window]\nfrom = '01/02/2025'\n",
            "window.from: '01/02/2025' is 1 February 2025 as DMY, 2 January 2025 as MDY: "
            "pass date_order",
        ),
    ],
)
def test_bad_job_files_are_refused_by_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises((OptionError, InputError), match=message):
        load_job(write_job(tmp_path, text), wall=system_wall)


def test_every_spec_key_is_a_job_key(tmp_path: Path) -> None:
    job = load_job(
        write_job(tmp_path, GOOD + "give_up_after = 30\nauth = 'query'\n"), wall=system_wall
    )
    assert (job.spec.give_up_after, job.spec.auth) == (30.0, "query")


def test_missing_job_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such job file"):
        load_job(tmp_path / "nope.toml", wall=system_wall)


def test_env_names_are_read_from_the_named_variables(tmp_path: Path) -> None:
    path = write_job(
        tmp_path, GOOD + "[env]\nhost = 'CRM_HOST'\naccess_key = 'CRM_AK'\nsecret_key = 'CRM_SK'\n"
    )
    job = load_job(path, wall=system_wall)
    env = {"CRM_HOST": "api-in21.leadsquared.com", "CRM_AK": "a", "CRM_SK": "s"}
    spec = job.run_spec(dt.datetime(2026, 1, 1, tzinfo=UTC), env)
    assert spec.host == "https://api-in21.leadsquared.com"
    assert job.credentials(env).secrets() == ("a", "s")
    with pytest.raises(CredentialsError, match="CRM_SK"):
        job.credentials({"CRM_HOST": "x", "CRM_AK": "a"})
    with pytest.raises(CredentialsError, match="CRM_HOST"):
        job.run_spec(dt.datetime(2026, 1, 1, tzinfo=UTC), {"CRM_AK": "a"})


def test_lock_is_exclusive_and_names_the_holder(tmp_path: Path) -> None:
    job = load_job(write_job(tmp_path, GOOD), state_dir=tmp_path / "state", wall=system_wall)
    with job.lock(), pytest.raises(LockHeld, match=f"pid {os.getpid()}"), job.lock():
        pass
    with job.lock():  # released when the holder leaves
        pass


async def test_todays_checkpoint_resumes_and_yesterdays_is_untouched(
    tmp_path: Path, emulator: Any
) -> None:
    emu = await emulator(rate="off")
    sheet = tmp_path / "ids.csv"
    sheet_lines = ["ProspectId"] + [f"00000000-0000-4000-8000-{n:012d}" for n in range(30)]
    job_file = tmp_path / "nightly.toml"
    job_file.write_text(
        'input = "ids.csv"\ncodes = [201]\nconfirm = true\nrate = "off"\nopen_window = true\n'
        "[window]\nolder_than_days = 30\n"
    )
    sheet.write_text("\n".join(sheet_lines) + "\n")
    job = load_job(job_file, state_dir=tmp_path / "state", wall=system_wall)
    yesterday = dt.datetime(2026, 6, 1, 22, 0, tzinfo=UTC)
    today = yesterday + dt.timedelta(hours=10)
    resumed: list[Path] = []
    hooks = run.RunHooks(confirm=lambda confirmation: True, on_resume=resumed.append)

    async def go(now: dt.datetime, env: dict[str, str], preflight: bool = True) -> Any:
        with job.lock():  # as `bulk-delete job` does; it also makes the state directory
            return await send(now, env, preflight)

    async def send(now: dt.datetime, env: dict[str, str], preflight: bool) -> Any:
        async with aiohttp.ClientSession() as session:
            spec = job.run_spec(now, env).replace(preflight=preflight)
            credentials = job.credentials(env)
            return await run.run(spec, credentials, session=session, hooks=hooks, **real_time())

    assert (await go(yesterday, demo_env(emu.url))).totals.complete
    before = hashlib.sha256(job.checkpoint(yesterday).read_bytes()).hexdigest()
    # Wrong keys: the preflight stops the run before any delete.
    wrong = {**demo_env(emu.url), "LSQ_SECRET_KEY": "wrong"}
    with pytest.raises(FatalAPIError, match="401") as stopped:
        await go(today, wrong)
    assert stopped.value.summary is None  # nothing was sent, so there is no run to sum up
    # Without the preflight, the first delete's 401 cuts the run short: all stays pending.
    with pytest.raises(FatalAPIError, match="401") as stopped:
        await go(today, wrong, preflight=False)
    assert stopped.value.summary is not None  # the error carries the run's summary
    assert stopped.value.summary.totals.pending == 30
    sent_before = len(emu.records)
    summary = await go(today, demo_env(emu.url))
    assert summary.totals.complete
    assert set(resumed) == {job.checkpoint(today)}  # the second and third runs resumed it
    assert len(emu.records) - sent_before == 30  # today's 30, each once
    assert job.checkpoint(today) != job.checkpoint(yesterday)
    assert hashlib.sha256(job.checkpoint(yesterday).read_bytes()).hexdigest() == before
    assert {r["ToDate"] for r in emu.records} == {"2026-05-01 23:59:59", "2026-05-02 23:59:59"}


async def test_example_jobs_run_against_the_emulator(emulator: Any, tmp_path: Path) -> None:
    emu = await emulator(rate="off")
    for name in ("nightly-webinar-purge", "q1-2025-cleanup"):
        # The example as written, but at full speed against the unlimited emulator.
        text = (JOBS / f"{name}.toml").read_text()
        text = re.sub(r"^(rate|plan) = .*$", 'rate = "off"', text, flags=re.MULTILINE)
        text = text.replace('"../sample_inputs/', f'"{ROOT}/sample_inputs/')
        job_file = tmp_path / f"{name}.toml"
        job_file.write_text(text)
        summary = tmp_path / f"{name}.json"
        log = tmp_path / f"{name}.jsonl"
        done = await run_cli(
            "job",
            str(job_file),
            "--state-dir",
            str(tmp_path / "state"),
            "--summary-json",
            str(summary),
            "--log-file",
            str(log),
            env=demo_env(emu.url),
        )
        assert done.returncode == 0, done.stderr
        facts = json.loads(summary.read_text())
        assert facts["totals"]["queued"] == 20
        assert facts["exit_code"] == 0
        assert facts["label"] == name
        assert Path(facts["checkpoint"]).parent == tmp_path / "state"
        assert {"started_at", "finished_at"} <= set(facts)
        outcomes = [json.loads(line) for line in log.read_text().splitlines()]
        assert [o["status"] for o in outcomes] == ["queued"] * 20
        assert "bulk-delete: exit=0 queued=20/20" in done.stderr  # the scheduler's line
    assert len(emu.records) == 40
    assert {r["StatusWebhookURL"] for r in emu.records} == {
        "",
        "https://hooks.example.com/leadsquared/deletes",
    }


async def test_job_without_confirmation_sends_nothing(emulator: Any, tmp_path: Path) -> None:
    emu = await emulator(rate="off")
    path = write_job(tmp_path, GOOD.replace("confirm = true\n", ""))
    done = await run_cli("job", str(path), env=demo_env(emu.url))
    assert done.returncode == 2
    assert "confirm = true" in done.stderr
    assert emu.calls == 0
    done = await run_cli("job", str(path), "--yes", env=demo_env(emu.url))
    assert done.returncode == 0


@pytest.mark.e2e
async def test_two_instances_race_and_one_exits_75(emulator: Any, tmp_path: Path) -> None:
    emu = await emulator(rate="off", latency=0.2)
    ids = "\n".join(f"00000000-0000-4000-8000-{n:012d}" for n in range(15))
    (tmp_path / "ids.csv").write_text("ProspectId\n" + ids + "\n")
    path = tmp_path / "race.toml"
    path.write_text(
        'input = "ids.csv"\ncodes = [201]\nconfirm = true\nrate = "10/1s"\nopen_window = true\n'
    )
    processes = [await start_cli("job", str(path), env=demo_env(emu.url)) for _ in range(2)]
    results = [await p.communicate() for p in processes]
    codes = sorted(p.returncode or 0 for p in processes)
    assert codes == [0, 75]
    loser = results[[p.returncode for p in processes].index(75)]
    winner_pid = processes[[p.returncode for p in processes].index(0)].pid
    assert f"pid {winner_pid}" in loser[1].decode()
    assert len(emu.records) == 15  # the loser sent nothing


async def test_the_discovering_example_job_lists_then_purges(emulator: Any, tmp_path: Path) -> None:
    emu = await emulator(rate="off", dataset_leads=300, page_cap=100, webhook_delay=0.05)
    text = (JOBS / "nightly-discover-purge.toml").read_text()
    text = re.sub(r"^(rate|plan) = .*$", 'rate = "off"', text, flags=re.MULTILINE)
    # The data set is from 2024; a window of older_than_days from today would find nothing.
    text = text.replace(
        "older_than_days = 90\nwindow_days = 30", 'from = "2024-06-01"\nto = "2024-06-30"'
    )
    job_file = tmp_path / "discover.toml"
    job_file.write_text(text)
    state = ["--state-dir", str(tmp_path / "state")]
    dry = await run_cli("job", str(job_file), "--dry-run", *state, env=demo_env(emu.url))
    assert dry.returncode == 0, dry.stderr
    assert "Found " in dry.stdout
    assert emu.records == []
    done = await run_cli("job", str(job_file), *state, env=demo_env(emu.url))
    assert done.returncode == 0, done.stderr
    leads = int(re.search(r"([\d,]+) lead\(s\) in all", done.stdout).group(1).replace(",", ""))  # type: ignore[union-attr]
    assert leads > 0
    assert len(emu.records) == leads  # one delete per lead found


async def test_a_job_finishes_its_previous_dated_checkpoint_first(
    emulator: Any, tmp_path: Path, own_state_dir: Path
) -> None:
    """A purge larger than a day's allowance goes on night after night: the night the
    allowance stops it (exit 75, the rest pending), the next night's job sends those first,
    then its own window, each request once."""
    from bulk_delete.config import require_host
    from bulk_delete.emulator.knobs import DEMO_ACCESS_KEY
    from bulk_delete.store.ledger import WindowLedger

    emu = await emulator(rate="100/1s")
    job_file = write_job(
        tmp_path,
        'input = "leads.csv"\ncodes = [201]\nconfirm = true\nrate = "100/1s"\n'
        "preflight = false\nopen_window = true\ndaily_limit = 30\n[window]\nolder_than_days = 30\n",
        name="nightly",
    )
    lines = [f"00000000-0000-4000-8000-{n:012d}" for n in range(20)]
    (tmp_path / "leads.csv").write_text("\n".join(["ProspectId", *lines]) + "\n")
    state = tmp_path / "state"
    ledger = WindowLedger.for_account(
        require_host(emu.url), DEMO_ACCESS_KEY, name="ad-hoc", wall=system_wall
    )
    for _ in range(20):  # an ad-hoc run spent 20 of the day's 30 before the job
        assert ledger.reserve(100, 1.0) == 0.0
    ledger.close()

    async def night(day: str, env: dict[str, str]) -> Any:
        summary = tmp_path / f"{day}.json"
        args = ["job", str(job_file), "--state-dir", str(state), "--as-of", day]
        done = await run_cli(*args, "--summary-json", str(summary), env=env)
        return done, json.loads(summary.read_text())

    first, facts = await night("2026-06-01", demo_env(emu.url))
    assert first.returncode == 75, first.stderr
    assert "daily allowance used; resume after 00:00 UTC" in first.stderr
    assert (facts["totals"]["queued"], facts["totals"]["pending"]) == (10, 10)
    assert len(emu.records) == 10
    # The next night: a new UTC day for the allowance (a fresh state directory stands for it).
    tomorrow = {**demo_env(emu.url), "XDG_STATE_HOME": str(tmp_path / "tomorrow")}
    args = ["job", str(job_file), "--state-dir", str(state), "--as-of", "2026-06-02"]
    dry = await run_cli(*args, "--dry-run", env=tomorrow)
    assert dry.returncode == 0, dry.stderr
    assert "First: the 10 pending request(s) of " in dry.stdout
    assert "fits today's allowance (20 calls)" in dry.stdout  # the job's dry run says it too
    assert len(emu.records) == 10  # the dry run sent nothing
    second, facts = await night("2026-06-02", tomorrow)
    assert second.returncode == 0, second.stderr
    assert "Finishing the previous run first: " in second.stdout
    assert facts["checkpoint"].endswith("nightly-2026-06-02.sqlite")
    assert (facts["totals"]["queued"], facts["totals"]["pending"]) == (20, 0)
    sent = [(r["ProspectId"], r["ToDate"]) for r in emu.records]
    assert len(sent) == len(set(sent)) == 40  # 20 of each night's window, each once
    assert {to for _, to in sent} == {"2026-05-01 23:59:59", "2026-05-02 23:59:59"}


@pytest.mark.parametrize("as_of", ["0001-01-01", "0001-01-02", "0001-04-30"])
async def test_a_window_before_the_year_one_is_an_option_error(tmp_path: Path, as_of: str) -> None:
    """--as-of near the year 1 (or a huge older_than_days) moves the window off the calendar:
    exit 2 naming the job, not an OverflowError (exit 70)."""
    relative = GOOD + "[window]\nolder_than_days = 90\nwindow_days = 30\n"
    job_file = write_job(tmp_path, relative)
    done = await run_cli("job", str(job_file), "--as-of", as_of, "--dry-run")
    assert done.returncode == 2, done.stderr
    assert f"job job: the window (120 days before {as_of}) would start before the year 1" in (
        done.stderr
    )
    huge = write_job(tmp_path, GOOD + "[window]\nolder_than_days = 999999999999\n", "huge")
    done = await run_cli("job", str(huge), "--dry-run")
    assert done.returncode == 2, done.stderr
    assert "huge.toml: the window (999,999,999,999 days before" in done.stderr


async def test_as_of_a_later_date_is_refused(emulator: Any, tmp_path: Path) -> None:
    """A mistyped year must not move an 'older than 90 days' window onto the last days."""
    emu = await emulator(rate="off")
    (tmp_path / "ids.csv").write_text("ProspectId\n" + G.format(1) + "\n")
    job = tmp_path / "nightly.toml"
    job.write_text(
        'input = "ids.csv"\ncodes = [201]\nrate = "off"\nconfirm = true\n'
        "[window]\nolder_than_days = 90\nwindow_days = 30\n"
    )
    later = (dt.date.today() + dt.timedelta(days=2)).isoformat()
    for extra in ((), ("--dry-run",)):
        done = await run_cli("job", str(job), "--as-of", later, *extra, env=demo_env(emu.url))
        assert done.returncode == 2
        assert "is after today" in done.stderr
    assert emu.calls == 0


async def test_a_state_dir_that_cannot_be_created_is_an_input_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A state directory on a read-only file system (EROFS from mkdir), or whose lock file
    cannot be created: exit 2 naming it, as `run --checkpoint` there does, never exit 70."""
    job_file = write_job(tmp_path, GOOD)
    env = demo_env("http://127.0.0.1:9")
    (tmp_path / "file").write_text("")
    done = await run_cli("job", str(job_file), "--state-dir", str(tmp_path / "file" / "s"), env=env)
    assert done.returncode == 2, done.stderr
    assert f"job job: cannot create its state directory {tmp_path / 'file' / 's'}" in done.stderr
    (tmp_path / "locked" / "job.lock").mkdir(parents=True)  # the lock file's name is taken
    done = await run_cli("job", str(job_file), "--state-dir", str(tmp_path / "locked"), env=env)
    assert done.returncode == 2, done.stderr
    assert f"job job: cannot create its lock file {tmp_path / 'locked' / 'job.lock'}" in (
        done.stderr
    )
    original = Path.mkdir

    def read_only(self: Path, *args: Any, **kwargs: Any) -> None:
        if self.name == "ro":
            raise OSError(30, "Read-only file system", str(self))
        original(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", read_only)
    done = await run_cli("job", str(job_file), "--state-dir", str(tmp_path / "ro"), env=env)
    assert done.returncode == 2, done.stderr
    assert "cannot create its state directory" in done.stderr
    assert "Read-only file system; nothing sent" in done.stderr


@pytest.mark.parametrize(
    ("zone", "alias"), [("Asia/Kolkata", "Asia/Calcutta"), ("UTC", "Etc/Zulu")]
)
async def test_a_copy_of_a_job_with_its_zone_spelt_another_way_does_not_send_again(
    emulator: Any, tmp_path: Path, zone: str, alias: str
) -> None:
    """Asia/Calcutta is Asia/Kolkata: the same requests, so the copy is refused as one."""
    emu = await emulator(rate="off")
    text = GOOD + 'rate = "off"\n[window]\nolder_than_days = 90\nwindow_days = 30\n'
    write_job(tmp_path, f'tz = "{zone}"\n' + text, "nightly")
    write_job(tmp_path, f'tz = "{alias}"\n' + text, "copy")
    env = demo_env(emu.url)
    first = await run_cli("job", str(tmp_path / "nightly.toml"), env=env)
    assert first.returncode == 0, first.stderr
    copy = await run_cli("job", str(tmp_path / "copy.toml"), env=env)
    assert copy.returncode == 2, copy.stderr
    assert "already holds these requests" in copy.stderr
    assert len(emu.records) == 1


async def test_localtime_is_refused_naming_the_machine_s_zone(tmp_path: Path) -> None:
    """ "localtime" is whichever zone the machine is set to: a plan in it changes meaning with
    the machine that runs it."""
    done = await run_cli(
        "plan",
        str(write_job(tmp_path, GOOD).with_name("ids.csv")),
        "--codes",
        "201",
        "--tz",
        "localtime",
    )
    assert done.returncode == 2, done.stdout
    assert "'localtime' is whatever zone this machine is set to" in done.stderr
    assert "give --tz " in done.stderr
    with pytest.raises(OptionError, match="whatever zone this machine"):
        load_job(write_job(tmp_path, 'tz = "localtime"\n' + GOOD), wall=system_wall).run_date(
            dt.datetime.now(UTC)
        )


async def test_a_job_with_a_date_order_reads_its_iso_dates_as_iso(tmp_path: Path) -> None:
    """date_order = "DMY" with a sheet in ISO dates: planned as ISO, not a crash (exit 70)."""
    (tmp_path / "dated.csv").write_text(
        f"ProspectId,Codes,FromDate,ToDate\n{G.format(1)},201,2024-01-02,2024-06-30\n"
    )
    job_file = tmp_path / "dated.toml"
    job_file.write_text('input = "dated.csv"\ndate_order = "DMY"\nconfirm = true\n')
    state = ["--state-dir", str(tmp_path / "state")]
    done = await run_cli("job", str(job_file), "--dry-run", *state)
    assert done.returncode == 0, done.stderr
    assert "2024-01-02 00:00:00 → 2024-06-30 23:59:59 UTC  (1 request(s))" in done.stdout
