"""Full-ranking evaluation: every item is ranked for every user, known items masked.

``Recall@K(u) = |top_K(u) ∩ T_u| / |T_u|`` and
``NDCG@K(u) = sum_{r<K, top_K(u)_r in T_u} 1/log2(r+2) / sum_{r<min(K,|T_u|)} 1/log2(r+2)``,
averaged over the users with at least one held-out item ``T_u``.

Scores are computed in float64 and ties are broken towards the lower item id, so the
ranking of a user does not depend on which other users share its evaluation batch:
results are identical for every ``user_batch``. Items are scored in blocks of
``item_block`` and merged into a running top-K, so memory is
O(user_batch * (item_block + K)) whatever the catalogue size.
"""
from __future__ import annotations

import math
from typing import Dict, Iterable, Optional, Sequence

import torch
from torch import Tensor

from .graph import CSR, csr_from_coo

DEFAULT_KS = (5, 10, 20)     #: the paper reports Recall and NDCG at 5, 10 and 20


def _rows(csr: CSR, lo: int, hi: int):
    """(local row, col) of the entries of rows lo..hi-1 of a CSR."""
    a, b = int(csr.rowptr[lo]), int(csr.rowptr[hi])
    counts = (csr.rowptr[lo + 1: hi + 1] - csr.rowptr[lo:hi]).long()
    rows = torch.repeat_interleave(torch.arange(hi - lo, device=counts.device), counts)
    return rows, csr.col[a:b].long()


def topk_items(user_emb: Tensor, item_emb: Tensor, exclude: Optional[CSR], k: int,
               user_batch: int = 1024, item_block: int = 8192) -> Tensor:
    """Top-``k`` item ids per user by ``<u, i>``, excluding the items in ``exclude``'s row.

    Returns int64 [n_users, k]; slots beyond the number of rankable items hold -1."""
    n_users, n_items = user_emb.shape[0], item_emb.shape[0]
    if k <= 0:
        raise ValueError(f"k must be > 0, got {k}")
    if user_batch <= 0 or item_block <= 0:
        raise ValueError(f"user_batch and item_block must be > 0, got {user_batch}, {item_block}")
    if exclude is not None and (exclude.n_rows != n_users or exclude.n_cols != n_items):
        raise ValueError(f"exclude must be {n_users} x {n_items}, got {exclude.n_rows} x {exclude.n_cols}")
    out = torch.full((n_users, k), -1, dtype=torch.long, device=user_emb.device)
    items64 = item_emb.double()
    for lo in range(0, n_users, user_batch):
        hi = min(lo + user_batch, n_users)
        u = user_emb[lo:hi].double()
        ex_r, ex_c = _rows(exclude, lo, hi) if exclude is not None else (None, None)
        best_v = torch.full((hi - lo, 0), -math.inf, dtype=torch.float64, device=u.device)
        best_i = torch.empty((hi - lo, 0), dtype=torch.long, device=u.device)
        for j0 in range(0, n_items, item_block):
            j1 = min(j0 + item_block, n_items)
            s = u @ items64[j0:j1].T
            if ex_r is not None:
                sel = (ex_c >= j0) & (ex_c < j1)
                s[ex_r[sel], ex_c[sel] - j0] = -math.inf
            idx = torch.arange(j0, j1, device=u.device).expand(hi - lo, -1)
            # earlier candidates (lower ids) first, then a stable sort: ties go to the lower id
            v = torch.cat([best_v, s], dim=1)
            i = torch.cat([best_i, idx], dim=1)
            v, order = torch.sort(v, dim=1, descending=True, stable=True)
            kk = min(k, v.shape[1])
            best_v, best_i = v[:, :kk], torch.gather(i, 1, order[:, :kk])
        best_i = torch.where(torch.isinf(best_v) & (best_v < 0), torch.full_like(best_i, -1), best_i)
        out[lo:hi, : best_i.shape[1]] = best_i
    return out


