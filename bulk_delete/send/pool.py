"""checkpoint → senders → outcomes: the worker pool, the one for every call a command makes.

A feeder streams work items to N workers; every call passes the same gates (breaker, limiter,
retry). ``Pool.run`` sends the checkpoint's pending deletes, committing each final answer before
it counts; ``Pool.each`` runs any coroutine per item, which reads through ``Pool.read``.
``call_once`` is a single call outside any pool (preflight, --check-codes), through the same
retry loop. Stopping (a signal through ``StopSwitch``, a fatal answer, a long outage) is one
protocol: stop starting, drain the calls on the wire, cancel the rest; the unsent stay pending.

Why: docs/design/pool.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import random
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sized
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Generic, NoReturn, Protocol, TypeVar

from ..allowance import allowance_used
from ..clock import Clock, utc
from ..config import RateLimit, SendSettings
from ..errors import (
    AbortedError,
    AllowanceUsed,
    Interrupted,
    RefusedTooLong,
    ServiceDownError,
    StorageError,
)
from ..records import Status
from ..store.checkpoint import Checkpoint, Outcome, Pending
from ..summary import RunFigures, RunResult
from . import recording, wire
from .answers import Answer, Verdict, fatal_error
from .breaker import DEFAULT_TRIP_AFTER, CircuitBreaker
from .limiter import Pacer, SlidingWindowLimiter
from .retry import Action, Decision, RetryPolicy

DEFAULT_DRAIN_SECONDS = 10.0
LEARNED_LIMIT = "learned_limit"  # checkpoint meta: the account's limit, as LeadSquared said
STOPPED = "interrupted; nothing was sent after the signal. Rerun the same command to resume."


class Sender(Protocol):
    async def delete_activities(self, body_json: str) -> Answer: ...


ProgressCallback = Callable[["Progress"], None]
OutcomeCallback = Callable[[Pending, Outcome], None]


Reply = tuple[Answer, dict[str, Any]]


R = TypeVar("R")
T = TypeVar("T")
Work = Callable[[T], Awaitable[None]]  # what one work item does (``Pool.each``)


def _raise(error: AbortedError) -> NoReturn:
    raise error


class Cut(Exception):
    """A work item's read met the stop: the item ends where it is (what it recorded stays),
    and the pool's worker takes it from there. Never escapes ``Pool.each``."""


def answer_of_read(answer: Answer, body: dict[str, Any]) -> Answer:
    """A 200 that carries data is an answer, not the "200 without Success" that the delete's
    classification calls transient: left so, every read would count toward the shared
    breaker's failures in a row and hold everyone behind an outage that is not there."""
    if answer.http_status == 200 and body and answer.verdict is Verdict.TRANSIENT:
        return Answer(Verdict.QUEUED, 200, "read")
    return answer


def _readable(answer: Answer) -> bool:
    """Whether a reply's body may settle a read: only a 200 that is not a refusal. Some
    tenants refuse with a 200 whose Status is Error ("exceeded the limit …"); taken for data,
    it would read as an empty last page and end a listing short."""
    return answer.http_status == 200 and answer.verdict not in (
        Verdict.RATE_LIMITED,
        Verdict.ALLOWANCE,
        Verdict.FATAL,
    )


async def _sleep_with(clock: Clock, delay: float) -> None:
    await clock.sleep(delay)


@dataclass
class Tried(Generic[R]):
    """What the attempts at one call came to: the last answer and reply, the attempts spent
    (429s excluded), the 429s met, and whether a stop cut it short of a final answer."""

    answer: Answer | None = None
    reply: R | None = None
    attempts: int = 0
    rate_limited: int = 0
    stopped: bool = False


@dataclass(frozen=True)
class Gates:
    """What every call passes through, one set per pool or per single call."""

    breaker: CircuitBreaker
    limiter: Pacer
    retry: RetryPolicy
    clock: Clock
    rng: random.Random


