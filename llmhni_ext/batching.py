"""How an epoch's training pairs are ordered into batches (``train.batching``).

* ``interactions``: a permutation of the graph's edges, each once per epoch (heavy users weigh
  by their degree), as SELFRec, SSLRec and RecBole build their batches;
* ``users``: users drawn uniformly with replacement, then one of each drawn user's positives
  uniformly, as many draws as the graph has edges (LightGCN's reference code; every user
  weighs the same). Users without positives are never drawn.
"""
from __future__ import annotations

import torch
from torch import Tensor

BATCHINGS = ("interactions", "users")


def epoch_order(users: Tensor, n_users: int, mode: str, gen: torch.Generator) -> Tensor:
    """Indices into the graph's edge list (``users`` holds each edge's user), in batch order.

    The draw is a function of ``gen`` alone (the trainer seeds it from (seed, epoch)), so a
    resumed run sees the same batches."""
    users = users.cpu()
    n = users.numel()
    if mode == "interactions":
        return torch.randperm(n, generator=gen)
    if mode != "users":
        raise ValueError(f"batching must be one of {', '.join(BATCHINGS)}, got {mode!r}")
    if n == 0:
        return torch.zeros(0, dtype=torch.long)
    by_user = torch.argsort(users, stable=True)
    deg = torch.bincount(users, minlength=n_users)
    start = torch.cumsum(deg, 0) - deg
    active = torch.nonzero(deg > 0).flatten()
    drawn = active[torch.randint(0, active.numel(), (n,), generator=gen)]
    within = (torch.rand(n, generator=gen, dtype=torch.float64) * deg[drawn]).long()
    return by_user[start[drawn] + torch.minimum(within, deg[drawn] - 1)]
