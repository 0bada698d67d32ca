"""Suspicious pairs proposed by a pre-trained backbone (the logical-relevance candidates).

Per user u with ``|P_u|`` training positives and backbone scores y(u, i) = <e_u, e_i>:

* the ``max(n_pos, ceil(pos_frac * |P_u|))`` lowest-scored training positives (possibly
  noisy interactions): coverage grows with the user's history, as the noise does;
* the ``max(n_neg, ceil(neg_frac * |P_u|))`` highest-scored non-interacted items (possibly
  hard / false negatives);
* the ``k`` highest-scored training positives as the item-centric context (never candidates).

Each user also gets a *suspicion* score, used to judge the most suspicious users first when
a judge cannot judge them all: how far the candidate positives fall below the user's median
positive score, and the candidate negatives rise above it, in units of the standard
deviation of the user's positive scores (mean over the user's candidates).
"""
from __future__ import annotations

import math
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
    suspicion: float = 0.0   #: how atypical the candidates' scores are for this user


def per_user_count(fixed: int, frac: float, n_pos: int) -> int:
    """``max(fixed, ceil(frac * n_pos))`` candidates for a user with ``n_pos`` positives."""
    return max(int(fixed), int(math.ceil(frac * n_pos - 1e-9)) if frac > 0 else 0)


@torch.no_grad()
def propose_candidates(user_emb: Tensor, item_emb: Tensor, train_pos: Sequence[np.ndarray], *,
                       n_pos: int = 2, n_neg: int = 1, n_context: int = 3, pos_frac: float = 0.0,
                       neg_frac: float = 0.0, chunk: int = 1024) -> List[UserCandidates]:
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
            k_pos = per_user_count(n_pos, pos_frac, len(pos))
            k_neg = per_user_count(n_neg, neg_frac, len(pos))
            n_ctx = min(n_context, max(0, len(pos) - 1)) if k_pos > 0 else min(n_context, len(pos))
            ctx = pos[order[:n_ctx]].tolist()
            rest = order[n_ctx:]
            low = rest[::-1][:k_pos]                              # lowest-scored first
            negs: List[int] = []
            neg_scores = np.zeros(0)
            if k_neg > 0 and len(pos) < n_items:
                masked = row.clone()
                masked[torch.from_numpy(pos)] = -float("inf")
                top = torch.topk(masked, min(k_neg, n_items - len(pos)))
                negs, neg_scores = top.indices.tolist(), top.values.numpy()
            med, sd = float(np.median(ps)), float(np.std(ps)) + 1e-6
            gaps = np.concatenate([(med - ps[low]) / sd, (neg_scores - med) / sd])
            out.append(UserCandidates(u, pos[low].tolist(), negs, ctx, float(gaps.mean()) if gaps.size else 0.0))
    return out
