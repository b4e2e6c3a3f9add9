"""The moment a call goes on the wire, told to whoever is watching it.

A call's start is counted when the limiter hands out its slot, but the server counts it when the
request arrives. On a warm keep-alive connection the two are the same moment. After a reset, or
an error page that closed the connection, the next call opens a new one first (a TCP and TLS
handshake, a round trip or three): it reaches the server later than its start said, inside a
window the limiter already thought free. And an HTTP client may send a request again by itself
(aiohttp re-sends an idempotent GET once when a kept-alive connection drops). Both reached the
server; the window must count them where they did.

The client reports each request whose headers went out (`went_out`, from aiohttp's tracing);
the pool's retry loop watches each attempt (`watching`) and hands the moment to the limiter.
A context variable carries the watcher from the attempt to the client's trace, in the same task.
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
