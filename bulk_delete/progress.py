"""Progress display. The core reports counts through a callback; this decides what a person
or a scheduler sees: a tqdm bar on a terminal, one line a minute in a log, or nothing."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import IO, Any

from .report import duration
from .senders import Progress

LOG_INTERVAL = 60.0


class ProgressDisplay:
    def __init__(
        self,
        *,
        quiet: bool = False,
        stream: IO[str] | None = None,
        interval: float = LOG_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        calls_per_second: float = 0.0,
    ) -> None:
        self.calls_per_second = calls_per_second  # the limit: the ETA no client can beat
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.interval = interval
        self.clock = clock
        self._bar: Any = None
        self._last_line = clock()
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def __call__(self, progress: Progress) -> None:
        if self.quiet:
            return
        if self._tty:
            self._update_bar(progress)
        elif self.clock() - self._last_line >= self.interval:
            self._last_line = self.clock()
            self.stream.write(line(progress, self.calls_per_second) + "\n")
            self.stream.flush()

    def _update_bar(self, progress: Progress) -> None:
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=progress.total, unit="req", file=self.stream, dynamic_ncols=True)
        self._bar.n = progress.done
        postfix: dict[str, Any] = {
            "queued": progress.queued,
            "failed": progress.failed,
            "retrying": progress.retrying,
            "429": progress.rate_limited,
        }
        if self.calls_per_second and self.calls_per_second != float("inf"):
            postfix["eta@limit"] = duration(
                (progress.total - progress.done) / self.calls_per_second
            )
        self._bar.set_postfix(postfix, refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def line(progress: Progress, limit_per_second: float = 0.0) -> str:
    """The once-a-minute line for logs."""
    rate = progress.calls_per_second
    text = (
        f"progress: {progress.done:,}/{progress.total:,} done, {progress.queued:,} queued, "
        f"{progress.failed:,} failed, {progress.retrying:,} retrying, "
        f"{progress.rate_limited:,} × 429, {rate or 0:.2f} calls/s"
    )
    if limit_per_second and limit_per_second != float("inf"):
        text += f", at least {duration((progress.total - progress.done) / limit_per_second)} to go"
    return text
