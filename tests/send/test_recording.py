"""The call log filled by the one retry loop (send/recording.py): each attempt with its
wall-clock start and answer, status, verdict and the limit in force, on ManualClock."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from pathlib import Path
from typing import Any

from bulk_delete.clock import ManualClock
from bulk_delete.commands.spec import RunSpec
from bulk_delete.config import RateLimit
from bulk_delete.send import recording
from bulk_delete.send.answers import Answer, Verdict
from bulk_delete.send.pool import Pool

from ..pool_fixtures import FLAKY, LIMITED, OK, Script, Scripted, make_checkpoint, once, until_done

NO_ANSWER = Answer(Verdict.TRANSIENT, None, "timeout")


def rows(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as db:
        return db.execute(
            "SELECT run, kind, seq, attempt, started, answered, status, verdict, limit_calls,"
            " limit_period FROM calls ORDER BY id"
        ).fetchall()


async def test_the_pools_attempts_are_recorded_with_the_limit_in_force(tmp_path: Path) -> None:
    clock = ManualClock(start=0.0)
    checkpoint = make_checkpoint(tmp_path / "c.sqlite", 2)
    assert checkpoint.calls is not None
    sender = Script(clock, {0: [LIMITED, FLAKY, OK], 1: [NO_ANSWER, OK]}, latency=0.5)
    settings = RunSpec(rate=RateLimit.parse("25/5s"), concurrency=1).send_settings()
    pool = Pool(checkpoint, sender, settings, clock=clock, rng=random.Random(3))
    recorder = recording.CallRecorder(checkpoint.calls, run=7, wall=clock.now)
    with recording.recording(recorder):
        task = asyncio.create_task(pool.run(2))
    await until_done(clock, task)
    await task
    log = rows(tmp_path / "c.sqlite")
    assert [(r[2], r[3], r[6], r[7]) for r in log] == [
        (1, 1, 429, "rate_limited"),
        (1, 2, 502, "transient"),
        (1, 3, 200, "queued"),
        (2, 1, None, "transient"),
        (2, 2, 200, "queued"),
    ]
    assert {(r[0], r[1], r[8], r[9]) for r in log} == {(7, "delete", 25, 5.0)}
    for *_, started, answered, status, _verdict, _calls, _period in log:
        if status is None:
            assert answered is None  # no answer came
        else:
            assert answered - started == 0.5  # the sender's latency, on the injected wall clock


async def test_a_single_calls_kind_comes_from_calling_and_its_data_is_a_read(
    tmp_path: Path,
) -> None:
    clock = ManualClock(start=0.0)
    checkpoint = make_checkpoint(tmp_path / "c.sqlite", 1)
    assert checkpoint.calls is not None
    recorder = recording.CallRecorder(checkpoint.calls, wall=clock.now)
    with recording.recording(recorder), recording.calling("list"):
        await once(clock, Scripted(clock, FLAKY, until=0.3), give_up_after=60)
    assert [(r[0], r[1], r[3], r[7]) for r in rows(tmp_path / "c.sqlite")] == [
        (recording.NO_RUN, "list", 1, "transient"),
        (recording.NO_RUN, "list", 2, "read"),
    ]


async def test_no_recorder_records_nothing_and_a_broken_log_never_stops_the_calls(
    tmp_path: Path,
) -> None:
    clock = ManualClock(start=0.0)
    checkpoint = make_checkpoint(tmp_path / "c.sqlite", 1)
    await once(clock, Scripted(clock, FLAKY, until=0.3), give_up_after=60)  # a dry run's way
    assert rows(tmp_path / "c.sqlite") == []
    assert checkpoint.calls is not None
    recorder = recording.CallRecorder(checkpoint.calls, wall=clock.now)
    with sqlite3.connect(tmp_path / "c.sqlite") as db:
        db.execute("DROP TABLE calls")  # the log can no longer be written
    with recording.recording(recorder):
        _, body = await once(clock, Scripted(clock, FLAKY, until=0.3), give_up_after=60)
    assert body
    assert recorder.broken
