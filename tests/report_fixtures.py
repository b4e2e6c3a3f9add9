"""A night of calls on a real SQLite file, for the report's tests."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

from bulk_delete.store.calls import CallLog

T0 = 1_780_000_000.0


def night_log(path: Path, calls: int, seed: int = 3) -> CallLog:
    """A run near 5 calls/s: a 429 storm in its middle, the limit learned lower after it."""
    rng = random.Random(seed)
    log = CallLog.create(sqlite3.connect(path), commit_every=0)
    started = T0
    for n in range(calls):
        started += rng.expovariate(4.8)
        storm = calls // 3 < n < calls // 2
        status = 429 if storm and rng.random() < 0.5 else 200
        log.record(
            run=1,
            kind="delete",
            seq=n,
            attempt=1,
            started=started,
            answered=started + rng.uniform(0.05, 0.9),
            status=status,
            verdict="queued" if status == 200 else "refused",
            limit_calls=25 if n < calls // 2 else 20,
            limit_period=5.0,
        )
    log.flush()
    return log
