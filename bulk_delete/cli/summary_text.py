"""Human-readable text for summaries. Returns strings; the CLI decides where they go."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..allowance import DailyEstimate
from ..config import DEFAULT_TZ, RateLimit
from ..summary import BackupVerified, RunSummary, Verification, VerifySummary
from ..timetext import is_utc, log_stamp, to_local

if TYPE_CHECKING:  # types only: what prints a plan or a run need not load planning (pandas)
    from ..commands.backups import BackupPrice
    from ..commands.discover import Discovery
    from ..commands.plan import PlanReport
    from ..commands.run import Confirmation
    from ..commands.verify_strategy import Choice
    from ..plan.build import PlanSummary, RequestTally

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


MAX_IGNORED_LISTED = 12


def plan_text(summary: PlanSummary, daily: DailyEstimate | None = None) -> str:
    info = summary.source
    tally = summary.tally
    where = f"{info.path}"
    if info.kind == "excel":
        where += f" (sheet {info.sheet!r})"
    elif info.kind == "discover":
        where = "the listing: one request per lead found"
    else:
        shown = {"\t": "tab", ",": "comma", ";": "semicolon", "|": "pipe"}.get(info.delimiter)
        where += f" (CSV, {shown}-separated, {info.encoding})"
    lines = [f"Plan for {where}"]
    lines += [f"  warning: {warning}" for warning in info.warnings]
    if info.header_row > 1:
        lines.append(f"  header         row {info.header_row} (the rows above it are not read)")
    if info.ignored:
        shown_ignored = ", ".join(info.ignored[:MAX_IGNORED_LISTED])
        if len(info.ignored) > MAX_IGNORED_LISTED:
            shown_ignored += f" and {len(info.ignored) - MAX_IGNORED_LISTED} more"
        lines.append(f"  ignored columns {shown_ignored} (not used by bulk-delete)")
    if info.kind != "discover":
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
    if summary.date_order and tally.requests:
        lines += _windows_read(summary)
    lines += _open_window_lines(tally)
    lines.append(
        f"  rate limit     {summary.rate}; at least {duration(summary.eta_seconds)} "
        f"for {tally.requests:,} request(s)"
    )
    if daily is not None:  # --daily-limit
        lines.append(f"  daily limit    {daily.describe()}")
    if summary.invalid_groups:
        lines.append(f"Invalid rows (never sent): {summary.invalid_rows:,}")
        for group in summary.invalid_groups:
            rows = ", ".join(map(str, group.first_rows))
            more = ", …" if group.count > len(group.first_rows) else ""
            label = "row" if len(group.first_rows) == 1 and not more else "rows"
            lines.append(f"  {group.count:>6,} × {group.kind} ({label} {rows}{more})")
            lines.append(f"           e.g. {group.example}")
    return "\n".join(lines)


WINDOWS_SHOWN = 5


def _windows_read(summary: PlanSummary) -> list[str]:
    """With --date-order: each window as the sheet's dates were read, in --tz and in UTC,
    so the reading is seen before anything is sent."""
    tally, zone = summary.tally, summary.tz
    lines = [f"  dates read     {summary.read_as}"]
    count = max(tally.distinct_windows, len(tally.windows))
    lines.append(f"  windows        {count:,} distinct, as read (the most requests first):")
    for (start, end), requests in tally.windows.most_common(WINDOWS_SHOWN):
        utc = f"{start or '(no FromDate)'} → {end or '(no ToDate)'} UTC"
        if is_utc(zone):
            lines.append(f"{' ' * 17}{utc}  ({requests:,} request(s))")
            continue
        local = (
            f"{to_local(start, zone) or '(no FromDate)'} → {to_local(end, zone) or '(no ToDate)'}"
        )
        lines.append(f"{' ' * 17}{local} {zone}  ({requests:,} request(s))")
        lines.append(f"{' ' * 19}= {utc}")
    if count > WINDOWS_SHOWN:
        lines.append(f"{' ' * 17}… and {count - WINDOWS_SHOWN:,} more")
    return lines


def _open_window_lines(tally: RequestTally) -> list[str]:
    """Requests with an open side, each kind on its own line: `run` refuses them unless
    --open-window says they are meant."""
    lines = []
    if tally.without_dates:
        lines.append(
            f"  NO DATE FILTER {tally.without_dates:>9,} request(s) have neither FromDate nor "
            "ToDate: they purge the WHOLE history of their codes on those leads"
        )
    if tally.open_start:
        lines.append(
            f"  NO FROMDATE    {tally.open_start:>9,} request(s): every activity of their codes "
            "before ToDate, back to the lead's creation"
        )
    if tally.open_end:
        lines.append(
            f"  NO TODATE      {tally.open_end:>9,} request(s): every activity of their codes "
            "after FromDate, up to when LeadSquared runs the delete"
        )
    if lines:
        lines.append("                 (run and job send these only with --open-window)")
    return lines


def _span(summary: PlanSummary) -> str:
    """The dates the requests cover; in --tz first when it is not UTC (the sheet's own
    dates), with the UTC values that are sent on the line below."""
    tally = summary.tally
    dated = tally.requests - tally.without_dates
    if not dated:
        return "none (no request has a date filter)"
    if is_utc(summary.tz):
        return f"{_span_of(tally, str)} UTC"
    local = _span_of(tally, lambda utc: to_local(utc, summary.tz))
    return f"{local} {summary.tz}\n{' ' * 17}({_span_of(tally, str)} UTC, as sent)"


def _span_of(tally: RequestTally, shown: Callable[[str], str]) -> str:
    start = shown(tally.earliest_from) if not tally.open_start else "(no FromDate)"
    end = shown(tally.latest_to) if not tally.open_end else "(no ToDate)"
    if tally.open_start and tally.earliest_from:
        start = f"{shown(tally.earliest_from)} or open"
    if tally.open_end and tally.latest_to:
        end = f"{shown(tally.latest_to)} or open"
    return f"{start} → {end}"


def discovery_text(found: Discovery, tz: str = DEFAULT_TZ) -> str:
    """What the listing found, in lines a data team can sign off (creation dates in --tz
    first when it is not UTC)."""
    lines = []
    for code, activities, leads, oldest, newest in found.by_code:
        span = f"{oldest[:16]} → {newest[:16]} UTC"
        if not is_utc(tz):
            span = f"{to_local(oldest, tz)[:16]} → {to_local(newest, tz)[:16]} {tz}; {span}"
        lines.append(f"Found {activities:,} activities of code {code} on {leads:,} leads ({span})")
    if not found.by_code:
        lines.append("Found no activity of those codes created in the window")
    lines.append(
        f"  {found.leads:,} lead(s) in all, in {found.list_calls:,} list call(s) "
        "(each spends one call of the rate budget)"
    )
    lines += [f"  warning: {warning}" for warning in found.warnings]
    return "\n".join(lines)


def plan_report_text(report: PlanReport) -> str:
    """What `plan` prints: the plan, the codes' names if asked, where the files went."""
    text = plan_text(report.summary, report.daily)
    if report.discovery is not None:
        text = discovery_text(report.discovery, report.summary.tz) + "\n" + text
    if report.code_names is not None:
        codes = list(report.code_names)
        text += f"\nActivity codes at {report.host} ({len(codes)} call(s) of the rate budget):"
        text += "".join(f"\n  {code:>6}  {report.code_names[code]}" for code in codes)
    if report.backup is not None:
        text += backup_price_text(report.backup)
    if report.memory_warning:
        text += f"\n  warning: {report.memory_warning}"
    for sent in report.sent_before:
        text += (
            f"\n  warning: this plan was sent from this machine on {sent.when} under "
            f"{sent.checkpoint} (to {sent.host}): run and job send it again under another "
            "checkpoint only with --again"
        )
    if report.out is not None:
        text += f"\nPreview of every request: {report.out}"
    if report.invalid_out is not None:
        text += f"\nInvalid rows with reasons: {report.invalid_out}"
    return text


