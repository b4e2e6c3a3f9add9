"""A plan known by what it sends: one fingerprint of its requests, however the sheet was written.

The file's bytes and the plan options (rules.plan_fingerprint) tell a plan apart before the
sheet is read, but the same requests come from a sheet re-saved with CRLF line ends, its rows
in another order, or an option that changes nothing (``--header-row 1`` where the header is
row 1). The machine's memory of sent plans (store/sent_plans.py) keeps this fingerprint too.

Two plans have the same fingerprint exactly when they make the same DeleteActivities calls:
ProspectId, ActivityEventList, FromDate, ToDate and StatusWebhookURL as sent, in any order.
It is computed on the plan's columns (numpy), never request by request: a 1,000,000-row plan
pays a sort, not a million Python objects.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pandas as pd

if TYPE_CHECKING:
    from .build import Groups
    from .rows import Columns

# Sets it apart from a file-and-options fingerprint in the memory of sent plans, at a glance.
PREFIX = "requests:"
_VERSION = b"bulk-delete requests 1\n"


def requests_fingerprint(columns: Columns, groups: Groups, limit: int) -> str:
    """``PREFIX`` and a SHA-256 of the plan's requests, independent of their order.

    The requests are taken apart into (request key, code, part): a group's distinct codes in
    code order, cut into parts of ``limit``, are its requests. Each text and code is replaced by
    its rank among the plan's own values in sorted order, so the numbering of first appearance
    (which follows the rows) plays no part; the sorted values themselves are hashed too."""
    digest = hashlib.sha256(_VERSION)
    if not len(groups):
        return PREFIX + digest.hexdigest()
    first = groups.first_rows()
    windows = [columns.from_date[first], columns.to_date[first], columns.webhook[first]]
    text_rank, texts = _ranks(np.concatenate(windows), columns.texts)
    set_rank, names = _code_ranks(columns)
    keys = [columns.lead_hi[first], columns.lead_lo[first], *(text_rank[w] for w in windows)]
    order = np.lexsort(keys[::-1])  # the groups in order of their keys
    canonical = np.empty(len(groups), dtype=np.int64)  # each group's place in that order
    canonical[order] = np.arange(len(groups))
    group, code = _group_codes(columns, groups, set_rank, canonical, len(names))
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    within = np.arange(len(group)) - np.repeat(starts, np.diff(np.r_[starts, len(group)]))
    part = within // limit
    digest.update(json.dumps([texts, names]).encode())
    for array in (*(key[order] for key in keys), group, code, part):
        _update(digest, array)
    return PREFIX + digest.hexdigest()


def _ranks(
    used: npt.NDArray[np.int32], values: list[str]
) -> tuple[npt.NDArray[np.int64], list[str]]:
    """Each used index's rank among the used values in sorted order, and those values."""
    distinct = _used(used, len(values))
    picked = sorted(values[i] for i in distinct)
    rank = {value: at for at, value in enumerate(picked)}
    ranks = np.zeros(len(values), dtype=np.int64)
    ranks[distinct] = [rank[values[i]] for i in distinct]
    return ranks, picked


def _code_ranks(columns: Columns) -> tuple[list[npt.NDArray[np.int64]], list[str]]:
    """Each code set as the ranks of its codes in code order, and the codes in that order."""
    used = _used(columns.codes, len(columns.code_sets))
    names = sorted(
        {code for index in used for code in columns.code_sets[index]}, key=lambda c: (int(c), c)
    )
    number = {code: at for at, code in enumerate(names)}
    sets = [np.zeros(0, dtype=np.int64)] * len(columns.code_sets)
    for index in used:
        sets[index] = np.array([number[code] for code in columns.code_sets[index]], np.int64)
    return sets, names


def _group_codes(
    columns: Columns,
    groups: Groups,
    sets: list[npt.NDArray[np.int64]],
    canonical: npt.NDArray[np.int64],
    code_count: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Each distinct (group, code), sorted by the group's canonical place, then by code."""
    group = np.empty(len(groups.order), dtype=np.int64)
    group[groups.order] = np.repeat(canonical, groups.sizes())
    set_count = len(sets)
    pairs = pd.unique(group * set_count + columns.codes.astype(np.int64))  # (group, code set)
    pair_group, pair_set = pairs // set_count, pairs % set_count
    lengths = np.array([len(codes) for codes in sets], dtype=np.int64)
    flat = np.concatenate([*sets, np.zeros(0, dtype=np.int64)])
    offsets = np.r_[0, np.cumsum(lengths)[:-1]]
    spread = lengths[pair_set]
    within = np.arange(spread.sum()) - np.repeat(np.cumsum(spread) - spread, spread)
    codes = flat[np.repeat(offsets[pair_set], spread) + within]
    atoms = np.sort(np.repeat(pair_group, spread) * code_count + codes)
    atoms = atoms[np.r_[True, atoms[1:] != atoms[:-1]]]  # (np.unique hashes first: slower)
    return atoms // code_count, atoms % code_count


def _used(indexes: npt.NDArray[np.int32], count: int) -> list[int]:
    """The distinct ``indexes`` (each below ``count``), in order."""
    found: list[int] = np.flatnonzero(np.bincount(indexes, minlength=count)).tolist()
    return found


def _update(digest: hashlib._Hash, array: npt.NDArray[np.generic]) -> None:
    """An array into the digest, its length first, in one byte order on every machine."""
    data = np.ascontiguousarray(array, dtype="<u8" if array.dtype.kind == "u" else "<i8")
    digest.update(len(data).to_bytes(8, "little"))
    digest.update(data.tobytes())
