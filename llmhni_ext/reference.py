"""Reference twins: one short pure-PyTorch implementation per op.

Each function here has the same name and signature as the op's schema in
``csrc/`` (``torch.ops.llmhni.<name>``). It is the API contract, the fallback when
no compiled kernel serves a device, and the oracle every kernel test compares
against. Keep them short and obviously right; speed does not matter here.

Sections (one per op family) are kept apart by banner comments so that each
family's owner edits only its own section.
"""
from __future__ import annotations

import json
from typing import List, Optional, Tuple

import torch
from torch import Tensor

from ._version import __version__

# Names of all ops in the llmhni library (kept in sync with csrc/*_schema.cpp by
# python_tests/test_registry.py).
OPS: List[str] = ["build_info", "philox_random"]

_MASK32 = 0xFFFFFFFF


def build_info() -> str:
    return json.dumps({"version": __version__, "torch": torch.__version__, "cuda": "",
                       "with_cuda": False, "kernels": []})


# ----------------------------------------------------------------------------
# Counter-based random numbers (shared by the sampler and the edge-drop views)
# ----------------------------------------------------------------------------

def _mulhilo32(a: int, b: Tensor) -> Tuple[Tensor, Tensor]:
    """hi and lo 32-bit words of a * b for a constant a and an int64 tensor b of uint32s.

    Split into 16-bit halves so that no product overflows int64."""
    a_hi, a_lo = a >> 16, a & 0xFFFF
    x = b * a_hi  # < 2^48
    y = b * a_lo  # < 2^48
    hi = (x + (y >> 16)) >> 16
    lo = (((x & 0xFFFF) << 16) + y) & _MASK32
    return hi, lo


def philox4x32(c0: Tensor, c1: Tensor, c2: Tensor, c3: Tensor, k0: int, k1: int) -> Tensor:
    """Philox4x32-10 on int64 tensors holding uint32 values; returns [n, 4]."""
    M0, M1, W0, W1 = 0xD2511F53, 0xCD9E8D57, 0x9E3779B9, 0xBB67AE85
    for _ in range(10):
        hi0, lo0 = _mulhilo32(M0, c0)
        hi1, lo1 = _mulhilo32(M1, c2)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
        k0 = (k0 + W0) & _MASK32
        k1 = (k1 + W1) & _MASK32
    return torch.stack([c0, c1, c2, c3], dim=-1)


def philox_random(seed: int, offset: int, index: Tensor, sub: int) -> Tensor:
    """Random words for each ``index`` (see csrc/common/philox.h for the key/counter layout)."""
    if index.dtype != torch.int64 or index.dim() != 1:
        raise RuntimeError(f"philox_random: index must be a 1-D int64 tensor, got {index.dtype} {tuple(index.shape)}")
    seed &= (1 << 64) - 1
    offset &= (1 << 64) - 1
    idx = index
    c0 = idx & _MASK32
    c1 = (idx >> 32) & _MASK32
    c2 = torch.full_like(idx, sub & _MASK32)
    c3 = torch.full_like(idx, offset & _MASK32)
    k0 = seed & _MASK32
    k1 = ((seed >> 32) ^ (offset >> 32)) & _MASK32
    return philox4x32(c0, c1, c2, c3, k0, k1)


def uniform_index(w_hi: Tensor, w_lo: Tensor, n: int) -> Tensor:
    """floor(r * n / 2^64) for r = w_hi * 2^32 + w_lo (matches llmhni::uniform_index)."""
    # r * n / 2^64 = (w_hi * n + (w_lo * n) / 2^32) / 2^32, split to stay in int64.
    n_hi, n_lo = n >> 16, n & 0xFFFF  # n < 2^47 assumed; item counts are far below
    def mul_shift32(w: Tensor) -> Tuple[Tensor, Tensor]:
        # w * n as (high part >> 32, low 32 bits), exact, for w < 2^32 and n < 2^47
        a = w * n_lo                       # < 2^48
        b = w * n_hi                       # < 2^63
        low = (a & 0xFFFF) | (((a >> 16) + (b & 0xFFFF)) & 0xFFFF) << 16
        high = ((a >> 16) + b) >> 16       # floor(w * n / 2^32)
        return high, low & _MASK32
    hi_high, hi_low = mul_shift32(w_hi)    # w_hi * n = hi_high * 2^32 + hi_low
    lo_high, _ = mul_shift32(w_lo)         # floor(w_lo * n / 2^32)
    return hi_high + ((hi_low + lo_high) >> 32)


