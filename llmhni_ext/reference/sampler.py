"""Reference twin of the fused hard-negative sampler (csrc/sampler/)."""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor

from . import checks as C
from .common import philox_random, sqrt_rn, uniform_index
from .checks import SAMPLER_MAX_CANDIDATES, SAMPLER_MAX_CDF_TOTAL, SAMPLER_MODES  # noqa: F401

OPS = ["sample_negatives"]


# Layout shared with csrc/sampler/ (see csrc/sampler/sampler_common.h):
# slot s = b * num_negatives + n, candidate index = s * M + m. Draw attempt a of a
# candidate uses philox words (2*(a&1), 2*(a&1)+1) of random4(seed, offset, index, a >> 1);
# the exact fallback after max_redraws attempts uses words (0, 1) of sub SAMPLER_FALLBACK_SUB.
SAMPLER_FALLBACK_SUB = 0x7FFFFFFF
_SAMPLER_COS_EPS = 1e-12


def _lane8_dot(a: Tensor, b: Tensor) -> Tensor:
    """fp32 dot over the last dim in the kernels' fixed order.

    Element k is added, in increasing k, to partial sum k % 8; the 8 partial sums are
    then folded in halves (l + l+4, then l + l+2, then l + l+1). CPU, CUDA and this
    twin therefore give bit-identical scores."""
    p = a.float() * b.float()
    d = p.shape[-1]
    pad = (-d) % 8
    if pad:
        p = torch.nn.functional.pad(p, (0, pad))
    p = p.reshape(*p.shape[:-1], p.shape[-1] // 8, 8)
    acc = torch.zeros(p.shape[:-2] + (8,), dtype=torch.float32, device=p.device)
    for c in range(p.shape[-2]):
        acc = acc + p[..., c, :]
    acc = acc[..., :4] + acc[..., 4:]
    acc = acc[..., :2] + acc[..., 2:]
    return acc[..., 0] + acc[..., 1]


def _sampler_cosine(su: Tensor, sj: Tensor) -> Tensor:
    """``cos = su · sj / max(|su| |sj|, 1e-12)`` in the fixed order; NaN becomes +inf."""
    nu = sqrt_rn(_lane8_dot(su, su))
    nj = sqrt_rn(_lane8_dot(sj, sj))
    den = torch.clamp(nu * nj, min=_SAMPLER_COS_EPS)
    cos = _lane8_dot(su, sj) / den
    return torch.where(torch.isnan(cos), torch.full_like(cos, float("inf")), cos)


def _words(seed: int, offset: int, index: Tensor, attempt: int) -> Tuple[Tensor, Tensor]:
    r = philox_random(seed, offset, index, attempt >> 1)
    j = 2 * (attempt & 1)
    return r[:, j], r[:, j + 1]


def sample_negatives(rowptr: Tensor, col: Tensor, users: Tensor, n_items: int, mode: str,
                     num_negatives: int, num_candidates: int, top_k: int, sim_threshold: float,
                     seed: int, offset: int, max_redraws: int, candidates: Optional[Tensor] = None,
                     pop_cdf: Optional[Tensor] = None, user_emb: Optional[Tensor] = None,
                     item_emb: Optional[Tensor] = None, user_sem: Optional[Tensor] = None,
                     item_sem: Optional[Tensor] = None, check_rows: bool = True) -> Tuple[Tensor, Tensor, Tensor]:
    """Negatives [B, N] (int64), their backbone scores [B, N] (or [0] without embeddings)
    and counts [4] = (rejected draws, exact fallbacks, similarity-filtered, llmhni fallbacks).

    Every candidate is drawn (uniformly, or from the int64 cumulative weights ``pop_cdf``)
    and redrawn while it is a positive of the user, at most ``max_redraws`` times; then it
    is drawn exactly from the complement of the user's row (rank mapping). Then:
    uniform / popularity take candidate 0; dns the highest ``e_u · e_j``; llmhni keeps the
    top_k by score and takes the lowest cosine between user_sem[u] and item_sem[j] among
    those with cosine <= sim_threshold, or, when none is left, the lowest cosine among
    all M candidates (counted). Ties go to the lower candidate index; NaN scores rank
    last, NaN cosines count as +inf. Explicit ``candidates`` [B, N, M] are used as given.

    ``check_rows`` (default) checks the whole CSR on every call, O(nnz): rowptr
    non-decreasing, columns in [0, n_items), strictly increasing within each row. With
    ``check_rows=False`` those are trusted (the batch users' row bounds are still checked).
    """
    C.sampler_args(rowptr, col, users, n_items, mode, num_negatives, num_candidates, top_k,
                   max_redraws, candidates, pop_cdf, user_emb, item_emb, user_sem, item_sem, check_rows)
    dev = users.device
    B, N, M = users.numel(), num_negatives, num_candidates
    S = B * N
    u_slot = users.long().repeat_interleave(N)
    counts = torch.zeros(4, dtype=torch.long)
    uniform_like = mode in ("uniform", "popularity")
    if candidates is not None:
        cand = candidates.long().reshape(S, M)
    else:
        cand = _sampler_draw(rowptr.long(), col.long(), u_slot, n_items, M, 1 if uniform_like else M,
                             seed, offset, max_redraws, pop_cdf if mode == "popularity" else None, counts)
    if uniform_like:
        neg = cand[:, 0]
    else:
        sc = _lane8_dot(user_emb[u_slot].unsqueeze(1), item_emb[cand])
        key = torch.where(torch.isnan(sc), torch.full_like(sc, float("-inf")), sc)
        if mode == "dns":
            pick = torch.argmax(key, dim=1)  # first maximum: ties go to the lower index
        else:
            top = torch.sort(key, dim=1, descending=True, stable=True).indices[:, :top_k]
            cos_all = _sampler_cosine(user_sem[u_slot].unsqueeze(1), item_sem[cand])
            cos_top = cos_all.gather(1, top)
            ok = cos_top <= sim_threshold
            inf = torch.full_like(cos_top, float("inf"))
            best = torch.where(ok, cos_top, inf).min(dim=1, keepdim=True).values
            tie = ok & (torch.where(ok, cos_top, inf) == best)
            pick = torch.where(tie, top, torch.full_like(top, M)).min(dim=1).values
            survived = ok.any(dim=1)
            pick = torch.where(survived, pick, torch.argmin(cos_all, dim=1))
            counts[2] += int((~ok).sum())
            counts[3] += int((~survived).sum())
        neg = cand.gather(1, pick.unsqueeze(1)).squeeze(1)
    if user_emb is not None and item_emb is not None:
        scores = _lane8_dot(user_emb[u_slot], item_emb[neg]).reshape(B, N)
    else:
        scores = torch.empty(0, dtype=torch.float32, device=dev)
    return neg.reshape(B, N), scores, counts.to(dev)


def _sampler_draw(rowptr: Tensor, col: Tensor, u_slot: Tensor, n_items: int, M: int, m_draw: int,
                  seed: int, offset: int, max_redraws: int, cdf: Optional[Tensor], counts: Tensor) -> Tensor:
    """Candidates [S, m_draw], each redrawn while positive, then drawn from the complement."""
    dev = u_slot.device
    S = u_slot.numel()
    index = (torch.arange(S, device=dev) * M).unsqueeze(1) + torch.arange(m_draw, device=dev)
    index = index.reshape(-1)
    uu = u_slot.unsqueeze(1).expand(S, m_draw).reshape(-1)
    row_ids = torch.repeat_interleave(torch.arange(rowptr.numel() - 1, device=dev), rowptr[1:] - rowptr[:-1])
    keys = row_ids * n_items + col  # sorted: rows ascending, columns sorted in each row
    total = int(cdf[-1]) if cdf is not None else 0
    out = torch.full((index.numel(),), -1, dtype=torch.long, device=dev)
    pending = torch.arange(index.numel(), device=dev)
    for a in range(max_redraws):
        if pending.numel() == 0:
            break
        w0, w1 = _words(seed, offset, index[pending], a)
        if cdf is None:
            item = uniform_index(w0, w1, n_items)
        else:
            item = torch.searchsorted(cdf, uniform_index(w0, w1, total), right=True)
        key = uu[pending] * n_items + item
        pos = torch.searchsorted(keys, key).clamp(max=max(keys.numel() - 1, 0))
        hit = (keys[pos] == key) if keys.numel() else torch.zeros_like(key, dtype=torch.bool)
        out[pending[~hit]] = item[~hit]
        counts[0] += int(hit.sum())
        pending = pending[hit]
    if pending.numel():
        # Exact fallback. Uniform: the t-th item not in the row is t + #{k : row[k] - k <= t}.
        # Popularity: the first j whose complement mass cdf[j] - (row mass up to j) exceeds t
        # (uniform rank mapping when the complement has no mass).
        counts[1] += pending.numel()
        r = philox_random(seed, offset, index[pending], SAMPLER_FALLBACK_SUB)
        u = uu[pending]
        start, end = rowptr[u], rowptr[u + 1]
        # uniform rank mapping: t + #{k : row[k] - k <= t}, by searchsorted over (row, col - local index)
        local = torch.arange(col.numel(), device=dev) - rowptr[row_ids]
        shifted = row_ids * (n_items + 1) + (col - local)
        t = uniform_index(r[:, 0], r[:, 1], n_items - (end - start))
        item = t + torch.searchsorted(shifted, u * (n_items + 1) + t, right=True) - start
        if cdf is not None:
            w_item = cdf - torch.cat([cdf.new_zeros(1), cdf[:-1]])
            cum = torch.cat([cdf.new_zeros(1), torch.cumsum(w_item[col], 0)])
            mass = total - (cum[end] - cum[start])
            has_mass = mass > 0
            tp = uniform_index(r[:, 0], r[:, 1], mass.clamp(min=1))
            # smallest j whose complement cumulative mass cdf[j] - (row mass up to j) exceeds tp
            lo, hi = torch.zeros_like(tp), torch.full_like(tp, n_items - 1)
            while bool((lo < hi).any()):
                mid = (lo + hi) // 2
                removed = cum[torch.searchsorted(keys, u * n_items + mid, right=True)] - cum[start]
                above = cdf[mid] - removed > tp
                hi = torch.where(above, mid, hi)
                lo = torch.where(above, lo, torch.minimum(mid + 1, hi))
            item = torch.where(has_mass, lo, item)
        out[pending] = item
    return out.reshape(S, m_draw)
