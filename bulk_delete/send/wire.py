"""The moment a call goes on the wire, told to whoever is watching it.

The client reports each request whose headers went out (``went_out``, from aiohttp's tracing);
the pool's retry loop watches each attempt (``watching``) and hands the moment to the limiter,
so the window counts a call when it reached the server (a new connection's handshake, a
client's own re-send). A context variable carries the watcher, within one task.

Why: docs/design/pacing.md ("When a call is counted").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_watcher: ContextVar[Callable[[], None] | None] = ContextVar("on_the_wire", default=None)


@contextmanager
def watching(on_the_wire: Callable[[], None]) -> Iterator[None]:
    """Within the block, every request this task sends calls ``on_the_wire`` as it goes out."""
    token = _watcher.set(on_the_wire)
    try:
        yield
    finally:
        _watcher.reset(token)


def went_out() -> None:
    """A request's headers are on the wire (called by the client's trace)."""
    watcher = _watcher.get()
    if watcher is not None:
        watcher()
