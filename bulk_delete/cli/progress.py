"""Progress display. The core reports counts through a callback; this decides what a person
or a scheduler sees: a tqdm bar on a terminal, one line a minute in a log, or nothing.

Both count the whole plan: a resumed run shows 146/301, not 0/155. A log line starts with
a UTC timestamp (a cron mail or the journal is read hours later); a terminal's bar does not.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

from ..timetext import log_stamp
from .summary_text import duration

if TYPE_CHECKING:
    from ..send.pool import Progress

LOG_INTERVAL = 60.0
FALLBACK_COLUMNS = 80
MIN_BAR = 10  # the bar itself keeps at least this many columns; fields are dropped first
WIDE = 100  # below this many columns, the bar shows only what matters most


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ProgressDisplay:
    def __init__(
        self,
        *,
        quiet: bool = False,
        stream: IO[str] | None = None,
        interval: float = LOG_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        calls_per_second: float = 0.0,
        ncols: int | None = None,
        now: Callable[[], dt.datetime] = _utc_now,
    ) -> None:
        self.calls_per_second = calls_per_second  # the limit: the ETA no client can beat
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.interval = interval
        self.clock = clock
        self.ncols = ncols  # None: follow the terminal's width as it changes
        self.now = now
        self._bar: Any = None
        self._last_line = clock()
        self._tty = is_terminal(self.stream)

    def __call__(self, progress: Progress) -> None:
        if self.quiet:
            return
        if self._tty:
            self._update_bar(progress)
        elif self.clock() - self._last_line >= self.interval:
            self._last_line = self.clock()
            self.stream.write(f"{log_stamp(self.now())} {line(progress, self.calls_per_second)}\n")
            self.stream.flush()

    def _update_bar(self, progress: Progress) -> None:
        shape = bar_format(progress, self._width(), self.calls_per_second)
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(
                total=progress.already_done + progress.total,
                initial=progress.already_done,
                file=self.stream,
                ncols=self.ncols,
                dynamic_ncols=self.ncols is None,
                bar_format=shape,
            )
        self._bar.total = progress.already_done + progress.total
        self._bar.n = progress.already_done + progress.done
        self._bar.bar_format = shape
        self._bar.refresh()

    def _width(self) -> int:
        if self.ncols:
            return self.ncols
        try:
            return os.get_terminal_size(self.stream.fileno()).columns or FALLBACK_COLUMNS
        except (OSError, ValueError, AttributeError):  # no real terminal behind the stream
            return FALLBACK_COLUMNS

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def bar_format(progress: Progress, width: int, limit_per_second: float = 0.0) -> str:
    """tqdm's bar_format for ``width`` columns: done/total and the percentage always, then as
    many fields as fit beside a bar of at least MIN_BAR columns, the 429 count and the ETA
    first; queued and retrying only from WIDE columns on."""
    done = progress.already_done + progress.done
    head = f"{done:,}/{progress.already_done + progress.total:,} "
    room = width - len(head) - len("100%||") - MIN_BAR
    fields = _fields(progress, limit_per_second)
    if width < WIDE:
        fields = [field for field in fields if field[1] < 3]
    chosen: list[tuple[int, int, str]] = []
    for field in sorted(fields, key=lambda f: f[1]):
        if len(field[2]) + 2 <= room:
            chosen.append(field)
            room -= len(field[2]) + 2
    tail = ", ".join(text for _, _, text in sorted(chosen))
    return _escaped(head) + "{percentage:3.0f}%|{bar}|" + (" " + _escaped(tail) if tail else "")


def _fields(progress: Progress, limit_per_second: float) -> list[tuple[int, int, str]]:
    """(place in the line, priority, text): lower priority numbers are dropped last."""
    fields = [
        (0, 4, f"queued {progress.figures.queued:,}"),
        (1, 2, f"failed {progress.figures.failed:,}"),
        (2, 3, f"retrying {progress.retrying:,}"),
        (3, 0, f"429×{progress.figures.rate_limited_429:,}"),
    ]
    if limit_per_second and limit_per_second != float("inf"):
        left = (progress.total - progress.done) / limit_per_second
        fields.append((4, 1, f"eta ≥{duration(left)}"))
    return fields


def _escaped(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def line(progress: Progress, limit_per_second: float = 0.0) -> str:
    """The once-a-minute line for logs (the caller stamps it)."""
    rate = progress.figures.calls_per_second
    done = progress.already_done + progress.done
    earlier = f" ({progress.already_done:,} by earlier runs)" if progress.already_done else ""
    text = (
        f"progress: {done:,}/{progress.already_done + progress.total:,} done{earlier}, "
        f"{progress.figures.queued:,} queued, {progress.figures.failed:,} failed, "
        f"{progress.retrying:,} retrying, {progress.figures.rate_limited_429:,} × 429, "
        f"{rate or 0:.2f} calls/s"
    )
    if limit_per_second and limit_per_second != float("inf"):
        text += f", at least {duration((progress.total - progress.done) / limit_per_second)} to go"
    return text


def is_terminal(stream: IO[str]) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)())


def log_line(
    text: str, stream: IO[str] | None = None, now: Callable[[], dt.datetime] = _utc_now
) -> str:
    """``text`` as it goes to ``stream`` (stderr): stamped when that is a log, not a terminal."""
    return text if is_terminal(stream or sys.stderr) else f"{log_stamp(now())} {text}"
