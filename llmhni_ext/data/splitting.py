"""Id maps, duplicate removal, per-user random splits and split hygiene.

Clean-ups are counted into a ``cleanup`` dict that loaders store in
``Dataset.meta["cleanup"]`` (documented in :mod:`llmhni_ext.data`).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .dataset import Interactions


def id_map(*raw_arrays: np.ndarray) -> Tuple[np.ndarray, List]:
    """Sorted unique raw ids over all arrays -> (unique, list of raw ids); internal id = rank."""
    cat = np.concatenate([np.asarray(a) for a in raw_arrays]) if raw_arrays else np.zeros(0, np.int64)
    uniq = sorted_unique(cat)
    return uniq, uniq.tolist()


def sorted_unique(a: np.ndarray) -> np.ndarray:
    """``np.unique`` by sorting (NumPy's hash-based unique is slow on large int arrays)."""
    a = np.sort(np.asarray(a), kind="stable")
    if len(a) == 0:
        return a
    keep = np.ones(len(a), dtype=bool)
    keep[1:] = a[1:] != a[:-1]
    return a[keep]


def first_occurrences(a: np.ndarray) -> np.ndarray:
    """Sorted indices of the first occurrence of each value of ``a``."""
    n = len(a)
    order = np.argsort(a, kind="stable")
    s = a[order]
    first = np.ones(n, dtype=bool)
    first[1:] = s[1:] != s[:-1]
    return np.sort(order[first])


def remap(raw: np.ndarray, uniq: np.ndarray) -> np.ndarray:
    """Internal ids of ``raw`` given the sorted unique raw ids (every raw id must be present)."""
    return np.searchsorted(uniq, raw).astype(np.int64)


def dedupe(users: np.ndarray, items: np.ndarray, n_items: int, timestamps: Optional[np.ndarray] = None,
           keep: str = "last") -> np.ndarray:
    """Row indices that keep one row per (user, item): the latest by timestamp (or the
    last in file order when there are none) for ``keep="last"``, else the first. Order kept."""
    n = len(users)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    key = users.astype(np.int64) * np.int64(n_items) + items.astype(np.int64)
    sk = np.sort(key, kind="stable")  # timsort: loader keys come in runs (by user)
    if not (sk[1:] == sk[:-1]).any():  # the common case: nothing to drop
        return np.arange(n)
    pos = np.arange(n)
    if keep == "last":
        # sort by key then timestamp then position; take the last of each key group
        sec = timestamps if timestamps is not None else pos
        order = np.lexsort((pos, sec, key))
        k = key[order]
        last = np.ones(n, dtype=bool)
        last[:-1] = k[1:] != k[:-1]
        chosen = order[last]
    else:
        order = np.argsort(key, kind="stable")
        k = key[order]
        first = np.ones(n, dtype=bool)
        first[1:] = k[1:] != k[:-1]
        chosen = order[first]
    return np.sort(chosen)


def in_sorted(keys: np.ndarray, sorted_ref: np.ndarray) -> np.ndarray:
    """Bool mask: which ``keys`` occur in the sorted array ``sorted_ref`` (binary search;
    faster than ``np.isin`` for the sizes here)."""
    if len(sorted_ref) == 0 or len(keys) == 0:
        return np.zeros(len(keys), dtype=bool)
    pos = np.searchsorted(sorted_ref, keys)
    pos[pos == len(sorted_ref)] = len(sorted_ref) - 1
    return sorted_ref[pos] == keys


def per_user_holdout(users: np.ndarray, fraction: float, rng: np.random.Generator,
                     min_keep: int = 1) -> np.ndarray:
    """Bool mask of rows held out: per user ``floor(fraction * n_u)`` random rows (so a user
    with fewer than ``1 / fraction`` rows keeps them all), never leaving fewer than
    ``min_keep`` rows for the user."""
    n = len(users)
    mask = np.zeros(n, dtype=bool)
    if n == 0 or fraction <= 0:
        return mask
    order = np.argsort(users, kind="stable")
    u_sorted = users[order]
    starts = np.flatnonzero(np.r_[True, u_sorted[1:] != u_sorted[:-1]])
    ends = np.r_[starts[1:], n]
    # one random permutation key per row, then take the first k of each user's rows by key
    r = rng.random(n)
    for s, e in zip(starts, ends):
        cnt = e - s
        k = min(int(np.floor(fraction * cnt + 1e-9)), max(0, cnt - min_keep))
        if k > 0:
            rows = order[s:e]
            pick = rows[np.argsort(r[s:e], kind="stable")[:k]]
            mask[pick] = True
    return mask


def random_split(users: np.ndarray, ratios: Sequence[float], seed: int) -> np.ndarray:
    """Per-user random split into train/valid/test; returns a 0/1/2 code per row
    (RecBole's 'RS' with group_by=user, order=RO)."""
    if len(ratios) != 3 or min(ratios) < 0 or sum(ratios) <= 0:
        raise ValueError(f"split ratios must be three non-negative numbers, got {ratios}")
    tot = float(sum(ratios))
    r_valid, r_test = ratios[1] / tot, ratios[2] / tot
    rng = np.random.default_rng(seed)
    code = np.zeros(len(users), dtype=np.int8)
    test = per_user_holdout(users, r_test, rng)
    code[test] = 2
    rest = np.flatnonzero(~test)
    if r_valid > 0 and len(rest):
        valid = per_user_holdout(users[rest], r_valid / max(1e-12, 1 - r_test), rng)
        code[rest[valid]] = 1
    return code


def drop_seen(train: Interactions, other: Interactions, n_items: int,
              train_sorted_keys: Optional[np.ndarray] = None) -> Tuple[Interactions, int]:
    """``other`` without rows whose (user, item) is in ``train``; returns (rows, count dropped).
    ``train_sorted_keys`` (``np.sort(train.keys(n_items))``) saves the sort when given."""
    if len(other) == 0 or len(train) == 0:
        return other, 0
    ref = np.sort(train.keys(n_items), kind="stable") if train_sorted_keys is None else train_sorted_keys
    seen = in_sorted(other.keys(n_items), ref)
    k = int(seen.sum())
    return (other.select(~seen) if k else other), k


def split_from_codes(users, items, ratings, timestamps, code) -> List[Interactions]:
    out = []
    for c in range(3):
        m = code == c
        out.append(Interactions(users[m], items[m], None if ratings is None else ratings[m],
                                None if timestamps is None else timestamps[m]))
    return out


def empty_users(n_users: int, train: Interactions) -> int:
    return int((np.bincount(train.users.numpy(), minlength=n_users) == 0).sum())


def new_cleanup() -> Dict[str, int]:
    return {}
