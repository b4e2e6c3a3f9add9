"""The circuit breaker: an outage belongs to the service, not to the request.

After several transient failures in a row it opens: no call starts, and waiting requests spend
no attempts; after a pause (1 s doubling to 30 s) one probe goes out, and any real answer
closes it. Nothing succeeded for ``give_up_after`` seconds stops the run (exit 3, resumable);
``refused_too_long`` bounds, by the same time, a run whose every call is refused. A host that
takes no connection is told through ``on_notice``, then every LINE_EVERY seconds. Time comes
only from the Clock it is given.

Why: docs/design/breaker.md.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from enum import StrEnum

from ..clock import Clock
from .answers import Answer, Verdict

DEFAULT_TRIP_AFTER = 5  # transient failures in a row, no success between
PROBE_FIRST = 1.0
PROBE_CAP = 30.0
LINE_EVERY = 15.0  # seconds between the lines that say no connection is made yet


class State(StrEnum):
    CLOSED = "closed"  # calls go out
    OPEN = "open"  # nobody calls until the probe time
    HALF_OPEN = "half-open"  # one probe is out; the others wait for its answer


class CircuitBreaker:
    def __init__(
        self,
        clock: Clock,
        *,
        give_up_after: float,
        trip_after: int = DEFAULT_TRIP_AFTER,
        on_notice: Callable[[str], None] | None = None,
    ) -> None:
        self.clock = clock
        self.on_notice = on_notice
        self.give_up_after = give_up_after
        self.trip_after = trip_after
        self.state = State.CLOSED
        self.failures_in_a_row = 0
        self.last_success = clock.now()  # the last answer from the service itself
        self.last_accepted = clock.now()  # the last answer that was not a refusal either
        self.probe_at = 0.0
        self._pause = PROBE_FIRST
        self._changed = asyncio.Event()
        self._unreached = ""  # what no connection is made to, while that lasts
        self._unreached_since = 0.0
        self._next_line = 0.0

    async def admit(self) -> bool:
        """Wait until a call may start: at once when closed; at the probe time (one caller
        probes) when open; for the probe's answer when half-open. True for the probe."""
        while self.state is not State.CLOSED:
            self._still_unreached()
            if self.state is State.OPEN:
                wait = self.probe_at - self.clock.now()
                if wait <= 0:
                    self._set(State.HALF_OPEN)
                    return True
                await self.clock.sleep(min(wait, self._until_line()))
            else:
                await self._changed.wait()
        return False

    def still_admits(self, probe: bool) -> bool:
        """After waiting for a rate-limit slot: may the call still go? Not when the breaker
        opened meanwhile (the slot is lost, which costs nothing but a little pacing)."""
        return probe or self.state is State.CLOSED

    def record(self, answer: Answer) -> bool:
        """Take one answer in. Returns whether a transient failure counts as an attempt of
        its request: not when it is part of an outage (the breaker is open)."""
        self._note_connection(answer)
        if answer.verdict is not Verdict.TRANSIENT:
            if answer.verdict is not Verdict.RATE_LIMITED:
                self.last_accepted = self.clock.now()
            self.last_success = self.clock.now()
            self.failures_in_a_row = 0
            self._pause = PROBE_FIRST
            if self.state is not State.CLOSED:
                self._set(State.CLOSED)
            return True
        self.failures_in_a_row += 1
        if self.state is State.HALF_OPEN:  # the probe failed: wait longer
            self._pause = min(PROBE_CAP, self._pause * 2)
            self._open()
        elif self.state is State.CLOSED and self.failures_in_a_row >= self.trip_after:
            self._open()
        return self.state is State.CLOSED

    @property
    def gave_up(self) -> bool:
        """Nothing has succeeded for ``give_up_after`` seconds and the breaker is open."""
        return (
            self.state is not State.CLOSED
            and self.clock.now() - self.last_success >= self.give_up_after
        )

    @property
    def refused_too_long(self) -> bool:
        """No call has been accepted for ``give_up_after`` seconds (refused, or failing)."""
        return self.refused_for >= self.give_up_after

    @property
    def refused_for(self) -> float:
        return self.clock.now() - self.last_accepted

    @property
    def down_for(self) -> float:
        return self.clock.now() - self.last_success

    def _open(self) -> None:
        now = self.clock.now()
        give_up_at = max(now, self.last_success + self.give_up_after)
        self.probe_at = min(now + self._pause, give_up_at)
        self._set(State.OPEN)

    def _note_connection(self, answer: Answer) -> None:
        """Say at once that no connection is made, and when one is made again."""
        now = self.clock.now()
        if answer.unreached and not self._unreached:
            self._unreached, self._unreached_since = answer.unreached, now
            self._next_line = now + LINE_EVERY
            self._say(f"{answer.unreached}; retrying until --give-up-after ({self._limit()})")
        elif not answer.unreached and self._unreached:
            if answer.verdict is not Verdict.TRANSIENT:
                gone = now - self._unreached_since
                self._say(f"connected again after {gone:.0f} s ({self._unreached} before)")
            self._unreached = ""

    def _still_unreached(self) -> None:
        """A line every LINE_EVERY seconds while no connection is made."""
        now = self.clock.now()
        if not self._unreached or now < self._next_line:
            return
        while self._next_line <= now:
            self._next_line += LINE_EVERY
        left = self.last_success + self.give_up_after - now
        if left <= 0:
            return  # the last probe goes now, and its failure says the rest
        self._say(
            f"still {self._unreached} after {now - self._unreached_since:.0f} s; giving up in "
            f"{left:.0f} s (--give-up-after {self._limit()})"
        )

    def _until_line(self) -> float:
        return max(0.0, self._next_line - self.clock.now()) if self._unreached else math.inf

    def _limit(self) -> str:
        return f"{self.give_up_after:g} s"

    def _say(self, text: str) -> None:
        if self.on_notice is not None:
            self.on_notice(text)

    def _set(self, state: State) -> None:
        self.state = state
        self._changed.set()  # wake whoever waits on the old state
        self._changed = asyncio.Event()
