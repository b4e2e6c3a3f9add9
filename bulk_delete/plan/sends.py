"""A plan known by what it sends: one fingerprint of its requests, however the sheet was written.

Two plans have the same fingerprint exactly when they make the same DeleteActivities calls
(ProspectId, ActivityEventList, FromDate, ToDate, StatusWebhookURL as sent, in any order): a
sheet re-saved with CRLF line ends, its rows reordered, or an option that changes nothing
makes the same one. The memory of sent plans keeps it (store/sent_plans.py). It is computed on
the plan's columns, never request by request. Why, and its cost: docs/design/ledger.md.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd

if TYPE_CHECKING:
    from .rows import Columns


class Grouped(Protocol):
    """The plan's groups of rows (build.Groups, which imports this module)."""

    @property
    def order(self) -> npt.NDArray[np.intp]: ...
    @property
    def starts(self) -> npt.NDArray[np.intp]: ...
    def __len__(self) -> int: ...
    def first_rows(self) -> npt.NDArray[np.intp]: ...
    def sizes(self) -> npt.NDArray[np.intp]: ...


# Sets it apart from a file-and-options fingerprint in the memory of sent plans, at a glance.
PREFIX = "requests:"
_VERSION = b"bulk-delete requests 1\n"

Ranks = npt.NDArray[np.int32]
CodeList = tuple[str, ...]


def requests_fingerprint(columns: Columns, groups: Grouped, limit: int) -> str:
    """``PREFIX`` and a SHA-256 of the plan's requests, independent of their order.

    A group of rows (lead, window, webhook) makes one request per ``limit`` of its distinct
    codes, so the plan is its groups' keys and each group's codes as cut into requests. Texts
    and code lists are replaced by their ranks among the plan's own values in sorted order (the
    numbering of first appearance follows the rows), the groups are sorted by their keys, and
    the arrays are hashed with the sorted values."""
    digest = hashlib.sha256(_VERSION)
    if not len(groups):
        return PREFIX + digest.hexdigest()
    first = groups.first_rows()
    union, unions = _unions(columns, groups, first)
    cut = [
        "|".join(",".join(codes[at : at + limit]) for at in range(0, len(codes), limit))
        for codes in unions
    ]
    cut_rank, cuts = _ranks(union, cut)
    windows = [columns.from_date[first], columns.to_date[first], columns.webhook[first]]
    text_rank, texts = _ranks(np.concatenate(windows), columns.texts)
    leads = [columns.lead_hi[first], columns.lead_lo[first]]
    keys: list[npt.NDArray[Any]] = [*leads, *(text_rank[w] for w in windows)]
    order = np.lexsort(keys[::-1])  # (lead, window, webhook) is a group's own: no ties
    digest.update(json.dumps([texts, cuts]).encode())
    for key in (*keys, cut_rank[union]):
        _update(digest, key[order])
    return PREFIX + digest.hexdigest()


def _ranks(used: npt.NDArray[np.integer], values: list[str]) -> tuple[Ranks, list[str]]:
    """Each used index's rank among the used values in sorted order, and those values."""
    distinct = _used(used, len(values))
    picked = sorted(values[i] for i in distinct)
    rank = {value: at for at, value in enumerate(picked)}
    ranks = np.zeros(len(values), dtype=np.int32)
    ranks[distinct] = [rank[values[i]] for i in distinct]
    return ranks, picked


def _used(indexes: npt.NDArray[np.integer], count: int) -> list[int]:
    """The distinct ``indexes`` (each below ``count``), in order (np.unique hashes first:
    slower on a million)."""
    found: list[int] = np.flatnonzero(np.bincount(indexes, minlength=count)).tolist()
    return found


def _in_code_order(codes: Iterable[str]) -> CodeList:
    """Distinct codes in the order a request sends them (build.py: sorted as numbers)."""
    return tuple(sorted(set(codes), key=lambda code: (int(code), code)))


class _Unions:
    """Each group's distinct codes (its union over its rows) as an index into ``lists``."""

    def __init__(self) -> None:
        self.lists: list[CodeList] = []
        self._index: dict[CodeList, int] = {}

    def of(self, codes: CodeList) -> int:
        index = self._index.get(codes)
        if index is None:
            index = self._index[codes] = len(self.lists)
            self.lists.append(codes)
        return index


