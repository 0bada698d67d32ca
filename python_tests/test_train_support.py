"""Helpers for the training, evaluation and CLI tests (no tests here): a tiny two-cluster
data set and hand-made signals standing in for the signals stage's output."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional

import torch

from llmhni_ext.data.dataset import Dataset, Interactions


@dataclass
class StandInSignals:
    user_sem: torch.Tensor
    item_sem: torch.Tensor
    hard_edges: torch.Tensor
    noisy_edges: torch.Tensor
    user_raw: Optional[torch.Tensor] = None
    item_raw: Optional[torch.Tensor] = None
    summary: Optional[Dict[str, Any]] = None


def tiny_dataset(n_users=40, n_items=60, per_user=8, seed=0, noise=0) -> Dataset:
    """Two taste clusters: users of cluster c mostly interact with items of cluster c."""
    g = torch.Generator().manual_seed(seed)
    us, its = [], []
    for u in range(n_users):
        c = u % 2
        pool = torch.arange(c, n_items, 2)
        pick = pool[torch.randperm(pool.numel(), generator=g)[: per_user + 4]]
        us += [u] * pick.numel()
        its += pick.tolist()
    us, its = torch.tensor(us), torch.tensor(its)
    # per user: first per_user -> train, next 2 -> valid, last 2 -> test
    pos = torch.cat([torch.arange(per_user + 4)] * n_users)
    tr, va, te = pos < per_user, (pos >= per_user) & (pos < per_user + 2), pos >= per_user + 2
    train = Interactions(us[tr], its[tr])
    labels = torch.zeros(int(tr.sum()), dtype=torch.bool)
    if noise:
        nu = torch.randint(0, n_users, (noise,), generator=g)
        ni = (nu % 2 + 1 + 2 * torch.randint(0, n_items // 2 - 1, (noise,), generator=g)) % n_items
        train = Interactions(torch.cat([train.users, nu]), torch.cat([train.items, ni]))
        labels = torch.cat([labels, torch.ones(noise, dtype=torch.bool)])
    return Dataset("tiny", n_users, n_items, train, Interactions(us[va], its[va]), Interactions(us[te], its[te]),
                   train_noise=labels, user_raw_ids=list(range(n_users)), item_raw_ids=list(range(n_items)))


def tiny_signals(ds: Dataset, dim=16, seed=0) -> StandInSignals:
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(2, dim, generator=g)
    us = centers[torch.arange(ds.n_users) % 2] + 0.3 * torch.randn(ds.n_users, dim, generator=g)
    it = centers[torch.arange(ds.n_items) % 2] + 0.3 * torch.randn(ds.n_items, dim, generator=g)
    noisy = torch.stack([ds.train.users[ds.train_noise], ds.train.items[ds.train_noise]]) \
        if ds.train_noise is not None else torch.zeros(2, 0, dtype=torch.long)
    hard = torch.stack([ds.valid.users[:5], ds.valid.items[:5]])  # [2, E] like the signals stage
    return StandInSignals(us, it, hard, noisy, user_raw=us + 0.5, item_raw=it - 0.5, summary={"stand_in": True})
