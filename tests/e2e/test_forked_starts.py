"""A start forked from the tests' zygote (tests/forked.py) behaves as a fresh
``python -m bulk_delete``: the same exit code and the same output, the environment it is given
and no other, and a signal's exit.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from ..conftest import demo_env, leads_csv, start_cli, until
from ..forked import Started, fresh

pytestmark = pytest.mark.e2e

SAMPLES = Path(__file__).parents[2] / "sample_inputs"
GUID = "00000000-0000-4000-8000-{:012d}"


async def _fresh_start(*args: str, env: dict[str, str]) -> Started:
    return await fresh(list(args), {**os.environ, **env}, asyncio.subprocess.DEVNULL)


async def _forked_start(*args: str, env: dict[str, str]) -> Started:
    return await start_cli(*args, env=env)


async def _ended(start: Any, *args: str, env: dict[str, str]) -> tuple[int | None, bytes, bytes]:
    process = await start(*args, env=env)
    out, err = await process.communicate()
    return process.returncode, out, err


async def _fresh(*args: str, env: dict[str, str]) -> tuple[int | None, bytes, bytes]:
    return await _ended(_fresh_start, *args, env=env)


async def _forked(*args: str, env: dict[str, str]) -> tuple[int | None, bytes, bytes]:
    return await _ended(_forked_start, *args, env=env)


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["plan", str(SAMPLES / "leads.csv"), "--tz", "Asia/Kolkata"],
        ["plan", str(SAMPLES / "leads.xlsx")],
        ["run", "no-such-sheet.csv", "--yes"],
        ["run", str(SAMPLES / "leads.csv"), "--rate", "many"],
        ["status", "no-such-checkpoint.sqlite"],
    ],
    ids=["help", "plan-csv", "plan-xlsx", "missing-sheet", "bad-option", "no-checkpoint"],
)
async def test_a_forked_start_says_what_a_fresh_one_says(args: list[str]) -> None:
    forked, fresh = await asyncio.gather(_forked(*args, env={}), _fresh(*args, env={}))
    assert forked == fresh


async def test_a_forked_start_sees_the_environment_it_is_given_and_no_other(
    emulator: Any, tmp_path: Path
) -> None:
    """Keys given to one start are not seen by the next one, which is refused for want of
    them as a fresh start is."""
    emu = await emulator(rate="off")
    sheet = leads_csv(tmp_path / "leads.csv", 3)
    args = ("run", str(sheet), "--yes", "--open-window")
    code, _, err = await _forked(
        *args, "--checkpoint", str(tmp_path / "a.sqlite"), env=demo_env(emu.url)
    )
    assert code == 0, err
    assert len(emu.records) == 3
    keyless = {name: "" for name in ("LSQ_ACCESS_KEY", "LSQ_SECRET_KEY")} | {"LSQ_HOST": emu.url}
    without = [*args, "--checkpoint", str(tmp_path / "b.sqlite")]
    forked, fresh = await asyncio.gather(
        _forked(*without, env=keyless), _fresh(*without, env=keyless)
    )
    assert forked[0] == fresh[0] == 2
    assert b"missing LeadSquared keys" in forked[2]
    assert forked[2] == fresh[2]


@pytest.mark.parametrize("start", [_forked_start, _fresh_start], ids=["forked", "fresh"])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
async def test_a_start_ends_at_a_signal_mid_run_forked_or_fresh(
    emulator: Any, tmp_path: Path, signum: int, start: Any
) -> None:
    """The same run, forked and fresh, each stopped a few calls in: SIGTERM drains it to
    exit 130 with a summary, SIGKILL ends it at once; nothing more is sent after the exit."""
    emu = await emulator(rate="off", latency=0.2)
    sheet = leads_csv(tmp_path / "leads.csv", 200)
    args = ("run", str(sheet), "--yes", "--open-window", "--rate", "5/1s")
    process = await start(*args, "--checkpoint", str(tmp_path / "c.sqlite"), env=demo_env(emu.url))
    await until(lambda: len(emu.records) >= 2, process)
    process.send_signal(signum)
    _, err = await asyncio.wait_for(process.communicate(), 30)
    sent = len(emu.records)
    await asyncio.sleep(0.5)
    assert len(emu.records) == sent < 200
    if signum == signal.SIGTERM:
        assert process.returncode == 130, err
        assert b"exit=130" in err
    else:
        assert process.returncode == -signal.SIGKILL


async def test_a_start_with_another_encoding_is_fresh() -> None:
    """The interpreter reads PYTHONIOENCODING (LANG, LC_*, PYTHONHASHSEED…) as it starts: a
    test that sets it gets a fresh interpreter, not a fork of one that started without it."""
    process = await start_cli("--help", env={"PYTHONIOENCODING": "latin-1"})
    assert isinstance(process, asyncio.subprocess.Process)
    out, _ = await process.communicate()
    assert process.returncode == 0
    assert b"Usage" in out


async def test_a_start_with_another_locale_than_the_zygote_s_is_fresh(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Compared with what the zygote started with, not with this process's environment now:
    a locale set after the zygote started still gives a fresh start."""
    await (await start_cli("--version")).communicate()  # the zygote exists
    monkeypatch.setenv("LC_ALL", "C")
    process = await start_cli("--version")
    await process.communicate()
    assert isinstance(process, asyncio.subprocess.Process)


