"""Daily allowances: when a refused run may go again, and whether a planned one fits a day.

``resume_at(window, now, retry_after)`` is the next boundary of the window counted from
midnight UTC, unless Retry-After says otherwise; ``allowance_used`` builds the error that stops
the run; ``across_days`` tells a dry run when a plan crosses the allowance (a
``DailyEstimate``). Pure functions of their arguments: the wall time is passed in.

Why: docs/design/allowance.md.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from .config import DAY_SECONDS, RateLimit
from .errors import AllowanceUsed, OptionError

DAY = DAY_SECONDS


def resume_at(window: float, now: dt.datetime, retry_after: float | None = None) -> dt.datetime:
    """When an allowance of a ``window``-second window refused at ``now`` (UTC) resets."""
    if retry_after is not None and retry_after > 0:
        return now + dt.timedelta(seconds=retry_after)
    epoch = now.timestamp()
    boundary = (math.floor(epoch / window) + 1) * window
    return dt.datetime.fromtimestamp(boundary, tz=dt.UTC)


def allowance_used(
    allowance: RateLimit | None, now: dt.datetime, retry_after: float | None = None
) -> AllowanceUsed:
    """The error that stops a run refused as over its allowance."""
    window = allowance.period if allowance is not None else DAY
    resume = resume_at(window, now, retry_after)
    named = f" ({allowance.calls} calls in {_window_words(window)})" if allowance else ""
    when = resume.strftime("%H:%M UTC") + _day_words(resume, now)
    return AllowanceUsed(
        f"daily allowance used; resume after {when}{named}. Nothing else was sent; "
        "rerun the same command then to resume.",
        resume_at=resume.isoformat(timespec="minutes"),
    )


@dataclass(frozen=True, kw_only=True)
class DailyEstimate:
    """How a run of ``requests`` calls spreads over days under a daily allowance."""

    requests: int
    today: int  # calls that fit before the allowance (or the day) runs out
    crosses: bool  # the run is larger than what is left of today's allowance
    days: int  # calendar days (UTC) the run touches, today included
    finish: dt.datetime  # when the last call should start, at best

    def describe(self) -> str:
        """One line for the dry run."""
        if not self.crosses:
            return f"fits today's allowance ({self.requests:,} calls)"
        return (
            f"crosses the daily allowance: {self.today:,} of {self.requests:,} calls fit today; "
            f"finishes {self.finish.strftime('%Y-%m-%d %H:%M UTC')} at best, "
            f"over {self.days} days"
        )


def across_days(
    requests: int,
    rate: RateLimit,
    daily_limit: int | None,
    *,
    now: dt.datetime,
    used_today: int = 0,
) -> DailyEstimate:
    """Spread ``requests`` calls at ``rate`` over UTC days of ``daily_limit`` calls each,
    ``used_today`` of today's already spent (by other runs, the listing, the preflight). A
    plan that would not end before the year 9999 is an OptionError (exit 2)."""
    try:
        return _across_days(requests, rate, daily_limit, now=now, used_today=used_today)
    except OverflowError:
        raise OptionError(
            f"{requests:,} calls at {rate}"
            + (f" and {daily_limit:,} a day" if daily_limit else "")
            + " would not end before the year 9999; check --rate and --daily-limit"
        ) from None


def _across_days(
    requests: int, rate: RateLimit, daily_limit: int | None, *, now: dt.datetime, used_today: int
) -> DailyEstimate:
    per_second = rate.per_second
    if daily_limit is None or requests <= 0:
        finish = now + dt.timedelta(seconds=rate.eta_seconds(requests))
        return DailyEstimate(
            requests=requests, today=requests, crosses=False, days=1, finish=finish
        )
    midnight = resume_at(DAY, now)
    room_today = max(0, daily_limit - used_today)
    today = min(requests, room_today, _calls_in(per_second, (midnight - now).total_seconds()))
    left = requests - today
    if left == 0:
        finish = now + dt.timedelta(seconds=rate.eta_seconds(requests))
        return DailyEstimate(
            requests=requests, today=today, crosses=False, days=_days(now, finish), finish=finish
        )
    per_day = min(daily_limit, _calls_in(per_second, DAY))
    full_days, last = divmod(left, per_day)
    if last == 0:
        full_days, last = full_days - 1, per_day
    start = midnight + dt.timedelta(days=full_days)
    finish = start + dt.timedelta(seconds=rate.eta_seconds(last))
    return DailyEstimate(
        requests=requests,
        today=today,
        crosses=requests > room_today,
        days=_days(now, finish),
        finish=finish,
    )


def _calls_in(per_second: float, seconds: float) -> int:
    return 2**62 if math.isinf(per_second) else math.floor(per_second * seconds + 1e-9)


def _days(now: dt.datetime, finish: dt.datetime) -> int:
    return (finish.date() - now.date()).days + 1


def _window_words(seconds: float) -> str:
    for unit, size in (("day", DAY), ("hour", 3600.0)):
        if seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}" + ("s" if count != 1 else "")
    return f"{seconds:g} s"


def _day_words(resume: dt.datetime, now: dt.datetime) -> str:
    days = (resume.date() - now.date()).days
    return "" if days == 0 else " tomorrow" if days == 1 else f" on {resume:%Y-%m-%d}"