def ranking_metrics(top: Tensor, truth: CSR, ks: Sequence[int] = DEFAULT_KS) -> Dict[str, float]:
    """Recall@K and NDCG@K of ranked lists ``top`` [n_users, >=max(ks)] against ``truth``
    (user -> held-out items), averaged over users with at least one held-out item."""
    n_users = top.shape[0]
    if truth.n_rows != n_users:
        raise ValueError(f"truth has {truth.n_rows} rows but {n_users} ranked lists were given")
    kmax = max(ks)
    if top.shape[1] < kmax:
        raise ValueError(f"need ranked lists of length >= {kmax}, got {top.shape[1]}")
    n_true = truth.degrees().to(top.device)
    keys = truth.row_ids().to(top.device) * truth.n_cols + truth.col.long().to(top.device)
    top = top[:, :kmax]
    cand = torch.arange(n_users, device=top.device).unsqueeze(1) * truth.n_cols + top.clamp(min=0)
    hit = torch.isin(cand, keys) & (top >= 0)
    valid = n_true > 0
    n_eval = int(valid.sum())
    disc = 1.0 / torch.log2(torch.arange(kmax, device=top.device, dtype=torch.float64) + 2.0)
    res: Dict[str, float] = {}
    for k in ks:
        h = hit[:, :k].double()
        recall = h.sum(1) / n_true.clamp(min=1).double()
        dcg = (h * disc[:k]).sum(1)
        cum = torch.cat([torch.zeros(1, dtype=torch.float64, device=top.device), torch.cumsum(disc[:k], 0)])
        idcg = cum[n_true.clamp(max=k)]
        ndcg = dcg / idcg.clamp(min=1e-12)
        res[f"recall@{k}"] = float(recall[valid].sum() / max(n_eval, 1))
        res[f"ndcg@{k}"] = float(ndcg[valid].sum() / max(n_eval, 1))
    res["users"] = n_eval
    return res


def interactions_csr(users: Tensor, items: Tensor, n_users: int, n_items: int) -> CSR:
    """User -> item CSR of (user, item) pairs (duplicates merged)."""
    return csr_from_coo(users.long(), items.long(), n_users, n_items)


def merge_csr(parts: Iterable[CSR]) -> CSR:
    parts = list(parts)
    rows = torch.cat([p.row_ids() for p in parts])
    cols = torch.cat([p.col.long() for p in parts])
    return csr_from_coo(rows, cols, parts[0].n_rows, parts[0].n_cols)


def full_ranking(user_emb: Tensor, item_emb: Tensor, truth: CSR, exclude: Optional[CSR],
                 ks: Sequence[int] = DEFAULT_KS, user_batch: int = 1024,
                 item_block: int = 8192, dist=None) -> Dict[str, float]:
    """Recall@K and NDCG@K over all items, with ``exclude`` (training, and for test
    also validation, items) masked. Only users with held-out items are ranked.

    ``dist`` (:class:`llmhni_ext.distributed.Dist`): each rank ranks a block of the users and
    the top-k lists are gathered, so every rank gets one process's metrics exactly."""
    users = torch.nonzero(truth.degrees() > 0).flatten()
    if users.numel() == 0:
        return {**{f"{m}@{k}": 0.0 for k in ks for m in ("recall", "ndcg")}, "users": 0}
    sub_truth = _subset_rows(truth, users)
    sub_ex = _subset_rows(exclude, users) if exclude is not None else None
    if dist is not None and dist.active:
        lo, hi = dist.block(users.numel())
        mine = users[lo:hi]
        ex = _subset_rows(exclude, mine) if exclude is not None else None
        local = topk_items(user_emb[mine.to(user_emb.device)], item_emb, ex, max(ks), user_batch, item_block)
        top = dist.gather_rows(local, users.numel())
    else:
        top = topk_items(user_emb[users.to(user_emb.device)], item_emb, sub_ex, max(ks), user_batch, item_block)
    return ranking_metrics(top, sub_truth.to(top.device), ks)


def _subset_rows(csr: CSR, rows: Tensor) -> CSR:
    deg = csr.degrees()[rows]
    starts = csr.rowptr[:-1].long()[rows]
    rowptr = torch.zeros(rows.numel() + 1, dtype=torch.long)
    rowptr[1:] = torch.cumsum(deg, 0)
    idx = torch.repeat_interleave(starts - rowptr[:-1], deg) + torch.arange(int(rowptr[-1]))
    col = csr.col[idx]
    return CSR(rowptr.to(csr.rowptr.dtype), col, None, rows.numel(), csr.n_cols)


def edge_set_quality(predicted_users: Tensor, predicted_items: Tensor, true_users: Tensor,
                     true_items: Tensor, n_items: int) -> Dict[str, float]:
    """Precision and recall of a predicted edge set (e.g. the edges G' removed) against
    labelled ones (e.g. the injected noisy edges)."""
    p = torch.unique(predicted_users.long() * n_items + predicted_items.long())
    t = torch.unique(true_users.long() * n_items + true_items.long())
    tp = int(torch.isin(p, t).sum())
    return {"predicted": int(p.numel()), "labelled": int(t.numel()), "true_positives": tp,
            "precision": tp / p.numel() if p.numel() else 0.0,
            "recall": tp / t.numel() if t.numel() else 0.0}
