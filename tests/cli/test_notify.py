"""--notify: word when a run ends, on every exit code, to a local receiver (aiohttp on
127.0.0.1). Each ended run posts exactly once, its body is the --summary-json document (valid
against the schema) and holds no key; a healthchecks URL sees /start, then success or /fail;
a receiver that fails or hangs is a warning and leaves the exit code alone."""

from __future__ import annotations

import asyncio
import json
import shlex
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from aiohttp import web

from bulk_delete.cli.notify import kind_of, outcome_of, slack_message
from bulk_delete.emulator.server import DEMO_ACCESS_KEY, DEMO_SECRET_KEY
from bulk_delete.files import hold_lock
from bulk_delete.redaction import shown_url
from bulk_delete.send.notify_post import Post, post

from ..conftest import demo_env, leads_csv, run_cli, start_cli, until

ROOT = Path(__file__).parents[2]
SCHEMA = json.loads((ROOT / "bulk_delete" / "summary.schema.json").read_text())
TOKEN = "T0KEN-in-the-path-0123456789"  # a notification URL's own secret: never printed


@dataclass
class Receiver:
    """What a local receiver was sent: (method, path, body) in order."""

    url: str = ""
    seen: list[tuple[str, str, bytes]] = field(default_factory=list)
    status: int = 200
    delay: float = 0.0

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [json.loads(body) for _, seen, body in self.seen if seen == path]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    got = Receiver()

    async def record(request: web.Request) -> web.Response:
        got.seen.append((request.method, request.path, await request.read()))
        await asyncio.sleep(got.delay)
        return web.Response(status=got.status, text="OK")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    got.url = f"http://127.0.0.1:{port}"
    try:
        yield got
    finally:
        await runner.cleanup()


def _valid_and_keyless(body: dict[str, Any], exit_code: int) -> None:
    jsonschema.validate(body, SCHEMA)
    assert body["exit_code"] == exit_code
    text = json.dumps(body)
    assert DEMO_ACCESS_KEY not in text
    assert DEMO_SECRET_KEY not in text


async def _run(emu: Any, tmp_path: Path, hook: str, *extra: str, yes: bool = True) -> Any:
    sheet = leads_csv(
        tmp_path / "leads.csv", 6, extra_rows=extra[0] if extra[:1] == ("BAD",) else ""
    )
    args = [a for a in extra if a != "BAD"]
    words = ["run", str(sheet), "--checkpoint", str(tmp_path / "c.sqlite"), "--open-window"]
    words += ["--rate", "off", "--notify", hook, *(["--yes"] if yes else []), *args]
    return await run_cli(*words, env=demo_env(emu.url))