def uniform_float(w: Tensor) -> Tensor:
    """Uniform float32 in [0, 1) from a uint32 word (matches llmhni::uniform_float)."""
    return (w >> 8).to(torch.float32) * (1.0 / 16777216.0)


# ----------------------------------------------------------------------------
# Graph: CSR construction, spmm, LightGCN propagation   (issue: foundation)
# ----------------------------------------------------------------------------

OPS += ["csr_from_coo", "bipartite_norm_adj", "csr_transpose", "spmm", "csr_sddmm", "lightgcn_propagate"]


def _index_dtype(*sizes: int) -> torch.dtype:
    return torch.int32 if max(sizes, default=0) <= 2**31 - 1 else torch.int64


def csr_from_coo(row: Tensor, col: Tensor, n_rows: int, n_cols: int) -> Tuple[Tensor, Tensor]:
    """Binary CSR (rowptr, col) of the pairs, rows sorted, duplicates merged."""
    key = torch.unique(row.long() * n_cols + col.long())  # sorted
    r, c = key // n_cols, key % n_cols
    dt = _index_dtype(n_rows + 1, n_cols, row.numel())
    rowptr = torch.zeros(n_rows + 1, dtype=torch.long, device=row.device)
    rowptr[1:] = torch.cumsum(torch.bincount(r, minlength=n_rows), 0)
    return rowptr.to(dt), c.to(dt)


def bipartite_norm_adj(users: Tensor, items: Tensor, n_users: int, n_items: int) -> Tuple[Tensor, Tensor, Tensor]:
    """Symmetric D^-1/2 A D^-1/2 over n_users + n_items nodes in CSR (float32 values)."""
    u, i = users.long(), items.long() + n_users
    n = n_users + n_items
    rowptr, col = csr_from_coo(torch.cat([u, i]), torch.cat([i, u]), n, n)
    dt = _index_dtype(n + 1, n, 2 * users.numel())
    rowptr, col = rowptr.to(dt), col.to(dt)
    deg = (rowptr[1:] - rowptr[:-1]).double()
    rows = torch.repeat_interleave(torch.arange(n, device=users.device), (rowptr[1:] - rowptr[:-1]).long())
    dinv = 1.0 / deg.clamp(min=1).sqrt()
    value = (dinv[rows] * dinv[col.long()]).float()
    return rowptr, col, value


def csr_transpose(rowptr: Tensor, col: Tensor, n_cols: int) -> Tuple[Tensor, Tensor, Tensor]:
    """(t_rowptr, t_col, t_perm) of A^T; t_perm[k] is the entry of A that becomes entry k of A^T."""
    _check_csr("csr_transpose", rowptr, col, n_cols)
    n_rows = rowptr.numel() - 1
    rows = torch.repeat_interleave(torch.arange(n_rows, device=col.device), (rowptr[1:] - rowptr[:-1]).long())
    perm = torch.argsort(col.long() * max(n_rows, 1) + rows, stable=True)
    t_rowptr = torch.zeros(n_cols + 1, dtype=torch.long, device=col.device)
    t_rowptr[1:] = torch.cumsum(torch.bincount(col.long(), minlength=n_cols), 0)
    return t_rowptr.to(col.dtype), rows[perm].to(col.dtype), perm.to(col.dtype)


def spmm(rowptr: Tensor, col: Tensor, value: Optional[Tensor], x: Tensor, t_rowptr: Optional[Tensor] = None,
         t_col: Optional[Tensor] = None, t_perm: Optional[Tensor] = None) -> Tensor:
    """CSR @ dense; binary matrix when value is None. fp32 accumulation for half inputs.

    (t_rowptr, t_col, t_perm) describe A^T for the compiled op's backward; unused here."""
    _check_csr("spmm", rowptr, col, x.shape[0])
    n_rows = rowptr.numel() - 1
    counts = (rowptr[1:] - rowptr[:-1]).long()
    rows = torch.repeat_interleave(torch.arange(n_rows, device=x.device), counts)
    acc = torch.float64 if x.dtype == torch.float64 else torch.float32
    contrib = x.index_select(0, col.long()).to(acc)
    if value is not None:
        contrib = contrib * value.to(acc).unsqueeze(1)
    out = torch.zeros(n_rows, x.shape[1], dtype=acc, device=x.device).index_add(0, rows, contrib)
    return out.to(x.dtype)


