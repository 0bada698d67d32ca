"""RecBole atomic files: ``<name>.inter`` (optionally ``<name>.user`` / ``<name>.item``).

The header names each field with its type, ``user_id:token  item_id:token  rating:float
timestamp:float``, tab-separated. ``path`` is a ``.inter`` file or a folder holding
either ``<name>.inter`` (split at random per user by ``ratios``, as RecBole's ``RS``
with ``group_by: user`` and ``order: RO``) or the benchmark files
``<name>.train.inter`` / ``<name>.valid.inter`` / ``<name>.test.inter`` (a fixed split).
Item text joins the ``token_seq``/``token`` fields of ``<name>.item`` other than the id
(e.g. ``movie_title``, ``genre``); user text likewise from ``<name>.user``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .assemble import assemble
from .dataset import DataError, Dataset
from .parsing import finite_column, number_table, read_text, split_lines
from .text import join_sentences


def _header(path: Path, line: str) -> List[Tuple[str, str]]:
    out = []
    for f in line.split("\t"):
        f = f.strip()
        if ":" not in f:
            raise DataError(path, f"header field {f!r} is not name:type (RecBole atomic files name each "
                                  f"field with its type, e.g. user_id:token)", 1)
        n, t = f.rsplit(":", 1)
        if t not in ("token", "token_seq", "float", "float_seq"):
            raise DataError(path, f"unknown RecBole field type {t!r} in {f!r}", 1)
        out.append((n, t))
    return out


def read_atomic(path: Path, encoding: str = "utf-8"):
    """(fields, rows, line numbers) of an atomic file."""
    lines = split_lines(read_text(path, encoding))
    if not lines:
        raise DataError(path, "empty file (a header row is required)", 1)
    fields = _header(path, lines[0])
    rows, nums = [], []
    for k, ln in enumerate(lines[1:], 2):
        if not ln.strip():
            continue
        f = ln.split("\t")
        if len(f) != len(fields):
            raise DataError(path, f"expected {len(fields)} tab-separated fields, found {len(f)}", k)
        rows.append(f)
        nums.append(k)
    if not rows:
        raise DataError(path, "the file has a header row and no data rows", 1)
    return fields, rows, nums


def _inter(path: Path, user_field: str, item_field: str, encoding: str):
    fields, rows, nums = read_atomic(path, encoding)
    names = [n for n, _ in fields]
    for need in (user_field, item_field):
        if need not in names:
            raise DataError(path, f"no {need!r} field; fields are {names} (set user_field=/item_field=)", 1)
    ui, ii = names.index(user_field), names.index(item_field)
    users = np.array([r[ui].strip() for r in rows])
    items = np.array([r[ii].strip() for r in rows])
    empty = np.flatnonzero((users == "") | (items == ""))
    if len(empty):
        raise DataError(path, "empty user or item id", nums[empty[0]])
    ratings = timestamps = None
    for fname, attr in (("rating", "r"), ("timestamp", "t")):
        if fname in names:
            j = names.index(fname)
            col = number_table(path, [[r[j].strip()] for r in rows], nums, [fname])[:, 0]
            if attr == "r":
                ratings = finite_column(path, col, nums, fname)
            else:
                timestamps = finite_column(path, col, nums, fname, integer=True)
    return users, items, ratings, timestamps


def _side_text(path: Path, id_field: str, encoding: str) -> Optional[Dict[str, str]]:
    if not path.is_file():
        return None
    fields, rows, _ = read_atomic(path, encoding)
    names = [n for n, _ in fields]
    if id_field not in names:
        raise DataError(path, f"no {id_field!r} field; fields are {names}", 1)
    j = names.index(id_field)
    text_cols = [k for k, (n, t) in enumerate(fields) if k != j and t in ("token", "token_seq")]
    return {r[j].strip(): join_sentences(f"{fields[k][0].replace('_', ' ')}: {r[k].strip()}" for k in text_cols
                                         if r[k].strip()) for r in rows}


def load_recbole_inter(path, *, ratios: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0, noise="none",
                       user_field: str = "user_id", item_field: str = "item_id", encoding: str = "utf-8",
                       name: Optional[str] = None) -> Dataset:
    """Load RecBole atomic files (see the module docstring)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found (a RecBole .inter file or a folder holding one)")
    if path.is_dir():
        bench = sorted(path.glob("*.train.inter"))
        singles = [p for p in sorted(path.glob("*.inter")) if p.name.count(".") == 1]
        if bench:
            stem = bench[0].name[: -len(".train.inter")]
        elif singles:
            stem = singles[0].stem
        else:
            raise FileNotFoundError(f"{path}: no .inter file")
        folder = path
    else:
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found")
        folder, stem = path.parent, path.name[: -len(".inter")]
        bench = []
        for suffix in (".train", ".valid", ".test"):
            if stem.endswith(suffix):
                stem = stem[: -len(suffix)]
                bench = [folder / f"{stem}.train.inter"]
    cleanup: Dict[str, int] = {}
    if bench:
        parts = []
        for c, tag in enumerate(("train", "valid", "test")):
            f = folder / f"{stem}.{tag}.inter"
            if not f.is_file():
                if tag == "valid":
                    continue
                raise FileNotFoundError(f"{f} not found (benchmark files need .train.inter and .test.inter)")
            u, i, r, t = _inter(f, user_field, item_field, encoding)
            parts.append((u, i, r, t, np.full(len(u), c, dtype=np.int8)))
        users = np.concatenate([p[0] for p in parts])
        items = np.concatenate([p[1] for p in parts])
        ratings = None if any(p[2] is None for p in parts) else np.concatenate([p[2] for p in parts])
        timestamps = None if any(p[3] is None for p in parts) else np.concatenate([p[3] for p in parts])
        codes = np.concatenate([p[4] for p in parts])
        source = str(folder / f"{stem}.{{train,valid,test}}.inter")
    else:
        f = folder / f"{stem}.inter"
        users, items, ratings, timestamps = _inter(f, user_field, item_field, encoding)
        codes = None
        source = str(f)
    utext = _side_text(folder / f"{stem}.user", user_field, encoding)
    itext = _side_text(folder / f"{stem}.item", item_field, encoding)
    meta = {"source": source, "format": "recbole", "ratios": list(ratios) if codes is None else None,
            "ratings": "stars" if ratings is not None else None}
    ds = assemble(name or stem, users, items, ratings=ratings, timestamps=timestamps, codes=codes, ratios=ratios,
                  seed=seed, meta=meta, cleanup=cleanup, user_text=utext, item_text=itext)
    from .noise import apply_noise
    return apply_noise(ds, noise, seed)
