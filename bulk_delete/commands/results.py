"""checkpoint → results workbook: what `run` and `job` leave beside the checkpoint, on every exit.

The workbook (store/results_workbook.py) is filled read-only from the closed checkpoint, after
a stopped run as after a finished one; its HTML twin is drawn by the CLI (cli/run_cmd.py).
``--results PATH`` names the workbook (the report beside it, ``.html``); by default
``NAME-results.xlsx`` and ``NAME-report.html`` beside ``NAME.sqlite``; ``--no-results`` writes
neither. The sheet's other columns (Name, Email) are carried over.

Why: docs/design/report.md.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import FieldError, InputError
from ..plan.rules import PlanOptions
from ..store.checkpoint import Checkpoint
from ..store.results_workbook import InvalidSheetRow, RequestRow, ResultsSummary, write_results
from ..summary import RunSummary, Window
from ..timetext import plan_options, plan_tz, to_local
from .outputs import RESULTS_META
from .purged import Backups, code_names, last_exit, plan_codes, read_backups

INVALID_COLUMNS = ("ProspectId", "ActivityEventList", "FromDate", "ToDate", "Webhook")


def write_workbook(
    checkpoint_path: Path,
    out: Path,
    window: Window,
    summary: RunSummary | None = None,
    *,
    share: float | None = None,
) -> bool:
    """The results workbook of the checkpoint at ``out``; False when the checkpoint holds no
    plan (nothing was planned: nothing to say). ``window`` is the run's, ``summary`` adds how
    the run ended, ``share`` the run's --share (below 1: said)."""
    if not checkpoint_path.is_file():
        return False
    try:
        opened = Checkpoint.open_existing(checkpoint_path)
    except InputError:  # empty (the plan failed before it was saved), or no plan in it
        return False
    with opened as checkpoint:
        write_results(
            out,
            results_summary(checkpoint, window, summary, share),
            _requests(checkpoint),
            _invalid(checkpoint),
            extra_columns=_extra_columns(checkpoint),
            sheet_columns=INVALID_COLUMNS,
        )
    return True


def written_results(checkpoint_path: Path) -> tuple[Path, Path] | None:
    """The workbook and report the checkpoint's last run wrote, when the workbook is still
    there: `verify` writes both again with what it found. None otherwise."""
    try:
        with Checkpoint.open_existing(checkpoint_path) as checkpoint:
            recorded = checkpoint.meta.get(RESULTS_META)
    except InputError:
        return None
    stem = checkpoint_path.stem  # a run from before the record wrote them here, if anywhere
    named: object = [f"{stem}-results.xlsx", f"{stem}-report.html"]
    with contextlib.suppress(ValueError):
        named = json.loads(recorded) if recorded is not None else named
    if not (isinstance(named, list) and len(named) == 2):
        return None
    workbook, page = (checkpoint_path.parent / str(name) for name in named)
    return (workbook, page) if workbook.is_file() else None


def plan_window(checkpoint_path: Path) -> Window:
    """The window the plan was made with (its --from/--to in its --tz, and in UTC)."""
    with Checkpoint.open_existing(checkpoint_path) as checkpoint:
        options = plan_options(checkpoint.meta, f"checkpoint {checkpoint_path}")
    tz = str(options.get("tz") or "UTC")
    try:
        defaults = PlanOptions(
            codes=(),
            from_date=str(options.get("from") or ""),
            to_date=str(options.get("to") or ""),
            tz=tz,
        ).row_defaults()
    except (FieldError, ValueError):
        return Window(tz=tz)
    return Window(
        tz=tz,
        from_local=to_local(defaults.from_date, tz),
        to_local=to_local(defaults.to_date, tz),
        from_utc=defaults.from_date,
        to_utc=defaults.to_date,
    )


