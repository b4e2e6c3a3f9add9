"""Review of main's changes since 5b7831a: each test here failed on ca1b2bb and names the
defect it proves."""

from __future__ import annotations

import pytest

from bulk_delete.clock import ManualClock
from bulk_delete.config import RateLimit
from bulk_delete.send.limiter import SlidingWindowLimiter

from .helpers import max_in_any_window
from .test_limiter import drive
from .windowsim import beside_a_neighbour

LIMIT = RateLimit.parse("25/5s")


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
    later = await drive(limiter, clock, workers=4, calls=8)  # well inside twelve windows
    assert limiter.shares_account  # still paced as shared: no probe yet
    allowed = max(1, int(free) - 1)
    assert allowed <= limiter.effective.calls
    assert max_in_any_window(later, 5.0 + limiter.margin * 0.99) <= allowed


@pytest.mark.parametrize("answered", ["in order", "overtaken"])
async def test_a_damped_reread_does_not_depend_on_the_order_refusals_are_answered_in(
    answered: str,
) -> None:
    """A later read a call or three low lowers the free budget one call only. Two of our calls
    refused in one window measure the same full window; when the later one's refusal overtakes
    the earlier one's (answers are not ordered), the earlier one's read refined the damped
    budget down to the undamped read: 12 instead of 14, the pace two calls lower for twelve
    windows, only because of the order the answers came back in."""
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
    assert limiter.free == 14  # damped: one call below the 15, whichever answer came first


@pytest.mark.xfail(strict=True, reason="review finding: a refused probe lowers the budget")
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
