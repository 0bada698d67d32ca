"""Noise for the denoising experiments.

* Natural noise (:func:`natural_noise`): training rows rated 2 or less stay in
  training as interactions but are labelled noisy; validation and test keep only
  ratings of 4 or more (the relevant items).
* Injected noise (:func:`inject_noise`): ``round(r * |train|)`` (user, item) pairs drawn
  uniformly among pairs with no interaction in any split are appended to training
  only, labelled noisy; the same seed gives the same pairs.

Labels live in ``Dataset.train_noise`` (True = known noisy); both kinds combine.
"""
from __future__ import annotations

import math
from typing import Union

import numpy as np
import torch

from .dataset import Dataset, Interactions
from .splitting import first_occurrences, in_sorted, sorted_unique


def _labels(ds: Dataset) -> torch.Tensor:
    return ds.train_noise.clone() if ds.train_noise is not None else torch.zeros(len(ds.train), dtype=torch.bool)


def natural_noise(ds: Dataset, noisy_max: float = 2.0, relevant_min: float = 4.0) -> Dataset:
    """Label train rows with rating <= ``noisy_max`` noisy; keep valid/test rows with rating >= ``relevant_min``."""
    if ds.train.ratings is None:
        raise ValueError(f"natural noise needs ratings, and {ds.name!r} has none; use an injected ratio "
                         f"(noise=0.1) instead")
    scale = ds.meta.get("ratings", "")
    if scale and "star" not in str(scale):
        raise ValueError(f"natural noise needs star ratings; {ds.name!r} has {scale}")
    labels = _labels(ds) | (ds.train.ratings <= noisy_max)
    valid = ds.valid.select(ds.valid.ratings >= relevant_min) if ds.valid.ratings is not None else ds.valid
    test = ds.test.select(ds.test.ratings >= relevant_min) if ds.test.ratings is not None else ds.test
    meta = dict(ds.meta)
    meta["noise"] = "natural" if meta.get("noise") in (None, "none") else f"{meta['noise']}+natural"
    meta["natural_noise"] = {"noisy_max_rating": noisy_max, "relevant_min_rating": relevant_min,
                             "train_noisy": int((ds.train.ratings <= noisy_max).sum()),
                             "valid_dropped": len(ds.valid) - len(valid), "test_dropped": len(ds.test) - len(test)}
    return ds.replace(valid=valid, test=test, train_noise=labels, meta=meta)


def inject_noise(ds: Dataset, ratio: float, seed: int = 0) -> Dataset:
    """``ds`` with ``round(ratio * len(ds.train))`` random non-interacted pairs appended to train.

    Pairs are uniform over (user, item) with no interaction in train, valid or test and
    distinct from each other; ratings of added rows are NaN and timestamps -1 (unknown).
    """
    if not (isinstance(ratio, (int, float)) and math.isfinite(ratio) and 0 <= ratio):
        raise ValueError(f"noise ratio must be a finite number >= 0, got {ratio!r}")
    n_add = int(round(ratio * len(ds.train)))
    n_cells = ds.n_users * ds.n_items
    observed = sorted_unique(np.concatenate([s.keys(ds.n_items) for s in (ds.train, ds.valid, ds.test)]))
    free = n_cells - len(observed)
    if n_add > free:
        raise ValueError(f"cannot inject {n_add} noisy pairs into {ds.name!r}: only {free} (user, item) pairs "
                         f"have no interaction")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x6E6F697365]))
    chosen = np.zeros(0, dtype=np.int64)
    while len(chosen) < n_add:
        need = n_add - len(chosen)
        draw = rng.integers(0, n_cells, size=int(need * 1.2) + 16, dtype=np.int64)
        draw = draw[~in_sorted(draw, observed)]
        # keep first occurrences in draw order (deterministic), without already-chosen keys
        draw = draw[first_occurrences(draw)]
        draw = draw[~in_sorted(draw, np.sort(chosen))]
        chosen = np.concatenate([chosen, draw[:need]])
    users = torch.as_tensor(chosen // ds.n_items)
    items = torch.as_tensor(chosen % ds.n_items)
    t = ds.train
    added = Interactions(users, items,
                         None if t.ratings is None else torch.full((n_add,), float("nan")),
                         None if t.timestamps is None else torch.full((n_add,), -1, dtype=torch.long))
    train = Interactions(torch.cat([t.users, added.users]), torch.cat([t.items, added.items]),
                         None if t.ratings is None else torch.cat([t.ratings, added.ratings]),
                         None if t.timestamps is None else torch.cat([t.timestamps, added.timestamps]))
    labels = torch.cat([_labels(ds), torch.ones(n_add, dtype=torch.bool)])
    meta = dict(ds.meta)
    meta["noise"] = float(ratio) if meta.get("noise") in (None, "none") else f"{meta['noise']}+{ratio}"
    meta["injected_noise"] = {"ratio": float(ratio), "seed": int(seed), "added": n_add,
                              "clean_train_rows": len(t)}
    return ds.replace(train=train, train_noise=labels, meta=meta)


def apply_noise(ds: Dataset, noise: Union[str, float, None], seed: int = 0) -> Dataset:
    """``noise``: ``"none"``/None, ``"natural"``, or an injected ratio (float, or a string like ``"0.2"``)."""
    if noise is None or (isinstance(noise, str) and noise.strip().lower() in ("none", "", "0", "0.0")):
        return ds
    if isinstance(noise, str) and noise.strip().lower() == "natural":
        return natural_noise(ds)
    try:
        ratio = float(noise)
    except (TypeError, ValueError):
        raise ValueError(f"noise must be 'none', 'natural' or a ratio such as 0.2, got {noise!r}") from None
    if ratio == 0:
        return ds
    return inject_noise(ds, ratio, seed)