async def until_settled(
    call: Callable[[], Awaitable[tuple[Answer, R]]],
    gates: Gates,
    tried: Tried[R],
    *,
    fail: Callable[[AbortedError], None],
    settled: Callable[[R], bool] = lambda reply: False,
    stopping: Callable[[], bool] = lambda: False,
    on_refused: Callable[[bool], None] = lambda learned: None,
    wait: Callable[[float], Awaitable[None]] | None = None,
    seq: int | None = None,
    once: bool = False,
) -> None:
    """The one retry loop, for the pool's deletes and for single calls alike: through the
    breaker and the limiter, refusals waited out without spending an attempt, transient
    failures retried with backoff, an outage ridden out behind the breaker. ``fail`` takes
    the error that ends it (a fatal answer, ``give_up_after`` passed): a single call raises
    it, the pool stops. Returns once the answer is final, ``settled(reply)``, or
    ``stopping()`` (then ``tried.stopped``). ``once``: a call that must never be repeated
    blind (a post: a repeat after a lost answer makes a second copy) also returns on a
    transient answer, for the caller to look before it calls again; refusals, which acted
    on nothing, are still waited out here."""
    breaker, limiter = gates.breaker, gates.limiter
    while True:
        probe = await breaker.admit()
        try:
            slot = await limiter.acquire()
        except AllowanceUsed as used:  # the machine's ledger: today's --daily-limit is spent
            fail(used)
            tried.stopped = True
            return
        if not breaker.still_admits(probe):
            continue  # an outage began while this caller waited for its slot
        recorder, kind = recording.current()
        started = recorder.wall() if recorder is not None else 0.0
        sent = _OnTheWire(limiter, slot)
        with wire.watching(sent):
            answer, reply = await call()
        slot = sent.started
        read = settled(reply) and _readable(answer)
        if recorder is not None:  # the run report's call log (seq: the request's)
            attempt = tried.attempts + tried.rate_limited + 1
            recorder.record(
                kind=kind,
                seq=seq,
                attempt=attempt,
                started=started,
                answer=answer,
                limiter=limiter,
                read=read,
            )
        tried.answer, tried.reply = answer, reply
        if answer.verdict is Verdict.ALLOWANCE:  # no pace gets under it: stop, still pending
            fail(_allowance_used(answer, utc(gates.clock)))
            tried.stopped = True
            return
        counted = breaker.record(answer)
        if (error := hopeless(breaker, answer)) is not None:
            fail(error)
        if answer.verdict is Verdict.RATE_LIMITED:
            tried.rate_limited += 1
        elif counted:
            tried.attempts += 1
        # Caught in an outage: the breaker says when to go again; no attempt spent.
        decision = (
            gates.retry.decide(tried.attempts, answer, gates.rng)
            if counted
            else Decision(Action.RETRY)
        )
        if decision.action is Action.ABORT:
            fail(fatal_error(answer))
        if decision.action is Action.RECORD or read:
            return
        if once and answer.verdict is Verdict.TRANSIENT:  # it may have acted: look first
            return
        if stopping():  # what was not answered stays pending
            tried.stopped = True
            return
        if decision.action is Action.WAIT_WINDOW:
            on_refused(limiter.refused(answer.limit, answer.retry_after, started=slot))
            continue
        await (wait or partial(_sleep_with, gates.clock))(decision.delay)


class _OnTheWire:
    """One attempt's start as the server will count it: moved to when its request went out
    (a new connection first), and a request sent again by the HTTP client counted again."""

    def __init__(self, limiter: Pacer, started: float) -> None:
        self.limiter = limiter
        self.started = started
        self._out = False

    def __call__(self) -> None:
        if self._out:
            self.limiter.sent_again()
        else:
            self.started = self.limiter.on_the_wire(self.started)
        self._out = True


async def call_once(
    limiter: SlidingWindowLimiter,
    call: Callable[[], Awaitable[Reply]],
    *,
    retry: RetryPolicy,
    clock: Clock,
    rng: random.Random,
    give_up_after: float | None = None,
    stop: StopSwitch | None = None,
) -> Reply:
    """A single read-only call outside any pool (the preflight, a --check-codes setting),
    through `until_settled` like the pool's: a fatal answer raised, the last reply returned
    otherwise (a reply with a body settles it). Raises ServiceDownError or RefusedTooLong
    after ``give_up_after`` seconds (default: the policy's) without a successful or an
    accepted call, and Interrupted at once when ``stop`` flips: no wait outlasts a signal."""
    breaker = CircuitBreaker(  # alone, its own attempts are the only failures in a row
        clock,
        give_up_after=retry.give_up_after if give_up_after is None else give_up_after,
        trip_after=min(DEFAULT_TRIP_AFTER, retry.max_attempts),
        on_notice=limiter.on_notice,
    )
    tried: Tried[dict[str, Any]] = Tried()
    gates = Gates(breaker, limiter, retry, clock, rng)
    async with stop.cutting() if stop is not None else contextlib.nullcontext():
        await until_settled(call, gates, tried, fail=_raise, settled=bool)
    assert tried.answer is not None  # one call at least
    assert tried.reply is not None
    return tried.answer, tried.reply


