"""Virtual time for in-process runs against the emulator: the event loop skips its idle waits.

The emulator's windows, latency and webhook delay, and the run's limiter, backoff and breaker
all wait on the one event loop. Whenever that loop has nothing to do but wait for a timer (no
callback ready, no socket answered within ``IDLE`` real seconds, no thread at work), time
jumps to the next timer's deadline: the idea of trio's ``autojump_clock``. Time still flows
as it does for real in between, so a loop that polls or a deadline read in a thread behaves as
on a slow machine, never hangs.

Time is the machine's, moved forward by an offset that only grows: ``time.monotonic`` and
``time.time`` follow it (so ``SystemClock``, the loop's own ``loop.time()`` and the ledger's
wall agree), and so do the defaults that modules bound to them at import (``wall=time.time``).

The CLI runs in a worker thread (click's CliRunner); its coroutines run on the test's loop, so
that it and the emulator share the jumps. While a thread is at work (the CLI between two
``asyncio.run``s, an ``asyncio.to_thread``) the loop does not jump: it waits for its answer.

Only for runs in this process: another process (``start_cli``, pexpect) lives in real time.
"""

from __future__ import annotations

import asyncio
import selectors
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any, TypeVar

import pytest

IDLE = 0.001  # real seconds without any event before the loop counts as idle

T = TypeVar("T")
_real_monotonic = time.monotonic
_real_time = time.time
_offset = [0.0]  # seconds added to the machine's time: one per process, 0 outside a test


def monotonic() -> float:
    return _real_monotonic() + _offset[0]


def wall() -> float:
    return _real_time() + _offset[0]


def _virtual(value: object) -> object:
    """The virtual clock for the machine's one, anything else as it is."""
    if value is _real_monotonic:
        return monotonic
    return wall if value is _real_time else value


def active() -> bool:
    """Whether a test runs in virtual time now (another process could not follow it)."""
    return _skipping[0]


_skipping = [False]


class Skipper:
    """Watches one event loop and moves time to its next timer whenever it is idle."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._lock = threading.Lock()
        self._threads = 0  # executor jobs running
        self._lent = 0  # of which waiting for a coroutine on this loop (the CLI's asyncio.run)

    @property
    def busy(self) -> bool:
        with self._lock:
            return self._threads > self._lent

    def select(self, select: Callable[[float | None], Any], timeout: float | None = None) -> Any:
        """The selector's ``select``, but a wait longer than IDLE that stays idle ends with a
        jump to the next live timer."""
        if timeout is None or timeout <= IDLE or self.busy:
            return select(timeout)
        events = select(IDLE)
        if events or self.busy:
            return events
        due = self._next_timer()
        if due is not None:
            self._jump(due - self.loop.time())
        return events

    def _next_timer(self) -> float | None:
        scheduled = self.loop._scheduled  # type: ignore[attr-defined]
        return min((h.when() for h in scheduled if not h.cancelled()), default=None)

    def _jump(self, seconds: float) -> None:
        if seconds > 0:
            _offset[0] += seconds

    def run_in_executor(
        self, run_in_executor: Callable[..., asyncio.Future[T]], *args: Any
    ) -> asyncio.Future[T]:
        """Counts the job as a thread at work until its result is back on the loop."""
        with self._lock:
            self._threads += 1
        future = run_in_executor(*args)
        future.add_done_callback(self._thread_done)
        return future

    def _thread_done(self, _: object) -> None:
        with self._lock:
            self._threads -= 1

    def run_here(self, coroutine: Coroutine[Any, Any, T], **_: Any) -> T:
        """``asyncio.run`` from a worker thread: the coroutine runs on this loop, the thread
        waits (and while it waits, it holds off no jump)."""
        with self._lock:
            self._lent += 1
        return asyncio.run_coroutine_threadsafe(self._lent_back(coroutine), self.loop).result()

    async def _lent_back(self, coroutine: Coroutine[Any, Any, T]) -> T:
        try:
            return await coroutine
        finally:  # on the loop, before the thread wakes: no jump in between
            with self._lock:
                self._lent -= 1


@contextmanager
def skipping() -> Iterator[Skipper]:
    """Virtual time on the running loop until the block ends (then the offset is dropped:
    end what waits on the loop first)."""
    loop = asyncio.get_running_loop()
    skipper = Skipper(loop)
    selector = loop._selector  # type: ignore[attr-defined]
    assert isinstance(selector, selectors.BaseSelector)
    loop_thread = threading.get_ident()
    real_run = asyncio.run

    def run(coroutine: Coroutine[Any, Any, T], **kwargs: Any) -> T:
        if threading.get_ident() == loop_thread:
            return real_run(coroutine, **kwargs)
        return skipper.run_here(coroutine)

    try:
        with pytest.MonkeyPatch.context() as monkeypatch:
            monkeypatch.setattr(time, "monotonic", monotonic)
            monkeypatch.setattr(time, "time", wall)
            _rebind_defaults(monkeypatch)
            monkeypatch.setattr(asyncio, "run", run)
            in_executor = partial(skipper.run_in_executor, loop.run_in_executor)
            monkeypatch.setattr(loop, "run_in_executor", in_executor)
            monkeypatch.setattr(selector, "select", partial(skipper.select, selector.select))
            _skipping[0] = True
            yield skipper
    finally:
        _skipping[0] = False
        _offset[0] = 0.0


def _rebind_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """Defaults bound to the machine's clocks at import (``wall: ... = time.time``) follow
    virtual time too. (A module first imported during the test binds ``wall`` itself, which
    is the machine's time again once the offset is dropped.)"""
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] != "bulk_delete" or module is None:
            continue
        for function in _clock_bound(name, module):
            defaults = function.__defaults__ or ()
            rebound = tuple(_virtual(value) for value in defaults)
            if any(new is not old for new, old in zip(rebound, defaults, strict=True)):
                monkeypatch.setattr(function, "__defaults__", rebound)
            for key, value in (function.__kwdefaults__ or {}).items():
                if _virtual(value) is not value:
                    monkeypatch.setitem(function.__kwdefaults__, key, _virtual(value))


# module name -> (the module, its functions with a default bound to a machine clock): found
# once per module (walking every function of the package took 10 ms a test)
_CLOCK_BOUND: dict[str, tuple[Any, list[Any]]] = {}


def _clock_bound(name: str, module: Any) -> list[Any]:
    known = _CLOCK_BOUND.get(name)
    if known is None or known[0] is not module:
        found = [
            function
            for function in _functions_of(module)
            if any(
                _virtual(value) is not value
                for value in (
                    *(function.__defaults__ or ()),
                    *(function.__kwdefaults__ or {}).values(),
                )
            )
        ]
        known = _CLOCK_BOUND[name] = (module, found)
    return known[1]


def _functions_of(module: Any) -> Iterator[Any]:
    for value in vars(module).values():
        if getattr(value, "__module__", None) != module.__name__:
            continue
        if isinstance(value, type):
            for member in vars(value).values():
                member = getattr(member, "__func__", member)  # classmethod, staticmethod
                if hasattr(member, "__defaults__"):
                    yield member
        elif hasattr(value, "__defaults__"):
            yield value
