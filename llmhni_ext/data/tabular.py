"""A generic CSV/TSV of (user, item[, rating, timestamp]) with optional text columns.

The separator follows the extension (``.csv`` comma, ``.tsv``/``.txt``/``.dat`` tab)
unless given. With a header row (detected when the first row names a known column, or
its user/item fields are not numbers while the next row's are; or forced with ``header=True``), columns are found by name
(``user``/``user_id``/``userId``, ``item``/``item_id``/``itemId``/``movieId``, ``rating``,
``timestamp``/``time``); without one they are positions 0, 1, 2, 3. Text columns
(``user_text_col``, ``item_text_col``) give per-row text for the row's user or item;
the first non-empty value per id wins (conflicting later values are counted as
``*_text_conflicts``). A ``split_col`` with values train/valid/test gives a fixed
split; otherwise rows are split at random per user by ``ratios``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

from .assemble import assemble
from .dataset import DataError, Dataset
from .parsing import finite_column, number_table, read_csv_records

_USER = ("user", "user_id", "userid", "uid", "user_id:token")
_ITEM = ("item", "item_id", "itemid", "iid", "movieid", "movie_id", "artistid", "item_id:token")
_RATING = ("rating", "ratings", "score", "weight", "rating:float")
_TIME = ("timestamp", "time", "ts", "timestamp:float")
_SPLIT_NAMES = {"train": 0, "trn": 0, "valid": 1, "val": 1, "validation": 1, "test": 2, "tst": 2}


def _find(head: List[str], given: Union[str, int, None], candidates: Sequence[str], what: str,
          path, required: bool) -> Optional[int]:
    low = [h.lower() for h in head]
    if given is not None:
        if isinstance(given, int):
            if not 0 <= given < len(head):
                raise DataError(path, f"{what} column index {given} out of range (the file has {len(head)} columns)", 1)
            return given
        if given.lower() in low:
            return low.index(given.lower())
        raise DataError(path, f"no {what} column named {given!r}; columns are {head}", 1)
    for c in candidates:
        if c in low:
            return low.index(c)
    if required:
        raise DataError(path, f"no {what} column found (looked for {', '.join(candidates)}); columns are {head}; "
                              f"name it with {what}_col=", 1)
    return None


def _numeric(x: str) -> bool:
    try:
        float(x)
        return True
    except ValueError:
        return False


def _has_header(first: List[str], second: Optional[List[str]]) -> bool:
    """A header row: its user/item fields are not numbers and either it names a known
    column or the next row's user/item fields are numbers."""
    if len(first) >= 2 and _numeric(first[0]) and _numeric(first[1]):
        return False
    low = {f.strip().lower() for f in first}
    if low & set(_USER + _ITEM):
        return True
    return second is not None and len(second) >= 2 and _numeric(second[0]) and _numeric(second[1])


def load_table(path, *, sep: Optional[str] = None, header: Optional[bool] = None,
               user_col: Union[str, int, None] = None, item_col: Union[str, int, None] = None,
               rating_col: Union[str, int, None] = None, timestamp_col: Union[str, int, None] = None,
               user_text_col: Union[str, int, None] = None, item_text_col: Union[str, int, None] = None,
               split_col: Union[str, int, None] = None, ratios: Sequence[float] = (0.8, 0.1, 0.1),
               seed: int = 0, noise="none", encoding: str = "utf-8", name: Optional[str] = None,
               ratings_are_stars: bool = True) -> Dataset:
    """Load a CSV/TSV interaction table (see the module docstring)."""
    path = Path(path)
    if sep is None:
        sep = "," if path.suffix.lower() == ".csv" else "\t"
    head, records = read_csv_records(path, delimiter=sep, encoding=encoding, header=False)
    if not records:
        raise DataError(path, "the file has no rows")
    first_line, first = records[0]
    if header is None:
        header = _has_header(first, records[1][1] if len(records) > 1 else None) or \
            any(isinstance(c, str) for c in (user_col, item_col, rating_col, timestamp_col, user_text_col,
                                             item_text_col, split_col))
    if header:
        head = [h.strip() for h in first]
        records = records[1:]
        if not records:
            raise DataError(path, "the file has a header row and no data rows", first_line)
    else:
        head = [str(k) for k in range(len(first))]
        user_col = 0 if user_col is None else user_col
        item_col = 1 if item_col is None else item_col
        if rating_col is None and len(first) > 2:
            rating_col = 2
        if timestamp_col is None and len(first) > 3:
            timestamp_col = 3
    ucol = _find(head, user_col, _USER, "user", path, True)
    icol = _find(head, item_col, _ITEM, "item", path, True)
    rcol = _find(head, rating_col, _RATING, "rating", path, False)
    tcol = _find(head, timestamp_col, _TIME, "timestamp", path, False)
    utcol = _find(head, user_text_col, (), "user text", path, False) if user_text_col is not None else None
    itcol = _find(head, item_text_col, (), "item text", path, False) if item_text_col is not None else None
    scol = _find(head, split_col, (), "split", path, False) if split_col is not None else None

    ncol = len(head)
    users, items, nums, nums_lines, codes = [], [], [], [], []
    utext: Dict[str, str] = {}
    itext: Dict[str, str] = {}
    cleanup: Dict[str, int] = {"user_text_conflicts": 0, "item_text_conflicts": 0}
    numcols = [c for c in (rcol, tcol) if c is not None]
    for line, rec in records:
        if len(rec) != ncol:
            raise DataError(path, f"expected {ncol} fields separated by {sep!r}, found {len(rec)}", line)
        u, it = rec[ucol].strip(), rec[icol].strip()
        if not u or not it:
            raise DataError(path, "empty user or item id", line)
        users.append(u)
        items.append(it)
        if numcols:
            nums.append([rec[c].strip() for c in numcols])
            nums_lines.append(line)
        if scol is not None:
            v = rec[scol].strip().lower()
            if v not in _SPLIT_NAMES:
                raise DataError(path, f"split value {rec[scol]!r} is not train/valid/test", line)
            codes.append(_SPLIT_NAMES[v])
        for col, store, tag, key in ((utcol, utext, "user", u), (itcol, itext, "item", it)):
            if col is not None:
                txt = rec[col].strip()
                if txt:
                    if key not in store:
                        store[key] = txt
                    elif store[key] != txt:
                        cleanup[f"{tag}_text_conflicts"] += 1
    vals = number_table(path, nums, nums_lines, [head[c] for c in numcols]) if numcols else None
    ratings = timestamps = None
    k = 0
    if rcol is not None:
        ratings = finite_column(path, vals[:, k], nums_lines, "rating")
        k += 1
    if tcol is not None:
        timestamps = finite_column(path, vals[:, k], nums_lines, "timestamp", integer=True)
    meta = {"source": str(path), "format": "table", "ratios": list(ratios),
            "ratings": ("stars" if ratings_are_stars else "values") if ratings is not None else None}
    ds = assemble(name or path.stem, np.array(users), np.array(items), ratings=ratings, timestamps=timestamps,
                  codes=np.array(codes, dtype=np.int8) if scol is not None else None, ratios=ratios, seed=seed,
                  meta=meta, cleanup=cleanup, user_text=utext if utcol is not None else None,
                  item_text=itext if itcol is not None else None)
    from .noise import apply_noise
    return apply_noise(ds, noise, seed)