def _unions(
    columns: Columns, groups: Grouped, first: npt.NDArray[np.intp]
) -> tuple[Ranks, list[CodeList]]:
    """Each group's distinct codes in code order, as an index into the list returned. Most
    groups are one row, or rows of one code set: those take their first row's set. A group
    whose rows hold different sets is taken apart into (group, code) in numpy."""
    unions = _Unions()
    by_set = np.zeros(len(columns.code_sets), dtype=np.int32)
    for index in _used(columns.codes, len(columns.code_sets)):
        by_set[index] = unions.of(_in_code_order(columns.code_sets[index]))
    union = by_set[columns.codes[first]]
    mixed = _mixed_atoms(columns, groups)
    if mixed is not None:
        owners, numbers, names = mixed
        bounds = np.flatnonzero(np.diff(owners, prepend=-1, append=-1))
        alike, firsts = _alike(numbers, bounds, len(names))
        at, listed = bounds.tolist(), numbers.tolist()
        made = [unions.of(tuple(names[n] for n in listed[at[g] : at[g + 1]])) for g in firsts]
        union[owners[bounds[:-1]]] = np.array(made, dtype=np.int32)[alike]
    return union, unions.lists


def _mixed_atoms(
    columns: Columns, groups: Grouped
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], CodeList] | None:
    """The groups whose rows hold more than one code set, as their distinct (group, code)
    pairs, sorted: the groups, each code's number in the codes returned (in code order)."""
    if len(groups) == len(groups.order):  # every row its own group
        return None
    sizes = groups.sizes()
    group = np.repeat(np.arange(len(groups), dtype=np.int64), sizes)  # of each row, grouped
    sets = columns.codes[groups.order].astype(np.int64)
    mixed = np.zeros(len(groups), dtype=bool)
    mixed[group[sets != np.repeat(sets[groups.starts], sizes)]] = True
    if not mixed.any():
        return None
    rows = mixed[group]
    set_count = len(columns.code_sets)
    pairs = pd.unique(group[rows] * set_count + sets[rows])  # distinct (group, code set)
    del group, sets, rows
    pair_group, pair_set = pairs // set_count, pairs % set_count
    names = _in_code_order(c for s in _used(pair_set, set_count) for c in columns.code_sets[s])
    number = {code: at for at, code in enumerate(names)}
    lengths = np.array([len(codes) for codes in columns.code_sets], dtype=np.int64)
    flat = np.array([number.get(c, 0) for cs in columns.code_sets for c in cs], dtype=np.int64)
    spread = lengths[pair_set]
    within = np.arange(spread.sum()) - np.repeat(np.cumsum(spread) - spread, spread)
    offsets = np.cumsum(lengths) - lengths
    codes = flat[np.repeat(offsets[pair_set], spread) + within]
    atoms = np.sort(np.repeat(pair_group, spread) * len(names) + codes)
    atoms = atoms[np.r_[True, atoms[1:] != atoms[:-1]]]  # distinct (group, code), in order
    return atoms // len(names), atoms % len(names), names


_MASK_WORDS = 4  # up to 256 distinct codes: a group's codes as a bit mask, alike found at once


def _alike(
    numbers: npt.NDArray[np.int64], bounds: npt.NDArray[np.intp], count: int
) -> tuple[npt.NDArray[np.intp], list[int]]:
    """Groups (``numbers[bounds[g]:bounds[g + 1]]``) with the same codes: each group's kind,
    and the first group of each kind. Told apart by bit masks: a Python tuple a group would
    cost a second on a million-row sheet of one code a row."""
    groups = len(bounds) - 1
    words = -(-count // 64)
    if words > _MASK_WORDS:  # (so many codes: each group a kind of its own, its list made)
        every = np.arange(groups)
        return every, every.tolist()
    slot = np.repeat(np.arange(groups), np.diff(bounds)) * words + numbers // 64
    segments = np.flatnonzero(np.diff(slot, prepend=-1))
    bits = np.left_shift(np.uint64(1), (numbers % 64).astype(np.uint64))
    masks = np.zeros(groups * words, dtype=np.uint64)
    masks[slot[segments]] = np.bitwise_or.reduceat(bits, segments)
    _, firsts, kinds = np.unique(
        masks.reshape(groups, words), axis=0, return_index=True, return_inverse=True
    )
    return kinds.ravel(), firsts.tolist()


def _update(digest: hashlib._Hash, array: npt.NDArray[np.generic]) -> None:
    """An array into the digest, its length first, in one byte order on every machine."""
    data = np.ascontiguousarray(array, dtype="<u8" if array.dtype.kind == "u" else "<i8")
    digest.update(len(data).to_bytes(8, "little"))
    digest.update(data.tobytes())