@pytest.mark.parametrize("name", ["SSL_CERT_FILE", "PANDAS_FUTURE_INFER_STRING"])
async def test_a_start_whose_variables_read_by_the_preload_differ_is_fresh(
    name: str, tmp_path: Path
) -> None:
    """What the zygote's imports read, they read from its environment: aiohttp's SSL context,
    made as it is imported, trusts the CAs of the zygote's SSL_CERT_FILE (OpenSSL reads it in
    C), pandas takes its PANDAS_FUTURE_* flags. A run given another CA, forked, refused the
    server a fresh run trusted (and the other way round): such a start is a fresh one."""
    await (await start_cli("--version")).communicate()  # the zygote exists
    process = await start_cli("--version", env={name: str(tmp_path / "ca.pem")})
    await process.communicate()
    assert isinstance(process, asyncio.subprocess.Process)


@pytest.mark.e2e(seconds=3)
async def test_a_run_is_the_same_plan_under_another_hash_seed(
    emulator: Any, tmp_path: Path
) -> None:
    """Every forked start has its zygote's hash seed, and every test process one of its own:
    a plan whose identity followed a set's order (its fingerprint, say) passed them all. Fresh
    starts, each seeded otherwise: the same command resumes its own checkpoint, and the same
    plan under a new one is refused by the machine's ledger."""
    emu = await emulator(rate="off")
    sheet = tmp_path / "leads.csv"
    sheet.write_text("ProspectId\n" + "".join(f"{GUID.format(n)}\n" for n in range(3)))
    args = ["run", str(sheet), "--yes", "--open-window", "--codes", "150,151,152,153,154,155"]
    ends = []
    for seed, checkpoint in (("1", "c.sqlite"), ("2", "c.sqlite"), ("3", "other.sqlite")):
        env = {**demo_env(emu.url), "PYTHONHASHSEED": seed}
        process = await start_cli(*args, "--checkpoint", str(tmp_path / checkpoint), env=env)
        _, err = await process.communicate()
        assert isinstance(process, asyncio.subprocess.Process)
        ends.append((process.returncode, len(emu.records), err.decode()[-300:]))
    assert [end[:2] for end in ends] == [(0, 3), (0, 3), (2, 3)], ends


async def test_a_forked_start_has_the_test_s_umask(emulator: Any, tmp_path: Path) -> None:
    emu = await emulator(rate="off", latency=0.5)
    sheet = leads_csv(tmp_path / "leads.csv", 50)
    old = os.umask(0o027)
    try:
        args = ("run", str(sheet), "--yes", "--open-window", "--checkpoint", str(tmp_path / "c"))
        process = await start_cli(*args, env=demo_env(emu.url))
    finally:
        os.umask(old)
    await until(lambda: len(emu.records) >= 1, process)  # the child runs the command
    status = Path(f"/proc/{process.pid}/status").read_text()
    process.kill()
    await process.communicate()
    assert "Umask:\t0027" in status


async def test_a_zygote_that_died_is_replaced_and_named() -> None:
    from .. import forked

    await (await start_cli("--version")).communicate()
    zygote = forked._zygote
    assert zygote is not None
    zygote._process.kill()
    zygote._process.wait()
    process = await start_cli("--version")  # a new zygote
    out, _ = await process.communicate()
    assert process.returncode == 0
    assert b"bulk-delete" in out
    assert forked._zygote is not zygote