def results_summary(
    checkpoint: Checkpoint, window: Window, summary: RunSummary | None, share: float | None = None
) -> ResultsSummary:
    meta = checkpoint.meta
    where = f"checkpoint {checkpoint.location}"
    tz = plan_tz(meta, where)
    counts = checkpoint.counts()
    source = meta.get("input", "")
    asked = f"discovery: {source}" if meta.get("discover") == "1" else f"sheet {Path(source).name}"
    # The figures the terminal and --summary-json show: the run's own, else the last run's.
    last = summary.this_run if summary and summary.this_run.calls else checkpoint.last_run()
    rate = last.calls_per_second if last else None
    backups = read_backups(meta)
    names = code_names(checkpoint, backups)
    found = checkpoint.verification()
    verification: list[tuple[str, object]] = []
    if found.checked:
        verification = [
            ("checked", found.checked),
            ("confirmed (nothing left)", found.confirmed),
            ("requests with activities left", found.remaining_requests),
            ("activities left", found.remaining_activities),
            ("unverified", found.unverified),
        ]
    window_from, window_to, span = _utc(window.from_utc), _utc(window.to_utc), False
    if window_from is None and window_to is None:  # each row its own window: what they span
        rows = checkpoint.plan_span()
        window_from, window_to = _utc(rows.earliest), _utc(rows.latest)
        span = not rows.one_window
    return ResultsSummary(
        asked=asked,
        codes=[
            f"{code} ({names[code]})" if code in names else code for code in plan_codes(checkpoint)
        ],
        window_from=window_from,
        window_to=window_to,
        span=span,
        tz=tz,
        plan=[
            ("rows read", int(meta.get("rows_read", "0"))),
            ("requests", counts.requests),
            ("leads", counts.leads),
            ("invalid rows", counts.invalid_rows),
            ("runs", checkpoint.run_count()),
        ],
        outcomes=[
            ("queued", counts.queued),
            ("failed", counts.failed),
            ("of which a rerun retries", counts.failed_transient),
            ("pending (not sent yet)", counts.pending),
        ],
        rate_achieved=rate,
        of_limit=last.share_of_limit if last else None,
        refusals=counts.rate_limited_429,
        learned_limit=meta.get("learned_limit") or None,
        share=share if share is not None and share < 1 else None,
        verification=verification,
        backup=_backup_text(backups),
        exit_code=summary.exit_code if summary else last_exit(checkpoint),
        finished_at=_iso(summary.finished_at) if summary else None,
    )


def _backup_text(backups: Backups | None) -> str | None:
    """Where the backup is and what it holds (or why it cannot be read)."""
    if backups is None:
        return None
    files = ", ".join(backups.files)
    if backups.problems:
        return f"{files} ({'; '.join(backups.problems)})"
    return f"{files} ({backups.activities:,} activities saved before their deletes)"


def _extra_columns(checkpoint: Checkpoint) -> list[str]:
    """The sheet's other columns the plan kept (none for a checkpoint from before)."""
    names = json.loads(checkpoint.meta.get("extra_columns") or "[]")
    return [str(name) for name in names] if isinstance(names, list) else []


def _requests(checkpoint: Checkpoint) -> Iterator[RequestRow]:
    statuses = ("queued", "failed", "pending")
    width = len(_extra_columns(checkpoint))
    extras = checkpoint.request_extras(statuses)
    for row, extra in zip(checkpoint.export_rows(statuses), extras, strict=True):
        pid, codes, from_date, to_date, _hook, status, attempts, http, error, rows, updated = row[
            :11
        ]
        yield RequestRow(
            prospect_id=pid,
            codes=_codes(codes),
            from_date=_utc(from_date),
            to_date=_utc(to_date),
            outcome=status,
            reason=error,
            source_rows=[int(each) for each in str(rows).split(";") if each.isdigit()],
            http_status=http,
            attempts=attempts,
            updated_at=_utc(updated),
            extra=_extra(extra, width),
        )


def _invalid(checkpoint: Checkpoint) -> Iterator[InvalidSheetRow]:
    for row in checkpoint.export_rows(("invalid",)):
        pid, codes, _, _, hook, _, _, _, reason, number = row[:10]
        from_text, to_text = row[-2], row[-1]
        yield InvalidSheetRow(
            row=int(number), reason=reason, cells=(pid, codes, from_text, to_text, hook)
        )


def _extra(text: str, width: int) -> list[object]:
    """A request's extra cells, exactly ``width`` of them (blank where none were kept)."""
    cells = json.loads(text) if text else []
    cells = cells if isinstance(cells, list) else []
    return (cells + [None] * width)[:width]


def _codes(text: str) -> list[int]:
    return [int(code) for code in str(text).replace(",", ";").split(";") if code.isdigit()]


def _utc(text: str) -> Any:
    """A checkpoint's UTC text as an aware datetime; None for an open end or no date."""
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def _iso(text: str) -> dt.datetime | None:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
