"""A checkpoint goes on with the host and keys its requests went to (commands/account.py)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from bulk_delete.config import normalise_host
from bulk_delete.emulator.server import DEMO_ACCESS_KEY

from ..conftest import demo_env, leads_csv, run_cli, send_sheet

G = "00000000-0000-4000-8000-{:012d}"


async def _half_queued(emulator: Any, tmp_path: Path) -> tuple[Any, Path, Path]:
    """A run whose first host knows only half the leads: 2 queued, 2 failed (MX errors)."""
    first = await emulator(rate="off", leads=frozenset({G.format(0), G.format(1)}))
    sheet = leads_csv(tmp_path / "leads.csv", 4)
    checkpoint = tmp_path / "c.sqlite"
    done = await send_sheet(first, sheet, checkpoint, "--rate", "off")
    assert done.returncode == 1, done.stderr
    assert len(first.records) == 2
    return first, sheet, checkpoint


async def test_a_resume_against_another_host_is_refused_naming_both(
    emulator: Any, tmp_path: Path
) -> None:
    first, sheet, checkpoint = await _half_queued(emulator, tmp_path)
    other = await emulator(rate="off")
    done = await send_sheet(other, sheet, checkpoint, "--rate", "off", "--retry-failed")
    assert done.returncode == 2, done.stderr
    assert f"its requests went to {first.url}, not {other.url} (the same keys)" in done.stderr
    assert other.calls == 0  # nothing went to the other account, not even the preflight
    verify = await run_cli("verify", str(checkpoint), "--rate", "off", env=demo_env(other.url))
    assert verify.returncode == 2, verify.stderr
    assert f"went to {first.url}, not {other.url}" in verify.stderr
    assert other.calls == 0


async def test_a_resume_with_another_access_key_is_refused(emulator: Any, tmp_path: Path) -> None:
    first, sheet, checkpoint = await _half_queued(emulator, tmp_path)
    env = {**demo_env(first.url), "LSQ_ACCESS_KEY": "u$another-access-key"}
    done = await send_sheet(first, sheet, checkpoint, "--rate", "off", "--retry-failed", env=env)
    assert done.returncode == 2, done.stderr
    assert f"its requests went to {first.url} with another access key" in done.stderr
    assert "u$another" not in done.stderr + done.stdout
    with sqlite3.connect(checkpoint) as db:
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
    assert DEMO_ACCESS_KEY not in str(meta)
    assert len(meta["account"]) == 64  # a SHA-256, never the key


async def test_a_checkpoint_that_nothing_went_out_from_takes_the_next_run_s_keys(
    emulator: Any, tmp_path: Path
) -> None:
    """A first run with mistyped keys (401 at the preflight) binds nothing."""
    emu = await emulator(rate="off")
    sheet, checkpoint = leads_csv(tmp_path / "leads.csv", 2), tmp_path / "c.sqlite"
    wrong = {**demo_env(emu.url), "LSQ_ACCESS_KEY": "u$typo"}
    assert (await send_sheet(emu, sheet, checkpoint, "--rate", "off", env=wrong)).returncode == 3
    done = await send_sheet(emu, sheet, checkpoint, "--rate", "off")
    assert done.returncode == 0, done.stderr
    assert len(emu.records) == 2


async def test_a_checkpoint_from_before_the_record_keeps_its_runs_host(
    emulator: Any, tmp_path: Path
) -> None:
    first, sheet, checkpoint = await _half_queued(emulator, tmp_path)
    with sqlite3.connect(checkpoint) as db:
        db.execute("DELETE FROM meta WHERE key IN ('host', 'account')")
    other = await emulator(rate="off")
    done = await send_sheet(other, sheet, checkpoint, "--rate", "off", "--retry-failed")
    assert done.returncode == 2, done.stderr
    assert f"went to {first.url}, not {other.url} (keys not recorded)" in done.stderr
    same = await send_sheet(first, sheet, checkpoint, "--rate", "off", "--retry-failed")
    assert same.returncode == 1, same.stderr  # the two unknown leads fail again
    assert "is from before checkpoints recorded their keys" in same.stderr
    with sqlite3.connect(checkpoint) as db:
        assert db.execute("SELECT value FROM meta WHERE key = 'host'").fetchone() == (first.url,)


async def test_the_same_host_spelt_another_way_is_the_same_account(
    emulator: Any, tmp_path: Path
) -> None:
    """Upper-case letters, the default port and a trailing slash name the same server: the
    first version refused the resume as "another account", and the machine's ledger kept the
    two spellings' calls apart (no shared window, a --daily-limit counted twice over)."""
    first, sheet, checkpoint = await _half_queued(emulator, tmp_path)
    port = first.url.rsplit(":", 1)[1]
    for host in (f"HTTP://127.0.0.1:{port}/", f"http://127.0.0.1:{port}"):
        env = {**demo_env(first.url), "LSQ_HOST": host}
        done = await send_sheet(first, sheet, checkpoint, "--rate", "off", env=env)
        assert done.returncode == 1, done.stderr  # the 2 the account does not know fail again
    assert normalise_host("https://API-in21.LeadSquared.com:443/") == (
        "https://api-in21.leadsquared.com"
    )
    assert normalise_host("http://api-in21.leadsquared.com:443") == (
        "http://api-in21.leadsquared.com:443"  # not the default port of http: another server
    )
