"""The worker pool with a scripted sender, a real checkpoint file and virtual time."""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bulk_delete.clock import ManualClock
from bulk_delete.commands.spec import RunSpec
from bulk_delete.config import RateLimit
from bulk_delete.errors import FatalAPIError, ServiceDownError
from bulk_delete.send.answers import Answer, Verdict
from bulk_delete.send.pool import Pool, SendReport
from bulk_delete.store.checkpoint import Checkpoint

from ..helpers import max_in_any_window
from ..pool_fixtures import BAD, DENIED, FLAKY, LIMITED, MX, OK, Script, guid, make_checkpoint


async def run_pool(
    checkpoint: Checkpoint,
    sender: Script,
    clock: ManualClock,
    *,
    rate: str = "25/5s",
    concurrency: int = 8,
    max_attempts: int = 6,
    give_up_after: float = 120.0,
    stop_after: float | None = None,
) -> SendReport:
    pool = Pool(
        checkpoint,
        sender,
        RunSpec(
            rate=RateLimit.parse(rate),
            concurrency=concurrency,
            max_attempts=max_attempts,
            give_up_after=give_up_after,
        ).send_settings(),
        clock=clock,
        rng=random.Random(3),
    )
    todo, _ = checkpoint.todo_counts()
    task = asyncio.create_task(pool.run(todo))
    if stop_after is not None:
        await clock.advance(stop_after)
        pool.stop.stop()
    while not task.done():
        await clock.run_until_idle()
        await asyncio.sleep(0)
    return await task


def statuses(checkpoint: Checkpoint) -> Counter[str]:
    return Counter(row[5] for row in checkpoint.export_rows(["queued", "failed", "pending"]))


async def test_every_request_queued_once(tmp_path: Path) -> None:
    clock = ManualClock()
    checkpoint = make_checkpoint(tmp_path / "c.sqlite", 60)
    sender = Script(clock, {})
    report = await run_pool(checkpoint, sender, clock)
    assert report.progress.figures.queued == 60
    assert report.error is None
    assert set(sender.calls.values()) == {1}
    assert statuses(checkpoint) == {"queued": 60}


async def test_transient_failures_back_off_then_succeed(tmp_path: Path) -> None:
    clock = ManualClock()
    checkpoint = make_checkpoint(tmp_path / "c.sqlite", 3)
    sender = Script(clock, {1: [FLAKY, FLAKY, OK]})
    await run_pool(checkpoint, sender, clock)
    assert sender.calls[guid(1)] == 3
    rows = {row[0]: row for row in checkpoint.export_rows(["queued"])}
    assert rows[guid(1)][6] == 3  # attempts


async def test_transient_gives_up_after_max_attempts_and_stays_retryable(tmp_path: Path) -> None:
    clock = ManualClock()
    checkpoint = make_checkpoint(tmp_path / "c.sqlite", 2)
    sender = Script(clock, {0: [FLAKY]})
    await run_pool(checkpoint, sender, clock, max_attempts=4)
    assert sender.calls[guid(0)] == 4
    counts = checkpoint.counts()
    assert counts.failed == counts.failed_transient == 1
    assert [p.prospect_id for p in checkpoint.todo()] == [guid(0)]  # a rerun sends it again


async def test_permanent_failures_are_sent_once(tmp_path: Path) -> None:
    clock = ManualClock()
    checkpoint = make_checkpoint(tmp_path / "c.sqlite", 3)
    sender = Script(clock, {0: [MX], 1: [BAD]})
    report = await run_pool(checkpoint, sender, clock)
    assert sender.calls[guid(0)] == 1
    assert sender.calls[guid(1)] == 1
    assert report.progress.figures.failed == 2
    assert report.progress.figures.queued == 1
    assert list(checkpoint.todo()) == []
    assert [p.prospect_id for p in checkpoint.todo(retry_failed=True)] == [guid(0), guid(1)]
    reasons = {error for error, _, _ in checkpoint.failure_reasons()}
    assert reasons == {MX.message, BAD.message}


async def test_429_waits_a_window_and_does_not_use_attempts(tmp_path: Path) -> None:
    clock = ManualClock()
    checkpoint = make_checkpoint(tmp_path / "c.sqlite", 1)
    sender = Script(clock, {0: [LIMITED] * 8 + [OK]})
    report = await run_pool(checkpoint, sender, clock, max_attempts=2)
    assert report.progress.figures.rate_limited_429 == 8
    assert report.progress.figures.queued == 1
    gaps = [b - a for a, b in zip(sender.starts, sender.starts[1:], strict=False)]
    assert min(gaps) >= 5.0  # everyone waited a full window after each 429
    assert checkpoint.counts().rate_limited_429 == 8


