"""The retry policy: a pure function of (attempt, answer) that tests can table-drive."""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum

from ..config import DEFAULT_GIVE_UP_AFTER, DEFAULT_MAX_ATTEMPTS
from .answers import Answer, Verdict

DEFAULT_BACKOFF_BASE = 1.0
DEFAULT_BACKOFF_CAP = 60.0


class Action(StrEnum):
    RECORD = "record"  # the answer is final for this run: write it to the checkpoint
    RETRY = "retry"  # transient: wait ``delay``, then send again (through the limiter)
    WAIT_WINDOW = "wait_window"  # 429: everyone pauses, this request goes again; no attempt used
    ABORT = "abort"  # stop the run


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    delay: float = 0.0


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Exponential backoff with full jitter: delay ~ U(0, min(cap, base·2^(attempt-1))).

    ``give_up_after`` bounds the waits no attempt is spent on (an outage, refusals): seconds
    without a successful (or, for refusals, accepted) call before the caller stops."""

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    base: float = DEFAULT_BACKOFF_BASE
    cap: float = DEFAULT_BACKOFF_CAP
    give_up_after: float = DEFAULT_GIVE_UP_AFTER

    def decide(self, attempt: int, answer: Answer, rng: random.Random) -> Decision:
        """``attempt`` counts the sends of this request in this run, 429s excluded (1-based)."""
        if answer.verdict is Verdict.RATE_LIMITED:
            return Decision(Action.WAIT_WINDOW)
        if answer.verdict is Verdict.FATAL:
            return Decision(Action.ABORT)
        if answer.verdict is Verdict.TRANSIENT and attempt < self.max_attempts:
            return Decision(
                Action.RETRY, rng.uniform(0, min(self.cap, self.base * 2 ** (attempt - 1)))
            )
        return Decision(Action.RECORD)