async def test_exit_0_and_1_post_the_summary_once(
    emulator: Any, receiver: Receiver, tmp_path: Path
) -> None:
    emu = await emulator(rate="off")
    hook = f"{receiver.url}/hook/{TOKEN}"
    done = await _run(emu, tmp_path, hook)
    assert done.returncode == 0, done.stderr
    [body] = receiver.bodies(f"/hook/{TOKEN}")
    _valid_and_keyless(body, 0)
    assert body["totals"]["queued"] == 6
    assert TOKEN not in done.stdout + done.stderr

    receiver.seen.clear()
    bad = tmp_path / "bad"
    bad.mkdir()
    sheet = leads_csv(bad / "leads.csv", 3, extra_rows="not-a-guid,201\n")
    done = await run_cli(
        "run", str(sheet), "--checkpoint", str(bad / "c.sqlite"), "--yes", "--open-window",
        "--rate", "off", "--notify", hook, env=demo_env(emu.url),
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    [body] = receiver.bodies(f"/hook/{TOKEN}")
    _valid_and_keyless(body, 1)
    assert body["totals"]["invalid_rows"] == 1


async def test_exit_2_after_a_plan_and_exit_3_post_once(
    emulator: Any, receiver: Receiver, tmp_path: Path
) -> None:
    emu = await emulator(rate="off")
    hook = f"{receiver.url}/hook"
    done = await _run(emu, tmp_path, hook, yes=False)  # no terminal and no --yes: not confirmed
    assert done.returncode == 2, done.stderr
    assert (tmp_path / "c.sqlite").is_file()  # the plan was saved
    [body] = receiver.bodies("/hook")
    _valid_and_keyless(body, 2)
    assert "pass --yes" in body["error"]
    assert body["totals"]["pending"] == 6

    receiver.seen.clear()
    wrong = {**demo_env(emu.url), "LSQ_SECRET_KEY": "not-the-secret-0000000000"}
    sheet = leads_csv(tmp_path / "other.csv", 2)
    done = await run_cli(
        "run", str(sheet), "--checkpoint", str(tmp_path / "d.sqlite"), "--yes", "--open-window",
        "--rate", "off", "--notify", hook, env=wrong,
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    [body] = receiver.bodies("/hook")
    _valid_and_keyless(body, 3)
    assert "not-the-secret-0000000000" not in json.dumps(body)


async def test_exit_75_when_another_process_holds_the_checkpoint(
    emulator: Any, receiver: Receiver, tmp_path: Path
) -> None:
    emu = await emulator(rate="off")
    checkpoint = tmp_path / "c.sqlite"
    await _run(emu, tmp_path, f"{receiver.url}/first")
    with hold_lock(
        checkpoint.with_name("c.sqlite.lock"), "checkpoint", target=checkpoint.resolve()
    ):
        done = await _run(emu, tmp_path, f"{receiver.url}/hook")
    assert done.returncode == 75, done.stderr
    [body] = receiver.bodies("/hook")
    _valid_and_keyless(body, 75)


@pytest.mark.e2e
async def test_exit_130_on_sigterm_and_a_healthchecks_ping_sees_start_then_fail(
    emulator: Any, receiver: Receiver, tmp_path: Path
) -> None:
    emu = await emulator(rate="off", latency=0.3)
    sheet = leads_csv(tmp_path / "leads.csv", 150)
    ping = f"healthchecks+{receiver.url}/ping/{TOKEN}"
    args = ["run", str(sheet), "--checkpoint", str(tmp_path / "c.sqlite"), "--yes"]
    args += ["--open-window", "--rate", "30/1s", "--notify", f"{receiver.url}/hook"]
    args += ["--notify", ping, "--notify-on", "failure"]
    process = await start_cli(*args, env=demo_env(emu.url))
    await until(lambda: len(emu.records) >= 10, process)
    process.send_signal(signal.SIGTERM)
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 130, stderr
    [body] = receiver.bodies("/hook")
    _valid_and_keyless(body, 130)
    assert body["this_run"]["result"] == "interrupted"
    paths = [(method, path) for method, path, _ in receiver.seen if path.startswith("/ping")]
    assert paths == [("POST", f"/ping/{TOKEN}/start"), ("POST", f"/ping/{TOKEN}/fail")]
    _valid_and_keyless(receiver.bodies(f"/ping/{TOKEN}/fail")[0], 130)
    assert TOKEN.encode() not in stderr


async def test_healthchecks_success_and_notify_on_leaves_out_what_it_does_not_name(
    emulator: Any, receiver: Receiver, tmp_path: Path
) -> None:
    emu = await emulator(rate="off")
    ping = f"healthchecks+{receiver.url}/ping/abc"
    done = await _run(
        emu, tmp_path, f"{receiver.url}/hook", "--notify", ping, "--notify-on", "failure,partial"
    )
    assert done.returncode == 0, done.stderr
    assert [path for _, path, _ in receiver.seen] == ["/ping/abc/start", "/ping/abc"]  # no /hook


async def test_a_failing_receiver_is_a_warning_and_the_exit_code_stands(
    emulator: Any, receiver: Receiver, tmp_path: Path
) -> None:
    emu = await emulator(rate="off")
    receiver.status = 500
    done = await _run(emu, tmp_path, f"{receiver.url}/hook/{TOKEN}")
    assert done.returncode == 0
    assert "warning: notification not delivered" in done.stderr
    assert TOKEN not in done.stderr
    assert f"{receiver.url}/…" in done.stderr


async def test_a_hanging_receiver_is_cut_at_the_timeout(receiver: Receiver) -> None:
    import aiohttp

    receiver.delay = 5
    async with aiohttp.ClientSession() as session:
        reason = await post(session, Post(url=f"{receiver.url}/x/{TOKEN}", body=b"{}"), 0.3)
    assert "did not answer within 0.3 s" in reason
    assert TOKEN not in reason


async def test_verify_notifies_with_the_checkpoints_summary(
    emulator: Any, receiver: Receiver, tmp_path: Path
) -> None:
    emu = await emulator(rate="off")
    done = await _run(emu, tmp_path, f"{receiver.url}/run")
    assert done.returncode == 0, done.stderr
    done = await run_cli(
        "verify", str(tmp_path / "c.sqlite"), "--rate", "off", "--notify", f"{receiver.url}/hook",
        env=demo_env(emu.url),
    )  # fmt: skip
    [body] = receiver.bodies("/hook")
    _valid_and_keyless(body, done.returncode)
    assert body["verification"]["checked"] == 6


async def test_a_job_file_names_its_notify_urls(
    emulator: Any, receiver: Receiver, tmp_path: Path
) -> None:
    emu = await emulator(rate="off")
    sheet = leads_csv(tmp_path / "leads.csv", 3)
    job = tmp_path / "nightly.toml"
    job.write_text(
        f'input = "leads.csv"\ncodes = [201]\nrate = "off"\nstate_dir = "state"\nconfirm = true\n'
        f'notify = ["{receiver.url}/hook"]\nnotify_on = ["failure", "partial", "success"]\n'
        '[window]\nfrom = "2025-01-01"\nto = "2025-01-31"\n'
    )
    assert sheet.is_file()
    done = await run_cli("job", str(job), env=demo_env(emu.url))
    assert done.returncode == 0, done.stderr
    [body] = receiver.bodies("/hook")
    _valid_and_keyless(body, 0)
    assert body["label"] == "nightly"


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("https://hooks.slack.com/services/T/B/x", "slack"),
        ("https://hc-ping.com/5f1c", "healthchecks"),
        ("healthchecks+https://hc.example.org/ping/5f1c", "healthchecks"),
        ("https://example.org/hook", "json"),
    ],
)
def test_what_each_url_is_sent(url: str, kind: str) -> None:
    assert kind_of(url) == kind


