"""Text dates in the order people write them: 31/01/2025, 1.2.2024, 01-02-2024 14:30.

A date that is not YYYY-MM-DD is read only in the order the user names (``--date-order``);
without it, and for a two-digit year, it is refused. No pandas here (rules.py reads options
through it).

    read_ordered("01/02/2024 14:30", "DMY")  # (date(2024, 2, 1), time(14, 30))

Why: docs/design/planning.md.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence

DATE_ORDERS = ("DMY", "MDY", "YMD")
ORDER_WORDS = {"DMY": "day/month/year", "MDY": "month/day/year", "YMD": "year/month/day"}

# ISO dates, read as ISO whatever --date-order says: a year first, in four digits, leaves
# no order to guess. Any other order (31/01/2025, 01/31/2025) only as --date-order says.
ISO_DATE_RE = re.compile(
    r"\d{4}-\d{2}-\d{2}"
    r"(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?",
    re.IGNORECASE,
)
# The same separator twice; then, if any, a time: 14:30, 14:30:05, 2:30 PM.
_ORDERED_RE = re.compile(
    r"(\d{1,4})([/.\-])(\d{1,2})\2(\d{1,4})"
    r"(?:\s+(\d{1,2}):(\d{2})(?::(\d{2}))?(?:\s*([AP])\.?M\.?)?)?",
    re.IGNORECASE,
)


class OrderUnknown(ValueError):
    """A text date whose order was not given: its possible readings, for the message."""

    def __init__(self, text: str, orders: tuple[str, ...]) -> None:
        self.text, self.orders = text, orders
        hint = f" {orders[0]}" if len(orders) == 1 else ""
        super().__init__(f"{text!r} is {readings(text, orders)}: pass --date-order{hint}")


def is_ordered(text: str) -> bool:
    """Whether a text is written as a date in some order (not ISO: 2024-01-31 14:30 is
    written that way too, yet is read as ISO under any order)."""
    return _ORDERED_RE.fullmatch(text) is not None and ISO_DATE_RE.fullmatch(text) is None


def read_ordered(text: str, order: str) -> tuple[dt.date, dt.time | None]:
    """The date (and time, if written) of a text date in ``order``; ``order`` "": the order is
    not known, so OrderUnknown names the readings. ValueError, with why, for anything else."""
    match = _ORDERED_RE.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a date")
    first, _, second, third, hour, minute, second_of_minute, half = match.groups()
    parts = (first, second, third)
    if all(len(part) <= 2 for part in parts):
        raise ValueError(
            f"{text!r} has a two-digit year: write the year in full (is 24 1924 or 2024?)"
        )
    if not order:
        orders = tuple(each for each in DATE_ORDERS if _fits(parts, each))
        if not orders:
            raise ValueError(f"{text!r} is not a real date in any order")
        raise OrderUnknown(text, orders)
    day = _date_in(text, parts, order)
    if hour is None:
        return day, None
    return day, _time_of(text, int(hour), int(minute), int(second_of_minute or 0), half)


def _date_in(text: str, parts: tuple[str, str, str], order: str) -> dt.date:
    fields = dict(zip(order, parts, strict=True))
    year, month, day = fields["Y"], fields["M"], fields["D"]
    if len(year) != 4 or len(month) > 2 or len(day) > 2:
        raise ValueError(f"{text!r} is not a date written {order} ({ORDER_WORDS[order]})")
    try:
        return dt.date(int(year), int(month), int(day))
    except ValueError:
        raise ValueError(f"{text!r} is not a real date read as {order}") from None


def _fits(parts: tuple[str, str, str], order: str) -> bool:
    try:
        _date_in("", parts, order)
    except ValueError:
        return False
    return True


def _time_of(text: str, hour: int, minute: int, second: int, half: str | None) -> dt.time:
    if half is not None:  # 12-hour clock: 12:30 AM is 00:30, 12:30 PM is 12:30
        if not 1 <= hour <= 12:
            raise ValueError(f"{text!r} has no hour {hour} on a 12-hour clock")
        hour = hour % 12 + (12 if half.upper() == "P" else 0)
    try:
        return dt.time(hour, minute, second)
    except ValueError:
        raise ValueError(f"{text!r} is not a real time") from None


def reading(text: str, order: str) -> str:
    """A text date as a person says it in ``order``: "1 February 2024"."""
    day, _ = read_ordered(text, order)
    return f"{day.day} {day:%B %Y}"


def readings(text: str, orders: Sequence[str]) -> str:
    """ "1 February 2024 as DMY, 2 January 2024 as MDY", or "only DMY: 31 January 2025"."""
    if len(orders) == 1:
        return f"read only as {orders[0]}: {reading(text, orders[0])}"
    return ", ".join(f"{reading(text, order)} as {order}" for order in orders)


def order_needed(seen: Mapping[str, tuple[str, ...]]) -> str:
    """What a sheet's text dates (text → the orders it reads in) say of their order, and the
    option to pass: never the order itself, even when only one fits."""
    agreed = set(DATE_ORDERS).intersection(*map(set, seen.values()))
    both = next(  # a date that two orders read as two days: the example a person needs
        (text for text, orders in seen.items() if len({reading(text, o) for o in orders}) > 1),
        None,
    )
    if len(agreed) == 1:
        (only,) = agreed
        forced = next(text for text, orders in seen.items() if orders == (only,))
        shown = f"{both!r} is {readings(both, seen[both])}; " if both is not None else ""
        return (
            f"{shown}all of them read as {only} ({ORDER_WORDS[only]}: {forced!r} is "
            f"{reading(forced, only)} and nothing else), but a purge never guesses: "
            f"pass --date-order {only}"
        )
    if not agreed:
        kinds: dict[tuple[str, ...], str] = {}  # the first text of each set of orders
        for text, orders in seen.items():
            kinds.setdefault(orders, text)
        shown = "; ".join(f"{text!r} reads as {' or '.join(o)}" for o, text in kinds.items())
        return f"they read in no one order ({shown}): correct the sheet, then pass --date-order"
    options = " or ".join(f"--date-order {order}" for order in DATE_ORDERS if order in agreed)
    if both is None:  # every date reads as one day either way (01/01/2024): still asked
        shown = next(iter(seen))
        ways = " or as ".join(order for order in DATE_ORDERS if order in agreed)
        return (
            f"they read the same as {ways} ({shown!r} is {reading(shown, seen[shown][0])} "
            f"either way), but the order is still needed: pass {options}"
        )
    return f"{both!r} is {readings(both, seen[both])}: pass {options}"
