"""`python -m bulk_delete ARGS` as a real process of its own, started by fork from an interpreter
that has already imported the package (a zygote), for the tests that need a process: signals,
kill -9, locks, two runs at once.

A fresh interpreter spends 0.4-0.6 s of CPU importing pandas and the package before it does
anything; the suite starts about eighty, on two cores. The forked child is a process like any
other: its own pid, the test's pipes as its standard streams, the test's environment, working
directory and arguments, default signal dispositions, and Python's own exit (atexit,
finalizers, flushed streams) with its own exit code or signal. What it shares with the zygote
is only the imported modules, which a fresh start would import the same way: nothing in the
package reads the environment at import time (tests/test_layers.py starts fresh interpreters
where the imports themselves are the point, and tests/e2e/test_forked_starts.py holds a forked
start to a fresh one). The README's commands, the demo and the terminal tests start fresh.

Why and how: docs/design/tests.md.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

_MESSAGE = 1 << 20  # one request (arguments, environment, directory) in one SEQPACKET message


class ForkedProcess:
    """The parts of asyncio.subprocess.Process the tests use: pid, returncode (set when the
    process ends, as asyncio's is), wait, communicate, send_signal, terminate, kill."""

    def __init__(self, pid: int, control: socket.socket, out: int, err: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        loop = asyncio.get_running_loop()
        self._out = loop.create_task(_read_all(out))
        self._err = loop.create_task(_read_all(err))
        self._ended = loop.create_task(self._until_ended(control))

    async def _until_ended(self, control: socket.socket) -> int:
        try:
            data = await asyncio.get_running_loop().sock_recv(control, 16)
        finally:
            control.close()
        (status,) = struct.unpack("!i", data)
        self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    async def wait(self) -> int:
        return await asyncio.shield(self._ended)

    async def communicate(self, input: bytes | None = None) -> tuple[bytes, bytes]:
        assert input is None, "a forked start takes no standard input but a file descriptor"
        await self.wait()
        return await self._out, await self._err

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


async def _read_all(fd: int) -> bytes:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 24)
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", buffering=0)
    )
    try:
        return await reader.read()
    finally:
        transport.close()


class Zygote:
    """One per test process, started at the first fork and stopped when the test process
    ends."""

    def __init__(self) -> None:
        self._path = Path(tempfile.mkdtemp(prefix="bulk-delete-zygote-")) / "socket"
        lifeline, self._lifeline = os.pipe()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.forked", str(self._path), str(lifeline)],
            pass_fds=(lifeline,),
            stdin=subprocess.DEVNULL,
            cwd=Path(__file__).resolve().parent.parent,
        )
        os.close(lifeline)
        atexit.register(self.stop)
        for _ in range(600):  # the imports take about a second, more on a busy machine
            if self._path.exists() or self._process.poll() is not None:
                break
            time.sleep(0.05)
        assert self._path.exists(), f"the zygote did not start ({self._process.poll()})"

    def stop(self) -> None:
        os.close(self._lifeline)
        self._process.wait(10)
        self._path.unlink(missing_ok=True)
        self._path.parent.rmdir()

    async def start(self, args: list[str], env: dict[str, str], stdin: int) -> ForkedProcess:
        out, child_out = os.pipe()
        err, child_err = os.pipe()
        control = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            control.connect(str(self._path))
            request = json.dumps({"args": args, "env": env, "cwd": os.getcwd()}).encode()
            socket.send_fds(control, [request], [stdin, child_out, child_err])
        finally:
            os.close(child_out)
            os.close(child_err)
        control.setblocking(False)
        (pid,) = struct.unpack("!i", await asyncio.get_running_loop().sock_recv(control, 16))
        return ForkedProcess(pid, control, out, err)


_zygote: Zygote | None = None
_lock = threading.Lock()


async def start_forked(args: list[str], env: dict[str, str], stdin: Any) -> ForkedProcess:
    """``python -m bulk_delete *args`` with ``env`` as its whole environment; ``stdin`` is
    asyncio.subprocess.DEVNULL or a file descriptor (a terminal's, say)."""
    global _zygote
    with _lock:
        if _zygote is None:
            _zygote = Zygote()
    if stdin == asyncio.subprocess.DEVNULL:
        devnull = os.open(os.devnull, os.O_RDONLY)
        try:
            return await _zygote.start(args, env, devnull)
        finally:
            os.close(devnull)
    assert isinstance(stdin, int), stdin
    return await _zygote.start(args, env, stdin)


# The zygote's side, run as `python -m tests.forked SOCKET LIFELINE`.


def _serve(path: str, lifeline: int) -> None:
    _preload()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(path + ".part")
    listener.listen(64)
    os.rename(path + ".part", path)  # the client waits for the name: it is there when bound
    woken, wake = os.pipe()
    os.set_blocking(wake, False)
    signal.set_wakeup_fd(wake)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    children: dict[int, socket.socket] = {}
    while True:
        ready = _select([listener.fileno(), lifeline, woken])
        if lifeline in ready:  # the test process is gone: so are we
            return
        if woken in ready:
            os.read(woken, 512)
            _reap(children)
        if listener.fileno() in ready:
            control, _ = listener.accept()
            pid = _fork(control, [listener, *children.values()], [lifeline, woken, wake])
            children[pid] = control
            control.send(struct.pack("!i", pid))


def _select(fds: list[int]) -> list[int]:
    while True:
        try:
            return select.select(fds, [], [])[0]
        except InterruptedError:
            continue


def _reap(children: dict[int, socket.socket]) -> None:
    while children:
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            return
        control = children.pop(pid, None)
        if control is not None:
            with contextlib.suppress(OSError):  # the test went away first
                control.send(struct.pack("!i", status))
            control.close()


def _fork(control: socket.socket, sockets: list[socket.socket], fds: list[int]) -> int:
    request, given, _, _ = socket.recv_fds(control, _MESSAGE, 3)
    assert threading.active_count() == 1, "a zygote with threads cannot fork safely"
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        for fd in given:
            os.close(fd)
        return pid
    _become(json.loads(request), control, sockets, fds, given)
    raise AssertionError("unreachable")  # _become ends the process


def _become(
    request: dict[str, Any],
    control: socket.socket,
    sockets: list[socket.socket],
    fds: list[int],
    given: list[int],
) -> None:
    """In the child: its streams, environment, directory and signals, then the package's
    ``__main__`` as ``python -m`` runs it; Python's own exit ends the process."""
    import runpy

    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for sock in (control, *sockets):
        sock.close()
    for fd in fds:
        os.close(fd)
    for target, fd in enumerate(given):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    time.tzset()
    sys.argv = ["-m", *request["args"]]
    runpy.run_module("bulk_delete", run_name="__main__", alter_sys=True)
    sys.exit(0)


def _preload() -> None:
    """What `python -m bulk_delete run` imports, and pandas, which reading a sheet imports;
    and the demo keys' redaction pattern, which every run against the emulator compiles
    (35 ms) into the same cache."""
    import importlib
    import pkgutil

    import pandas  # noqa: F401

    import bulk_delete
    from bulk_delete.emulator.server import DEMO_ACCESS_KEY, DEMO_SECRET_KEY
    from bulk_delete.redaction import redactor

    for module in pkgutil.walk_packages(bulk_delete.__path__, "bulk_delete."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    redactor(tuple(sorted((DEMO_ACCESS_KEY, DEMO_SECRET_KEY))))


if __name__ == "__main__":
    _serve(sys.argv[1], int(sys.argv[2]))
