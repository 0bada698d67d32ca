"""Suspicious pairs proposed by a pre-trained backbone (the logical-relevance candidates).

Per user u, with backbone scores y(u, i) = <e_u, e_i>:

* the ``n_pos`` lowest-scored training positives (possibly noisy interactions),
* the ``n_neg`` highest-scored non-interacted items (possibly hard / false negatives),
* the ``k`` highest-scored training positives as the item-centric context (never candidates).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence

import numpy as np
import torch
from torch import Tensor


@dataclass
class UserCandidates:
    user: int
    positives: List[int]     #: lowest-scored training positives
    negatives: List[int]     #: highest-scored non-interacted items
    context: List[int]       #: highest-scored training positives, best first


@torch.no_grad()
def propose_candidates(user_emb: Tensor, item_emb: Tensor, train_pos: Sequence[np.ndarray], *,
                       n_pos: int = 2, n_neg: int = 1, n_context: int = 3,
                       chunk: int = 1024) -> List[UserCandidates]:
    n_users, n_items = len(train_pos), item_emb.shape[0]
    if user_emb.shape[0] != n_users:
        raise ValueError(f"backbone user embeddings have {user_emb.shape[0]} rows, the data set {n_users} users")
    if user_emb.shape[1] != item_emb.shape[1]:
        raise ValueError(f"backbone user/item embeddings differ in width: {user_emb.shape[1]} vs {item_emb.shape[1]}")
    ue, ie = user_emb.float().cpu(), item_emb.float().cpu()
    out: List[UserCandidates] = []
    for s in range(0, n_users, chunk):
        sc = ue[s:s + chunk] @ ie.T
        for r in range(sc.shape[0]):
            u = s + r
            pos = np.asarray(train_pos[u], dtype=np.int64)
            row = sc[r]
            if len(pos) == 0:
                out.append(UserCandidates(u, [], [], []))
                continue
            ps = row[torch.from_numpy(pos)].numpy()
            order = np.argsort(-ps, kind="stable")               # best first
            n_ctx = min(n_context, max(0, len(pos) - 1)) if n_pos > 0 else min(n_context, len(pos))
            ctx = pos[order[:n_ctx]].tolist()
            rest = order[n_ctx:]
            low = rest[::-1][:n_pos]                              # lowest-scored first
            negs: List[int] = []
            if n_neg > 0 and len(pos) < n_items:
                masked = row.clone()
                masked[torch.from_numpy(pos)] = -float("inf")
                kk = min(n_neg, n_items - len(pos))
                negs = torch.topk(masked, kk).indices.tolist()
            out.append(UserCandidates(u, pos[low].tolist(), negs, ctx))
    return out