def hopeless(breaker: CircuitBreaker, answer: Answer) -> AbortedError | None:
    """The error that stops waiting, once ``give_up_after`` has passed: an outage (nothing
    succeeded), or a budget someone else spends whole (every call refused)."""
    if breaker.gave_up:
        return ServiceDownError(
            f"the API looks down: no call has succeeded for {breaker.down_for:.0f} s "
            f"(--give-up-after {breaker.give_up_after:g}; last: {answer.message}). "
            "Rerun the same command later to resume."
        )
    if answer.verdict is Verdict.RATE_LIMITED and breaker.refused_too_long:
        return RefusedTooLong(
            f"stopped: every call for {breaker.refused_for:.0f} s was refused as over the rate "
            f"limit (--give-up-after {breaker.give_up_after:g}; last: {answer.message}). "
            "Another integration may be using the whole budget of the account; nothing is "
            "lost. Rerun the same command later to resume."
        )
    return None


def _allowance_used(answer: Answer, now: dt.datetime) -> AllowanceUsed:
    """The account's daily allowance is used: no pace gets under it (allowance.py)."""
    return allowance_used(answer.allowance, now, answer.retry_after)


class StopSwitch:
    """Asks a running pool to stop. The CLI's signal handler flips it; so does the pool
    itself on a fatal answer. ``by_signal`` tells an interrupted run from an aborted one.
    Outside a pool, ``cutting`` ends a block at once when it flips."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._scopes: set[asyncio.Timeout] = set()
        self.by_signal = False

    def stop(self, *, by_signal: bool = True) -> None:
        if not self._event.is_set():
            self.by_signal = by_signal
        self._event.set()
        for scope in self._scopes:
            if not scope.expired():
                scope.reschedule(-1.0)  # its deadline has passed: the block is cancelled now

    def is_set(self) -> bool:
        return self._event.is_set()

    async def wait(self) -> None:
        await self._event.wait()

    @contextlib.asynccontextmanager
    async def cutting(self) -> AsyncIterator[None]:
        """The block, cut short by the switch: whatever it waits for (a slot in the window,
        the breaker's probe, a backoff, a read on the wire) ends at once, and Interrupted is
        raised. For reads only: a delete on the wire is drained, by the pool's protocol."""
        if self.is_set():
            raise Interrupted(STOPPED)
        try:
            async with asyncio.timeout(None) as scope:
                self._scopes.add(scope)
                try:
                    yield
                finally:
                    self._scopes.discard(scope)
        except TimeoutError:
            if not scope.expired():
                raise  # a timeout of the block's own
            raise Interrupted(STOPPED) from None


@dataclass
class Progress:
    """This run as it goes, handed to the progress callback after every change: its figures
    (the ones the checkpoint keeps and the summary reports) and what is only live."""

    total: int = 0
    already_done: int = 0  # a resumed plan's requests settled by earlier runs (for the display)
    figures: RunFigures = field(default_factory=RunFigures)
    retrying: int = 0
    in_flight: int = 0
    first_call_at: float | None = None
    recent_starts: deque[float] = field(default_factory=deque)  # within one window of the limit

    @property
    def done(self) -> int:
        return self.figures.queued + self.figures.failed


@dataclass
class SendReport:
    progress: Progress = field(default_factory=Progress)
    stopped: bool = False  # by a signal
    error: AbortedError | None = None


class Pool:
    """The one worker pool. ``checkpoint`` and ``sender`` are what ``run`` deletes through
    and records into; a pool that only reads (``Pool.for_reads``) needs no sender, and keeps
    a limit it learns in the checkpoint when it has one."""

    def __init__(
        self,
        checkpoint: Checkpoint | None,
        sender: Sender | None,
        settings: SendSettings,
        *,
        clock: Clock,
        rng: random.Random,
        stop: StopSwitch | None = None,
        on_progress: ProgressCallback | None = None,
        on_outcome: OutcomeCallback | None = None,
        on_limit_learned: Callable[[RateLimit], None] | None = None,
        limiter: SlidingWindowLimiter | None = None,
        drain_seconds: float = DEFAULT_DRAIN_SECONDS,
        before_send: Callable[[Pool, Pending], Awaitable[bool]] | None = None,
        trip_after: int = DEFAULT_TRIP_AFTER,
    ) -> None:
        self.checkpoint = checkpoint
        self.sender = sender
        self.settings = settings
        self.clock = clock
        self.rng = rng
        self.stop = stop or StopSwitch()
        self.on_progress = on_progress or (lambda progress: None)
        self.on_outcome = on_outcome
        self.on_limit_learned = on_limit_learned
        self.drain_seconds = drain_seconds
        self.before_send = before_send  # the backup (backup_step.py): False = do not send
        self.limiter = limiter or SlidingWindowLimiter(
            settings.rate, clock=clock, share=settings.share
        )
        self.breaker = CircuitBreaker(
            clock,
            give_up_after=settings.give_up_after,
            trip_after=trip_after,
            on_notice=self.limiter.on_notice,  # (the command's: where its notes go)
        )
        self.retry = RetryPolicy(
            max_attempts=settings.max_attempts, give_up_after=settings.give_up_after
        )
        self.gates = Gates(self.breaker, self.limiter, self.retry, clock, rng)
        self.progress = Progress()
        self.error: AbortedError | None = None
        self._busy: set[asyncio.Task[None] | None] = set()  # workers with a call on the wire
        self._idle = asyncio.Event()
        self._idle.set()

    @classmethod
    def for_reads(
        cls,
        settings: SendSettings,
        *,
        clock: Clock,
        rng: random.Random,
        limiter: SlidingWindowLimiter,
        stop: StopSwitch | None = None,
        checkpoint: Checkpoint | None = None,
        drain_seconds: float = DEFAULT_DRAIN_SECONDS,
        on_limit_learned: Callable[[RateLimit], None] | None = None,
    ) -> Pool:
        """A pool whose items only read (verify, a listing). Its items read one call after
        another, so its own attempts may be the only failures in a row: the breaker trips
        within --max-attempts, and an outage is ridden out, not spent as attempts.
        ``drain_seconds=0``: a stop abandons the reads on the wire (nothing to record). A limit
        a read's refusal teaches is kept in ``checkpoint`` and said through ``on_limit_learned``,
        as the deletes' are: the pool that sends later shares the limiter and learns nothing new."""
        return cls(
            checkpoint,
            None,
            settings,
            clock=clock,
            rng=rng,
            stop=stop,
            on_limit_learned=on_limit_learned,
            limiter=limiter,
            drain_seconds=drain_seconds,
            trip_after=min(DEFAULT_TRIP_AFTER, settings.max_attempts),
        )

    async def run(self, total: int, *, already_done: int = 0) -> SendReport:
        """The deletes: every pending request of the checkpoint, sent and recorded."""
        self.progress = Progress(total=total, already_done=already_done)
        pending = self._checkpoint().todo(retry_failed=self.settings.retry_failed)
        return await self.each(pending, self._send)

    async def each(self, items: Iterable[T], work: Work[T]) -> SendReport:
        """``work`` on every item, --concurrency at once (no more workers than a list's
        items), until the items end or the stop. An item ends early when its read meets the
        stop (`Cut`), and stops the pool when it raises an AbortedError; a bug surfaces as
        itself. The figures go on across calls (one command's calls, whatever their items)."""
        count = self.settings.workers
        if isinstance(items, Sized):
            count = min(count, len(items))
        count = max(1, count)
        queue: asyncio.Queue[T | None] = asyncio.Queue(maxsize=count * 2)
        try:
            async with asyncio.TaskGroup() as group:
                feeder = group.create_task(self._feed(queue, items, count))
                workers_ = [group.create_task(self._worker(queue, work)) for _ in range(count)]
                guard = group.create_task(self._stop_protocol(workers_, feeder))
                await asyncio.wait(workers_)
                guard.cancel()
                feeder.cancel()
        except ExceptionGroup as errors:  # a bug in a worker must not pass for a finished run
            raise errors.exceptions[0] from errors
        return SendReport(progress=self.progress, stopped=self.stop.by_signal, error=self.error)

    async def _stop_protocol(
        self, workers: list[asyncio.Task[None]], feeder: asyncio.Task[None]
    ) -> None:
        """Stop starting, drain for ``drain_seconds``, then cancel."""
        await self.stop.wait()
        feeder.cancel()
        for worker in workers:
            if worker not in self._busy:  # waiting for work, a slot or a backoff
                worker.cancel()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.drain_seconds):
                await self._idle.wait()
        for worker in workers:
            worker.cancel()

    def _abort(self, error: AbortedError) -> None:
        if self.error is None:
            self.error = error
        self.stop.stop(by_signal=False)

    async def _feed(self, queue: asyncio.Queue[T | None], items: Iterable[T], count: int) -> None:
        for item in items:
            await queue.put(item)
        for _ in range(count):
            await queue.put(None)

    async def _worker(self, queue: asyncio.Queue[T | None], work: Work[T]) -> None:
        while not self.stop.is_set():
            item = await queue.get()
            if item is None:
                return
            try:
                await work(item)
            except Cut:
                return  # the pool is stopping
            except AbortedError as error:  # what the item found stops the pool, as an answer
                self._abort(error)
                return

    def _checkpoint(self) -> Checkpoint:
        if self.checkpoint is None:
            raise TypeError("this pool has no checkpoint to record deletes in")
        return self.checkpoint

    async def read(self, call: Callable[[], Awaitable[Reply]]) -> Reply:
        """One read of a work item through the pool's gates and retry loop; a reply with a
        body settles it (a final answer without one comes back with ``{}``). On the wire, it
        is drained like a delete. Raises `Cut` when the pool is stopping, before the call or
        after it: the item ends, and a fatal answer or --give-up-after stops the pool."""
        if self.stop.is_set():
            raise Cut

        async def on_wire() -> Reply:
            answer, body = await self.on_wire(call)
            return answer_of_read(answer, body), body

        tried: Tried[dict[str, Any]] = Tried()
        await self._until_settled(on_wire, self.gates, tried, settled=bool)
        if tried.stopped or (self.stop.is_set() and not tried.reply):
            raise Cut
        assert tried.answer is not None  # one call at least
        return tried.answer, tried.reply or {}

    async def post(
        self, call: Callable[[], Awaitable[Reply]], *, pacer: Pacer | None = None
    ) -> Tried[dict[str, Any]]:
        """One post of a work item (send/posting.py), never repeated blind (``once``): a
        transient answer comes back for the caller to look on the lead before it posts again.
        Through the pool's breaker and retry, and ``pacer`` (the bulk add's own window within
        the account's) or the pool's limiter; on the wire, drained like a delete. ``answer``
        is None when the stop came before the first call."""
        gates = self.gates if pacer is None else dataclasses.replace(self.gates, limiter=pacer)
        tried: Tried[dict[str, Any]] = Tried()
        await self._until_settled(
            partial(self.on_wire, call), gates, tried, settled=bool, once=True
        )
        return tried

    async def _until_settled(
        self,
        call: Callable[[], Awaitable[tuple[Answer, R]]],
        gates: Gates,
        tried: Tried[R],
        **options: Any,
    ) -> None:
        """The retry loop for one of the pool's calls: its stop, its refusals, its waits."""
        await until_settled(
            call,
            gates,
            tried,
            fail=self._abort,
            stopping=self.stop.is_set,
            on_refused=self._refused,
            wait=self._wait,
            **options,
        )
        if tried.answer is not None and tried.answer.verdict is Verdict.ALLOWANCE:
            # a refusal as the pace's are (429, or 403/200 on some tenants), counted with
            # them, though none is waited out: the run stops
            self.progress.figures.rate_limited_429 += 1

    async def _send(self, item: Pending) -> None:
        if self.before_send is not None and not await self.before_send(self, item):
            return  # not backed up: recorded failed, or the run is stopping
        tried: Tried[None] = Tried()
        try:
            await self._until_settled(partial(self._call, item), self.gates, tried, seq=item.seq)
        except asyncio.CancelledError:
            if tried.answer is not None:  # cancelled between attempts: keep what we learned
                self._record(item, tried.answer, tried.attempts, tried.rate_limited, pending=True)
            raise
        if tried.answer is None:  # stopped before its first call: it stays pending as it was
            return
        self._record(item, tried.answer, tried.attempts, tried.rate_limited, pending=tried.stopped)

    def figures(self, result: RunResult) -> RunFigures:
        """This pool's figures, with how the run ended and the limit it ran under."""
        effective = self.limiter.effective
        return dataclasses.replace(
            self.progress.figures,
            result=result,
            limit_per_second=None if effective.unlimited else effective.per_second,
        )

    def _refused(self, learned: bool) -> None:
        """A 429: the limiter has paused everyone; a limit below --rate is saved and said."""
        self.progress.figures.rate_limited_429 += 1
        if learned:
            self._learned(self.limiter.account)
        self.on_progress(self.progress)

    async def _wait(self, delay: float) -> None:
        self.progress.retrying += 1
        self.on_progress(self.progress)
        try:
            await self.clock.sleep(delay)
        finally:
            self.progress.retrying -= 1

    async def _call(self, item: Pending) -> tuple[Answer, None]:
        """One call on the wire; while it is, the stop protocol lets it finish (the drain)."""
        task = asyncio.current_task()
        self._busy.add(task)
        self._idle.clear()
        self._begin_call()
        try:
            return await self._sender().delete_activities(item.body), None
        finally:
            self._end_call()
            self._busy.discard(task)
            if not self._busy:
                self._idle.set()

    def _sender(self) -> Sender:
        if self.sender is None:
            raise TypeError("a pool for reads sends no deletes")
        return self.sender

    # ---- for a step before the send (the backup): its calls and writes, seen as the pool's

    async def on_wire(self, call: Callable[[], Awaitable[R]], *, counted: bool = True) -> R:
        """A call (counted) or a backup write the stop protocol drains like a delete."""
        task = asyncio.current_task()
        self._busy.add(task)
        self._idle.clear()
        if counted:
            self._begin_call()
        try:
            return await call()
        finally:
            if counted:
                self._end_call()
            self._busy.discard(task)
            if not self._busy:
                self._idle.set()

    def abort(self, error: AbortedError) -> None:
        self._abort(error)

    def record_outcome(self, item: Pending, outcome: Outcome) -> None:
        """A request settled without a delete (not backed up): recorded and counted."""
        try:
            self._checkpoint().record(outcome)
            if self.on_outcome is not None:
                self.on_outcome(item, outcome)
        except StorageError as error:
            self._abort(error)
            return
        self.progress.figures.failed += 1
        self.on_progress(self.progress)

    def _begin_call(self) -> None:
        progress = self.progress
        now = self.clock.now()
        if progress.first_call_at is None:
            progress.first_call_at = now
        progress.figures.start_span = now - progress.first_call_at
        progress.figures.calls += 1
        progress.in_flight += 1
        self._busiest(now)

    def _busiest(self, now: float) -> None:
        """The busiest window so far, counted as the limiter counts: the starts within one
        window of the limit in force up to this one, over that limit (under a kept limit, at
        most 1)."""
        limit, starts, figures = (
            self.limiter.effective,
            self.progress.recent_starts,
            self.progress.figures,
        )
        if limit.unlimited:
            return
        starts.append(now)
        while starts[0] <= now - limit.period:
            starts.popleft()
        share = len(starts) / limit.calls
        if figures.busiest_share is None or share > figures.busiest_share:
            figures.busiest_share = share
            figures.busiest_per_second = len(starts) / limit.period

    def _end_call(self) -> None:
        progress = self.progress
        progress.in_flight -= 1
        first = progress.first_call_at if progress.first_call_at is not None else self.clock.now()
        progress.figures.send_seconds = max(0.0, self.clock.now() - first)

    def _learned(self, limit: RateLimit) -> None:
        """The account allows less than --rate: keep it for a resume, and say so once."""
        if self.checkpoint is not None:
            self.checkpoint.set_meta(LEARNED_LIMIT, f"{limit.calls}/{limit.period:g}s")
        if self.on_limit_learned is not None:
            self.on_limit_learned(limit)

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
            status, transient = Status.PENDING, False
        elif answer.verdict is Verdict.QUEUED:
            status, transient = Status.QUEUED, False
        else:
            status, transient = Status.FAILED, answer.verdict is Verdict.TRANSIENT
        error = "" if status is Status.QUEUED else answer.message
        if transient and answer.http_status is None:  # the call may have reached LeadSquared
            error = (
                f"no answer ({error}): LeadSquared may have queued it; a rerun sends it again "
                f"(gave up after {attempts} attempts)"
            )
        elif transient:
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
        try:  # a full disk stops the pool like a fatal answer: what is recorded is safe
            self._checkpoint().record(outcome)
        except StorageError as error:
            self._abort(error)
            return  # not recorded, so not counted: a rerun sends it again
        try:
            if self.on_outcome is not None:
                self.on_outcome(item, outcome)
        except StorageError as error:
            self._abort(error)
        if status is Status.QUEUED:
            self.progress.figures.queued += 1
        elif status is Status.FAILED:
            self.progress.figures.failed += 1
        self.on_progress(self.progress)
