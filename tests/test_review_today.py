"""Review of main's changes since 5b7831a: each test here failed on ca1b2bb and names the
defect it proves."""

from __future__ import annotations

import pytest

from bulk_delete.clock import ManualClock
from bulk_delete.config import RateLimit
from bulk_delete.send.limiter import SlidingWindowLimiter

from .helpers import max_in_any_window
from .test_limiter import drive

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
