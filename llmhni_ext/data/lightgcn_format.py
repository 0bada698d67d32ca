"""The LightGCN text format: ``train.txt`` / ``valid.txt`` / ``test.txt``.

One line per user, ``user_id item_id item_id ...``, whitespace-separated, ids 0-based.
Ids are kept as they are (``n_users`` / ``n_items`` = largest id + 1 over all splits), so
results line up with other implementations reading the same files. ``valid.txt`` is
optional (LightGCN's own data has none); without it the validation split is empty
unless ``valid_ratio`` carves one from train.

Clean-ups (counted in ``meta["cleanup"]``): repeated (user, item) within a split
dropped; a user's second line in the same file merged; valid/test pairs also in train
dropped; lines with a user id and no items counted as ``empty_user_lines``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np

from .dataset import DataError, Dataset, Interactions
from .parsing import fast_int_lines, read_text, split_lines
from .splitting import sorted_unique, dedupe, drop_seen, per_user_holdout


def read_lightgcn_file(path, cleanup: Dict[str, int], tag: str) -> Tuple[np.ndarray, np.ndarray, int]:
    """(users, items) int64 arrays of one file, in file order, and the largest user id seen
    (a line with a user and no items still names the user)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    fast = fast_int_lines(data)
    if fast is not None:
        flat, lens = fast
    else:  # slow path: finds and names the bad line
        lines = split_lines(read_text(path, "utf-8"))
        for k, ln in enumerate(lines):
            for tok in ln.split():
                if not tok.lstrip("-").isdigit():
                    raise DataError(path, f"ids must be integers, found {tok!r}", k + 1)
        toks = []
        lens = np.zeros(len(lines), dtype=np.int64)
        for k, ln in enumerate(lines):
            f = ln.split()
            lens[k] = len(f)
            toks.extend(f)
        flat = np.array(toks, dtype=np.int64)
    nonblank = lens > 0
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
    line_users = flat[starts[nonblank]]
    counts = lens[nonblank] - 1
    users = np.repeat(line_users, counts)
    is_item = np.ones(len(flat), dtype=bool)
    is_item[starts[nonblank]] = False
    items = flat[is_item]
    if len(flat) and flat.min() < 0:
        pos = int(np.flatnonzero(flat < 0)[0])
        line = int(np.searchsorted(np.cumsum(lens), pos, side="right")) + 1
        raise DataError(path, f"negative id {int(flat[pos])}", line)
    cleanup[f"empty_user_lines_{tag}"] = int((counts == 0).sum())
    cleanup[f"repeated_user_lines_{tag}"] = int(len(line_users) - len(sorted_unique(line_users)))
    n_items = int(items.max()) + 1 if len(items) else 1
    keep = dedupe(users, items, n_items, keep="first")
    cleanup[f"duplicates_dropped_{tag}"] = int(len(users) - len(keep))
    return users[keep], items[keep], int(line_users.max()) if len(line_users) else -1


def load_lightgcn_dir(path, *, name: Optional[str] = None, valid_ratio: float = 0.0, seed: int = 0,
                      noise="none") -> Dataset:
    """A data set from a folder holding LightGCN-format ``train.txt``, ``test.txt`` and optionally ``valid.txt``."""
    folder = Path(path)
    for f in ("train.txt", "test.txt"):
        if not (folder / f).is_file():
            raise FileNotFoundError(f"{folder / f} not found (a LightGCN-format folder needs train.txt and test.txt)")
    cleanup: Dict[str, int] = {}
    tr_u, tr_i, m1 = read_lightgcn_file(folder / "train.txt", cleanup, "train")
    te_u, te_i, m2 = read_lightgcn_file(folder / "test.txt", cleanup, "test")
    m3 = -1
    if (folder / "valid.txt").is_file():
        va_u, va_i, m3 = read_lightgcn_file(folder / "valid.txt", cleanup, "valid")
        if valid_ratio:
            raise ValueError(f"{folder} has valid.txt; valid_ratio={valid_ratio} would carve a second one")
    else:
        hold = per_user_holdout(tr_u, valid_ratio, np.random.default_rng(seed))
        va_u, va_i, tr_u, tr_i = tr_u[hold], tr_i[hold], tr_u[~hold], tr_i[~hold]
    allu = np.concatenate([tr_u, va_u, te_u])
    alli = np.concatenate([tr_i, va_i, te_i])
    n_users = max(int(allu.max()) if len(allu) else -1, m1, m2, m3) + 1
    n_items = int(alli.max()) + 1 if len(alli) else 0
    train = Interactions(tr_u, tr_i)
    trk = np.sort(train.keys(n_items), kind="stable")
    valid, k1 = drop_seen(train, Interactions(va_u, va_i), n_items, trk)
    test, k2 = drop_seen(train, Interactions(te_u, te_i), n_items, trk)
    test, k3 = drop_seen(valid, test, n_items)
    cleanup["valid_rows_in_train_dropped"] = k1
    cleanup["test_rows_in_train_or_valid_dropped"] = k2 + k3
    cleanup["users_without_train_rows"] = int((np.bincount(tr_u, minlength=n_users) == 0).sum())
    ds = Dataset(name=name or folder.name, n_users=n_users, n_items=n_items, train=train, valid=valid, test=test,
                 user_raw_ids=list(range(n_users)), item_raw_ids=list(range(n_items)),
                 meta={"source": str(folder), "format": "lightgcn", "seed": seed, "valid_ratio": valid_ratio,
                       "cleanup": cleanup, "noise": "none"})
    from .noise import apply_noise
    return apply_noise(ds, noise, seed)
