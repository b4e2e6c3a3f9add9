"""Name the real cause (issues 23.6, 18.4, 18.11): proxy timeouts, huge bodies, a host that
does not resolve or does not answer, keys with line breaks, an absurd --concurrency, and the
User-Agent every call carries."""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from bulk_delete import __version__
from bulk_delete.clock import ManualClock, SystemClock
from bulk_delete.commands.preflight import preflight
from bulk_delete.config import REGIONAL_HOSTS, Credentials, RateLimit
from bulk_delete.emulator.server import DEMO_ACCESS_KEY, DEMO_SECRET_KEY
from bulk_delete.errors import CredentialsError, FatalAPIError, ServiceDownError
from bulk_delete.send.answers import Verdict, classify, unresolved
from bulk_delete.send.client import LeadSquaredClient
from bulk_delete.send.limiter import SlidingWindowLimiter

from ..conftest import demo_env, leads_csv, run_cli, send_sheet

KEYS = Credentials(access_key=DEMO_ACCESS_KEY, secret_key=DEMO_SECRET_KEY)
BODY = '{"ProspectId":"3aee22bd-8419-422a-8242-c510df9af021","ActivityEventList":["201"]}'
TYPO_HOST = "https://api-in21.leadsqaured.com"


class Resolver(AbstractResolver):
    """A resolver that fails as getaddrinfo would, with ``errno``."""

    def __init__(self, errno: int) -> None:
        self.errno = errno
        self.calls = 0

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.calls += 1
        raise socket.gaierror(self.errno, "Name or service not known")

    async def close(self) -> None:
        return None


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------ 408 and 499


@pytest.mark.parametrize("status", [408, 499])
def test_proxy_timeouts_are_transient_not_failures(status: int) -> None:
    answer = classify(status, "<html>Request Timeout</html>")
    assert answer.verdict is Verdict.TRANSIENT
    assert answer.http_status == status


def test_other_4xx_still_fail_for_good() -> None:
    assert classify(400, '{"ExceptionMessage": "bad"}').verdict is Verdict.FAILED


# ------------------------------------------------------------ huge bodies


async def test_a_body_over_1_mb_is_not_read_and_is_transient(
    emulator: Any, session: aiohttp.ClientSession
) -> None:
    emu = await emulator(rate="off", huge_body_rate=1.0, huge_body_bytes=8 << 20)
    client = LeadSquaredClient(session, emu.url, KEYS)
    answer = await client.delete_activities(BODY)
    assert answer.verdict is Verdict.TRANSIENT
    assert answer.message == "answer body over 1 MB; not read"
    assert answer.http_status == 200
    assert emu.stats()["outcomes"] == {"huge_body": 1}


async def test_a_run_meeting_huge_bodies_retries_and_keeps_them_pending(
    emulator: Any, tmp_path: Path
) -> None:
    emu = await emulator(rate="off", huge_body_rate=1.0, huge_body_bytes=4 << 20)
    sheet = leads_csv(tmp_path / "leads.csv", 2)
    done = await send_sheet(
        emu, sheet, tmp_path / "c.sqlite", "--rate", "off", "--give-up-after", "1", "--no-preflight"
    )
    assert done.returncode == 3  # every answer unreadable: an outage as far as we can tell
    assert "answer body over 1 MB; not read" in done.stderr


# ------------------------------------------------------------ DNS and connections


def test_a_name_that_does_not_exist_is_fatal_and_lists_the_regional_hosts() -> None:
    answer = unresolved("api-in21.leadsqaured.com", socket.gaierror(socket.EAI_NONAME, "x"))
    assert answer.verdict is Verdict.FATAL
    assert answer.message.startswith(
        "the host api-in21.leadsqaured.com does not resolve: check --host / LSQ_HOST"
    )
    assert all(host in answer.message for host in REGIONAL_HOSTS.values())
    assert "--no-preflight" not in answer.message


def test_a_temporary_dns_failure_is_transient() -> None:
    answer = unresolved("api.leadsquared.com", socket.gaierror(socket.EAI_AGAIN, "x"))
    assert answer.verdict is Verdict.TRANSIENT


async def test_the_preflight_stops_at_once_on_a_host_that_does_not_resolve() -> None:
    resolver = Resolver(socket.EAI_NONAME)
    connector = aiohttp.TCPConnector(resolver=resolver)
    async with aiohttp.ClientSession(connector=connector) as session:
        client = LeadSquaredClient(session, TYPO_HOST, KEYS)
        limiter = SlidingWindowLimiter(RateLimit.parse("off"), clock=SystemClock())
        with pytest.raises(FatalAPIError) as stopped:
            await preflight(client, limiter, SystemClock(), rng=random.Random(), give_up_after=60)
    message = str(stopped.value)
    assert "the host api-in21.leadsqaured.com does not resolve" in message
    assert "https://api-us11.leadsquared.com" in message
    assert "--no-preflight" not in message
    assert DEMO_SECRET_KEY not in message
    assert resolver.calls == 1  # no riding out a name that does not exist


