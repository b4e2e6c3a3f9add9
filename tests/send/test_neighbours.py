"""The pacing bars in virtual time (tests/windowsim.py; the design: docs/design/pacing.md): a
strict server window, the customer's own integrations on their own schedules, and our limiter
driving the pool's retry loop. Every run here takes milliseconds of test time."""

from __future__ import annotations

import asyncio
import fcntl
import json
import math
import os
import statistics
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ..windowsim import (
    ISSUE_FAULTS,
    Load,
    Scenario,
    beside_a_neighbour,
    draw,
    on_one_ledger,
    run,
    simulate,
)

SEEDS = range(8)  # each draws both sides' jitter afresh and starts the purge at another phase
MODELS = pytest.mark.parametrize("count_refusals", [True, False], ids=["counted", "not-counted"])
FAMILY = 200  # generated traces for the family's bars


@MODELS
def test_a_steady_neighbour_keeps_its_calls(count_refusals: bool) -> None:
    """Beside a steady 10 of 25/5s: >= 85 % of the 15 calls a window it leaves in every draw
    (the pace sits two calls under the free budget, 86.7 % of it), and the neighbour loses
    <= 5 % of its calls over all of them: what finding it costs, and a probe at most."""
    lost = calls = 0
    for seed in SEEDS:
        shared, purges = run(
            Scenario(count_refusals=count_refusals, seed=seed, start_at=7.0 + 0.13 * seed)
        )
        assert len(purges[0].accepted) == 120
        assert shared.share_of_free >= 0.85
        lost += shared.neighbour_refused
        calls += shared.neighbour_calls
    assert lost / calls <= 0.05


@MODELS
async def test_two_runs_on_one_ledger_take_what_one_would_beside_a_neighbour(
    tmp_path: Path, count_refusals: bool
) -> None:
    """Two purges at once on one machine's ledger beside the same neighbour take together what
    one takes alone: each measures the free budget from the account's starts in the ledger
    (not its own half), the first read of a window serves both, and the first window keeps one
    shape. Measured from their own starts only, each read about half of what was free and the
    pair took 46 % of it. Where refusals count, the neighbour pays more than beside one run:
    6.4 % of its calls over these draws (5.3 % before the ledger's slack), where the wave 3
    design cost it 1.6-3.9 %: docs/design/pacing.md, left open."""
    lost = calls = 0
    shares = []
    for seed in SEEDS:
        shared, purges = await on_one_ledger(
            tmp_path / f"state-{seed}",
            count_refusals=count_refusals,
            seed=seed,
            start_at=7.0 + 0.13 * seed,
        )
        assert [len(purge.accepted) for purge in purges] == [60, 60]
        lost += shared.neighbour_refused
        calls += shared.neighbour_calls
        shares.append(shared.share_of_free)
    assert min(shares) >= 0.85
    assert statistics.mean(shares) >= 0.85
    assert lost / calls <= 0.07


def test_virtual_time_moves_to_a_timer_asyncio_fires_early() -> None:
    """asyncio fires a timer due within its clock's resolution (1 ns) at once. Two tasks each
    waiting for an instant a rounding step ahead (a limiter's wait of 5.7e-14 s at 266 s), one
    turn of the loop apart, woke each other's timer early turn after turn: two purges on one
    ledger spun for ever at one instant (found by an adversarial pass of 2026-12-07). Virtual
    time now moves to such a timer as a real clock would, and a loop that stands still for
    windowsim.STILL_TURNS turns fails instead of hanging."""

    async def main() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(266.0)
        target = math.nextafter(loop.time(), math.inf)

        async def until_target(turns_late: int) -> None:
            for _ in range(turns_late):
                await asyncio.sleep(0)
            while (wait := target - loop.time()) > 0:
                await asyncio.sleep(wait)

        await asyncio.gather(until_target(0), until_target(1))
        return loop.time(), target

    reached, target = simulate(main())
    assert reached == target


def test_an_idle_account_runs_at_the_limit_unrefused() -> None:
    # 150 requests as in the benchmark: six whole windows (a run that ends inside the first
    # window's slow part ends up to START_SPAN - START_CALLS of a window later)
    shared, purges = run(Scenario(load=None, requests=150))
    assert shared.share_of_free >= 0.97
    assert shared.refusals == 0
    assert not purges[0].limiter.shares_account


