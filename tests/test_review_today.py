"""Review of main's changes since 5b7831a: each test here failed on ca1b2bb and names the
defect it proves."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bulk_delete.clock import ManualClock
from bulk_delete.config import RateLimit
from bulk_delete.send.limiter import SlidingWindowLimiter
from bulk_delete.store.backup_file import read_backup

from .conftest import demo_env, leads_csv, run_cli
from .helpers import max_in_any_window
from .test_limiter import drive
from .windowsim import beside_a_neighbour

LIMIT = RateLimit.parse("25/5s")
WINDOW = ("--from", "2024-03-01", "--to", "2025-06-30 23:59:59")
CODES = "201,202,203"


@pytest.mark.parametrize(
    ("rate", "share", "before"),
    [("1/5s", 1.0, 0), ("25/5s", 0.04, 0), ("25/5s", 1.0, 0), ("25/5s", 1.0, 2)],
    ids=["ceiling-1", "share-of-1", "free-1", "free-2"],
)
async def test_a_shared_window_never_holds_more_than_the_free_budget_less_one(
    rate: str, share: float, before: int
) -> None:
    """Once shared, the cap is the free budget less one (at least one call), and never above
    the ceiling. When the pace floors at one call a window (a free budget of 1 or 2, or a
    ceiling of 1: --share 0.04 of 25/5s), the cap of "the pace plus one" let two starts into
    one window-and-margin, exactly a window apart: above the ceiling of 1, above the free
    budget of 1, and the whole budget of 2 with no room for the neighbour's jitter."""
    clock = ManualClock(start=0.0)
    limiter = SlidingWindowLimiter(RateLimit.parse(rate), clock=clock, share=share)
    starts = await drive(limiter, clock, workers=2, calls=before + 1)  # the last is refused
    limiter.refused(None, started=starts[-1])
    assert limiter.shares_account
    free = limiter.free
    assert free == max(1, before)
    later = await drive(limiter, clock, workers=4, calls=3)  # a call a window: inside the hold
    assert limiter.shares_account  # still paced as shared: no probe yet
    allowed = max(1, int(free) - 1)
    assert allowed <= limiter.effective.calls
    assert max_in_any_window(later, 5.0 + limiter.margin * 0.99) <= allowed


@pytest.mark.parametrize("answered", ["in order", "overtaken"])
async def test_a_damped_reread_does_not_depend_on_the_order_refusals_are_answered_in(
    answered: str,
) -> None:
    """Two of our calls refused in one window measure the same full window, whichever answer
    comes first (answers are not ordered): refused below the free budget, the neighbour grew,
    and the earlier call's read (12 of ours before it) is the budget either way."""
    clock = ManualClock(start=0.0)
    limiter = SlidingWindowLimiter(LIMIT, clock=clock)
    starts = await drive(limiter, clock, workers=2, calls=16)  # the 16th refused: 15 free
    limiter.refused(LIMIT, started=starts[-1])
    assert limiter.free == 15
    clock.jump(5.0)
    starts = await drive(limiter, clock, workers=2, calls=14)
    first, second = starts[-2], starts[-1]  # both refused: 12 of ours before each
    order = (first, second) if answered == "in order" else (second, first)
    for started in order:
        limiter.refused(LIMIT, started=started)
    assert limiter.free == 12  # the same, whichever answer came first


async def test_a_long_run_beside_a_steady_neighbour_keeps_the_bar_past_its_probes() -> None:
    """The bar of issue #20 (>= 85 % of the 15 calls a window left beside a steady 10 of
    25/5s) is measured on 120 requests, about nine windows: no run there reaches a probe
    (twelve quiet windows). A run of 600 does, every thirteen windows: the probe at one call
    above the free budget is refused (as beside a steady neighbour it must be), its read,
    taken at the probe's own cap, comes a call low, and lowers the budget a call; the pace
    then swings between 12 and 13 and the run takes about 82 % of what is free."""
    shares = []
    lost = calls = 0
    for seed in range(4):
        shared, purge = await beside_a_neighbour(
            count_refusals=True, seed=seed, requests=600, start_at=7.0 + 0.13 * seed
        )
        assert len(purge.accepted) == 600
        shares.append(shared.share_of_free)
        lost += shared.neighbour_refused
        calls += shared.neighbour_calls
    assert lost / calls <= 0.04
    assert sum(shares) / len(shares) >= 0.85


async def test_a_second_plan_into_the_same_backup_file_is_not_counted_as_the_first(
    emulator: Any, tmp_path: Path
) -> None:
    """A backup's members name their request by the checkpoint's seq, and a new checkpoint
    numbers its requests from 1 again. A second plan run with a new checkpoint into the same
    --backup FILE (a reused name) finds its seqs "saved" by the first plan: its requests
    are read again and appended (the first plan's ids are other leads'), but verify, which now
    sums every member of a request, counts the first plan's rows as this plan's."""
    emu = await emulator(rate="off", webhook_delay=0.05)
    backup = tmp_path / "backup.jsonl.gz"
    common = ["--yes", *WINDOW, "--rate", "off", "--backup", str(backup)]
    first = leads_csv(tmp_path / "first.csv", 3, codes=f'"{CODES}"')
    done = await run_cli(
        "run", str(first), "--checkpoint", str(tmp_path / "1.sqlite"), *common,
        env=demo_env(emu.url),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    first_rows = len(list(read_backup(backup)))
    second = leads_csv(tmp_path / "second.csv", 3, codes=f'"{CODES}"', start=10)
    checkpoint = tmp_path / "2.sqlite"
    done = await run_cli(
        "run", str(second), "--checkpoint", str(checkpoint), *common, env=demo_env(emu.url)
    )
    if done.returncode == 2:  # refused before anything was sent: a new plan, a new file
        assert "holds the backup of another checkpoint's run" in done.stderr
        assert len(emu.records) == 3  # the first plan's deletes only
        assert len(list(read_backup(backup))) == first_rows
        return
    assert done.returncode == 0, done.stderr
    await asyncio.sleep(0.3)  # the emulator carries a queued delete out after its delay
    leads = {line.split(",")[0] for line in second.read_text().splitlines()[1:]}
    ours = [row for row in read_backup(backup) if row["ProspectId"] in leads]
    assert len(list(read_backup(backup))) == first_rows + len(ours)
    checked = await run_cli("verify", str(checkpoint), "--rate", "off", env=demo_env(emu.url))
    assert checked.returncode == 0, checked.stderr
    assert f"saved {len(ours):,} activities of 3 verified request(s)" in checked.stdout
