"""Issue #20's sharing bars in virtual time (tests/windowsim.py): a strict server window, the
customer's own integration on a fixed schedule, and our limiter driving 120 requests."""

from __future__ import annotations

import pytest

from .windowsim import beside_a_neighbour

PHASES = (7.0, 7.1, 7.2, 7.3, 7.4)  # when the purge starts in the neighbour's 0.5-s beat


@pytest.mark.parametrize("count_refusals", [True, False], ids=["counted", "not-counted"])
async def test_a_steady_neighbour_keeps_its_calls(count_refusals: bool) -> None:
    lost = calls = 0
    for start_at in PHASES:
        shared, purge = await beside_a_neighbour(count_refusals=count_refusals, start_at=start_at)
        assert len(purge.accepted) == 120
        assert shared.share_of_free >= 0.85  # of the 15 calls a window the neighbour leaves
        assert shared.refusals <= 10  # on the whole account, ours and the neighbour's
        assert purge.refusals <= 3
        lost += shared.neighbour_refused
        calls += shared.neighbour_calls
        # A start at full pace finds the window full two fifths of a window in; when refusals
        # count, the window stays full until our first call leaves it: the cost of not
        # knowing, paid once (4 or 5 of the neighbour's ~88 calls, by the phase).
        assert shared.neighbour_refused <= (5 if count_refusals else 2)
    assert lost / calls <= (0.053 if count_refusals else 0.03)


async def test_an_idle_account_runs_at_the_limit_unrefused() -> None:
    shared, purge = await beside_a_neighbour(count_refusals=True, neighbour=None)
    assert shared.share_of_free >= 0.97
    assert shared.refusals == 0
    assert not purge.limiter.shares_account


async def test_a_real_limit_named_by_the_refusal_is_reached() -> None:
    shared, purge = await beside_a_neighbour(count_refusals=True, neighbour=None, limit="10/5s")
    assert str(purge.limiter.effective) == "10/5s (learned)"
    assert shared.share_of_free >= 0.90
    assert shared.refusals <= 6


async def test_the_harness_sees_a_purge_that_ignores_refusals() -> None:
    """The harness can fail: a purge that never hears its refusals (no measurement, no
    headroom) costs the neighbour many times more of its calls, and the account refusals."""
    careful, _ = await beside_a_neighbour(count_refusals=False)
    greedy, purge = await beside_a_neighbour(count_refusals=False, headroom=False)
    assert len(purge.accepted) == 120
    assert greedy.neighbour_refused > 3 * max(1, careful.neighbour_refused)
    assert greedy.refusals > 10
