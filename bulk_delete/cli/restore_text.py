"""A restore as text for people: its plan (what comes back, what cannot, what it costs), the
question before the first post, and the summary at its end."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .summary_text import duration

if TYPE_CHECKING:
    from ..commands.restore_plan import RestorePlan
    from ..config import RateLimit
    from ..summary import RunSummary

HELD = (
    "their deletes are not carried out yet, or the activities are locked: nothing of them was "
    "posted (a delete carried out later would remove it again). Rerun after LeadSquared has "
    "processed the deletes"
)


def plan_text(plan: RestorePlan) -> str:
    """The restore's plan, as `restore` shows it before asking and `--dry-run` prints it."""
    lines = [f"Restore from the backup {plan.backup}"]
    lines += [f"  cannot know    {note}" for note in plan.notes]
    if plan.done:
        lines.append(f"  posted before  {plan.done:,} activit{_y(plan.done)} by earlier runs")
    if not plan.activities:
        lines.append("  to post        nothing: every selected activity is settled")
        return "\n".join(lines)
    codes = ", ".join(f"{code} ({count:,})" for code, count in plan.codes)
    lines += [
        f"  activities     {plan.activities:,} on {plan.leads:,} lead(s), deleted by "
        f"{plan.requests:,} request(s) of the purge",
        f"  codes          {codes}",
        f"  dates          {plan.first} to {plan.last} UTC (posted as each one's ActivityDateTime)",
    ]
    if plan.held:
        lines.append(f"  held before    {plan.held:,} still present last time: read again")
    lines += _left_out(plan)
    lines += [
        f"  calls          about {plan.calls:,}: {plan.reads:,} Retrieve (each lead and code is "
        f"read first: only activities gone from it are posted), {plan.posts:,} post(s)"
        + (f", {plan.preflight} preflight" if plan.preflight else ""),
        f"  posting with   {plan.why}",
        f"  time           at least {duration(plan.seconds)} at the limits",
        "What will not come back:",
        "  - each activity's id (a new one is given; the checkpoint keeps it beside the old), "
        "its CreatedOn, CreatedBy and ModifiedOn (the time of the post and the keys' user) and "
        "its history",
        f"  - the owner of {_owners_lost(plan)}",
        "  - nothing else: code, note, date and every custom field are posted as saved",
        'What happens again: LeadSquared\'s "Activity created" automations and lead-score rules '
        "fire for every activity posted.",
    ]
    return "\n".join(lines)


def _left_out(plan: RestorePlan) -> list[str]:
    lines = []
    if plan.unusable:
        lines.append(
            f"  left out       {plan.unusable:,} backup line(s) without a lead, an id, a "
            "numeric code or a date"
        )
    if plan.torn:
        lines.append(
            f"  left out       a torn last member ({plan.torn:,} bytes: a write cut by a kill; "
            "its purge's checkpoint records no send this file lacks: nothing of it was deleted)"
        )
    return lines


def _owners_lost(plan: RestorePlan) -> str:
    """Whose owner cannot come back: without an email in the backup, or posted by Create."""
    unknown = plan.activities - plan.owners_known
    if plan.mode == "bulk":
        if not unknown:
            return "none: the backup names every owner's email, and the bulk add takes it"
        return (
            f"{unknown:,} activit{_y(unknown)}: the backup names no email for the owner "
            "(Retrieve gives only an id and a name): the keys' user owns them"
        )
    known = (
        f" ({plan.owners_known:,} name their owner's email: --post bulk carries it)"
        if plan.owners_known
        else ""
    )
    return f"every activity: Create takes no owner, so the keys' user owns what it posts{known}"


def bulk_learned_text(limit: RateLimit) -> str:
    return (
        f"LeadSquared says the bulk add allows {limit.calls} call(s) in {limit.period:g} s; "
        "continuing at that (a resume starts from it)"
    )


def question(plan: RestorePlan, host: str) -> str:
    return (
        f"Post {plan.activities:,} activit{_y(plan.activities)} back to {plan.leads:,} lead(s) "
        f'at {host}? Each fires the account\'s "Activity created" automations again.'
    )


def restore_text(summary: RunSummary, *, title: str = "Restore summary") -> str:
    """The end of a restore: what was posted, what is held and why, where to look."""
    restore, run = summary.restore, summary.this_run
    assert restore is not None
    lines = [f"{title} — checkpoint {summary.checkpoint}"]
    if run.calls:
        rate = ""
        if restore.activities_per_second is not None and restore.share_of_limit is not None:
            rate = (
                f", {restore.activities_per_second:.2f} activities/s posted in the busiest "
                "window = "
                f"{restore.share_of_limit:.0%} of what the limit allows "
                f"({restore.limit_activities_per_second:g}/s, {restore.mode})"
            )
        lines.append(
            f"  this run       {run.calls:,} call(s) in {duration(run.send_seconds)}{rate}; "
            f"{run.rate_limited_429:,} answered 429"
        )
    found = restore.found_after_lost_answer
    lines.append(
        f"  posted         {restore.posted:>9,} of {restore.activities:,} activit"
        f"{_y(restore.activities)}"
        + (f" ({found:,} found on the lead after a lost answer: not posted again)" if found else "")
    )
    if restore.still_present:
        shown = ", ".join(str(seq) for seq in restore.held_requests)
        lines.append(f"  still present  {restore.still_present:>9,}   (request(s) {shown}): {HELD}")
    for count, what in (
        (restore.already_there, "already on the lead (an identical activity): not posted again"),
        (restore.unchecked, "not read: their leads did not answer in full; rerun"),
        (restore.to_post, "gone, not posted yet: rerun to resume"),
        (restore.lead_missing, "the lead no longer exists: reported, never created"),
    ):
        if count:
            lines.append(f"  {'':<14} {count:>9,}   {what}")
    if restore.failed:
        lines.append(f"  failed         {restore.failed:>9,}")
    for failure in summary.failures:
        kind = "a rerun tries again" if failure.transient else "permanent"
        lines.append(f"  {failure.count:>14,} × {failure.error} [{kind}]")
    lines.append(f"  details        {summary.checkpoint} (table activities: old and new ids)")
    return "\n".join(lines)


def _y(count: int) -> str:
    return "y" if count == 1 else "ies"