def test_a_real_limit_named_by_the_refusal_is_reached() -> None:
    shared, purges = run(Scenario(load=None, limit="10/5s"))
    assert str(purges[0].limiter.effective) == "10/5s (learned)"
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


# ------------------------------------------------------------------ issue 30: a load that moves


@MODELS
def test_a_neighbour_that_comes_and_goes(count_refusals: bool) -> None:
    """10 of 25/5s, busy 40 s and quiet 40 s, over and over; 800 requests: >= 85 % of what it
    leaves over the run (15 calls a window while it is busy, 25 while it is not), and it loses
    <= 5 % of its calls. Paced as today's main paced (a probe after twelve quiet windows, then a
    call a window every three), the run took 68 % and cost the neighbour 12.5 %."""
    shares = []
    for seed in range(3):
        load = Load(10, on=40.0, off=40.0, phase=13.0 * seed)
        shared, _ = run(Scenario(load=load, count_refusals=count_refusals, requests=800, seed=seed))
        assert shared.share_of_free >= 0.84, seed  # where the cycles fall: 84.7-88.9 %
        assert shared.neighbour_loss <= 0.05, seed
        shares.append(shared.share_of_free)
    assert statistics.mean(shares) >= 0.85


@MODELS
def test_after_a_steady_neighbour_stops_the_limit_is_back_within_30_s(
    count_refusals: bool,
) -> None:
    """However its stop falls in our cycle of reads and probes, >= 90 % of the limit (23 of our
    calls in a window of 5 s) within 30 s of it."""
    for seed in range(6):
        stop = 40.0 + 3.7 * seed
        load = Load(10, until=stop)
        shared, _ = run(Scenario(load=load, count_refusals=count_refusals, requests=300, seed=seed))
        assert shared.back_at(stop) <= 30.0, seed


@MODELS
def test_an_arriving_neighbour_is_given_way_within_a_window(count_refusals: bool) -> None:
    """Each time the neighbour comes back (busy 40 s after 40 s quiet), we are at the limit:
    its first calls meet a full window until one of ours is refused. From its second window on
    it loses nothing until our next probe: the pace gave way at the first refusal."""
    load = Load(10, on=40.0, off=40.0)
    shared, _ = run(Scenario(load=load, count_refusals=count_refusals, requests=800, seed=2))
    arrivals = [cycle * 80.0 + 40.0 for cycle in range(1, 4)]  # 40 s into each cycle it's back
    for arrived in arrivals:
        settled = [at for at in shared.lost if arrived + 5.0 < at - shared.began < arrived + 15.0]
        assert settled == [], arrived


@pytest.mark.parametrize("limit", ["25/1s", "25/5s"])
def test_transient_faults_on_an_idle_account_are_not_a_neighbour(limit: str) -> None:
    """4 % 500s, 2 % HTML pages and 2 % resets, each counted by the window before it failed;
    after a reset or a page the next call opens a new connection first and arrives up to 20 ms
    later than its start. Counted from when it went out (send/wire.py), it never meets a full
    window: no refusal, and >= 95 % of the limit. Counted from its start, a run at 25/1s met a
    refusal, took it for a neighbour and paced at 60 % of the limit for four windows."""
    for seed in range(4):
        shared, _ = run(
            Scenario(
                load=None,
                limit=limit,
                rate=limit,
                requests=600,
                faults=ISSUE_FAULTS,
                up=(0.025, 0.04),
                seed=seed,
            )
        )
        assert shared.refusals == 0, seed
        assert shared.pace >= 0.95, seed


# ------------------------------------------------------------------ generated load


Figures = list[tuple[float, float]]  # each trace's share of what is free, the neighbour's loss


