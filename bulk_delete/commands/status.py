"""checkpoint → summary: `status`, what a run's checkpoint holds, as `run` prints it at the end.

It reads the checkpoint only (no keys, no call), so it is safe beside a running job; the
window is rebuilt from the plan options the checkpoint saved, not from today's options.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import OptionError
from ..store.checkpoint import Checkpoint
from ..summary import RunFigures, RunSummary, Window
from ..timetext import plan_options, plan_tz
from .common import failures_of, window_of
from .spec import RunSpec


async def status(path: Path) -> RunSummary:
    """The summary of a checkpoint, as `run` prints it at the end (read-only)."""
    with Checkpoint.open_existing(path) as checkpoint:
        counts = checkpoint.counts()
        record = checkpoint.last_run()
        host, rate = checkpoint.last_run_target()
        meta = checkpoint.meta
        where = f"checkpoint {path}"
        options, tz = plan_options(meta, where), plan_tz(meta, where)
        return RunSummary(
            checkpoint=checkpoint.location,
            window=_saved_window(options, tz),
            input=meta.get("input", ""),
            host=host,
            rate_limit=rate,
            label=meta.get("label", ""),
            runs=checkpoint.run_count(),
            this_run=record or RunFigures(),
            totals=counts,
            failures=failures_of(checkpoint),
            verification=checkpoint.verification(),
        )


def _saved_window(options: dict[str, object], tz: str) -> Window:
    """The window a checkpoint's plan options name (for `status`)."""
    try:
        spec = RunSpec.from_values(
            {
                "from_date": options.get("from") or None,
                "to_date": options.get("to") or None,
                "tz": tz,
            }
        )
    except OptionError:
        return Window(tz=tz)
    return window_of(spec)
