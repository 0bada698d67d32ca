"""Imported judgments: G' from an external denoised edge list instead of a judge of ours.

A language model that judged the data elsewhere (LLaRD's Qwen relation knowledge, or any
user's own run) leaves either the whole denoised graph or the pairs it removed and added.
``signals.judge = imported`` reads that file (``signals.judge_import``) and turns it into the
edges G' drops (``noisy``) and adds (``hard``), exactly as a judge's verdicts would be.

File formats (by content; ``#`` starts a comment, fields split on white space, commas or tabs):

* a LLaRD ``.npy`` (``{user: [items]}``, read without unpickling anything else): the whole G';
* ``user item`` lines: the whole G';
* ``op user item`` lines with ``op`` one of ``+``/``add``/``added`` or ``-``/``remove``/``removed``:
  the changes only.

A whole G' is compared with its base graph, the graph the judge started from
(``signals.judge_import_base``; for a LLaRD file ``../traindata.npy`` beside ``rel_k/``; else
the run's training graph): removed = base - G', added = G' - base. ``judge_import = llard``
names the LLaRD file of a ``llard-*`` data set.

Then, against the run's split: a removed pair that is a training pair is dropped from G'
(one outside training, for instance a validation pair, changes nothing and is counted); an
added pair that is already a training pair changes nothing; an added pair that is a
held-out pair (validation or test) is **not** added by default (``judge_import_heldout =
drop``: a held-out pair never enters training, so evaluation stays clean) and is counted;
``keep`` adds the test pairs too, as the source's own training did, but never a validation
pair under the validated protocol. Out-of-range ids and duplicate rows are dropped and counted.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import numpy as np
import torch

from ..data.dataset import DataError
from ..data.splitting import in_sorted

_ADD = ("+", "add", "added")
_REMOVE = ("-", "remove", "removed", "del", "delete")
_SPLIT = re.compile(r"[\s,]+")


def resolve_import(spec: str, ds) -> Tuple[Path, Optional[Path]]:
    """(G' file, base file or None) that ``signals.judge_import`` names for ``ds``."""
    if spec.strip().lower() == "llard":
        folder = (ds.meta.get("llard") or {}).get("folder")
        if not folder:
            raise ValueError(f"signals.judge_import=llard names the LLaRD G' of a llard-* data set "
                             f"(llard-amazon-book, llard-yelp); {ds.name!r} is not one: give a file path instead")
        from ..data.llard import default_graph_files
        g, base = default_graph_files(folder)
        return g, base
    path = Path(os.path.expanduser(spec))
    if not path.is_file():
        raise FileNotFoundError(f"signals.judge_import: {path} not found")
    if path.suffix == ".npy" and path.parent.name == "rel_k" and (path.parent.parent / "traindata.npy").is_file():
        return path, path.parent.parent / "traindata.npy"
    return path, None


def _keys_of_pairs(u: np.ndarray, i: np.ndarray, n_users: int, n_items: int, counts: Dict[str, int], tag: str) -> np.ndarray:
    """Sorted unique keys of the in-range pairs; what was dropped is added to ``counts``."""
    from ..data.llard import clip_pairs
    us, its, c = clip_pairs(u, i, n_users, n_items)
    for what in ("out_of_range", "duplicates"):
        counts[f"{tag}{what}_dropped"] = counts.get(f"{tag}{what}_dropped", 0) + c[what]
    return us * np.int64(n_items) + its


def read_edge_file(path, n_users: int, n_items: int) -> Dict[str, Any]:
    """``{"format": "graph", "keys"}`` or ``{"format": "diff", "removed", "added"}`` (sorted
    unique int64 keys ``user * n_items + item``) and ``counts`` of what was dropped."""
    path = Path(path)
    counts: Dict[str, int] = {}
    if path.suffix == ".npy":
        from ..data.llard import read_user_lists, user_lists_to_pairs
        u, i = user_lists_to_pairs(read_user_lists(path))
        counts["file_pairs"] = int(len(u))
        return {"format": "graph (LLaRD .npy)", "keys": _keys_of_pairs(u, i, n_users, n_items, counts, ""), "counts": counts}
    ops, us, its = [], [], []
    kind = None
    try:
        fh = open(path, "r", encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(path, f"not UTF-8 text ({e})") from None
    with fh:
        for line_no, line in enumerate(fh, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            tok = [t for t in _SPLIT.split(line) if t]
            this = "diff" if len(tok) == 3 else "graph" if len(tok) == 2 else None
            if this is None:
                raise DataError(path, f"expected 'user item' or 'op user item' (op: + or -), found {len(tok)} "
                                      f"fields", line_no)
            if kind is None and not all(t.lstrip("-").isdigit() for t in tok[-2:]):
                kind = this          # a header line such as 'user,item' or 'op,user,item'
                continue
            if kind is not None and this != kind:
                raise DataError(path, "mixes 'user item' and 'op user item' lines", line_no)
            kind = this
            try:
                u, i = int(tok[-2]), int(tok[-1])
            except ValueError:
                raise DataError(path, f"user and item must be integers, found {tok[-2]!r}, {tok[-1]!r}", line_no) from None
            if this == "diff":
                op = tok[0].lower()
                if op not in _ADD + _REMOVE:
                    raise DataError(path, f"op must be + (add) or - (remove), found {tok[0]!r}", line_no)
                ops.append(op in _ADD)
            us.append(u)
            its.append(i)
    u, i = np.asarray(us, np.int64), np.asarray(its, np.int64)
    counts["file_pairs"] = int(len(u))
    if kind != "diff":
        return {"format": "graph (edge list)", "keys": _keys_of_pairs(u, i, n_users, n_items, counts, ""), "counts": counts}
    add = np.asarray(ops, bool)
    added = _keys_of_pairs(u[add], i[add], n_users, n_items, counts, "")
    removed = _keys_of_pairs(u[~add], i[~add], n_users, n_items, counts, "")
    both = np.intersect1d(added, removed)
    if len(both):
        raise DataError(path, f"{len(both)} pairs are both added and removed (first: user {both[0] // n_items}, "
                              f"item {both[0] % n_items})")
    return {"format": "diff (+/- pairs)", "removed": removed, "added": added, "counts": counts}


def _per_item(keys: np.ndarray, n_items: int) -> Dict[str, Any]:
    if len(keys) == 0:
        return {"items": 0}
    cnt = np.bincount((keys % n_items).astype(np.int64), minlength=n_items)
    top = np.sort(cnt)[::-1]
    return {"items": int((cnt > 0).sum()), "max_per_item": int(top[0]), "item_with_most": int(np.argmax(cnt)),
            "top1_share": float(top[0] / len(keys)), "top10_share": float(top[:10].sum() / len(keys))}


def imported_judgments(ds, cfg) -> Tuple[torch.Tensor, torch.Tensor, Dict[str, Any], Dict[str, Any]]:
    """(hard [2, h], noisy [2, k], per-pair judgments, summary) from ``cfg.judge_import``."""
    from ..data.download import sha256_of
    n_u, n_i = ds.n_users, ds.n_items
    path, base_path = resolve_import(cfg.judge_import, ds)
    if cfg.judge_import_base:
        base_path = Path(os.path.expanduser(cfg.judge_import_base))
        if not base_path.is_file():
            raise FileNotFoundError(f"signals.judge_import_base: {base_path} not found")
    got = read_edge_file(path, n_u, n_i)
    counts = dict(got["counts"])
    train = np.unique(ds.train.keys(n_i))
    paper = ds.meta.get("protocol") == "paper"              # its valid split is the test split
    valid = np.zeros(0, np.int64) if paper else np.unique(ds.valid.keys(n_i))
    test = np.unique(ds.test.keys(n_i))
    info: Dict[str, Any] = {"judge": "imported", "proxy": False, "source": str(path), "sha256": sha256_of(path),
                            "format": got["format"], "heldout_policy": cfg.judge_import_heldout}
    if "keys" in got:
        if base_path is not None:
            base = read_edge_file(base_path, n_u, n_i)
            if "keys" not in base:
                raise DataError(base_path, "a base graph must be a whole graph, not +/- changes")
            base_keys = base["keys"]
            counts.update({f"base_{k}": v for k, v in base["counts"].items()})
            info.update(base=str(base_path), base_sha256=sha256_of(base_path))
        else:
            base_keys = train
            info["base"] = "the run's training graph"
        gp = got["keys"]
        removed = base_keys[~in_sorted(base_keys, gp)]
        added = gp[~in_sorted(gp, base_keys)]
        split = np.union1d(np.union1d(train, valid), test)
        info["base_check"] = {"base_pairs": int(len(base_keys)),
                              "base_not_in_train_valid_test": int((~in_sorted(base_keys, split)).sum()),
                              "train_not_in_base": int((~in_sorted(train, base_keys)).sum())}
    else:
        removed, added = got["removed"], got["added"]
        info["base"] = "none (the file lists the changes)"
    in_train_r = in_sorted(removed, train)
    noisy_keys = removed[in_train_r]
    in_train_a, in_valid_a, in_test_a = in_sorted(added, train), in_sorted(added, valid), in_sorted(added, test)
    drop = in_train_a | in_valid_a | (in_test_a if cfg.judge_import_heldout == "drop" else False)
    hard_keys = added[~drop]
    info.update(counts)
    info.update({
        "removed": int(len(removed)), "added": int(len(added)),
        "removed_in_train": int(in_train_r.sum()), "removed_outside_train": int((~in_train_r).sum()),
        "added_already_in_train": int(in_train_a.sum()), "added_in_valid_not_added": int(in_valid_a.sum()),
        "added_in_test": int(in_test_a.sum()),
        "added_in_heldout_fraction": float((in_valid_a | in_test_a).mean()) if len(added) else None,
        "added_in_test_fraction": float(in_test_a.mean()) if len(added) else None,
        "positives_noisy_dropped": int(len(noisy_keys)), "negatives_hard_added": int(len(hard_keys)),
        "removed_fraction_of_train": float(len(noisy_keys) / max(1, len(train))),
        "added_per_item": _per_item(hard_keys, n_i),
        "complete": True, "unjudged": 0,
        "note": "IMPORTED judgments: G' read from a file, not judged by llmhni",
    })
    hard = torch.from_numpy(np.stack([hard_keys // n_i, hard_keys % n_i])).long()
    noisy = torch.from_numpy(np.stack([noisy_keys // n_i, noisy_keys % n_i])).long()
    us = np.concatenate([noisy_keys // n_i, hard_keys // n_i])
    its = np.concatenate([noisy_keys % n_i, hard_keys % n_i])
    pos = np.r_[np.ones(len(noisy_keys), bool), np.zeros(len(hard_keys), bool)]
    verdict = ["noisy"] * len(noisy_keys) + ["hard"] * len(hard_keys)
    judg = {"users": torch.from_numpy(us).long(), "items": torch.from_numpy(its).long(),
            "is_positive": torch.from_numpy(pos), "label_user": ["imported"] * len(verdict),
            "label_item": ["imported"] * len(verdict), "verdict": verdict}
    return hard, noisy, judg, info


def apply_to_train(ds, hard: torch.Tensor, noisy: torch.Tensor):
    """``ds`` with its training interactions replaced by G' = (train ∪ hard) \\ noisy."""
    from ..data.dataset import Interactions
    n_i = ds.n_items
    keys = np.union1d(ds.train.keys(n_i), (hard[0] * n_i + hard[1]).numpy())
    keys = keys[~in_sorted(keys, np.unique((noisy[0] * n_i + noisy[1]).numpy()))]
    return ds.replace(train=Interactions(keys // n_i, keys % n_i), train_noise=None)
