"""One budget for every purge on one account and machine (ledger.py): two limiters sharing
one real ledger file split the window with no refusals; the file holds no key; a dead run's
starts leave the window on their own."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path
from typing import Any

import aiohttp

from bulk_delete.clock import ManualClock
from bulk_delete.commands import pipeline
from bulk_delete.config import Credentials, RateLimit
from bulk_delete.emulator.config import DEMO_ACCESS_KEY, DEMO_SECRET_KEY
from bulk_delete.send.limiter import SlidingWindowLimiter
from bulk_delete.spec import RunSpec
from bulk_delete.store.ledger import FILE_NAME, WindowLedger, account_id, state_dir

from .conftest import GUIDS
from .windowsim import Purge, SimWindow, run_all

HOST = "https://api-in21.leadsquared.com"


def two_purges(tmp_path: Path, clock: ManualClock, *, shared: bool) -> tuple[Purge, Purge]:
    window = SimWindow(RateLimit.parse("25/5s"), clock, count_refusals=True)
    purges = []
    for name in ("nightly", "ad-hoc"):
        ledger = (
            WindowLedger.for_account(HOST, DEMO_ACCESS_KEY, folder=tmp_path, wall=clock)
            if shared
            else None
        )
        limiter = SlidingWindowLimiter(RateLimit.parse("25/5s"), clock=clock, shared=ledger)
        purges.append(Purge(window, clock, limiter, requests=60, name=name))
    return purges[0], purges[1]


async def test_two_runs_on_one_ledger_split_the_budget_without_refusals(tmp_path: Path) -> None:
    clock = ManualClock(start=1_800_000_000.0)  # the ledger's wall clock too
    nightly, adhoc = two_purges(tmp_path, clock, shared=True)
    await run_all(clock, nightly, adhoc)
    assert nightly.refusals == adhoc.refusals == 0
    accepted = sorted(nightly.accepted + adhoc.accepted)
    assert len(accepted) == 120
    together = (len(accepted) - 1) / (accepted[-1] - accepted[0]) * 5.0
    assert together >= 0.95 * 25  # the sum of their rates
    for purge in (nightly, adhoc):  # and each had its part
        assert purge.per_window >= 0.4 * 25
    ledger = nightly.limiter.shared
    assert isinstance(ledger, WindowLedger)
    assert ledger.calls_today() == 120
    assert ledger.other_runs() == {adhoc.limiter.shared.run}  # type: ignore[union-attr]


async def test_without_the_ledger_two_runs_refuse_each_other(tmp_path: Path) -> None:
    clock = ManualClock(start=1_800_000_000.0)
    nightly, adhoc = two_purges(tmp_path, clock, shared=False)
    await run_all(clock, nightly, adhoc)
    assert nightly.refusals + adhoc.refusals > 0  # what the ledger saves


def test_the_file_holds_no_key_and_only_its_owner_reads_it(tmp_path: Path) -> None:
    folder = tmp_path / "state" / "bulk-delete"
    ledger = WindowLedger.for_account(HOST, DEMO_ACCESS_KEY, folder=folder)
    assert ledger.reserve(25, 5.1) == 0.0
    ledger.close()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert DEMO_ACCESS_KEY.encode() not in path.read_bytes()
    assert ledger.account == account_id(HOST, DEMO_ACCESS_KEY)
    assert len(ledger.account) == 64
    assert (folder / FILE_NAME).exists()


def test_the_state_directory_follows_xdg(tmp_path: Path) -> None:
    assert state_dir({"XDG_STATE_HOME": str(tmp_path)}) == tmp_path / "bulk-delete"
    assert state_dir({}) == Path.home() / ".local" / "state" / "bulk-delete"


def test_a_dead_runs_starts_leave_the_window(tmp_path: Path) -> None:
    clock = ManualClock(start=1_800_000_000.0)
    dead = WindowLedger(tmp_path / FILE_NAME, "acct", wall=clock, run="dead")
    for _ in range(3):
        assert dead.reserve(3, 5.0) == 0.0
    dead.close()  # killed without a word
    alive = WindowLedger(tmp_path / FILE_NAME, "acct", wall=clock, run="alive")
    assert alive.reserve(3, 5.0) == 5.0  # the window is full of the dead run's starts …
    clock.jump(5.0)
    assert alive.reserve(3, 5.0) == 0.0  # … until they are a window old
    assert alive.other_runs(window=10.0) == {"dead"}
    other = WindowLedger(tmp_path / FILE_NAME, "another account", wall=clock)
    assert other.reserve(1, 5.0) == 0.0  # accounts never share a window
    assert alive.calls_today() == 4


def test_spacing_is_account_wide(tmp_path: Path) -> None:
    clock = ManualClock(start=1_800_000_000.0)
    one = WindowLedger(tmp_path / FILE_NAME, "acct", wall=clock, run="one")
    two = WindowLedger(tmp_path / FILE_NAME, "acct", wall=clock, run="two")
    assert one.reserve(25, 5.1, spacing=0.2) == 0.0
    assert abs(two.reserve(25, 5.1, spacing=0.2) - 0.2) < 1e-6


async def test_two_purges_at_once_on_the_emulator_share_one_budget(
    emulator: Any, tmp_path: Path, own_state_dir: Path
) -> None:
    """Two real runs (60 requests each, same keys and host) at once, in real time."""
    emu = await emulator(rate="20/1s")
    hooks = pipeline.RunHooks(confirm=lambda c: True)
    keys = Credentials(access_key=DEMO_ACCESS_KEY, secret_key=DEMO_SECRET_KEY)

    def spec(name: str, first: int) -> RunSpec:
        sheet = tmp_path / f"{name}.csv"
        sheet.write_text(
            "ProspectID,ActivityEvent\n"
            + "".join(f"{guid},201\n" for guid in GUIDS[first : first + 60])
        )
        return RunSpec.from_values(
            {
                "input": str(sheet),
                "checkpoint": str(tmp_path / f"{name}.sqlite"),
                "host": emu.url,
                "rate": "20/1s",
                "open_window": True,
                "preflight": False,
            }
        )

    async with aiohttp.ClientSession() as session:
        summaries = await asyncio.gather(
            pipeline.run(spec("nightly", 0), keys, session=session, hooks=hooks),
            pipeline.run(spec("adhoc", 60), keys, session=session, hooks=hooks),
        )
    assert [summary.exit_code for summary in summaries] == [0, 0]
    stats = emu.stats()
    assert stats["outcomes"] == {"queued": 120}  # 0 refusals
    assert stats["accepted_per_second"] >= 0.95 * 20  # the sum of their rates
    assert (own_state_dir / FILE_NAME).exists()
