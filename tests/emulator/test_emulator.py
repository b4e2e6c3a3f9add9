"""The emulator's own behaviour: every other test trusts it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bulk_delete.api import QUEUED_MESSAGE, RETRIEVE_PATH, SETTING_PATH, USER_PATH
from bulk_delete.clock import ManualClock
from bulk_delete.config import RateLimit
from bulk_delete.emulator.knobs import parse_background
from bulk_delete.emulator.server import DEMO_ACCESS_KEY, DEMO_SECRET_KEY
from bulk_delete.errors import OptionError

from ..emulator_fixtures import BODY, G1, HEADERS, call


async def test_success_is_queued_and_recorded(emulator: Any, tmp_path: Path) -> None:
    log = tmp_path / "deletes.jsonl"
    emu = await emulator(log_path=log)
    status, body = await call(emu.url)
    assert status == 200
    assert body == {"Status": "Success", "Message": {"Message": QUEUED_MESSAGE}}
    assert [r["ProspectId"] for r in emu.records] == [G1]
    assert json.loads(log.read_text().splitlines()[0])["ActivityEventList"] == ["163", "166"]
    assert DEMO_SECRET_KEY not in log.read_text()


async def test_auth_by_query_string_too(emulator: Any) -> None:
    emu = await emulator()
    status, _ = await call(
        emu.url, headers={}, params={"accessKey": DEMO_ACCESS_KEY, "secretKey": DEMO_SECRET_KEY}
    )
    assert status == 200


@pytest.mark.parametrize(
    ("headers", "params"),
    [
        ({}, None),
        ({"x-LSQ-AccessKey": DEMO_ACCESS_KEY, "x-LSQ-SecretKey": "wrong"}, None),
        ({}, {"accessKey": "wrong", "secretKey": DEMO_SECRET_KEY}),
    ],
)
async def test_wrong_or_missing_keys_are_401(
    emulator: Any, headers: dict[str, str], params: dict[str, str] | None
) -> None:
    emu = await emulator()
    status, body = await call(emu.url, headers=headers, params=params)
    assert status == 401
    assert body["Status"] == "Error"
    assert body["ExceptionType"].startswith("MX")
    assert emu.records == []


async def test_other_paths_are_404_with_error_body(emulator: Any) -> None:
    emu = await emulator()
    status, body = await call(emu.url, path="/v2/ProspectActivity.svc/DeleteActivity")
    assert status == 404
    assert body["Status"] == "Error"


@pytest.mark.parametrize(
    ("data", "body", "message"),
    [
        (b"not json", None, "not valid JSON"),
        (b"\xff\xfe\x00garbage", None, "not valid JSON"),
        (None, ["a list"], "JSON object"),
        (None, {"ActivityEventList": ["163"]}, "ProspectId is mandatory"),
        (None, {"ProspectId": "abc", "ActivityEventList": ["163"]}, "not a valid Guid"),
        (None, {"ProspectId": G1, "ActivityEventList": []}, "non-empty list"),
        (None, {"ProspectId": G1}, "ActivityEventList is mandatory"),
        (None, {"ProspectId": G1, "ActivityEventList": ["x"]}, "not an activity code"),
        (
            None,
            {"ProspectId": G1, "ActivityEventList": ["163"], "FromDate": "2018-04-30"},
            "YYYY-MM-DD HH:MM:SS",
        ),
        (
            None,
            {"ProspectId": G1, "ActivityEventList": ["163"], "ToDate": "2018-02-30 00:00:00"},
            "not a valid date",
        ),
    ],
)
async def test_malformed_bodies_are_400(
    emulator: Any, data: bytes | None, body: Any, message: str
) -> None:
    emu = await emulator()
    headers = {**HEADERS, "Content-Type": "application/json"}
    status, answer = await call(emu.url, data=data, body=body, headers=headers)
    assert status == 400
    assert answer["ExceptionType"].startswith("MX")
    assert message in answer["ExceptionMessage"]


async def test_wrong_content_type_and_huge_body_do_not_crash(emulator: Any) -> None:
    emu = await emulator(max_body_bytes=10_000)
    status, answer = await call(
        emu.url, data=json.dumps(BODY).encode(), headers={**HEADERS, "Content-Type": "text/plain"}
    )
    assert status == 400
    assert "application/json" in answer["ExceptionMessage"]
    status, _ = await call(emu.url, body={**BODY, "pad": "x" * 50_000})
    assert status == 413
    status, _ = await call(emu.url, body={**BODY, "Unknown": 1})  # unknown fields are ignored
    assert status == 200


@pytest.mark.parametrize(
    ("body", "config", "exception"),
    [
        ({**BODY, "ActivityEventList": ["163", "12"]}, {}, "MXInvalidActivityEventException"),
        ({**BODY, "FromDate": "2019-01-01 00:00:00"}, {}, "MXInvalidDateRangeException"),
        (
            BODY,
            {"leads": frozenset({"00000000-0000-0000-0000-000000000000"})},
            "MXLeadNotFoundException",
        ),
    ],
)
async def test_application_errors_are_500_mx(
    emulator: Any, body: Any, config: dict[str, Any], exception: str
) -> None:
    emu = await emulator(**config)
    status, answer = await call(emu.url, body=body)
    assert status == 500
    assert answer["ExceptionType"] == exception
    assert emu.records == []


async def test_window_edges_and_rejected_calls_count(emulator: Any) -> None:
    clock = ManualClock(start=0.0)
    emu = await emulator(rate="3/5s", clock=clock)
    assert [(await call(emu.url))[0] for _ in range(3)] == [200, 200, 200]  # t=0: 0,0,0
    clock.jump(1.0)
    status, answer = await call(emu.url)  # t=1: a 4th call inside the window
    assert status == 429
    assert answer["ExceptionMessage"] == "API calls exceeded the limit of 3 in 5 second(s)"
    clock.jump(3.5)
    assert (await call(emu.url))[0] == 429  # t=4.5: window 0,0,0,1,4.5
    clock.jump(0.5)
    # t=5: the three from t=0 are one window old and leave; the two *rejected* calls
    # (t=1, t=4.5) still count, so only one more call fits.
    assert (await call(emu.url))[0] == 200  # window 1, 4.5, 5
    assert (await call(emu.url))[0] == 429  # window 1, 4.5, 5, 5


async def test_window_admits_exactly_n_after_a_full_window(emulator: Any) -> None:
    clock = ManualClock()
    emu = await emulator(rate="2/5s", clock=clock)
    assert [(await call(emu.url))[0] for _ in range(3)] == [200, 200, 429]
    clock.jump(5.0)  # all three arrivals (rejected one included) are exactly one window old
    assert [(await call(emu.url))[0] for _ in range(3)] == [200, 200, 429]
    assert emu.stats()["max_calls_in_window"] == 3
    assert emu.stats()["outcomes"] == {"queued": 4, "rate_limited": 2}


async def test_transient_and_html_faults(emulator: Any) -> None:
    emu = await emulator(transient_rate=1.0)
    status, answer = await call(emu.url)
    assert status == 500
    assert not answer["ExceptionType"].startswith("MX")
    emu = await emulator(html_rate=1.0)
    status, text = await call(emu.url)
    assert status == 502
    assert "<html>" in text


async def test_dropped_connections(emulator: Any) -> None:
    emu = await emulator(drop_rate=1.0)
    with pytest.raises(aiohttp.ClientError):
        await call(emu.url)
    assert emu.stats()["outcomes"] == {"dropped": 1}


async def test_latency_and_slow_answers(emulator: Any) -> None:
    emu = await emulator(latency=0.2, jitter=0.05)
    started = time.monotonic()
    assert (await call(emu.url))[0] == 200
    assert time.monotonic() - started >= 0.15
    emu = await emulator(slow_rate=1.0, slow_seconds=2.0)
    with pytest.raises(asyncio.TimeoutError):
        await call(emu.url, total=0.3)


async def test_faults_are_seeded(emulator: Any) -> None:
    async def pattern(seed: int) -> list[int]:
        emu = await emulator(transient_rate=0.5, seed=seed, rate="off")
        return [(await call(emu.url))[0] for _ in range(12)]

    assert await pattern(7) == await pattern(7)
    assert set(await pattern(7)) == {200, 500}


async def test_webhook_is_posted_after_the_delay(emulator: Any) -> None:
    received: list[dict[str, Any]] = []
    got = asyncio.Event()

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        got.set()
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        emu = await emulator(webhook_delay=0.05)
        await call(emu.url, body={**BODY, "StatusWebhookURL": f"http://127.0.0.1:{port}/hook"})
        await asyncio.wait_for(got.wait(), 5)
    finally:
        await runner.cleanup()
    [document] = received
    assert document["ProspectId"] == G1
    assert document["Status"] == "Completed"
    assert document["RequestId"] == emu.records[0]["RequestId"]
    assert isinstance(document["DeletedCount"], int)


async def test_preview_endpoints_are_deterministic_and_see_deletes(emulator: Any) -> None:
    emu = await emulator(webhook_delay=0.0)
    async with aiohttp.ClientSession() as session:
        async with session.get(
            emu.url + SETTING_PATH, params={"code": "201"}, headers=HEADERS
        ) as response:
            assert response.status == 200
            assert (await response.json())["DisplayName"]
        async with session.get(
            emu.url + SETTING_PATH, params={"code": "12"}, headers=HEADERS
        ) as response:
            assert response.status == 500

        async def activities() -> list[dict[str, Any]]:
            async with session.post(
                emu.url + RETRIEVE_PATH,
                params={"leadId": G1},
                headers=HEADERS,
                json={"Paging": {"Offset": "0", "RowCount": "100"}},
            ) as response:
                return (await response.json())["ProspectActivities"]  # type: ignore[no-any-return]

        before = await activities()
        assert before == await activities()
        assert before
        code = str(before[0]["EventCode"])
        await call(emu.url, body={"ProspectId": G1, "ActivityEventList": [code]})
        await asyncio.sleep(0.1)
        after = await activities()
        assert [a for a in before if str(a["EventCode"]) != code] == after


@pytest.mark.e2e
def test_emulator_command_writes_port_and_stops_on_sigterm(tmp_path: Path) -> None:
    port_file = tmp_path / "port"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bulk_delete",
            "emulator",
            "--port",
            "0",
            "--port-file",
            str(port_file),
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not port_file.exists() or not port_file.read_text().strip():
            assert time.monotonic() < deadline, "emulator did not start"
            time.sleep(0.05)
        port = int(port_file.read_text())
        status, _ = asyncio.run(call(f"http://127.0.0.1:{port}"))
        assert status == 200
    finally:
        os.kill(process.pid, signal.SIGTERM)
        _, err = process.communicate(timeout=10)
    assert process.returncode == 0
    assert f"listening on http://127.0.0.1:{port}" in err
    assert DEMO_SECRET_KEY not in err


async def test_real_tenants_refusals_403_and_a_stated_limit(emulator: Any) -> None:
    clock = ManualClock()
    emu = await emulator(
        rate="2/5s", clock=clock, limit_status=403, stated_rate=RateLimit.parse("10/5s")
    )
    statuses = [(await call(emu.url))[0] for _ in range(3)]
    assert statuses == [200, 200, 403]
    _, answer = await call(emu.url)
    assert answer["ExceptionMessage"] == "API calls exceeded the limit of 10 in 5 second(s)"


async def test_another_integration_spends_the_same_window(emulator: Any) -> None:
    emu = await emulator(rate="5/1s", background=RateLimit.parse("40/1s"))
    await asyncio.sleep(0.3)  # it has been calling every 25 ms: the window is full
    status, _ = await call(emu.url)
    assert status == 429  # our call is refused because of it
    stats = emu.stats()["background"]
    assert stats["calls"] >= 8
    assert stats["refused"] >= 3  # and it suffers refusals too, counted for the benchmarks


async def test_user_by_access_key_names_the_accounts_api_host(emulator: Any) -> None:
    emu = await emulator(rate="off", account_host="api-in21.leadsquared.com")
    async with aiohttp.ClientSession() as session:
        async with session.get(emu.url + USER_PATH, headers=HEADERS) as response:
            assert response.status == 200
            user = await response.json()
        async with session.get(emu.url + USER_PATH) as response:
            assert response.status == 401  # keys checked as on every call
    assert user["LSQCommonServiceURLs"]["api"] == "api-in21.leadsquared.com"
    own = await emulator(rate="off")
    async with (
        aiohttp.ClientSession() as session,
        session.get(own.url + USER_PATH, headers=HEADERS) as response,
    ):
        assert (await response.json())["LSQCommonServiceURLs"]["api"] == own.url[7:]


async def test_refusals_count_in_the_window_or_not(emulator: Any) -> None:
    for count_refusals, after in ((True, [200, 429]), (False, [200, 200])):
        clock = ManualClock()
        emu = await emulator(rate="2/5s", clock=clock, count_refusals=count_refusals)
        assert [(await call(emu.url))[0] for _ in range(2)] == [200, 200]
        clock.jump(2.5)
        assert (await call(emu.url))[0] == 429  # full either way
        clock.jump(2.5)  # the two accepted calls leave; the refused one stays if it counted
        assert [(await call(emu.url))[0] for _ in range(2)] == after
        assert emu.stats()["callers"]["client"] == {
            "calls": 5,
            "refused": 2 if count_refusals else 1,
        }


def test_background_spec_takes_a_burst_and_a_shape() -> None:
    rate = RateLimit.parse("10/5s")
    assert parse_background("10/5s") == {"background": rate}
    assert parse_background("10/5s,burst=5") == {"background": rate, "background_burst": 5}
    assert parse_background("10/5s,on=40,off=40,until=300") == {
        "background": rate,
        "background_on": 40.0,
        "background_off": 40.0,
        "background_until": 300.0,
    }
    assert parse_background("15/5s,ramp=300") == {
        "background": RateLimit.parse("15/5s"),
        "background_ramp": 300.0,
    }
    for bad in ("10/5s,burst=0", "10/5s,size=5", "10/5s,burst=x", "10/5s,burst=1.5", "10/5s,on="):
        with pytest.raises(OptionError, match="--background"):
            parse_background(bad)


async def test_a_background_integration_that_comes_and_goes(emulator: Any) -> None:
    """Busy half a second, quiet half a second: half its calls; after ``until``, none."""
    emu = await emulator(
        rate="off",
        background=RateLimit.parse("20/1s"),
        background_on=0.5,
        background_off=0.5,
        background_until=1.0,
        background_jitter=0.0,
    )
    await asyncio.sleep(1.3)
    assert 8 <= emu.stats()["background"]["calls"] <= 10  # the ticks of its busy half second


async def test_the_background_integration_keeps_its_schedule(emulator: Any) -> None:
    """Absolute deadlines: however late each call arrives (jitter), the count after a while
    is the nominal rate's, not less (a sleep after each call would drift below it)."""
    emu = await emulator(rate="off", background=RateLimit.parse("20/1s"), background_jitter=0.04)
    began = asyncio.get_running_loop().time()
    await asyncio.sleep(1.0)
    elapsed = asyncio.get_running_loop().time() - began
    calls = emu.stats()["background"]["calls"]
    assert 20 * (elapsed - 0.1) - 1 <= calls <= 20 * elapsed + 1
    assert emu.stats()["callers"]["background"] == {"calls": calls, "refused": 0}


