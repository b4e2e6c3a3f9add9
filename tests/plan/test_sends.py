"""A plan's requests fingerprint (plan/sends.py): the same exactly when the calls are the same.

The oracle is the plan's own requests, each as its JSON body, sorted: two sheets whose sorted
bodies are equal must have one fingerprint, and two whose bodies differ must not, however the
rows are ordered, split or written (issue 32, point 4: the memory of sent plans keeps it).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bulk_delete.plan import sends
from bulk_delete.plan.build import build_plan
from bulk_delete.plan.rules import PlanOptions
from bulk_delete.plan.sends import PREFIX

LEADS = [f"00000000-0000-4000-8000-{n:012d}" for n in range(4)]
CODES = ("201", "202", "203", "1000")
WINDOWS = (
    ("2025-01-01", "2025-03-31"),
    ("2025-01-01 10:00", "2025-01-02"),
    ("", "2025-02-01"),
    ("", ""),
)
HOOKS = ("", "https://example.com/hook")

Row = tuple[int, tuple[str, ...], int, int]  # lead, codes, window, webhook

rows_of = st.lists(
    st.tuples(
        st.integers(0, len(LEADS) - 1),
        st.lists(st.sampled_from(CODES), min_size=1, max_size=3, unique=True).map(tuple),
        st.integers(0, len(WINDOWS) - 1),
        st.integers(0, len(HOOKS) - 1),
    ),
    min_size=1,
    max_size=8,
)


def _text(rows: list[Row], *, split: bool, lead_case: bool, end: str) -> str:
    """A sheet of ``rows``: each code on a row of its own when ``split``; GUIDs upper case
    when ``lead_case`` (the same lead)."""
    lines = ["ProspectId,ActivityEventList,FromDate,ToDate,StatusWebhookURL"]
    for lead, codes, window, hook in rows:
        guid = LEADS[lead].upper() if lead_case else LEADS[lead]
        for part in [(code,) for code in codes] if split else [codes]:
            lines.append(",".join((guid, ";".join(part), *WINDOWS[window], HOOKS[hook])))
    return end.join(lines) + end


def _planned(path: Path, limit: int) -> tuple[str, list[str]]:
    plan = build_plan(path, PlanOptions(tz="UTC", max_codes_per_request=limit), extra=False)
    return plan.fingerprint(), sorted(request.body_json() for request in plan.requests())


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=rows_of,
    order=st.randoms(use_true_random=False),
    split=st.booleans(),
    lead_case=st.booleans(),
    end=st.sampled_from(("\n", "\r\n")),
    limits=st.tuples(st.sampled_from((1, 2, 50)), st.sampled_from((1, 2, 50))),
    changed=st.one_of(st.none(), st.tuples(st.integers(0, 7), rows_of)),
)
@pytest.mark.parametrize("mask_words", [sends._MASK_WORDS, 0])  # groups' codes: masks, or lists
def test_the_fingerprint_is_the_same_exactly_when_the_requests_are(
    monkeypatch: pytest.MonkeyPatch,
    mask_words: int,
    write_csv: Callable[..., Path],
    rows: list[Row],
    order: random.Random,
    split: bool,
    lead_case: bool,
    end: str,
    limits: tuple[int, int],
    changed: tuple[int, list[Row]] | None,
) -> None:
    monkeypatch.setattr(sends, "_MASK_WORDS", mask_words)
    other = list(rows)
    order.shuffle(other)
    if changed is not None:  # one row replaced: the requests may differ, or not
        at, (replacement, *_) = changed
        other[at % len(other)] = replacement
    first = write_csv(_text(rows, split=False, lead_case=False, end="\n"), name="first.csv")
    second = write_csv(_text(other, split=split, lead_case=lead_case, end=end), name="second.csv")
    print_a, bodies_a = _planned(first, limits[0])
    print_b, bodies_b = _planned(second, limits[1])
    assert print_a.startswith(PREFIX)
    assert (print_a == print_b) == (bodies_a == bodies_b)