async def test_nothing_listening_is_named_and_ridden_out_until_give_up_after(
    session: aiohttp.ClientSession,
) -> None:
    host = f"127.0.0.1:{free_port()}"
    client = LeadSquaredClient(session, f"http://{host}", KEYS)
    answer = await client.delete_activities(BODY)
    assert answer.verdict is Verdict.TRANSIENT
    assert answer.message == f"nothing answers at {host} (connection refused)"
    clock = ManualClock(start=0.0)  # the backoff and the breaker's probe: virtual waits
    limiter = SlidingWindowLimiter(RateLimit.parse("off"), clock=clock)
    task = asyncio.create_task(
        preflight(client, limiter, clock, rng=random.Random(), give_up_after=0.5)
    )
    async with asyncio.timeout(30):
        while not task.done():
            await clock.run_until_idle(limit=3600)
            await asyncio.sleep(0)
    with pytest.raises(ServiceDownError) as stopped:
        await task
    assert clock.now() >= 0.5
    assert f"nothing answers at {host} (connection refused)" in str(stopped.value)
    assert "--no-preflight" not in str(stopped.value)


async def test_a_refused_connection_is_said_at_once_then_every_15_s_until_it_stops(
    session: aiohttp.ClientSession,
) -> None:
    """A wrong port in LSQ_HOST: said before the first backoff, a line every 15 s while the
    wait lasts, and the stop when --give-up-after runs out, not a doubled pause later."""
    host = f"127.0.0.1:{free_port()}"
    client = LeadSquaredClient(session, f"http://{host}", KEYS)
    clock = ManualClock(start=0.0)
    said: list[tuple[float, str]] = []
    limiter = SlidingWindowLimiter(
        RateLimit.parse("off"), clock=clock, on_notice=lambda text: said.append((clock(), text))
    )
    task = asyncio.create_task(
        preflight(client, limiter, clock, rng=random.Random(), give_up_after=120)
    )
    async with asyncio.timeout(30):
        while not task.done():
            await clock.run_until_idle(limit=3600)
            await asyncio.sleep(0)
    with pytest.raises(ServiceDownError):
        await task
    assert said[0] == (0.0, f"connection refused at {host}; retrying until --give-up-after (120 s)")
    assert [at for at, _ in said[1:]] == [15.0 * n for n in range(1, 8)]
    assert said[1][1] == (
        f"still connection refused at {host} after 15 s; giving up in 105 s (--give-up-after 120 s)"
    )
    assert clock.now() == 120.0


# ------------------------------------------------------------ keys and --concurrency


@pytest.mark.parametrize("bad", ["u$abc\r\nX-Evil: 1", "u$abc\ndef", "u$a\x00b", "u$a\x1bb"])
def test_keys_with_control_characters_name_the_variable_not_the_value(bad: str) -> None:
    env = {"LSQ_ACCESS_KEY": bad, "LSQ_SECRET_KEY": DEMO_SECRET_KEY}
    with pytest.raises(CredentialsError) as error:
        Credentials.from_env(env)
    assert "LSQ_ACCESS_KEY" in str(error.value)
    assert bad.strip() not in str(error.value)
    assert "u$a" not in str(error.value)


async def test_a_key_with_a_line_break_exits_2_before_any_call(
    emulator: Any, tmp_path: Path
) -> None:
    emu = await emulator(rate="off")
    env = {**demo_env(emu.url), "LSQ_SECRET_KEY": "demo\r\nsecret"}
    sheet = leads_csv(tmp_path / "leads.csv", 2)
    done = await send_sheet(emu, sheet, tmp_path / "c.sqlite", env=env)
    assert done.returncode == 2
    assert "LSQ_SECRET_KEY contains a line break" in done.stderr
    assert "demo\r\nsecret" not in done.stdout + done.stderr
    assert emu.calls == 0


async def test_concurrency_has_a_maximum_and_the_error_names_it(
    emulator: Any, tmp_path: Path
) -> None:
    emu = await emulator(rate="off")
    sheet = leads_csv(tmp_path / "leads.csv", 2)
    done = await send_sheet(emu, sheet, tmp_path / "c.sqlite", "--concurrency", "1000000")
    assert done.returncode == 2
    assert "at most 256" in done.stderr
    assert emu.calls == 0
    done = await send_sheet(emu, sheet, tmp_path / "c.sqlite", "--concurrency", "256")
    assert done.returncode == 0, done.stderr


# ------------------------------------------------------------ User-Agent


async def test_every_call_says_it_is_bulk_delete(emulator: Any, tmp_path: Path) -> None:
    emu = await emulator(rate="off")
    sheet = leads_csv(tmp_path / "leads.csv", 3)
    done = await send_sheet(emu, sheet, tmp_path / "c.sqlite", "--rate", "off")
    assert done.returncode == 0, done.stderr
    plan = await run_cli(
        "plan", str(sheet), "--check-codes", "--rate", "off", env=demo_env(emu.url)
    )
    assert plan.returncode == 0, plan.stderr
    assert dict(emu.user_agents) == {f"bulk-delete/{__version__}": emu.calls}
    assert emu.calls >= 6  # preflights, deletes and code checks alike