async def test_a_bursty_background_integration(emulator: Any) -> None:
    emu = await emulator(
        rate="5/1s", background=RateLimit.parse("8/1s"), background_burst=4, background_jitter=0
    )
    await asyncio.sleep(0.55)  # one burst of 4 at 0.5 s, into an empty window
    assert emu.stats()["callers"]["background"] == {"calls": 4, "refused": 0}
    await asyncio.sleep(0.5)  # the second burst: one more fits, three refused
    assert emu.stats()["callers"]["background"] == {"calls": 8, "refused": 3}


async def test_the_daily_allowance_refuses_naming_a_day(emulator: Any) -> None:
    day = [1_800_000_000.0]
    emu = await emulator(rate="off", daily_limit=2, wall=lambda: day[0])
    assert [(await call(emu.url))[0] for _ in range(3)] == [200, 200, 429]
    _, answer = await call(emu.url)
    assert answer["ExceptionMessage"] == "API calls exceeded the limit of 2 in 86400 second(s)"
    day[0] += 86400
    assert (await call(emu.url))[0] == 200  # a new day
    assert emu.stats()["daily_used"] == 1


def test_the_neighbour_and_the_allowance_are_emulator_options() -> None:
    """--background with a burst sets two fields; --no-count-refusals turns the log off;
    --daily-limit and --background-jitter land in the config, as typed on the command line."""
    from bulk_delete.cli.main import cli
    from bulk_delete.emulator.knobs import config_of

    command = cli.commands["emulator"]
    args = ["--background", "10/5s,burst=5", "--background-jitter", "0.2"]
    args += ["--no-count-refusals", "--daily-limit", "500"]
    with command.make_context("emulator", args) as context:
        config = config_of(context.params)
    assert config.background == RateLimit.parse("10/5s")
    assert config.background_burst == 5
    assert config.background_jitter == 0.2
    assert config.count_refusals is False
    assert config.daily_limit == 500
    with command.make_context("emulator", []) as context:
        default = config_of(context.params)
    assert (default.background, default.background_burst, default.count_refusals) == (None, 1, True)


