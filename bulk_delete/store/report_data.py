"""calls → report_data: what the HTML run report shows, as plain data, before anything is drawn.

``report_data`` fills a ``ReportData`` from a ``CallLog`` (store/calls.py): the limit as steps
labelled with what changed, and the delete calls grouped by HTTP status when the caller has no
outcomes of its own. The page (cli/report_page.py) and charts (cli/charts/) know nothing of the
checkpoint. It sits in the store, so filling a report loads no numpy.

Why: docs/design/report.md.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .calls import CallLog
from .reasons import Reason


@dataclass(frozen=True, kw_only=True)
class LimitStep:
    """From ``since`` (epoch seconds) on, calls were held to ``calls`` per ``period`` seconds
    (``per_second``); None: no limit."""

    since: float
    per_second: float | None
    label: str = ""
    calls: int | None = None
    period: float | None = None


@dataclass(frozen=True, kw_only=True)
class Night:
    """One night of a job: what it asked and what is left."""

    date: dt.date
    requests: int
    queued: int
    refused: int
    verified: int | None
    left: int
    job: str = ""  # the job's name ("" for a checkpoint that is no job's)
    activities: int | None = None  # what its listing found to delete (None: not counted)
    ended: str = ""  # how its last run ended, in words


@dataclass(frozen=True, kw_only=True)
class Section:
    """A titled list of facts, each a label and its text, read top down."""

    title: str
    facts: Sequence[tuple[str, str]]
    tone: str = ""  # "good", "warn" or "bad": how the page marks it ("" for neither)


@dataclass(frozen=True, kw_only=True)
class ReportData:
    """Everything the page shows, as plain data."""

    title: str
    tz: str
    headline: Sequence[tuple[str, str]]  # ("Queued", "290 of 300"), shown first
    notes: Sequence[str] = ()  # a sentence or two under the headline
    account: str = ""  # the host and the keys' user, under the title
    purged: Sequence[Section] = ()  # what was purged and how it ended, before the numbers
    failures: Sequence[Reason] = ()  # failed requests by reason, with their sheet rows
    more_failures: int = 0  # reasons past those listed
    failed: str = "requests"  # what failed: a purge's requests, a restore's activities
    footer: str = (  # what the page's words mean, after it
        '"Queued" means LeadSquared accepted the delete request; it deletes the activities '
        "afterwards."
    )
    invalid: Sequence[Reason] = ()  # invalid rows by kind of mistake, with their rows
    checked: Sequence[Section] = ()  # verification and the backup, after the reasons
    seconds: Sequence[int] = ()  # epoch seconds of each second that saw a call
    calls: Sequence[int] = ()  # calls started in that second
    refusals: Sequence[int] = ()  # of which refused (429)
    limits: Sequence[LimitStep] = ()
    outcomes: Mapping[str, Mapping[str, int]] = field(default_factory=dict)  # code → outcome
    latencies: Sequence[float] = ()  # seconds from call to answer
    verification: Sequence[tuple[str, int]] = ()
    nights: Sequence[Night] = ()
    generated_at: dt.datetime | None = None


def report_data(
    log: CallLog,
    *,
    title: str,
    tz: str,
    headline: Sequence[tuple[str, str]],
    run: int | None = None,
    outcomes: Mapping[str, Mapping[str, int]] | None = None,
    kind: str = "delete",
    **rest: Any,
) -> ReportData:
    """ReportData from a call log (every run when ``run`` is None) and the headline numbers.
    Without ``outcomes``, the calls of ``kind`` (deletes; a restore's posts) are grouped by
    their HTTP status."""
    seconds = log.per_second(run)
    return ReportData(
        title=title,
        tz=tz,
        headline=headline,
        seconds=[s.second for s in seconds],
        calls=[s.calls for s in seconds],
        refusals=[s.refusals for s in seconds],
        limits=_limit_steps(log, run),
        outcomes=outcomes if outcomes is not None else _by_status(log, run, kind),
        latencies=log.latencies(run),
        **rest,
    )


def _limit_steps(log: CallLog, run: int | None) -> list[LimitStep]:
    steps: list[LimitStep] = []
    for change in log.limits(run):
        rate = change.per_second
        text = "no limit" if rate is None else f"{change.calls} calls / {change.period:g} s"
        before = steps[-1].per_second if steps else None
        verb = "limit" if not steps else ("lowered to" if (rate or 0) < (before or 0) else "now")
        steps.append(
            LimitStep(
                since=change.since,
                per_second=rate,
                label=f"{verb} {text}",
                calls=change.calls,
                period=change.period,
            )
        )
    return steps


def _by_status(log: CallLog, run: int | None, kind: str) -> dict[str, dict[str, int]]:
    grouped: dict[str, dict[str, int]] = {}
    for (status, verdict), count in log.verdicts_by_status(run, kind).items():
        code = "no answer" if status is None else f"HTTP {status}"
        grouped.setdefault(code, {})[verdict] = count
    return grouped
