"""Helpers shared by tests (fixtures live in conftest.py)."""

from __future__ import annotations


def max_in_any_window(starts: list[float], period: float) -> int:
    """The most starts inside any half-open window [t, t + period)."""
    starts = sorted(starts)
    best, left = 0, 0
    for right, start in enumerate(starts):
        while start - starts[left] >= period:
            left += 1
        best = max(best, right - left + 1)
    return best