@pytest.fixture(scope="session")
def family(tmp_path_factory: pytest.TempPathFactory) -> Figures:
    """The first FAMILY generated traces (windowsim.draw), run once for the tests below: under
    make test's workers, the first to ask runs them and the others read its file (xdist's own
    recipe for a session fixture run once)."""
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        return _family()
    shared = tmp_path_factory.getbasetemp().parent / "family.json"  # this run's, every worker's
    with open(shared.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if shared.exists():
            return [(share, loss) for share, loss in json.loads(shared.read_text())]
        figures = _family()
        shared.write_text(json.dumps(figures))
        return figures


def _family() -> Figures:
    traces = (run(draw(seed))[0] for seed in range(FAMILY))
    return [(trace.share_of_free, trace.neighbour_loss) for trace in traces]


@given(seed=st.integers(min_value=FAMILY, max_value=2**31))
@example(seed=10969)  # on 20 s, off 60 s: 8 of 45 calls lost, at its arrivals at a full window
# On and off every 20-30 s where refusals count: a probe read a lull far above the level, and
# refusals in the hold after it stepped the pace down read by read: 51 of 368 calls lost
# (1975), 34 of 232 (1717), 35 of 210 (3109), over the floor (docs/design/pacing.md).
@example(seed=1975)
@example(seed=1717)
@example(seed=3109)
# A random neighbour (6 a window, Poisson, refusals counted): a dip read in the hold became the
# level a probe's read jumped from, and each lull went back to it and made it the level the
# next jump came from: 8 of 19 free for 130 s, 48.4 % of what it left (found in seeds 5000-9000).
@example(seed=5224)
# Random neighbours, and one on 20 s / off 10 s, where refusals count, while a lull went back
# down but the next jump was followed at once again: 37 of 246 calls lost (2332), 49.8 % of
# what it left (886), 56 of 399 (8737). A jump after a lull now waits for a second read.
@example(seed=2332)
@example(seed=886)
@example(seed=8737)
# Steady neighbours marked peaky by their jitter, stopping just after a read: the limit came
# back 33.4 s (533, found by a random draw in a fresh-clone run), 33.6 s (437) and 31.5 s (179)
# after the stop while a peaky hold was six windows (docs/design/pacing.md, PEAKY_HOLD).
@example(seed=533)
@example(seed=437)
@example(seed=179)
# A steady 8 of 25/5s that stops: a probe 3.7 s after the stop read 23 (its last calls still in
# the window) after a dip read of 16, so it was held as a peak: 30.6 s. A read within HEADROOM
# of the limit now gets the usual hold.
@example(seed=9053)
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,  # the same 25 draws each run: 533 (above) is one a random draw found
)
def test_every_generated_trace_keeps_the_floors(seed: int) -> None:
    """Whatever the neighbour does: every request is queued; it never loses more than one call
    in eight, and the four an arrival at a full window may cost; we never take less than half
    of what it leaves; a neighbour that stops gives the limit back within 30 s."""
    scenario = draw(seed)
    shared, purges = run(scenario)
    assert sum(len(purge.accepted) for purge in purges) == scenario.requests
    assert shared.neighbour_refused <= shared.neighbour_calls / 8 + 4
    assert shared.share_of_free >= 0.5
    stop = math.inf if scenario.load is None else scenario.load.until
    if shared.admitted[-1] - shared.began > stop + 35.0:  # it stopped, and we went on
        assert shared.back_at(stop) <= 30.0


@pytest.mark.xdist_group("family")  # one worker runs the family, and these tests read it
def test_the_generated_family_holds_its_share_floor(family: Figures) -> None:
    """Over the first FAMILY traces, the median of what we take of what the neighbour leaves,
    as measured on this design (the issue's bar, 85 %, is held as an xfail below)."""
    assert statistics.median(share for share, _ in family) >= 0.84  # 84.3 %


@pytest.mark.xdist_group("family")
def test_the_generated_family_meets_the_issues_loss_bar(family: Figures) -> None:
    """Issue 30: the neighbour loses <= 5 % of its calls in >= 90 % of the traces. 180 of 200
    since 2026-12-07 (167 before a returning neighbour got its level back and peaks lengthened
    the hold; 171 before a moving level was followed, peaks remembered 48 windows and a lull
    read as one; over seeds 0-3999, 3615 of 4000: docs/design/pacing.md)."""
    kept = sum(1 for _, loss in family if loss <= 0.05)
    assert kept >= 0.9 * len(family)


@pytest.mark.xdist_group("family")
@pytest.mark.xfail(
    strict=True,
    reason="not met: median 84.3 % (84.7 % over 4000 traces; the oracle, an even pace knowing "
    "the schedule: 93.6 %; `python -m tests.family`; docs/design/pacing.md, Is the family's "
    "bar reachable? and The family on 4000 traces)",
)
def test_the_generated_family_meets_the_issues_share_bar(family: Figures) -> None:
    """Issue 30: median >= 85 % of the free budget over the generated traces."""
    assert statistics.median(share for share, _ in family) >= 0.85
