"""`python -m bulk_delete ARGS` as a real process of its own, started by fork from an interpreter
that has already imported what such a start imports first (a zygote), for the tests that need a
process: signals, kill -9, locks, two runs at once, a terminal on standard input.

A fresh `run` spends 0.5-0.9 s of CPU on its interpreter and imports (pandas alone 0.3 s); the
suite starts about eighty such processes, on two cores. The forked child is a process like any
other: its own pid, the test's pipes as its standard streams (and nothing else open), the
test's environment, umask, working directory and arguments, default signal dispositions, and
Python's own exit (atexit, finalizers, flushed streams) with its own exit code or signal.

What it shares with the zygote: the modules `python -m bulk_delete` imports before it reads its
arguments (bulk_delete.cli.main and what that imports), the third-party packages a run uses
(pandas, aiohttp, Jinja2, XlsxWriter, defusedxml), and the demo keys' redaction pattern in its
cache; every other module of ours it imports itself, as a fresh start does. Where the
zygote's interpreter read the environment as it started (PYTHON*, LANG, LC_*), or its imports
read it (the zygote names those: numpy's, pandas', aiohttp's, OpenSSL's SSL_CERT_FILE), and the
test's differs, or the request is large, the start is a fresh interpreter instead.
tests/e2e/test_forked_starts.py holds forked starts to fresh ones; tests/test_layers.py holds
that no module of ours reads the environment when imported. The README's commands, the demo and
the pexpect terminals start fresh. Why and how: docs/design/tests.md.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import gc
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

_MESSAGE = 1 << 20  # one request (arguments, environment, directory) in one SEQPACKET message


class ForkedProcess:
    """The parts of asyncio.subprocess.Process the tests use: pid, returncode (set when the
    process ends, as asyncio's is), wait, communicate, send_signal, kill."""

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
        assert len(data) == 4, f"the zygote died while process {self.pid} ran: its end is unknown"
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
    ends. Its socket is in the abstract namespace: nothing is left on disk, whatever kills
    it."""

    def __init__(self) -> None:
        self.address = f"bulk-delete-zygote-{os.getpid()}-{os.urandom(6).hex()}"
        self.started_with = dict(os.environ)  # what its interpreter read as it started
        lifeline, self._lifeline = os.pipe()
        ready, told = os.pipe()
        from bulk_delete.emulator.server import DEMO_ACCESS_KEY, DEMO_SECRET_KEY

        keys = json.dumps(sorted((DEMO_ACCESS_KEY, DEMO_SECRET_KEY)))  # the emulator's, public
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.forked", self.address, str(lifeline), str(told), keys],
            pass_fds=(lifeline, told),
            stdin=subprocess.DEVNULL,
            cwd=Path(__file__).resolve().parent.parent,
        )
        os.close(lifeline)
        os.close(told)
        atexit.register(self.stop)
        try:  # the imports take about a second, more on a busy machine
            said = os.read(ready, 1 << 16) if select.select([ready], [], [], 60)[0] else b""
        finally:
            os.close(ready)
        assert said[:1] == b"+", f"the zygote did not start ({self._process.poll()})"
        # The variables its imports read (pandas', aiohttp's, OpenSSL's trust store): a start
        # whose differ there would be another start than a fresh one.
        self.read_at_import = frozenset(json.loads(said[1:]))

    def alive(self) -> bool:
        return self._process.poll() is None

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._lifeline)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(10)

    async def start(self, request: bytes, stdin: int) -> ForkedProcess:
        out, child_out = os.pipe()
        err, child_err = os.pipe()
        control = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            try:
                control.connect("\0" + self.address)
            except OSError as error:
                raise AssertionError(f"the zygote is gone ({self._process.poll()})") from error
            socket.send_fds(control, [request], [stdin, child_out, child_err])
            control.setblocking(False)
            told = await asyncio.get_running_loop().sock_recv(control, 16)
            assert len(told) == 4, f"the zygote is gone ({self._process.poll()})"
        except BaseException:
            control.close()
            os.close(out)
            os.close(err)
            raise
        finally:
            os.close(child_out)
            os.close(child_err)
        (pid,) = struct.unpack("!i", told)
        return ForkedProcess(pid, control, out, err)


Started = ForkedProcess | asyncio.subprocess.Process

# What the interpreter reads from the environment as it starts (encodings, hashing, warnings,
# paths): a start whose environment differs there from the zygote's is a fresh one.
_READ_AT_START = ("PYTHON", "LC_", "LANG")
_LARGEST = 64 * 1024  # a request this large goes to a fresh interpreter (a socket buffer's room)

_zygote: Zygote | None = None
_lock = threading.Lock()


async def start_forked(args: list[str], env: dict[str, str], stdin: Any) -> Started:
    """``python -m bulk_delete *args`` with ``env`` as its whole environment; ``stdin`` is
    asyncio.subprocess.DEVNULL or a file descriptor (a terminal's, say). Forked from this
    process's zygote, or a fresh interpreter where a fork could not be the same start."""
    umask = os.umask(0o077)
    os.umask(umask)
    request = json.dumps({"args": args, "env": env, "cwd": os.getcwd(), "umask": umask})
    zygote = _the_zygote()
    read_at_start = {
        name
        for name in {*env, *zygote.started_with}
        if name.startswith(_READ_AT_START) or name in zygote.read_at_import
    }
    if len(request) > _LARGEST or any(
        env.get(name) != zygote.started_with.get(name) for name in read_at_start
    ):
        return await fresh(args, env, stdin)
    with contextlib.ExitStack() as stack:
        if stdin == asyncio.subprocess.DEVNULL:
            stdin = os.open(os.devnull, os.O_RDONLY)
            stack.callback(os.close, stdin)
        assert isinstance(stdin, int), stdin
        return await zygote.start(request.encode(), stdin)


def _the_zygote() -> Zygote:
    """This process's zygote; a new one if the last has died (the test that met its death
    failed, the next ones need not)."""
    global _zygote
    with _lock:
        if _zygote is None or not _zygote.alive():
            if _zygote is not None:
                _zygote.stop()
            _zygote = Zygote()
        return _zygote


async def fresh(args: list[str], env: dict[str, str], stdin: Any) -> asyncio.subprocess.Process:
    """``python -m bulk_delete *args`` in a fresh interpreter, ``env`` its whole environment."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bulk_delete", *args,
        stdin=stdin, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip


# The zygote's side, run as `python -m tests.forked ADDRESS LIFELINE READY KEYS`.


def _serve(address: str, lifeline: int, ready: int, keys: list[str]) -> None:
    read = _reading_the_environment(_preload, keys)
    # What the preload left alive is alive in every child to its end: frozen out of the cyclic
    # collector, whose sweeps would otherwise walk it, and copy each page it touches, in every
    # child (gc.freeze before fork, as CPython's docs advise; about 0.1 s of a child's CPU).
    gc.collect()
    gc.freeze()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind("\0" + address)
    listener.listen(64)
    os.write(ready, b"+" + json.dumps(sorted(read)).encode())  # one write: under PIPE_BUF
    os.close(ready)
    woken, wake = os.pipe()
    os.set_blocking(wake, False)
    signal.set_wakeup_fd(wake)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    children: dict[int, socket.socket] = {}
    while True:
        ready_now = _select([listener.fileno(), lifeline, woken])
        if lifeline in ready_now:  # the test process is gone: so are we
            return
        if woken in ready_now:
            os.read(woken, 512)
            _reap(children)
        if listener.fileno() in ready_now:
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
    # Python threads only: numpy's OpenBLAS pool has its own fork handlers.
    assert threading.active_count() == 1, "a zygote with Python threads cannot fork safely"
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
    os.umask(request["umask"])
    os.environ.clear()
    os.environ.update(request["env"])
    time.tzset()
    sys.argv = ["-m", *request["args"]]
    runpy.run_module("bulk_delete", run_name="__main__", alter_sys=True)
    sys.exit(0)


def _reading_the_environment(preload: Any, keys: list[str]) -> set[str]:
    """``preload(keys)``, and the environment variables it read: through os.environ (numpy's,
    pandas', aiohttp's, SSLKEYLOGFILE), and OpenSSL's trust store (SSL_CERT_FILE and
    SSL_CERT_DIR, read in C by the SSL context aiohttp makes as it is imported)."""
    read: set[str] = set()
    methods = {name: getattr(os._Environ, name) for name in ("__getitem__", "__contains__", "get")}

    def recording(method: Any) -> Any:
        def reading(environ: Any, name: Any, *rest: Any) -> Any:
            read.add(name)
            return method(environ, name, *rest)

        return reading

    for name, method in methods.items():
        setattr(os._Environ, name, recording(method))
    try:
        preload(keys)
    finally:
        for name, method in methods.items():
            setattr(os._Environ, name, method)
    if "ssl" in sys.modules:
        paths = sys.modules["ssl"].get_default_verify_paths()
        read |= {paths.openssl_cafile_env, paths.openssl_capath_env}
    return {name for name in read if isinstance(name, str)}


def _preload(keys: list[str]) -> None:
    """What `python -m bulk_delete` imports before it reads its arguments (bulk_delete's
    __main__ imports bulk_delete.cli.main); the third-party packages a run then imports
    (pandas 0.3 s, aiohttp, Jinja2, XlsxWriter, defusedxml: 0.15 s more); and the demo keys'
    redaction pattern (35 ms a run against the emulator) in its cache. No other module of
    ours: a fresh start imports it when it needs it, and so must the child. What those
    packages bring with them (urllib.request, email, http) a module of ours could use without
    importing it and pass here: tests/test_layers.py holds that every module imports the
    submodules it reaches, which a fresh start could show only on the path that runs."""
    import aiohttp  # noqa: F401
    import defusedxml.ElementTree  # noqa: F401
    import jinja2  # noqa: F401
    import pandas  # noqa: F401
    import xlsxwriter  # noqa: F401

    import bulk_delete.cli.main  # noqa: F401
    from bulk_delete.redaction import redactor

    redactor(tuple(keys))


if __name__ == "__main__":
    _serve(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4]))
