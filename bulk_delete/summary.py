"""The typed result of `run`, `job` and `status`.

The text report, the ``--summary-json`` document, the scheduler's one-line log and the exit
code are all views of one ``RunSummary``. ``to_json`` is the JSON schema monitoring reads; the
README documents every field and ``tests/test_docs.py`` keeps the two in step.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


@dataclass(frozen=True, kw_only=True)
class Counts:
    requests: int = 0
    pending: int = 0
    queued: int = 0
    failed: int = 0
    failed_transient: int = 0
    invalid_rows: int = 0
    leads: int = 0
    rate_limited_429: int = 0

    @property
    def todo(self) -> int:
        return self.pending + self.failed_transient

    @property
    def complete(self) -> bool:
        """Every request queued and no invalid row: what exit 0 means."""
        return self.pending == 0 and self.failed == 0 and self.invalid_rows == 0


@dataclass(frozen=True, kw_only=True)
class Verification:
    """What `verify` found, over every request it has checked in this checkpoint."""

    checked: int = 0
    confirmed: int = 0
    remaining_requests: int = 0
    remaining_activities: int = 0
    remaining_leads: int = 0
    unverified: int = 0


class RunResult(StrEnum):
    """How a run ended, as the checkpoint's ``runs`` table and the summary say it."""

    FINISHED = "finished"  # every request reached an outcome
    INTERRUPTED = "interrupted"  # a signal stopped it; a rerun resumes
    ABORTED = "aborted"  # a fatal answer or an outage stopped it; a rerun resumes
    CRASHED = "crashed"  # a bug (exit 70); recorded outcomes are safe
    NOTHING_TO_SEND = "nothing to send"  # the checkpoint had nothing left
    NOT_STARTED = "not started"  # stopped before the first call (exit 2, 75, or at the prompt)
    NEVER_RUN = "never run"  # `status` of a checkpoint no run has sent from
    RUNNING = "running"  # still sending, or killed (kill -9, power) before it could say


@dataclass(frozen=True, kw_only=True)
class Window:
    """The run's window as the user gave it (``tz``) and as LeadSquared gets it (UTC); each
    end is "" when open."""

    tz: str = "UTC"
    from_local: str = ""
    to_local: str = ""
    from_utc: str = ""
    to_utc: str = ""


@dataclass(frozen=True, kw_only=True)
class RunStats:
    """What one run sent: this run for `run`/`job`, the checkpoint's last run for `status`."""

    result: RunResult = RunResult.NEVER_RUN
    calls: int = 0
    queued: int = 0
    failed: int = 0
    rate_limited_429: int = 0
    send_seconds: float = 0.0
    calls_per_second: float | None = None  # call starts per second; None below two calls
    share_of_limit: float | None = None  # calls_per_second / the limit in force


@dataclass(frozen=True, kw_only=True)
class Failure:
    """One reason requests failed, and how many."""

    error: str
    count: int
    transient: bool


@dataclass(frozen=True, kw_only=True)
class RunSummary:
    exit_code: int
    checkpoint: str
    input: str
    host: str
    rate_limit: str
    error: str = ""  # why the run stopped with an error (exit 2, 3, 70, 75, 130); "" otherwise
    label: str = ""  # the job's name
    window: Window = field(default_factory=Window)
    started_at: str = ""
    finished_at: str = ""
    runs: int = 0  # runs recorded in the checkpoint, this one included
    this_run: RunStats = field(default_factory=RunStats)
    totals: Counts = field(default_factory=Counts)
    failures: tuple[Failure, ...] = ()
    verification: Verification = field(default_factory=Verification)
    previous_checkpoint: str = ""  # a job with verify_previous: the run it checked first …
    previous_verification: Verification | None = None  # … and what it found there

    def to_json(self) -> dict[str, Any]:
        """The ``--summary-json`` document."""
        return dataclasses.asdict(self)

    def ended(self, exit_code: int, error: str) -> RunSummary:
        """This summary, for a run that ended with an error after it was made."""
        return dataclasses.replace(self, exit_code=exit_code, error=error)


def json_fields(cls: type[Any] = RunSummary, prefix: str = "") -> list[str]:
    """Every field of the JSON document as a dotted name (``this_run.calls``)."""
    names = []
    hints = {f.name: f for f in dataclasses.fields(cls)}
    nested = {
        "this_run": RunStats,
        "window": Window,
        "totals": Counts,
        "failures": Failure,
        "verification": Verification,
        "previous_verification": Verification,
    }
    for name in hints:
        names.append(prefix + name)
        if name in nested and not prefix:
            suffix = "[]." if name == "failures" else "."
            names += json_fields(nested[name], prefix=name + suffix)
    return names


class Strategy(StrEnum):
    """How `verify` asks what is left: a Retrieve per lead, or a listing per code."""

    PER_LEAD = "per lead"
    PER_CODE = "per code"


@dataclass(frozen=True, kw_only=True)
class VerifySummary:
    """What `verify` did: the way it asked, the calls it spent, and what the checkpoint now
    says over every request ever checked."""

    exit_code: int
    checkpoint: str
    strategy: Strategy | None = None  # None: nothing to check
    calls: int = 0
    checked_now: int = 0
    verification: Verification = field(default_factory=Verification)
    unverified_notes: tuple[tuple[str, int], ...] = ()  # (why, how many), most frequent first
