"""The generated family's figures, per kind: `python -m tests.family` for our limiter,
`python -m tests.family --oracle` for the oracle (windowsim.oracle: an even pace at what the
neighbour's schedule leaves, its headroom chosen on each trace; about four minutes), and
`--headroom H` for that even pace at one headroom on every trace (ours is 2). Prints
the median share of what the neighbour leaves and the traces where it loses <= 5 % of its
calls, against issue 30's bars (median >= 85 %, >= 90 % of the traces); for the oracle, the
median headroom it chose too (calls a window below what the schedule leaves). Not a test."""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict
from dataclasses import replace

from .windowsim import KINDS, Shared, draw, oracle, run

FAMILY = 200  # as tests/send/test_neighbours.py
LOSS = 0.05


def measured(seed: int, *, by_oracle: bool, headroom: float | None) -> tuple[float | None, Shared]:
    """(the oracle's headroom or None, the run) on the family's trace ``seed``."""
    scenario = draw(seed)
    if by_oracle:
        return oracle(scenario, loss=LOSS)
    if headroom is not None and scenario.load is not None:
        return headroom, run(replace(scenario, oracle=headroom))[0]
    return None, run(scenario)[0]


def row(name: str, runs: list[tuple[float | None, Shared]]) -> str:
    traces = [trace for _, trace in runs]
    median = statistics.median(trace.share_of_free for trace in traces)
    kept = sum(1 for trace in traces if trace.neighbour_loss <= LOSS)
    line = f"{name:<8} {median:>7.1%} {kept:>4} of {len(traces):<4} {kept / len(traces):>5.0%}"
    headrooms = [headroom for headroom, _ in runs if headroom is not None]
    return f"{line} {statistics.median(headrooms):>9.2f}" if headrooms else line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--oracle", action="store_true", help="pace by the oracle instead")
    parser.add_argument("--headroom", type=float, help="the even pace at this headroom instead")
    parser.add_argument("--traces", type=int, default=FAMILY)
    args = parser.parse_args()
    kinds: dict[str, list[tuple[float | None, Shared]]] = defaultdict(list)
    for seed in range(args.traces):
        kinds[KINDS[seed % len(KINDS)]].append(
            measured(seed, by_oracle=args.oracle, headroom=args.headroom)
        )
    headroom = " headroom" if args.oracle or args.headroom is not None else ""
    print(f"{'kind':<8} {'median':>7} {'within 5 %':>15}{headroom}")
    for kind in KINDS:
        print(row(kind, kinds[kind]))
    print(row("all", [each for runs in kinds.values() for each in runs]))


if __name__ == "__main__":
    main()