async def test_fatal_answer_stops_the_run_and_keeps_the_rest_pending(tmp_path: Path) -> None:
    clock = ManualClock()
    checkpoint = make_checkpoint(tmp_path / "c.sqlite", 50)
    sender = Script(clock, {n: [DENIED] for n in range(50)})
    report = await run_pool(checkpoint, sender, clock, concurrency=4)
    assert isinstance(report.error, FatalAPIError)
    assert report.error.http_status == 401
    assert "LSQ_ACCESS_KEY" in str(report.error)
    assert sum(sender.calls.values()) <= 4  # at most what was already in flight
    assert checkpoint.counts().pending == 50


class Outage(Script):
    """Every call fails between ``start`` and ``end`` (a load balancer restarting)."""

    def __init__(self, clock: ManualClock, start: float, end: float) -> None:
        super().__init__(clock, {})
        self.start, self.end = start, end
        self.during = 0

    async def delete_activities(self, body_json: str) -> Answer:
        if self.start <= self.clock.now() < self.end:
            self.during += 1
            self.starts.append(self.clock.now())
            await self.clock.sleep(self.latency)
            return FLAKY
        return await super().delete_activities(body_json)


async def test_a_15_second_outage_mid_run_costs_a_pause_not_the_run(tmp_path: Path) -> None:
    clock = ManualClock(start=0.0)
    checkpoint = make_checkpoint(tmp_path / "c.sqlite", 120)
    sender = Outage(clock, start=5.0, end=20.0)
    report = await run_pool(checkpoint, sender, clock, rate="25/5s", max_attempts=3)
    assert report.error is None
    assert checkpoint.counts().queued == 120  # every request queued: exit 0
    assert sender.during <= 16  # the tripping calls, those in flight, and a few lone probes
    attempts = [row[6] for row in checkpoint.export_rows(["queued"])]
    assert max(attempts) <= 3  # nobody burned its attempts on the outage


async def test_an_outage_longer_than_give_up_after_stops_the_run(tmp_path: Path) -> None:
    clock = ManualClock(start=0.0)
    checkpoint = make_checkpoint(tmp_path / "c.sqlite", 200)
    sender = Script(clock, {n: [FLAKY] for n in range(200)})
    report = await run_pool(checkpoint, sender, clock, concurrency=4, give_up_after=30)
    assert isinstance(report.error, ServiceDownError)
    assert "no call has succeeded for 3" in str(report.error)
    assert sum(sender.calls.values()) < 20  # probes, not 200 times 6 attempts
    assert checkpoint.counts().todo == 200
    assert 30 <= clock.now() < 70


async def test_a_lost_answer_says_it_may_have_been_queued(tmp_path: Path) -> None:
    clock = ManualClock()
    checkpoint = make_checkpoint(tmp_path / "c.sqlite", 1)
    dropped = Answer(Verdict.TRANSIENT, None, "ServerDisconnectedError: Server disconnected")
    sender = Script(clock, {0: [dropped]})
    await run_pool(checkpoint, sender, clock, max_attempts=2)
    [(error, _, transient)] = checkpoint.failure_reasons()
    assert transient
    assert error.startswith("no answer (ServerDisconnectedError")
    assert "LeadSquared may have queued it; a rerun sends it again" in error


async def test_stop_lets_in_flight_finish_and_leaves_the_rest_pending(tmp_path: Path) -> None:
    clock = ManualClock()
    checkpoint = make_checkpoint(tmp_path / "c.sqlite", 100)
    sender = Script(clock, {}, latency=1.0)
    report = await run_pool(checkpoint, sender, clock, rate="10/1s", stop_after=2.0)
    assert report.stopped
    sent = sum(sender.calls.values())
    counts = checkpoint.counts()
    assert counts.queued == sent  # every call that went out came back and was recorded
    assert counts.pending == 100 - sent
    assert 10 <= sent <= 25


async def test_pool_keeps_the_window_with_slow_and_fast_calls(tmp_path: Path) -> None:
    clock = ManualClock()
    checkpoint = make_checkpoint(tmp_path / "c.sqlite", 120)
    sender = Script(clock, {n: [FLAKY, OK] for n in range(0, 120, 7)}, latency=0.8)
    await run_pool(checkpoint, sender, clock, rate="10/2s", concurrency=32)
    assert max_in_any_window(sender.starts, 2.0) <= 10
    assert checkpoint.counts().queued == 120