def backup_price_text(price: BackupPrice) -> str:
    """The backup's cost, before anything is sent."""
    at_rate = f", about {duration(price.seconds)} more at the rate" if price.seconds else ""
    saved = f"; {price.activities:,} activities to save" if price.activities is not None else ""
    return (
        f"\nBackup to {price.path}: about {price.calls:,} Retrieve call(s) before the deletes"
        f"{at_rate}{saved} (same limiter as the deletes)"
    )


def saved_plan_text(summary: PlanSummary, checkpoint: object) -> str:
    return plan_text(summary) + f"\nPlan saved in checkpoint {checkpoint}"


def learned_text(limit: RateLimit) -> str:
    return (
        f"LeadSquared says this account allows {limit.calls} calls in {limit.period:g} s; "
        "continuing at that (a resume starts from it)"
    )


def question(confirmation: Confirmation) -> str:
    return (
        f"Send {confirmation.requests:,} delete request(s) for {confirmation.leads:,} lead(s) "
        f"to {confirmation.host}? LeadSquared queues each delete; it cannot be undone."
    )


def run_text(summary: RunSummary, *, title: str = "Run summary") -> str:
    """The end-of-run summary (and `status`): what was queued, what failed, where to look."""
    run = summary.this_run
    totals = summary.totals
    lines = [f"{title} — checkpoint {summary.checkpoint}"]
    if run.calls:
        rate = ""
        if run.calls_per_second is not None:
            rate = f", {run.calls_per_second:.2f} calls/s"
            if run.share_of_limit:  # the busiest window, as the limiter counts (summary.py)
                rate += f" = {run.share_of_limit:.0%} of the limit {summary.rate_limit}"
        lines.append(
            f"  this run       {run.calls:,} call(s) in {duration(run.send_seconds)}"
            f"{rate}; {run.rate_limited_429:,} answered 429"
        )
    elif run.result == "nothing to send":
        lines.append("  this run       nothing left to send in this checkpoint")
    if summary.shared_with:
        lines.append(
            f"  shared with    {', '.join(summary.shared_with)} (the same account's budget)"
        )
    if summary.backup_set_aside:
        lines.append(
            f"  backup         a torn last member (a write cut by a kill; its request was not "
            f"sent) moved to {summary.backup_set_aside}; the request was saved again"
        )
    lines.append(
        f"  queued         {totals.queued:>9,} of {totals.requests:,} request(s) "
        "(LeadSquared queued the delete; it runs on their side)"
    )
    if totals.failed:
        lines.append(
            f"  failed         {totals.failed:>9,}   ({totals.failed_transient:,} transient: "
            "a rerun retries them; --retry-failed resends the rest)"
        )
        for failure in summary.failures:
            kind = "transient" if failure.transient else "permanent"
            lines.append(f"  {failure.count:>14,} × {failure.error} [{kind}]")
    if totals.pending:
        lines.append(f"  pending        {totals.pending:>9,}   (not sent yet: rerun to resume)")
    if totals.invalid_rows:
        lines.append(f"  invalid rows   {totals.invalid_rows:>9,}   (never sent)")
    if totals.rate_limited_429 and not run.calls:
        lines.append(f"  429 answers    {totals.rate_limited_429:>9,}")
    if summary.verification.checked:
        lines.append(f"  verified       {verification_line(summary.verification)}")
    lines.append(f"  details        bulk-delete export {summary.checkpoint} --out outcomes.csv")
    return "\n".join(lines)