def csr_sddmm(rowptr: Tensor, col: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """out[e] = <a[row(e)], b[col(e)]> for each stored entry (float32; float64 for float64)."""
    _check_csr("csr_sddmm", rowptr, col, b.shape[0])
    n_rows = rowptr.numel() - 1
    rows = torch.repeat_interleave(torch.arange(n_rows, device=a.device), (rowptr[1:] - rowptr[:-1]).long())
    acc = torch.float64 if a.dtype == torch.float64 else torch.float32
    return (a.index_select(0, rows).to(acc) * b.index_select(0, col.long()).to(acc)).sum(1)


def lightgcn_propagate(rowptr: Tensor, col: Tensor, value: Optional[Tensor], x0: Tensor, weights: List[float],
                       t_rowptr: Optional[Tensor] = None, t_col: Optional[Tensor] = None,
                       t_perm: Optional[Tensor] = None) -> Tensor:
    """sum_k weights[k] * A^k x0 for k = 0..len(weights)-1 (accumulated in fp32/fp64)."""
    _check_csr("lightgcn_propagate", rowptr, col, rowptr.numel() - 1)
    w = [float(v) for v in weights]
    acc = torch.float64 if x0.dtype == torch.float64 else torch.float32
    x = x0.to(acc)
    out = x * w[0]
    for k in range(1, len(w)):
        x = spmm(rowptr, col, value, x)
        out = out + x * w[k]
    return out.to(x0.dtype)


# ----------------------------------------------------------------------------
# Sampler: fused hard-negative sampling                 (issue: sampler)
# ----------------------------------------------------------------------------

OPS += ["sample_negatives"]

# Layout shared with csrc/sampler/ (see csrc/sampler/sampler_common.h):
# slot s = b * num_negatives + n, candidate index = s * M + m. Draw attempt a of a
# candidate uses philox words (2*(a&1), 2*(a&1)+1) of random4(seed, offset, index, a >> 1);
# the exact fallback after max_redraws attempts uses words (0, 1) of sub SAMPLER_FALLBACK_SUB.
SAMPLER_MODES = ("uniform", "popularity", "dns", "llmhni")
SAMPLER_FALLBACK_SUB = 0x7FFFFFFF
SAMPLER_MAX_CANDIDATES = 1024
SAMPLER_MAX_CDF_TOTAL = 2**46
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
    """cos = <su, sj> / max(|su| |sj|, 1e-12) in the fixed order; NaN becomes +inf."""
    nu = torch.sqrt(_lane8_dot(su, su))
    nj = torch.sqrt(_lane8_dot(sj, sj))
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
    uniform / popularity take candidate 0; dns the highest <e_u, e_j>; llmhni keeps the
    top_k by score and takes the lowest cosine between user_sem[u] and item_sem[j] among
    those with cosine <= sim_threshold, or, when none is left, the lowest cosine among
    all M candidates (counted). Ties go to the lower candidate index; NaN scores rank
    last, NaN cosines count as +inf. Explicit ``candidates`` [B, N, M] are used as given.

    ``check_rows`` (default) checks the whole CSR on every call, O(nnz): rowptr
    non-decreasing, columns in [0, n_items), strictly increasing within each row. With
    ``check_rows=False`` those are trusted (the batch users' row bounds are still checked).
    """
    _sampler_check(rowptr, col, users, n_items, mode, num_negatives, num_candidates, top_k,
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


def _sampler_check(rowptr, col, users, n_items, mode, num_negatives, num_candidates, top_k, max_redraws,
                   candidates, pop_cdf, user_emb, item_emb, user_sem, item_sem, check_rows=True) -> None:
    """The argument checks of csrc/sampler/sampler_checks.h, with the same messages."""
    op = "sample_negatives"

    def fail(msg: str) -> None:
        raise RuntimeError(f"{op}: {msg}")

    for name, t in (("rowptr", rowptr), ("col", col), ("users", users)):
        if t.dtype not in (torch.int32, torch.int64) or t.dim() != 1:
            fail(f"{name} must be a 1-D int32 or int64 tensor, got {t.dtype} of shape {tuple(t.shape)}")
    if mode not in SAMPLER_MODES:
        fail(f"mode must be one of {', '.join(SAMPLER_MODES)}, got '{mode}'")
    if rowptr.numel() < 1:
        fail("rowptr must hold n_users + 1 >= 1 entries")
    if n_items < 1:
        fail(f"n_items must be >= 1, got {n_items}")
    if num_negatives < 1:
        fail(f"num_negatives must be >= 1, got {num_negatives}")
    if not 1 <= num_candidates <= SAMPLER_MAX_CANDIDATES:
        fail(f"num_candidates must lie in [1, {SAMPLER_MAX_CANDIDATES}], got {num_candidates}")
    if not 0 <= max_redraws <= 2**20:
        fail(f"max_redraws must lie in [0, 1048576], got {max_redraws}")
    if mode == "llmhni" and not 1 <= top_k <= num_candidates:
        fail(f"top_k must lie in [1, num_candidates={num_candidates}], got {top_k}")
    named = [("rowptr", rowptr), ("col", col), ("candidates", candidates), ("pop_cdf", pop_cdf),
             ("user_emb", user_emb), ("item_emb", item_emb), ("user_sem", user_sem), ("item_sem", item_sem)]
    for name, t in named:
        if t is not None and t.device != users.device:
            fail(f"users is on {users.device} but {name} is on {t.device}; move them to one device")
    n_users = rowptr.numel() - 1
    if mode == "popularity" and candidates is None:
        if pop_cdf is None:
            fail("mode 'popularity' needs pop_cdf (int64 cumulative item weights)")
        if pop_cdf.dtype != torch.int64 or pop_cdf.shape != (n_items,):
            fail(f"pop_cdf must be an int64 tensor of shape [n_items={n_items}], got {pop_cdf.dtype} "
                 f"of shape {tuple(pop_cdf.shape)}")
    needs = {"dns": ("user_emb", "item_emb"), "llmhni": ("user_emb", "item_emb", "user_sem", "item_sem")}
    for name in needs.get(mode, ()):
        if dict(named)[name] is None:
            fail(f"mode '{mode}' needs {name}")
    for a_name, b_name in (("user_emb", "item_emb"), ("user_sem", "item_sem")):
        a, b = dict(named)[a_name], dict(named)[b_name]
        if (a is None) != (b is None):
            fail(f"{a_name} and {b_name} must be given together")
        if a is None:
            continue
        for name, t, rows in ((a_name, a, n_users), (b_name, b, n_items)):
            if t.dtype not in (torch.float32, torch.float16, torch.bfloat16):
                fail(f"{name} must be float32, float16 or bfloat16, got {t.dtype}")
            if t.dim() != 2 or t.shape[0] != rows:
                fail(f"{name} must have shape [{rows}, d], got {tuple(t.shape)}")
        if a.dtype != b.dtype or a.shape[1] != b.shape[1]:
            fail(f"{a_name} ({a.dtype}, d={a.shape[1]}) and {b_name} ({b.dtype}, d={b.shape[1]}) "
                 "must share dtype and width")
    B = users.numel()
    if candidates is not None:
        if candidates.dtype not in (torch.int32, torch.int64) or tuple(candidates.shape) != (B, num_negatives, num_candidates):
            fail(f"candidates must be an int32 or int64 tensor of shape [B={B}, num_negatives={num_negatives}, "
                 f"num_candidates={num_candidates}], got {candidates.dtype} of shape {tuple(candidates.shape)}")
    # value checks (one host round trip in the kernels)
    if check_rows:
        _check_csr(op, rowptr, col, n_items, sorted_rows=True)
    if int(rowptr[-1]) != col.numel():
        fail(f"rowptr[-1] = {int(rowptr[-1])} but col holds {col.numel()} entries: malformed CSR")
    if B:
        lo, hi = int(users.min()), int(users.max())
        if lo < 0 or hi >= n_users:
            fail(f"users has values in [{lo}, {hi}] but must lie in [0, {n_users})")
        if n_users > 0:
            u = users.long()
            rlo, rhi = rowptr[u].long(), rowptr[u + 1].long()
            bad = (rlo < 0) | (rhi < rlo) | (rhi > col.numel())
            if bool(bad.any()):
                j = int(torch.argmax(bad.long()))
                fail(f"malformed CSR, the row of user {int(u[j])} spans [{int(rlo[j])}, {int(rhi[j])}) which is "
                     f"not a range inside [0, nnz = {col.numel()}]")
    if candidates is not None and candidates.numel():
        lo, hi = int(candidates.min()), int(candidates.max())
        if lo < 0 or hi >= n_items:
            fail(f"candidates has values in [{lo}, {hi}] but must lie in [0, {n_items})")
    if mode == "popularity" and candidates is None:
        last, first = int(pop_cdf[-1]), int(pop_cdf[0])
        if first < 0 or last <= 0 or last > SAMPLER_MAX_CDF_TOTAL or bool((pop_cdf[1:] < pop_cdf[:-1]).any()):
            fail(f"pop_cdf must be non-decreasing, start >= 0 and end in (0, 2^46], got [{first}, ..., {last}]")
    if candidates is None and B:
        deg = (rowptr[users.long() + 1] - rowptr[users.long()]).long()
        full = int(deg.max())
        if full >= n_items:
            u = int(users[int(torch.argmax(deg))])
            fail(f"user {u} has interacted with all {n_items} items, so it has no negative to sample; "
                 "drop such users from the batch")


def _check_csr(op: str, rowptr: Tensor, col: Tensor, n_cols: int, sorted_rows: bool = False) -> None:
    """check_csr_cpu of csrc/common/checks.h, with the same messages."""
    nnz, n_rows = col.numel(), rowptr.numel() - 1
    first, last = int(rowptr[0]), int(rowptr[-1])
    if first != 0:
        raise RuntimeError(f"{op}: malformed CSR, rowptr[0] must be 0, got {first}")
    if last != nnz:
        raise RuntimeError(f"{op}: malformed CSR, rowptr[-1] must equal nnz = col.numel() = {nnz}, got {last}")
    if n_rows > 0:
        d = (rowptr[1:] - rowptr[:-1]).long()
        if bool((d < 0).any()):
            r = int(torch.argmax((d < 0).long()))
            raise RuntimeError(f"{op}: malformed CSR, rowptr must be non-decreasing (row {r} has {int(d[r])} entries)")
    if nnz:
        lo, hi = int(col.min()), int(col.max())
        if lo < 0 or hi >= n_cols:
            raise RuntimeError(f"{op}: col has values in [{lo}, {hi}] but must lie in [0, {n_cols})")
    if sorted_rows and nnz > 1:
        start = torch.zeros(nnz + 1, dtype=torch.bool, device=col.device)
        start[rowptr.long()] = True
        viol = (col[1:] <= col[:-1]) & ~start[1:nnz]
        if bool(viol.any()):
            p = int(torch.argmax(viol.long())) + 1
            r = int(torch.searchsorted(rowptr.long(), torch.tensor([p], device=col.device), right=True)) - 1
            raise RuntimeError(f"{op}: the columns of row {r} are not sorted and duplicate-free (each row of the "
                               "CSR must be strictly increasing)")


# ----------------------------------------------------------------------------
# Contrastive: edge-drop views, batched InfoNCE          (issue: contrastive)
# ----------------------------------------------------------------------------

OPS += ["edge_drop_mask", "edge_drop_compact", "infonce", "infonce_backward"]


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
    dinv = torch.where(deg > 0, 1.0 / deg.sqrt(), torch.zeros_like(deg))
    value = dinv[:, rows] * dinv[:, col.long()]
    return torch.where(keep, value, torch.zeros_like(value)).float()


def edge_drop_mask(rowptr: Tensor, col: Tensor, keep_prob: float, num_views: int, seed: int,
                   offset: int) -> Tensor:
    """Values [num_views, nnz] (float32) of each dropped view on the input's structure; 0 = dropped."""
    keep = _edge_keep(rowptr, col, keep_prob, num_views, seed, offset)
    return _renormalized(rowptr, col, keep)


def edge_drop_compact(rowptr: Tensor, col: Tensor, keep_prob: float, num_views: int, seed: int,
                      offset: int) -> Tuple[List[Tensor], List[Tensor], List[Tensor]]:
    """Per view: the CSR (rowptr, col, value) of the kept entries only (same decisions as edge_drop_mask)."""
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
    s = _infonce_scores(a, b, temperature)
    lse = torch.logsumexp(s, dim=-1)
    loss = (lse - torch.diagonal(s, dim1=-2, dim2=-1)).sum(-1) / max(a.shape[1], 1)
    return loss.to(a.dtype), lse


def infonce_backward(grad_loss: Tensor, a: Tensor, b: Tensor, lse: Tensor,
                     temperature: float) -> Tuple[Tensor, Tensor]:
    """Gradients of sum_p grad_loss[p] * loss_p with respect to a and b (autograd on :func:`infonce`)."""
    with torch.enable_grad():
        a_ = a.detach().requires_grad_(True)
        b_ = b.detach().requires_grad_(True)
        loss, _ = infonce(a_, b_, temperature)
        ga, gb = torch.autograd.grad(loss, (a_, b_), grad_loss.to(loss.dtype), allow_unused=True)
    return (torch.zeros_like(a) if ga is None else ga), (torch.zeros_like(b) if gb is None else gb)
