"""Human-readable text for summaries. Returns strings; the CLI decides where they go."""

from __future__ import annotations

from typing import Any

from .plan import PlanSummary

MAX_CODES_LISTED = 12


def duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def plan_text(summary: PlanSummary) -> str:
    info = summary.source
    tally = summary.tally
    where = f"{info.path}"
    if info.kind == "excel":
        where += f" (sheet {info.sheet!r})"
    else:
        shown = {"\t": "tab", ",": "comma", ";": "semicolon", "|": "pipe"}.get(info.delimiter)
        where += f" (CSV, {shown}-separated, {info.encoding})"
    lines = [f"Plan for {where}"]
    lines += [f"  warning: {warning}" for warning in info.warnings]
    if summary.rows_read == 0:
        lines.append("  warning: the sheet has a header row but no data rows: nothing to send")
    valid = summary.rows_read - summary.blank_rows - summary.invalid_rows
    lines.append(
        f"  rows read      {summary.rows_read:>9,}   "
        f"({valid:,} valid, {summary.invalid_rows:,} invalid, {summary.blank_rows:,} blank)"
    )
    lines.append(
        f"  requests       {tally.requests:>9,}   (after coalescing rows per lead and window)"
    )
    lines.append(f"  leads          {summary.leads:>9,}")
    if tally.code_counts:
        codes = sorted(tally.code_counts.items(), key=lambda item: int(item[0]))
        shown_codes = ", ".join(f"{code} ×{count:,}" for code, count in codes[:MAX_CODES_LISTED])
        more = f" and {len(codes) - MAX_CODES_LISTED} more" if len(codes) > MAX_CODES_LISTED else ""
        lines.append(f"  codes          {shown_codes}{more}")
    if tally.requests:
        lines.append(f"  date span      {_span(summary)}")
    if tally.without_dates:
        lines.append(
            f"  NO DATE FILTER {tally.without_dates:>9,} request(s) have neither FromDate nor "
            "ToDate: they purge the WHOLE history of their codes on those leads"
        )
    lines.append(
        f"  rate limit     {summary.rate}; at least {duration(summary.eta_seconds)} "
        f"for {tally.requests:,} request(s)"
    )
    if summary.invalid_groups:
        lines.append(f"Invalid rows (never sent): {summary.invalid_rows:,}")
        for group in summary.invalid_groups:
            rows = ", ".join(map(str, group.first_rows))
            more = ", …" if group.count > len(group.first_rows) else ""
            label = "row" if len(group.first_rows) == 1 and not more else "rows"
            lines.append(f"  {group.count:>6,} × {group.kind} ({label} {rows}{more})")
            lines.append(f"           e.g. {group.example}")
    return "\n".join(lines)


def _span(summary: PlanSummary) -> str:
    tally = summary.tally
    dated = tally.requests - tally.without_dates
    if not dated:
        return "none (no request has a date filter)"
    start = tally.earliest_from if not tally.open_start else "(no FromDate)"
    end = tally.latest_to if not tally.open_end else "(no ToDate)"
    if tally.open_start and tally.earliest_from:
        start = f"{tally.earliest_from} or open"
    if tally.open_end and tally.latest_to:
        end = f"{tally.latest_to} or open"
    return f"{start} → {end} UTC"


def run_text(
    facts: dict[str, Any], failures: list[tuple[str, int, bool]], *, title: str = "Run summary"
) -> str:
    """The end-of-run summary (and `status`): what was queued, what failed, where to look."""
    run = facts["this_run"]
    totals = facts["totals"]
    lines = [f"{title} — checkpoint {facts['checkpoint']}"]
    if run.get("calls"):
        share = run.get("share_of_limit")
        rate = f"{run['calls_per_second']:.2f} calls/s"
        if share:
            rate += f" = {share:.0%} of the limit {facts['rate_limit']}"
        lines.append(
            f"  this run       {run['calls']:,} call(s) in {duration(run['send_seconds'])}, "
            f"{rate}; {run['rate_limited_429']:,} answered 429"
        )
    lines.append(
        f"  queued         {totals['queued']:>9,} of {totals['requests']:,} request(s) "
        "(LeadSquared queued the delete; it runs on their side)"
    )
    if totals["failed"]:
        lines.append(
            f"  failed         {totals['failed']:>9,}   ({totals['failed_transient']:,} transient: "
            "a rerun retries them; --retry-failed resends the rest)"
        )
        for error, count, transient in failures:
            kind = "transient" if transient else "permanent"
            lines.append(f"  {count:>14,} × {error} [{kind}]")
    if totals["pending"]:
        lines.append(f"  pending        {totals['pending']:>9,}   (not sent yet: rerun to resume)")
    if totals["invalid_rows"]:
        lines.append(f"  invalid rows   {totals['invalid_rows']:>9,}   (never sent)")
    if totals["rate_limited_429"] and not run.get("calls"):
        lines.append(f"  429 answers    {totals['rate_limited_429']:>9,}")
    checkpoint = facts["checkpoint"]
    lines.append(f"  details        bulk-delete export {checkpoint} --out outcomes.csv")
    return "\n".join(lines)
