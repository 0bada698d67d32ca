"""Reference twins of the contrastive ops (csrc/contrastive/): edge-dropped views and the
batched cosine InfoNCE."""
from __future__ import annotations

from typing import List, Tuple

import torch
from torch import Tensor

from . import checks as C
from .common import inv_sqrt_degree, philox_random, uniform_float

OPS = ["edge_drop_mask", "edge_drop_compact", "infonce", "infonce_backward"]


def _edge_keep(rowptr: Tensor, col: Tensor, keep_prob: float, num_views: int, seed: int, offset: int) -> Tensor:
    """[num_views, nnz] bool: whether each stored entry survives in each view.

    An undirected edge {r, c} is decided once: the Philox counter is its canonical key
    min(r, c) * n + max(r, c), so both stored directions draw the same word. View v uses
    word v % 4 of the draw with sub = v // 4; keep iff uniform_float(word) < float32(keep_prob)."""
    n = rowptr.numel() - 1
    rows = torch.repeat_interleave(torch.arange(n, device=col.device), (rowptr[1:] - rowptr[:-1]).long())
    c = col.long()
    key = torch.minimum(rows, c) * n + torch.maximum(rows, c)
    p = torch.tensor(keep_prob, dtype=torch.float32, device=col.device)
    keep = []
    for v in range(num_views):
        if v % 4 == 0:
            words = philox_random(seed, offset, key, v // 4)
        keep.append(uniform_float(words[:, v % 4]) < p)
    return torch.stack(keep) if keep else torch.zeros(0, c.numel(), dtype=torch.bool, device=col.device)


def _renormalized(rowptr: Tensor, col: Tensor, keep: Tensor) -> Tensor:
    """D'^-1/2 A' D'^-1/2 on the stored entries (0 where dropped), degrees counted over kept entries."""
    n = rowptr.numel() - 1
    rows = torch.repeat_interleave(torch.arange(n, device=col.device), (rowptr[1:] - rowptr[:-1]).long())
    deg = torch.zeros(keep.shape[0], n, dtype=torch.float64, device=col.device).index_add_(1, rows, keep.double())
    dinv = torch.where(deg > 0, inv_sqrt_degree(deg), torch.zeros_like(deg))
    value = dinv[:, rows] * dinv[:, col.long()]
    return torch.where(keep, value, torch.zeros_like(value)).float()


def edge_drop_mask(rowptr: Tensor, col: Tensor, keep_prob: float, num_views: int, seed: int,
                   offset: int) -> Tensor:
    """Values [num_views, nnz] (float32) of each dropped view on the input's structure; 0 = dropped."""
    C.edge_drop_args(rowptr, col, keep_prob, num_views, "edge_drop_mask")
    keep = _edge_keep(rowptr, col, keep_prob, num_views, seed, offset)
    return _renormalized(rowptr, col, keep)


def edge_drop_compact(rowptr: Tensor, col: Tensor, keep_prob: float, num_views: int, seed: int,
                      offset: int) -> Tuple[List[Tensor], List[Tensor], List[Tensor]]:
    """Per view: the CSR (rowptr, col, value) of the kept entries only (same decisions as edge_drop_mask)."""
    C.edge_drop_args(rowptr, col, keep_prob, num_views, "edge_drop_compact")
    n = rowptr.numel() - 1
    keep = _edge_keep(rowptr, col, keep_prob, num_views, seed, offset)
    value = _renormalized(rowptr, col, keep)
    rows = torch.repeat_interleave(torch.arange(n, device=col.device), (rowptr[1:] - rowptr[:-1]).long())
    rps, cols, vals = [], [], []
    for v in range(num_views):
        rp = torch.zeros(n + 1, dtype=torch.long, device=col.device)
        rp[1:] = torch.cumsum(torch.bincount(rows[keep[v]], minlength=n), 0)
        rps.append(rp.to(rowptr.dtype))
        cols.append(col[keep[v]])
        vals.append(value[v][keep[v]])
    return rps, cols, vals


def _infonce_scores(a: Tensor, b: Tensor, temperature: float) -> Tensor:
    acc = torch.float64 if a.dtype == torch.float64 else torch.float32
    an = torch.nn.functional.normalize(a.to(acc), dim=-1)
    bn = torch.nn.functional.normalize(b.to(acc), dim=-1)
    return an @ bn.transpose(-1, -2) / temperature  # [P, B, B]


def infonce(a: Tensor, b: Tensor, temperature: float) -> Tuple[Tensor, Tensor]:
    """Cosine InfoNCE per pair p over in-batch negatives, a and b [P, B, d]:

        loss_p = 1/B sum_i [ -s_ii + log sum_j exp(s_ij) ],  s_ij = cos(a_pi, b_pj) / temperature

    Returns (loss [P] in a's dtype, lse [P, B] = log sum_j exp(s_ij) in fp32, fp64 for fp64
    inputs). An empty batch gives loss 0."""
    C.infonce_args(a, b, temperature)
    s = _infonce_scores(a, b, temperature)
    lse = torch.logsumexp(s, dim=-1)
    loss = (lse - torch.diagonal(s, dim1=-2, dim2=-1)).sum(-1) / max(a.shape[1], 1)
    return loss.to(a.dtype), lse


def infonce_backward(grad_loss: Tensor, a: Tensor, b: Tensor, lse: Tensor,
                     temperature: float) -> Tuple[Tensor, Tensor]:
    """Gradients of sum_p grad_loss[p] * loss_p with respect to a and b (autograd on :func:`infonce`)."""
    C.infonce_backward_args(grad_loss, a, b, lse, temperature)
    with torch.enable_grad():
        a_ = a.detach().requires_grad_(True)
        b_ = b.detach().requires_grad_(True)
        loss, _ = infonce(a_, b_, temperature)
        ga, gb = torch.autograd.grad(loss, (a_, b_), grad_loss.to(loss.dtype), allow_unused=True)
    return (torch.zeros_like(a) if ga is None else ga), (torch.zeros_like(b) if gb is None else gb)
