"""The stop switch wired to SIGINT/SIGTERM/SIGHUP, and the confirmation prompt a signal
interrupts.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any

import click

from ..errors import EXIT_INTERRUPTED, Interrupted, NotConfirmed
from ..send.pool import StopSwitch
from .summary_text import question

if TYPE_CHECKING:
    import aiohttp

    from ..commands.run import Confirmation
    from ..config import SendSettings

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # SIGHUP: the ssh session dropped


class SignalStop:
    """First SIGINT/SIGTERM/SIGHUP: stop starting calls and drain. Second: leave at once
    (every committed outcome is already safe in the checkpoint). At the confirmation prompt
    nothing is running yet, so a signal ends the command at once (exit 130)."""

    def __init__(self) -> None:
        self.stop = StopSwitch()
        self._installed: list[signal.Signals] = []

    @contextmanager
    def installed(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        for signum in _STOP_SIGNALS:
            try:
                loop.add_signal_handler(signum, self._on_signal, signum)
                self._installed.append(signum)
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread (tests)
                pass
        try:
            yield
        finally:
            for signum in self._installed:
                loop.remove_signal_handler(signum)
            self._installed = []

    @asynccontextmanager
    async def session(self, settings: SendSettings) -> AsyncIterator[aiohttp.ClientSession]:
        """The command's one HTTP session, with the stop signals handled while it lasts."""
        from ..send.client import open_session

        with self.installed():
            async with open_session(settings) as session:
                yield session

    def _on_signal(self, signum: int) -> None:
        stop = self.stop
        if stop.is_set() and stop.by_signal:
            sys.stderr.write("\nstopped at once; rerun the same command to resume\n")
            sys.stderr.flush()
            os._exit(EXIT_INTERRUPTED)
        sys.stderr.write(
            f"\n{signal.Signals(signum).name}: no new calls; waiting for the calls in flight "
            "(at most 10 s). Press Ctrl-C again to quit at once.\n"
        )
        sys.stderr.flush()
        stop.stop()

    @contextmanager
    def prompting(self) -> Iterator[None]:
        """While the prompt waits for a key, a signal interrupts it (the event loop's
        handlers would only note it, and the prompt would swallow Ctrl-C)."""
        loop = asyncio.get_running_loop()
        installed = list(self._installed)
        previous: dict[signal.Signals, Any] = {}
        for signum in installed:
            loop.remove_signal_handler(signum)
        for signum in _STOP_SIGNALS:
            previous[signum] = signal.signal(signum, _interrupt_prompt)
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            for signum in installed:
                loop.add_signal_handler(signum, self._on_signal, signum)


def _interrupt_prompt(signum: int, frame: object) -> None:
    raise Interrupted(f"{signal.Signals(signum).name} at the prompt: not confirmed, nothing sent")


@contextmanager
def interrupting(what: str) -> Iterator[None]:
    """Outside the event loop (the results written after the sending): a stop signal raises
    Interrupted where the code is, as Ctrl-C does, so that what is half written is removed on
    the way out and the summary is written. SIGTERM's own default would end the process there,
    leaving the temporary files beside the checkpoint and no --summary-json."""

    def interrupt(signum: int, frame: object) -> None:
        raise Interrupted(
            f"{signal.Signals(signum).name} while writing {what}: not written; every outcome "
            "is in the checkpoint"
        )

    if threading.current_thread() is not threading.main_thread():  # (in-process tests)
        yield
        return
    previous = {signum: signal.signal(signum, interrupt) for signum in _STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def confirm_hook(yes: bool, signals: SignalStop) -> Callable[[Confirmation], bool]:
    def confirm(confirmation: Confirmation) -> bool:
        if yes:
            return True
        if not sys.stdin.isatty():
            raise NotConfirmed(
                "nothing sent: no terminal to confirm on; pass --yes to send without asking"
            )
        with signals.prompting():
            return _ask(question(confirmation))

    return confirm


YES = ("y", "yes")  # in any case: what the README promises sends


def _ask(text: str) -> bool:
    """y/N on the terminal. Ctrl-D (end of input) is not a yes: exit 2, nothing sent."""
    click.echo(f"{text} [y/N]: ", nl=False, err=True)
    answer = sys.stdin.readline()
    if not answer:
        click.echo("", err=True)
        raise NotConfirmed("not confirmed (end of input), nothing sent")
    return answer.strip().lower() in YES