def test_slack_gets_a_short_text_with_blocks() -> None:
    document = {
        "label": "nightly",
        "input": "",
        "checkpoint": "/s/n.sqlite",
        "host": "https://api-in21.leadsquared.com",
        "error": "",
        "this_run": {"result": "finished"},
        "totals": {"queued": 9, "requests": 10, "failed": 1, "pending": 0, "invalid_rows": 0},
    }
    message = slack_message(document, 1)
    assert message["text"].startswith("⚠️ bulk-delete nightly: exit 1, finished")
    assert message["blocks"][0]["text"]["text"] == message["text"]
    assert "queued 9/10" in message["blocks"][1]["elements"][0]["text"]


def test_outcomes_and_urls_as_shown() -> None:
    assert [outcome_of(code) for code in (0, 1, 2, 3, 70, 75, 130)] == [
        "success", "partial", "failure", "failure", "failure", "failure", "failure",
    ]  # fmt: skip
    assert shown_url(f"https://hooks.slack.com/services/{TOKEN}") == "https://hooks.slack.com/…"
    assert shown_url("healthchecks+https://hc.example.org/ping/x") == "https://hc.example.org/…"


async def test_a_bad_notify_url_is_refused_without_quoting_it(tmp_path: Path) -> None:
    sheet = leads_csv(tmp_path / "leads.csv", 1)
    done = await run_cli(
        "run", str(sheet), "--checkpoint", str(tmp_path / "c.sqlite"),
        "--notify", f"ftp://x.example/{TOKEN}",
    )  # fmt: skip
    assert done.returncode == 2
    assert TOKEN not in done.stderr
    assert "must be an http(s) URL" in done.stderr


async def test_a_command_shown_again_never_holds_the_notify_urls_token(
    emulator: Any, receiver: Receiver, tmp_path: Path
) -> None:
    """The dry run's command that sends, and the report's command that resumes, are shown
    and forwarded: a --notify URL in them is left out and said so in a shell comment (the
    first version cut it to its host, and the command as printed notified a wrong URL)."""
    emu = await emulator(rate="off")
    hook = f"{receiver.url}/hook/{TOKEN}"
    done = await _run(emu, tmp_path, hook, "--dry-run")
    assert done.returncode == 0, done.stderr
    command = done.stdout.strip().splitlines()[-1]
    assert command.endswith("  # --notify left out: its URL may hold a token; add it to be told")
    assert TOKEN not in done.stdout
    words = shlex.split(command, comments=True)
    assert "--notify" not in words  # runs as printed
    assert words[1] == "run"
    failing = await emulator(rate="off", transient_rate=1.0)  # every call 500: a rerun resends
    done = await _run(failing, tmp_path, hook, "--give-up-after", "1")
    assert done.returncode == 3, done.stderr  # the outage outlasted --give-up-after
    page = (tmp_path / "c-report.html").read_text()
    assert "--notify left out" in page  # the command as typed, which resumes …
    assert TOKEN not in page  # … without the URL's token


async def test_a_secret_that_is_also_a_field_name_leaves_the_summary_whole(
    emulator: Any, receiver: Receiver, tmp_path: Path
) -> None:
    """A variable named like a token whose value is a word of the summary (CI_JOB_TOKEN=
    checkpoint): blanked out of the text, it turned the field "checkpoint" into "***" and the
    body failed its schema."""
    emu = await emulator(rate="off")
    hook = f"{receiver.url}/hook/{TOKEN}"
    sheet = leads_csv(tmp_path / "leads.csv", 2)
    env = {**demo_env(emu.url), "CI_JOB_TOKEN": "checkpoint"}
    words = ["run", str(sheet), "--checkpoint", str(tmp_path / "checkpoint-a.sqlite"), "--yes"]
    done = await run_cli(*words, "--open-window", "--rate", "off", "--notify", hook, env=env)
    assert done.returncode == 0, done.stderr
    [body] = receiver.bodies(f"/hook/{TOKEN}")
    _valid_and_keyless(body, 0)
    assert "checkpoint" not in body["checkpoint"]  # the value is still blanked


async def test_a_bug_in_notifying_is_exit_70_not_the_run_s_exit(
    emulator: Any, receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A notification that fails by a bug (not a receiver's answer) is said as a bug and
    exits 70: never the 0 of the run that went well, nor a traceback's 1."""
    from bulk_delete.cli import notify

    def broken(self: Any, exit_code: int, summary: Any) -> None:
        raise AttributeError("module 'urllib' has no attribute 'request'")

    monkeypatch.setattr(notify.Notifier, "end", broken)
    emu = await emulator(rate="off")
    done = await _run(emu, tmp_path, f"{receiver.url}/hook")
    assert done.returncode == 70, done.stderr
    assert "internal error (AttributeError); this is a bug" in done.stderr
