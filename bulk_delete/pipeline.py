"""The pipeline wired together: file → rows → plan → checkpoint → senders → outcomes → export.

Each public function here is what one CLI command calls. The dry run is this same pipeline
with the send step left out, never a separate code path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .config import RateLimit
from .export import PREVIEW_COLUMNS, open_table, preview_row, write_invalid
from .plan import PlanOptions, PlanSummary, build_plan, summarise
from .report import plan_text


@dataclass(frozen=True, kw_only=True)
class PreviewConfig:
    input: Path
    options: PlanOptions
    rate: RateLimit
    out: Path | None = None
    invalid_out: Path | None = None
    check_codes: bool = False
    check_codes_host: str | None = None


def plan_and_summarise(config: PreviewConfig) -> PlanSummary:
    plan = build_plan(config.input, config.options)
    if config.out is not None:
        with open_table(config.out, PREVIEW_COLUMNS) as write:
            summary = summarise(plan, config.rate, sink=lambda request: write(preview_row(request)))
    else:
        summary = summarise(plan, config.rate)
    if config.invalid_out is not None:
        write_invalid(config.invalid_out, plan.invalid)
    return summary


def preview(config: PreviewConfig) -> str:
    """The dry run: plan the sheet, write the preview files, return the summary text."""
    summary = plan_and_summarise(config)
    text = plan_text(summary)
    if config.out is not None:
        text += f"\nPreview of every request: {config.out}"
    if config.invalid_out is not None:
        text += f"\nInvalid rows with reasons: {config.invalid_out}"
    return text + "\nDry run: nothing was sent."
