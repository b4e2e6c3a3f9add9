"""The peer of `bulk-delete plan` in the loader benchmark: a bare pandas read of the same file.
Prints the seconds the read itself took (the import of pandas is not counted)."""

from __future__ import annotations

import sys
import time

import pandas as pd


def main(kind: str, path: str) -> None:
    started = time.perf_counter()
    if kind == "csv":
        frame = pd.read_csv(path, dtype=str)
    else:
        frame = pd.read_excel(path, engine="calamine")
    print(f"{time.perf_counter() - started:.3f} {len(frame)}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
