"""checkpoint → results workbook: what `run` and `job` leave beside the checkpoint, on every exit.

The workbook (store/results_workbook.py) is filled from the checkpoint alone, read-only, after
the run has closed it: so it says exactly what the checkpoint says, and a run that stopped (exit 3,
130) gets one as well as a finished one. Its HTML twin is drawn by the CLI
(cli/run_cmd.py).

Where they go: ``--results PATH`` names the workbook, and the report goes beside it with the
suffix ``.html``; by default both go beside the checkpoint, ``NAME-results.xlsx`` and
``NAME-report.html`` for a checkpoint ``NAME.sqlite``. ``--no-results`` writes neither.

The sheet's own other columns (Name, Email) are carried over: the plan keeps, per request, the
cells of its first source row (``requests.extra``), and meta ``extra_columns`` names them.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..store.checkpoint import Checkpoint
from ..store.results_workbook import InvalidSheetRow, RequestRow, ResultsSummary, write_results
from ..summary import RunSummary, Window
from ..timetext import plan_options, plan_tz

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


def results_summary(
    checkpoint: Checkpoint, window: Window, summary: RunSummary | None, share: float | None = None
) -> ResultsSummary:
    meta = checkpoint.meta
    where = f"checkpoint {checkpoint.location}"
    options, tz = plan_options(meta, where), plan_tz(meta, where)
    counts = checkpoint.counts()
    source = meta.get("input", "")
    asked = f"discovery: {source}" if meta.get("discover") == "1" else f"sheet {source}"
    last = checkpoint.last_run()
    rate = last.calls_per_second if last else None  # as the summary's text and JSON say
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
    return ResultsSummary(
        asked=asked,
        codes=[int(code) for code in options.get("codes", []) if str(code).isdigit()],
        window_from=_utc(window.from_utc),
        window_to=_utc(window.to_utc),
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
        exit_code=summary.exit_code if summary else None,
        finished_at=_iso(summary.finished_at) if summary else None,
    )


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
