"""From rows of raw ids to a :class:`Dataset`: id maps, duplicates, splits, texts.

Shared by the table-like loaders (RecBole, CSV/TSV, Last.fm HetRec). Clean-ups,
all counted in ``meta["cleanup"]``:

* ``duplicates_dropped_<split>``: repeated (user, item) rows within a split; the latest
  (by timestamp, else the last in the file) is kept;
* ``valid_rows_in_train_dropped`` / ``test_rows_in_train_or_valid_dropped``: held-out
  pairs that also occur in an earlier split;
* ``users_without_train_rows``: users that only occur in valid/test (kept, counted).
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from .dataset import Dataset, Interactions
from .splitting import dedupe, drop_seen, random_split


def _canonical_int(x: str) -> bool:
    d = x[1:] if x.startswith("-") else x
    return d.isdigit() and d.isascii() and (d == "0" or not d.startswith("0")) and x != "-0" and len(d) < 19


def raw_id_map(*columns: np.ndarray):
    """(sorted unique raw ids as a list, [internal ids per column]). Ids that are all
    integers sort numerically and are returned as ints; others sort as strings."""
    cat = np.concatenate([np.asarray(c) for c in columns]) if columns else np.zeros(0)
    as_int = None
    if cat.dtype.kind in "iu":
        as_int = cat.astype(np.int64)
    else:
        try:
            # integers only when every id is written canonically ("7", not "007" or "+7"), so
            # that distinct raw ids can never merge
            as_int = cat.astype(np.int64) if all(_canonical_int(str(x)) for x in cat) else None
        except (ValueError, OverflowError):
            as_int = None
    if as_int is not None:
        uniq = np.unique(np.sort(as_int))
        idx = np.searchsorted(uniq, as_int)
        raw = uniq.tolist()
    else:
        s = cat.astype(str)
        uniq, idx = np.unique(s, return_inverse=True)
        raw = uniq.tolist()
    out, start = [], 0
    for c in columns:
        out.append(idx[start:start + len(c)].astype(np.int64))
        start += len(c)
    return raw, out


def assemble(name: str, users_raw: np.ndarray, items_raw: np.ndarray, *, ratings: Optional[np.ndarray] = None,
             timestamps: Optional[np.ndarray] = None, codes: Optional[np.ndarray] = None,
             ratios: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0, meta: Optional[Dict[str, Any]] = None,
             cleanup: Optional[Dict[str, int]] = None, user_text: Optional[Dict[Any, str]] = None,
             item_text: Optional[Dict[Any, str]] = None, all_users_raw: Optional[np.ndarray] = None,
             all_items_raw: Optional[np.ndarray] = None) -> Dataset:
    """Build a data set from raw rows. ``codes`` (0 train, 1 valid, 2 test per row) gives a
    fixed split; without it rows are split at random per user by ``ratios`` and ``seed``.
    ``user_text`` / ``item_text`` map raw id -> text (missing ids get ""; counted).
    ``all_users_raw`` / ``all_items_raw`` add ids that have no rows (e.g. from an item file)."""
    cleanup = {} if cleanup is None else cleanup
    extra_u = np.asarray(all_users_raw) if all_users_raw is not None else np.zeros(0, dtype=np.asarray(users_raw).dtype)
    extra_i = np.asarray(all_items_raw) if all_items_raw is not None else np.zeros(0, dtype=np.asarray(items_raw).dtype)
    u_raw, (u, _) = raw_id_map(np.asarray(users_raw), extra_u)
    i_raw, (i, _) = raw_id_map(np.asarray(items_raw), extra_i)
    n_users, n_items = len(u_raw), len(i_raw)
    if codes is None:
        # duplicates first, so a pair cannot land in two splits
        keep = dedupe(u, i, max(1, n_items), timestamps)
        cleanup["duplicates_dropped"] = int(len(u) - len(keep))
        u, i = u[keep], i[keep]
        ratings = None if ratings is None else ratings[keep]
        timestamps = None if timestamps is None else timestamps[keep]
        codes = random_split(u, ratios, seed)
    splits: List[Interactions] = []
    for c, tag in enumerate(("train", "valid", "test")):
        m = np.flatnonzero(codes == c)
        keep = m[dedupe(u[m], i[m], max(1, n_items), None if timestamps is None else timestamps[m])]
        if f"duplicates_dropped_{tag}" not in cleanup:
            cleanup[f"duplicates_dropped_{tag}"] = int(len(m) - len(keep))
        splits.append(Interactions(u[keep], i[keep], None if ratings is None else ratings[keep],
                                   None if timestamps is None else timestamps[keep]))
    train, valid, test = splits
    trk = np.sort(train.keys(n_items), kind="stable")
    valid, k1 = drop_seen(train, valid, n_items, trk)
    test, k2 = drop_seen(train, test, n_items, trk)
    test, k3 = drop_seen(valid, test, n_items)
    cleanup["valid_rows_in_train_dropped"] = k1
    cleanup["test_rows_in_train_or_valid_dropped"] = k2 + k3
    cleanup["users_without_train_rows"] = int((np.bincount(train.users.numpy(), minlength=n_users) == 0).sum())

    def texts(mapping, raw, tag):
        if mapping is None:
            return None
        norm = {str(k): v for k, v in mapping.items()}
        out = [norm.get(str(r), "") or "" for r in raw]
        cleanup[f"{tag}_without_text"] = sum(1 for t in out if not t)
        return out

    meta = dict(meta or {})
    meta.setdefault("noise", "none")
    meta["cleanup"] = cleanup
    meta.setdefault("seed", seed)
    return Dataset(name=name, n_users=n_users, n_items=n_items, train=train, valid=valid, test=test,
                   user_text=texts(user_text, u_raw, "users"), item_text=texts(item_text, i_raw, "items"),
                   user_raw_ids=u_raw, item_raw_ids=i_raw, meta=meta)