def verification_line(found: Verification) -> str:
    """ "confirmed 58 of 60 checked; 2 leads still have 5 activities in their windows …"."""
    text = f"confirmed {found.confirmed:,} of {found.checked:,} checked"
    if found.remaining_requests:
        text += (
            f"; {found.remaining_leads:,} lead(s) still have {found.remaining_activities:,} "
            "activities in their windows (LeadSquared may still be processing; verify again "
            "later)"
        )
    if found.unverified:
        text += f"; {found.unverified:,} could not be checked (rerun verify)"
    return text


def choice_text(choice: Choice, rate: RateLimit) -> str:
    return (
        f"Verifying {choice.requests:,} queued request(s) {choice.strategy}: "
        f"{choice.calls:,} call(s), at least {duration(rate.eta_seconds(choice.calls))} at "
        f"{rate} ({choice.other})"
    )


def verify_text(summary: VerifySummary) -> str:
    lines = [f"Verify — checkpoint {summary.checkpoint}"]
    if summary.checked_now:
        lines.append(
            f"  this check     {summary.checked_now:,} request(s) {summary.strategy}, "
            f"{summary.calls:,} call(s)"
        )
    else:
        lines.append("  this check     nothing left to verify: every queued request is confirmed")
    lines.append(f"  verified       {verification_line(summary.verification)}")
    lines += [f"  unverified     {count:,} × {note}" for note, count in summary.unverified_notes]
    if summary.backup is not None:
        lines += backup_verified_lines(summary.backup)
    lines.append(
        f"  details        bulk-delete export {summary.checkpoint} --out outcomes.csv "
        "(columns verified, remaining, verified_at)"
    )
    return "\n".join(lines)


def backup_verified_lines(found: BackupVerified) -> list[str]:
    """ "We saved 2,094 and 2,094 are gone" as one line, then the requests that do not add up."""
    lines = [
        f"  backup         saved {found.saved:,} activit{'y' if found.saved == 1 else 'ies'} "
        f"of {found.requests:,} verified request(s) and {found.gone:,} are gone; "
        f"{found.present:,} still present ({found.file})"
    ]
    lines += [
        f"                 request {seq}: saved {saved:,}, {present:,} still present"
        for seq, saved, present in found.uneven
    ]
    lines += [f"  backup         {damage}" for damage in found.damaged]
    if found.unsaved:
        lines.append(f"  backup         {found.unsaved:,} queued request(s) have no saved copy:")
        lines += [
            f"                 request {seq} (lead {lead})" for seq, lead in found.unsaved_shown
        ]
        if found.unsaved > len(found.unsaved_shown):
            lines.append(
                f"                 … and {found.unsaved - len(found.unsaved_shown):,} more"
            )
    return lines


def summary_line(summary: RunSummary, now: dt.datetime | None = None) -> str:
    """One line for a scheduler's log, stamped with the time (UTC) it was written."""
    totals, run = summary.totals, summary.this_run
    rate = f" rate={run.calls_per_second:.2f}/s" if run.calls_per_second is not None else ""
    share = f" ({run.share_of_limit:.0%} of limit)" if run.share_of_limit else ""
    return (
        f"{log_stamp(now)} bulk-delete: exit={summary.exit_code} "
        f"queued={totals.queued}/{totals.requests} "
        f"failed={totals.failed} pending={totals.pending} invalid={totals.invalid_rows} "
        f"calls={run.calls} 429={run.rate_limited_429}{rate}{share} "
        f"checkpoint={summary.checkpoint}"
    )