def test_emulator_on_a_port_in_use_exits_2_naming_it() -> None:
    """A second emulator on the demo's port is a usage problem, not a bug (exit 70 before)."""
    import socket

    from click.testing import CliRunner

    from bulk_delete.cli.main import cli

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["emulator", "--port", str(port)])
    assert result.exit_code == 2, result.output
    assert f"port {port} on 127.0.0.1 is in use" in result.stderr
    assert "--port" in result.stderr


async def test_a_lead_split_over_requests_is_not_counted_as_deleted_twice(emulator: Any) -> None:
    emu = await emulator(rate="off")
    assert (await call(emu.url, body={**BODY, "ActivityEventList": [201]}))[0] == 200
    assert (await call(emu.url, body={**BODY, "ActivityEventList": [202]}))[0] == 200
    assert emu.stats()["leads_deleted"] == 1
    assert emu.stats()["leads_deleted_twice"] == 0  # its codes went in two requests: once each
    assert (await call(emu.url, body={**BODY, "ActivityEventList": [202]}))[0] == 200
    assert emu.stats()["leads_deleted_twice"] == 1  # the same delete accepted again


def test_a_change_to_a_lead_s_activities_reaches_no_other_reader() -> None:
    """A lead's activities are drawn once per process and kept (server._generated): each
    reader gets its own copies, custom fields (Data) included, so what one test or handler
    changes in them is not what the next emulator serves."""
    from bulk_delete.emulator.server import Emulator, EmulatorConfig

    first, second = Emulator(EmulatorConfig(seed=1)), Emulator(EmulatorConfig(seed=2))
    served = json.dumps(second.remaining(G1))
    changed = first.remaining(G1)[0]
    changed["Notes"] = "changed"
    changed["Data"][0]["Value"] = "changed"
    changed["Data"].append({"Key": "mx_Custom_9", "Value": "added"})
    assert json.dumps(second.remaining(G1)) == json.dumps(first.remaining(G1)) == served
