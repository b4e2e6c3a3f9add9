"""The call log: every call kept on a real SQLite file, and the report's aggregations."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bulk_delete.store.calls import CallLog

T0 = 1_780_000_000.0


def _log(path: Path) -> CallLog:
    return CallLog.create(sqlite3.connect(path))


def _call(log: CallLog, started: float, status: int | None = 200, **overrides: object) -> None:
    fields: dict[str, object] = {
        "run": 1,
        "kind": "delete",
        "seq": 1,
        "attempt": 1,
        "started": started,
        "answered": None if status is None else started + 0.25,
        "status": status,
        "verdict": "queued" if status == 200 else "refused",
        "limit_calls": 25,
        "limit_period": 5.0,
    }
    fields.update(overrides)
    log.record(**fields)  # type: ignore[arg-type]


def test_create_is_idempotent_and_keeps_calls(tmp_path: Path) -> None:
    path = tmp_path / "ck.sqlite"
    _call(_log(path), T0)
    log = _log(path)  # a resumed run opens the same table again
    _call(log, T0 + 1)
    assert sum(s.calls for s in log.per_second()) == 2


def test_per_second_counts_calls_and_refusals(tmp_path: Path) -> None:
    log = _log(tmp_path / "ck.sqlite")
    for offset, status in [(0.1, 200), (0.9, 429), (1.5, 200), (3.2, 429), (3.3, 429)]:
        _call(log, T0 + offset, status)
    seconds = [(s.second - int(T0), s.calls, s.refusals) for s in log.per_second()]
    assert seconds == [(0, 2, 1), (1, 1, 0), (3, 2, 2)]


def test_runs_are_kept_apart(tmp_path: Path) -> None:
    log = _log(tmp_path / "ck.sqlite")
    _call(log, T0, run=1)
    _call(log, T0 + 50, 429, run=2)
    assert log.runs() == [1, 2]
    assert [s.refusals for s in log.per_second(run=2)] == [1]
    assert log.counts(run=1) == {("delete", "queued"): 1}


def test_latencies_skip_calls_that_got_no_answer(tmp_path: Path) -> None:
    log = _log(tmp_path / "ck.sqlite")
    _call(log, T0, answered=T0 + 2.0)
    _call(log, T0 + 1, answered=T0 + 1.5)
    _call(log, T0 + 2, None, verdict="timeout")
    assert log.latencies() == pytest.approx([0.5, 2.0])
    assert log.statuses() == {None: 1, 200: 2}


def test_counts_by_kind_and_verdict(tmp_path: Path) -> None:
    log = _log(tmp_path / "ck.sqlite")
    _call(log, T0, kind="list", seq=3, verdict="read")
    _call(log, T0 + 1, kind="list", seq=4, verdict="read")
    _call(log, T0 + 2)
    assert log.counts() == {("list", "read"): 2, ("delete", "queued"): 1}


def test_limits_list_only_the_changes(tmp_path: Path) -> None:
    log = _log(tmp_path / "ck.sqlite")
    for offset in range(3):
        _call(log, T0 + offset)
    _call(log, T0 + 3, 429, limit_calls=20)  # learned: the account allows less
    _call(log, T0 + 4, limit_calls=20)
    _call(log, T0 + 5, limit_calls=10, limit_period=5.0)  # a share
    changes = [(c.since - T0, c.calls, c.per_second) for c in log.limits()]
    assert changes == [(0, 25, 5.0), (3, 20, 4.0), (5, 10, 2.0)]


def test_an_unknown_kind_is_refused(tmp_path: Path) -> None:
    log = _log(tmp_path / "ck.sqlite")
    with pytest.raises(ValueError, match="unknown call kind 'delet'"):
        _call(log, T0, kind="delet")


def test_span_of_an_empty_log_is_none(tmp_path: Path) -> None:
    log = _log(tmp_path / "ck.sqlite")
    assert log.span() is None
    _call(log, T0, answered=T0 + 3)
    assert log.span() == (T0, T0 + 3)


@pytest.mark.parametrize(
    "connect",
    [
        "sqlite3.connect(PATH)",
        # the checkpoint's way: autocommit, WAL, synchronous=NORMAL
        "sqlite3.connect(PATH, isolation_level=None)\n"
        "connection.execute('PRAGMA journal_mode=WAL')\n"
        "connection.execute('PRAGMA synchronous=NORMAL')",
    ],
)
@pytest.mark.e2e
def test_kill_9_keeps_every_call_already_recorded(tmp_path: Path, connect: str) -> None:
    path = tmp_path / "ck.sqlite"
    script = f"""
import os, signal, sqlite3
from bulk_delete.store.calls import CallLog
PATH = {str(path)!r}
connection = {connect}
log = CallLog.create(connection)
for n in range(50):
    log.record(run=1, kind="delete", seq=n, attempt=1, started={T0} + n, answered=None,
               status=None, verdict="timeout")
os.kill(os.getpid(), signal.SIGKILL)
"""
    finished = subprocess.run([sys.executable, "-c", script], check=False)
    assert finished.returncode == -9
    assert sum(s.calls for s in _log(path).per_second()) == 50