@pytest.mark.parametrize("retry_failed", [False, True])
def test_todo_streams_in_plan_order(tmp_path: Path, retry_failed: bool) -> None:
    checkpoint = make_checkpoint(tmp_path / "c.sqlite", 2500)
    seqs = [p.seq for p in checkpoint.todo(retry_failed=retry_failed, batch=100)]
    assert seqs == list(range(1, 2501))


async def test_a_bug_in_a_worker_surfaces_instead_of_hanging(tmp_path: Path) -> None:
    clock = ManualClock()
    checkpoint = make_checkpoint(tmp_path / "c.sqlite", 50)

    class Broken(Script):
        async def delete_activities(self, body_json: str) -> Answer:
            if guid(7) in body_json:
                raise RuntimeError("a bug")
            return await super().delete_activities(body_json)

    with pytest.raises(RuntimeError, match="a bug"):
        await asyncio.wait_for(run_pool(checkpoint, Broken(clock, {}), clock, rate="off"), 10)
    assert checkpoint.counts().pending > 0  # what was not sent stays pending for a rerun


@pytest.mark.parametrize(
    ("rate", "leads", "latency"),
    [("10/3000s", 10, 0.01), ("30/1s", 31, 0.2), ("30/1s", 95, 0.05), ("25/5s", 60, 0.8)],
)
async def test_the_rate_figure_is_the_busiest_window_never_over_a_kept_limit(
    tmp_path: Path, rate: str, leads: int, latency: float
) -> None:
    """The summary's rate is measured as the limiter counts: the most starts in any window of
    the limit. A burst of 10 under 10/3000s read "110170 % of the limit" as first-to-last."""
    clock = ManualClock()
    checkpoint = make_checkpoint(tmp_path / "c.sqlite", leads)
    sender = Script(clock, {}, latency=latency)
    report = await run_pool(checkpoint, sender, clock, rate=rate, concurrency=16)
    limit = RateLimit.parse(rate)
    figures = report.progress.figures
    busiest = max_in_any_window(sender.starts, limit.period)
    assert busiest <= limit.calls  # the limiter kept the limit …
    assert figures.share_of_limit == round(busiest / limit.calls, 4)  # … and the figure says so
    assert figures.calls_per_second == round(busiest / limit.period, 3)
    assert figures.share_of_limit <= 1


async def test_a_rate_refusal_in_a_200_is_waited_out_by_a_read() -> None:
    """Tenants refuse with 200 + Status Error too (answers.classify: RATE_LIMITED). The client
    keeps a 200's body, and ``until_settled`` returns as soon as ``settled(reply)`` (a read:
    any body) before it looks at WAIT_WINDOW. So ``Pool.read`` hands the refusal back as the
    data (verify records the lead unverified, the backup records the request failed "not
    backed up", the listing gets an error body as a page) and the limiter never pauses."""
    import random

    from bulk_delete.clock import ManualClock
    from bulk_delete.config import SendSettings
    from bulk_delete.send.answers import Verdict, classify
    from bulk_delete.send.limiter import SlidingWindowLimiter
    from bulk_delete.send.pool import Pool

    clock = ManualClock()
    refusal = (
        '{"Status":"Error","ExceptionType":"MXAPIRateLimitExceededException",'
        '"ExceptionMessage":"API calls exceeded the limit of 25 in 5 second(s)"}'
    )
    answers = [classify(200, refusal), classify(200, '{"RecordCount": 0, "List": []}')]
    assert answers[0].verdict is Verdict.RATE_LIMITED
    bodies = [json.loads(refusal), {"RecordCount": 0, "List": []}]
    calls = 0

    async def call() -> tuple[Any, dict[str, Any]]:
        nonlocal calls
        calls += 1
        return answers[calls - 1], bodies[calls - 1]

    limiter = SlidingWindowLimiter(RateLimit.parse("25/5s"), clock=clock)
    settings = SendSettings(rate=limiter.configured, max_attempts=3, give_up_after=60.0)
    pool = Pool.for_reads(settings, clock=clock, rng=random.Random(1), limiter=limiter)
    got: list[Any] = []

    async def item(_: int) -> None:
        got.append(await pool.read(call))

    task = asyncio.create_task(pool.each([1], item))
    await clock.run_until_idle()
    await task
    answer, body = got[0]
    assert answer.verdict is not Verdict.RATE_LIMITED, body  # before: the refusal was the data
    assert calls == 2
