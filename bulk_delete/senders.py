"""checkpoint → senders → outcomes: the worker pool.

A feeder streams pending requests out of the checkpoint into a small queue; N workers take
them, wait for the shared limiter, send, and let the retry policy decide. Every final
answer is committed to the checkpoint before it is counted. The limiter, not latency, should
be the bottleneck, so there are enough workers for ``rate × latency`` calls in flight.

Stopping (SIGINT/SIGTERM, a fatal answer, a service that looks down): no new call starts,
calls in flight get ``drain_seconds`` to finish and be recorded, the rest stay pending.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

from .checkpoint import Checkpoint, Outcome, Pending
from .clock import Clock
from .config import RateLimit
from .errors import AbortedError, ServiceDownError
from .limiter import SlidingWindowLimiter
from .outcomes import Answer, Verdict, fatal_error
from .retry import DEFAULT_SERVICE_DOWN_AFTER, Action, RetryPolicy

DEFAULT_DRAIN_SECONDS = 10.0


class Sender(Protocol):
    async def delete_activities(self, body_json: str) -> Answer: ...


@dataclass(frozen=True, kw_only=True)
class SendConfig:
    rate: RateLimit
    concurrency: int
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    retry_failed: bool = False
    service_down_after: int = DEFAULT_SERVICE_DOWN_AFTER
    drain_seconds: float = DEFAULT_DRAIN_SECONDS
    margin: float | None = None


@dataclass
class Progress:
    """Counts of this run, handed to the progress callback after every change."""

    total: int = 0
    queued: int = 0
    failed: int = 0
    retrying: int = 0
    rate_limited: int = 0
    calls: int = 0
    in_flight: int = 0
    first_call_at: float | None = None
    last_call_at: float | None = None
    last_answer_at: float | None = None

    @property
    def done(self) -> int:
        return self.queued + self.failed

    @property
    def calls_per_second(self) -> float:
        """Achieved rate: call starts per second between the first and the last start."""
        if self.calls < 2 or self.first_call_at is None or self.last_call_at is None:
            return 0.0
        span = self.last_call_at - self.first_call_at
        return (self.calls - 1) / span if span > 0 else 0.0


@dataclass
class SendReport:
    progress: Progress
    stopped: bool = False  # by a signal
    error: AbortedError | None = None

    @property
    def send_seconds(self) -> float:
        p = self.progress
        if p.first_call_at is None or p.last_answer_at is None:
            return 0.0
        return max(0.0, p.last_answer_at - p.first_call_at)


class _Stop(Exception):
    """Raised inside a worker when the run is stopping."""


class Pool:
    def __init__(
        self,
        checkpoint: Checkpoint,
        sender: Sender,
        config: SendConfig,
        *,
        clock: Clock,
        rng: random.Random,
        on_progress: Callable[[Progress], None] | None = None,
        on_outcome: Callable[[Pending, Outcome], None] | None = None,
    ) -> None:
        self.checkpoint = checkpoint
        self.on_outcome = on_outcome
        self.sender = sender
        self.config = config
        self.clock = clock
        self.rng = rng
        self.on_progress = on_progress or (lambda progress: None)
        self.limiter = SlidingWindowLimiter(config.rate, clock=clock, margin=config.margin)
        self.progress = Progress()
        self.stopping = asyncio.Event()
        self.stopped_by_signal = False
        self.error: AbortedError | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._transient_in_a_row = 0

    def stop(self) -> None:
        """Stop starting calls (a signal handler calls this)."""
        self.stopped_by_signal = True
        self.stopping.set()

    def _abort(self, error: AbortedError) -> None:
        if self.error is None:
            self.error = error
        self.stopping.set()

    async def run(self, total: int) -> SendReport:
        self.progress = Progress(total=total)
        queue: asyncio.Queue[Pending | None] = asyncio.Queue(maxsize=self.config.concurrency * 2)
        workers = [asyncio.create_task(self._worker(queue)) for _ in range(self.config.concurrency)]
        feeder = asyncio.create_task(self._feed(queue))
        stopping = asyncio.create_task(self.stopping.wait())
        finished: asyncio.Future[Any] = asyncio.gather(*workers)
        waiters: list[asyncio.Future[Any]] = [finished, stopping]
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        crashed = finished.done() and not finished.cancelled() and finished.exception() is not None
        if self.stopping.is_set() or crashed:
            if not crashed:
                # Let the calls already on the wire come back and be recorded, then cut the rest.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._idle.wait(), self.config.drain_seconds)
            for task in [*workers, feeder]:
                task.cancel()
        stopping.cancel()
        feeder.cancel()
        results = await asyncio.gather(*workers, feeder, stopping, return_exceptions=True)
        with contextlib.suppress(BaseException):
            await finished
        for result in results:  # a bug in a worker must not pass for a finished run
            if isinstance(result, Exception) and not isinstance(result, asyncio.CancelledError):
                raise result
        return SendReport(
            progress=self.progress,
            stopped=self.stopped_by_signal,
            error=self.error,
        )

    async def _feed(self, queue: asyncio.Queue[Pending | None]) -> None:
        for item in self.checkpoint.todo(retry_failed=self.config.retry_failed):
            if self.stopping.is_set():
                break
            await queue.put(item)
        for _ in range(self.config.concurrency):
            await queue.put(None)

    async def _worker(self, queue: asyncio.Queue[Pending | None]) -> None:
        while not self.stopping.is_set():
            item = await queue.get()
            if item is None:
                return
            try:
                await self._send(item)
            except _Stop:
                return

    async def _send(self, item: Pending) -> None:
        attempts = rate_limited = 0
        while True:
            await self._wait_for(self.limiter.acquire())
            self._begin_call()
            try:
                answer = await self.sender.delete_activities(item.body)
            finally:
                self._end_call()
            if answer.verdict is Verdict.RATE_LIMITED:
                rate_limited += 1
                self.progress.rate_limited += 1
            else:
                attempts += 1
            decision = self.config.retry.decide(attempts, answer, self.rng)
            self._watch_health(answer)
            if decision.action is Action.WAIT_WINDOW:
                self.limiter.pause(answer.retry_after)
                self.on_progress(self.progress)
                continue
            if decision.action is Action.ABORT:
                self._abort(fatal_error(answer))
                self._record(item, answer, attempts, rate_limited, pending=True)
                raise _Stop
            if decision.action is Action.RETRY:
                self.progress.retrying += 1
                self.on_progress(self.progress)
                try:
                    await self._wait_for(self.clock.sleep(decision.delay))
                except _Stop:
                    self._record(item, answer, attempts, rate_limited, pending=True)
                    raise
                finally:
                    self.progress.retrying -= 1
                continue
            self._record(item, answer, attempts, rate_limited)
            return

    async def _wait_for(self, waiting: Coroutine[Any, Any, None]) -> None:
        """Await a limiter slot or a backoff sleep, unless the run stops first."""
        task = asyncio.ensure_future(waiting)
        stop = asyncio.ensure_future(self.stopping.wait())
        done, _ = await asyncio.wait([task, stop], return_when=asyncio.FIRST_COMPLETED)
        if task not in done:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            raise _Stop
        stop.cancel()
        task.result()

    def _begin_call(self) -> None:
        progress = self.progress
        now = self.clock.now()
        if progress.first_call_at is None:
            progress.first_call_at = now
        progress.last_call_at = now
        progress.calls += 1
        progress.in_flight += 1
        self._idle.clear()

    def _end_call(self) -> None:
        self.progress.in_flight -= 1
        self.progress.last_answer_at = self.clock.now()
        if self.progress.in_flight == 0:
            self._idle.set()

    def _watch_health(self, answer: Answer) -> None:
        """Many transient failures in a row and no success: the service looks down."""
        if answer.verdict is Verdict.TRANSIENT:
            self._transient_in_a_row += 1
            if self._transient_in_a_row >= self.config.service_down_after:
                self._abort(
                    ServiceDownError(
                        f"the API looks down: {self._transient_in_a_row} transient failures in a "
                        f"row (last: {answer.message}); rerun the same command later to resume"
                    )
                )
        elif answer.verdict is not Verdict.RATE_LIMITED:
            self._transient_in_a_row = 0

    def _record(
        self,
        item: Pending,
        answer: Answer,
        attempts: int,
        rate_limited: int,
        *,
        pending: bool = False,
    ) -> None:
        if pending:
            status, transient = "pending", False
        elif answer.verdict is Verdict.QUEUED:
            status, transient = "queued", False
        else:
            status, transient = "failed", answer.verdict is Verdict.TRANSIENT
        error = "" if status == "queued" else answer.message
        if transient:
            error = f"{error} (gave up after {attempts} attempts; a rerun retries it)"
        outcome = Outcome(
            seq=item.seq,
            status=status,
            transient=transient,
            attempts=attempts,
            rate_limited=rate_limited,
            http_status=answer.http_status,
            error=error,
        )
        self.checkpoint.record(outcome)
        if self.on_outcome is not None:
            self.on_outcome(item, outcome)
        if status == "queued":
            self.progress.queued += 1
        elif status == "failed":
            self.progress.failed += 1
        self.on_progress(self.progress)
