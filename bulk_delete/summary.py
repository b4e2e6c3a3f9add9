"""The typed result of `run`, `job`, `restore` and `status`.

The text report, the ``--summary-json`` document, the scheduler's one-line log and the exit
code are all views of one ``RunSummary``. A command returns what happened; the CLI alone maps
that to an exit code (``cli/exits.py``) and writes it into the summary it shows. ``to_json``
is the JSON schema monitoring reads; the README documents every field and
``tests/cli/test_docs.py`` keeps the two in step.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


def achieved_rate(calls: int, span: float) -> float | None:
    """The one definition of an achieved rate: call starts per second, (calls − 1) gaps over
    the span from the first start to the last. None below two calls: one call has no rate."""
    return (calls - 1) / span if calls >= 2 and span > 0 else None


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
    ALLOWANCE_USED = "allowance used"  # the account's daily allowance (exit 75); rerun after it
    CRASHED = "crashed"  # a bug (exit 70); recorded outcomes are safe
    NOTHING_TO_SEND = "nothing to send"  # the checkpoint had nothing left
    NOT_STARTED = "not started"  # stopped before the first call (exit 2, 75, or at the prompt)
    DRY_RUN = "dry run"  # --dry-run: planned (and listed), nothing sent
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


@dataclass(kw_only=True)
class RunFigures:
    """One run's figures, one name each: the pool counts them as it sends, the checkpoint's
    ``runs`` table keeps them, and the summary reports them (``this_run``). `run` and
    `status` both read them back from the checkpoint, so they cannot disagree."""

    result: RunResult = RunResult.NEVER_RUN
    calls: int = 0
    queued: int = 0
    failed: int = 0
    rate_limited_429: int = 0  # the runs table's column is ``rate_limited`` (older checkpoints)
    send_seconds: float = 0.0  # from the first call's start to the last answer
    start_span: float = 0.0  # from the first call's start to the last call's start
    limit_per_second: float | None = None  # the limit in force; None: no limit
    # The busiest window, as the limiter counts: the most call starts in any span one window
    # of the limit long, over the limit's calls (share) and over its seconds (per second).
    busiest_share: float | None = None
    busiest_per_second: float | None = None

    @property
    def calls_per_second(self) -> float | None:
        """Call starts per second as the limiter counts them: the busiest window's starts
        over its seconds; without a limit (or in a checkpoint from before), first start to
        last. None below two calls."""
        if self.busiest_per_second is not None and self.calls >= 2:
            return round(self.busiest_per_second, 3)
        if self.limit_per_second is not None:
            return None  # an older run's first-to-last rate could read over a kept limit
        rate = achieved_rate(self.calls, self.start_span)
        return None if rate is None else round(rate, 3)

    @property
    def share_of_limit(self) -> float | None:
        """The busiest window's starts over the limit's calls: never above 1 when the limit
        was kept. None without a limit, below two calls, or in a checkpoint from before."""
        if self.busiest_share is None or self.calls < 2:
            return None
        return round(self.busiest_share, 4)

    def to_json(self) -> dict[str, Any]:
        """``this_run`` in the ``--summary-json`` document."""
        return {
            "result": self.result,
            "calls": self.calls,
            "queued": self.queued,
            "failed": self.failed,
            "rate_limited_429": self.rate_limited_429,
            "send_seconds": round(self.send_seconds, 3),
            "calls_per_second": self.calls_per_second,
            "share_of_limit": self.share_of_limit,
        }


@dataclass(frozen=True, kw_only=True)
class Failure:
    """One reason requests failed, and how many."""

    error: str
    count: int
    transient: bool


@dataclass(frozen=True, kw_only=True)
class RestoreFigures:
    """What `restore` did with a backup's activities, over every run of its checkpoint. The
    summary's ``totals`` say it too, as a run's: requests = activities, queued = posted (or
    already there), failed = refused or given up on (and leads gone), pending = not posted yet
    (held included)."""

    backup: str
    mode: str = ""  # "single" (Create, one a call) or "bulk" (the bulk add, 25 a call)
    activities: int = 0  # selected from the backup
    leads: int = 0
    posted: int = 0  # created again, the new id beside the old
    found_after_lost_answer: int = 0  # of posted: a post whose answer was lost, found on the lead
    already_there: int = 0  # an identical activity was on the lead already: not posted again
    still_present: int = 0  # not gone from the lead (its delete not carried out yet): held
    unchecked: int = 0  # its lead could not be read yet
    to_post: int = 0  # gone, not posted yet
    lead_missing: int = 0  # the lead no longer exists: reported, never created
    failed: int = 0  # refused (400, MX), or given up on after lost answers
    owners_known: int = 0  # the backup names the owner's email (only the bulk add takes it)
    held_requests: tuple[int, ...] = ()  # the purge's requests of the held ones (the first 20)
    # The busiest window of the limit that binds the posting (this run), as a purge's rate is
    # told (RunFigures.busiest_share): activities posted in it per second, and over the most
    # the limit allows in it (never above 1 when the limit was kept).
    activities_per_second: float | None = None
    limit_activities_per_second: float | None = None  # the most the limit in force allows
    share_of_limit: float | None = None


@dataclass(frozen=True, kw_only=True)
class RunSummary:
    exit_code: int | None = None  # None as a command returns it; the CLI maps it (cli/exits.py)
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
    this_run: RunFigures = field(default_factory=RunFigures)
    totals: Counts = field(default_factory=Counts)
    failures: tuple[Failure, ...] = ()
    verification: Verification = field(default_factory=Verification)
    previous_checkpoint: str = ""  # a job with verify_previous: the run it checked first …
    previous_verification: Verification | None = None  # … and what it found there
    shared_with: tuple[str, ...] = ()  # other runs on this machine that spent the same budget
    backup_set_aside: str = ""  # where this run moved a torn tail of --backup ("": none)
    restore: RestoreFigures | None = None  # `restore`: what came of the backup's activities

    def to_json(self) -> dict[str, Any]:
        """The ``--summary-json`` document."""
        return dataclasses.asdict(self) | {"this_run": self.this_run.to_json()}

    def ended(self, exit_code: int, error: str) -> RunSummary:
        """This summary, for a run that ended with an error after it was made."""
        return dataclasses.replace(self, exit_code=exit_code, error=error)


def json_fields(cls: type[Any] = RunSummary, prefix: str = "") -> list[str]:
    """Every field of the JSON document as a dotted name (``this_run.calls``)."""
    names = []
    hints = {f.name: f for f in dataclasses.fields(cls)}
    nested = {
        "window": Window,
        "totals": Counts,
        "failures": Failure,
        "verification": Verification,
        "previous_verification": Verification,
        "restore": RestoreFigures,
    }
    for name in hints:
        names.append(prefix + name)
        if name == "this_run" and not prefix:
            names += [f"this_run.{key}" for key in RunFigures().to_json()]
        if name in nested and not prefix:
            suffix = "[]." if name == "failures" else "."
            names += json_fields(nested[name], prefix=name + suffix)
    return names


class Strategy(StrEnum):
    """How `verify` asks what is left: a Retrieve per lead, or a listing per code."""

    PER_LEAD = "per lead"
    PER_CODE = "per code"


@dataclass(frozen=True, kw_only=True)
class BackupVerified:
    """--backup against verify: activities saved before the deletes of the verified requests,
    and how many of those requests' activities are still present."""

    file: str
    requests: int = 0  # verified requests the backup holds
    saved: int = 0  # activities saved for them
    present: int = 0  # activities still present in their windows (0: all gone)
    uneven: tuple[tuple[int, int, int], ...] = ()  # (request, saved, present) where present > 0
    damaged: tuple[str, ...] = ()  # each member that could not be read, named
    unsaved: int = 0  # queued requests that no backup file holds
    unsaved_shown: tuple[tuple[int, str], ...] = ()  # the first of them: (request, ProspectId)

    @property
    def gone(self) -> int:
        return max(0, self.saved - self.present)


@dataclass(frozen=True, kw_only=True)
class VerifySummary:
    """What `verify` did: the way it asked, the calls it spent, and what the checkpoint now
    says over every request ever checked."""

    checkpoint: str
    strategy: Strategy | None = None  # None: nothing to check
    calls: int = 0
    checked_now: int = 0
    verification: Verification = field(default_factory=Verification)
    unverified_notes: tuple[tuple[str, int], ...] = ()  # (why, how many), most frequent first
    backup: BackupVerified | None = None  # the run's --backup, when it had one

    @property
    def all_confirmed(self) -> bool:
        """Every checked request confirmed: nothing remains and nothing is unverified."""
        return not (self.verification.remaining_requests or self.verification.unverified)
