"""What a person or a scheduler sees while a run goes: bar, log lines, or nothing."""

from __future__ import annotations

import io

from bulk_delete.progress import ProgressDisplay
from bulk_delete.senders import Progress


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_logs_get_one_line_a_minute_with_the_eta_at_the_limit() -> None:
    stream, clock = io.StringIO(), Ticks()
    display = ProgressDisplay(stream=stream, clock=clock, calls_per_second=5.0)
    progress = Progress(total=1000, queued=90, failed=10)
    for second in range(0, 150, 5):
        clock.now = float(second)
        display(progress)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2  # at 60 s and at 120 s, not on every outcome
    assert lines[0].startswith("progress: 100/1,000 done, 90 queued, 10 failed")
    assert lines[0].endswith("at least 3 min 00 s to go")  # 900 left at 5/s


def test_quiet_shows_nothing() -> None:
    stream, clock = io.StringIO(), Ticks()
    display = ProgressDisplay(quiet=True, stream=stream, clock=clock)
    clock.now = 1000.0
    display(Progress(total=1))
    assert stream.getvalue() == ""


def test_a_terminal_gets_a_bar_with_counts() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Tty()
    display = ProgressDisplay(stream=stream, calls_per_second=5.0)
    display(Progress(total=10, queued=3, failed=1, rate_limited=2))
    display.close()
    text = stream.getvalue()
    assert "4/10" in text
    assert "queued=3" in text
    assert "429=2" in text
    assert "eta@limit=1.2 s" in text
