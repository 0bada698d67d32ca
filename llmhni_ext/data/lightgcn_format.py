"""The LightGCN text format: ``train.txt`` / ``valid.txt`` / ``test.txt``.

One line per user, ``user_id item_id item_id ...``, whitespace-separated, ids 0-based.
Ids are kept as they are (``n_users`` / ``n_items`` = largest id + 1 over all splits), so
results line up with other implementations reading the same files. ``valid.txt`` is
optional (LightGCN's own data has none); without it ``valid_ratio`` (0.1) of each user's
training rows are carved out as the validation split.

Clean-ups (counted in ``meta["cleanup"]``): repeated (user, item) within a split
dropped; a user's second line in the same file merged; valid/test pairs also in train
dropped; lines with a user id and no items counted as ``empty_user_lines``.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np

from .dataset import DataError, Dataset, Interactions
from .parsing import fast_int_lines, read_text, split_lines
from .splitting import sorted_unique, dedupe, drop_seen, per_user_holdout


_ASCII_INT = re.compile(r"-?[0-9]+")


_MAX_ID = 2 ** 31 - 1


def _line_of(path, value: int) -> Optional[int]:
    """1-based line of the first token equal to ``value`` (for error messages)."""
    for k, ln in enumerate(split_lines(read_text(path, "utf-8"))):
        if str(value) in ln.split():
            return k + 1
    return None


def check_dense_ids(files, kind: str, ids: np.ndarray, slack: int = 10_000) -> None:
    """Refuse ids far beyond the number of distinct ids: the format keeps ids as row numbers,
    so one stray id of 2,000,000,000 would otherwise size every table by it."""
    if not len(ids):
        return
    top = int(ids.max())
    distinct = len(sorted_unique(ids))
    if top + 1 > 4 * distinct + slack:
        where = next(((f, ln) for f in files for ln in [_line_of(f, top)] if ln is not None), (files[0], None))
        raise DataError(where[0], f"{kind} id {top} is far beyond the {distinct} distinct {kind} ids of the split "
                                  f"files: LightGCN-format ids are 0-based row numbers; remap sparse ids to 0..n-1 "
                                  f"first", where[1])


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
                if not _ASCII_INT.fullmatch(tok):
                    raise DataError(path, f"ids must be integers written with the digits 0-9, found {tok!r}", k + 1)
                if len(tok.lstrip("-")) > 15:
                    raise DataError(path, f"id {tok} is too large (ids are 0-based row numbers)", k + 1)
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
    if len(flat) and flat.max() > _MAX_ID:
        pos = int(np.flatnonzero(flat > _MAX_ID)[0])
        line = int(np.searchsorted(np.cumsum(lens), pos, side="right")) + 1
        raise DataError(path, f"id {int(flat[pos])} is too large (ids are 0-based row numbers below 2^31)", line)
    cleanup[f"empty_user_lines_{tag}"] = int((counts == 0).sum())
    cleanup[f"repeated_user_lines_{tag}"] = int(len(line_users) - len(sorted_unique(line_users)))
    n_items = int(items.max()) + 1 if len(items) else 1
    keep = dedupe(users, items, n_items, keep="first")
    cleanup[f"duplicates_dropped_{tag}"] = int(len(users) - len(keep))
    return users[keep], items[keep], int(line_users.max()) if len(line_users) else -1


def load_lightgcn_dir(path, *, name: Optional[str] = None, valid_ratio: Optional[float] = None, seed: int = 0,
                      noise="none") -> Dataset:
    """A data set from a folder holding LightGCN-format ``train.txt``, ``test.txt`` and optionally ``valid.txt``.

    Without ``valid.txt``, ``valid_ratio`` (default 0.1) of each user's training rows become
    the validation split (``valid_ratio=0`` keeps none: training then runs without early
    stopping and reports the last epoch)."""
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
        valid_ratio = 0.0
    else:
        valid_ratio = 0.1 if valid_ratio is None else float(valid_ratio)
        hold = per_user_holdout(tr_u, valid_ratio, np.random.default_rng(seed))
        va_u, va_i, tr_u, tr_i = tr_u[hold], tr_i[hold], tr_u[~hold], tr_i[~hold]
    allu = np.concatenate([tr_u, va_u, te_u])
    alli = np.concatenate([tr_i, va_i, te_i])
    files = [folder / f for f in ("train.txt", "valid.txt", "test.txt") if (folder / f).is_file()]
    check_dense_ids(files, "user", np.concatenate([allu, np.array([max(m1, m2, m3, 0)])]))
    check_dense_ids(files, "item", alli)
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
