"""Objective alignment: an MLP projector trained with InfoNCE on pseudo-positive pairs.

Raw semantic relevance is the cosine of text embeddings, s(u, i) = cos(e_u, e_i). The
pseudo-positives are the training interactions that are also textually similar,

    P = {(u, i) in train : s(u, i) ranks in the top ceil(rho * |I_u|) of u's training items},

and the projector f (Linear-GELU-Linear, outputs L2-normalised) is trained with the
symmetric in-batch InfoNCE

    L_align = -1/|B| sum_{(u,i) in B} [ log softmax_j(<f(e_u), f(e_j)> / tau)_i
                                       + log softmax_v(<f(e_v), f(e_i)> / tau)_u ] / 2,

so that projected similarity follows the interaction objective while staying anchored
in the texts. :func:`recall_at_k` measures how well a similarity ranks validation items.
"""
from __future__ import annotations

import math
from typing import Dict, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Projector(nn.Module):
    """f(e) = normalize(W2 · GELU(W1 · e + b1) + b2)."""

    def __init__(self, in_dim: int, out_dim: int = 64, hidden: int = 256) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, out_dim))

    def forward(self, e: Tensor) -> Tensor:
        return F.normalize(self.net(e), dim=-1)


def cosine_scores(user_vec: Tensor, item_vec: Tensor, users: Tensor, items: Tensor) -> Tensor:
    """cos(user_vec[users], item_vec[items]) row by row."""
    return (F.normalize(user_vec[users], dim=-1) * F.normalize(item_vec[items], dim=-1)).sum(-1)


def pseudo_positive_pairs(users: Tensor, items: Tensor, user_emb: Tensor, item_emb: Tensor,
                          frac: float = 0.5) -> Tuple[Tensor, Tensor]:
    """The training pairs whose raw text similarity is among their user's top ``frac``
    (at least one per user with interactions)."""
    users, items = users.long(), items.long()
    if users.numel() == 0:
        return users, items
    s = cosine_scores(user_emb.float(), item_emb.float(), users, items)
    # rank within user: sort by (user asc, score desc)
    order = torch.from_numpy(np.lexsort((-s.numpy(), users.numpy())))
    u_sorted = users[order]
    counts = torch.bincount(u_sorted, minlength=int(users.max()) + 1)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(len(order)) - starts[u_sorted]
    keep_n = torch.clamp(torch.ceil(counts.float() * frac).long(), min=1)
    keep = rank < keep_n[u_sorted]
    sel = order[keep]
    return users[sel], items[sel]


def info_nce_align(zu: Tensor, zi: Tensor, tau: float) -> Tensor:
    """Symmetric in-batch InfoNCE between matched rows of normalised ``zu`` and ``zi``."""
    logits = zu @ zi.T / tau
    target = torch.arange(zu.shape[0], device=zu.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def train_projector(user_emb: Tensor, item_emb: Tensor, users: Tensor, items: Tensor, *,
                    out_dim: int = 64, hidden: int = 256, epochs: int = 60, batch: int = 1024,
                    lr: float = 1e-3, tau: float = 0.1, pseudo_frac: float = 0.5, seed: int = 0,
                    device: str = "cpu", progress: bool = False) -> Tuple[Projector, Dict[str, float]]:
    """Trains the projector on the pseudo-positives of the training pairs (users, items)."""
    if user_emb.shape[1] != item_emb.shape[1]:
        raise ValueError(f"user and item text embeddings differ in width: {user_emb.shape[1]} vs {item_emb.shape[1]}")
    g = torch.Generator().manual_seed(int(seed))
    torch.manual_seed(int(seed))
    pu, pi = pseudo_positive_pairs(users, items, user_emb, item_emb, pseudo_frac)
    proj = Projector(user_emb.shape[1], out_dim, hidden).to(device)
    eu, ei = user_emb.float().to(device), item_emb.float().to(device)
    opt = torch.optim.Adam(proj.parameters(), lr=lr)
    n = pu.numel()
    stats = {"pseudo_pairs": float(n), "epochs": float(epochs), "final_loss": float("nan")}
    if n < 2:
        return proj.eval(), stats
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=epochs, desc="align (projector)", unit="epoch", leave=False)
    for _ in range(epochs):
        perm = torch.randperm(n, generator=g)
        tot, steps = 0.0, 0
        for s in range(0, n, batch):
            idx = perm[s:s + batch]
            if idx.numel() < 2:
                continue
            loss = info_nce_align(proj(eu[pu[idx].to(device)]), proj(ei[pi[idx].to(device)]), tau)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tot, steps = tot + float(loss.detach()), steps + 1
        stats["final_loss"] = tot / max(1, steps)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{stats['final_loss']:.3f}")
    if bar is not None:
        bar.close()
    return proj.eval(), stats


@torch.no_grad()
def project(proj: Projector, emb: Tensor, device: str = "cpu", chunk: int = 8192) -> Tensor:
    out = [proj(emb[s:s + chunk].float().to(device)).cpu() for s in range(0, emb.shape[0], chunk)]
    return torch.cat(out, 0) if out else torch.zeros(0, proj.net[-1].out_features)


@torch.no_grad()
def recall_at_k(user_vec: Tensor, item_vec: Tensor, train_pos: Sequence[np.ndarray],
                eval_pos: Sequence[np.ndarray], k: int = 20, chunk: int = 1024) -> float:
    """Mean over users with evaluation items of |top-k ∩ eval| / |eval|, ranking all items by
    cosine similarity with the user's training items masked."""
    uv, iv = F.normalize(user_vec.float(), dim=-1), F.normalize(item_vec.float(), dim=-1)
    n_users, n_items = uv.shape[0], iv.shape[0]
    k = min(k, n_items)
    total, counted = 0.0, 0
    for s in range(0, n_users, chunk):
        sc = uv[s:s + chunk] @ iv.T
        for r in range(sc.shape[0]):
            u = s + r
            if len(eval_pos[u]) == 0:
                continue
            if len(train_pos[u]):
                sc[r, torch.as_tensor(train_pos[u], dtype=torch.long)] = -math.inf
            top = torch.topk(sc[r], k).indices.numpy()
            total += len(np.intersect1d(top, eval_pos[u])) / len(eval_pos[u])
            counted += 1
    return total / max(1, counted)
