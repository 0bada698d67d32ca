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

OPS += ["csr_from_coo", "bipartite_norm_adj", "spmm", "lightgcn_propagate"]


def _index_dtype(*sizes: int) -> torch.dtype:
    return torch.int32 if max(sizes, default=0) <= 2**31 - 1 else torch.int64


def csr_from_coo(row: Tensor, col: Tensor, n_rows: int, n_cols: int) -> Tuple[Tensor, Tensor]:
    """Binary CSR (rowptr, col) of the pairs, rows sorted, duplicates merged."""
    key = torch.unique(row.long() * n_cols + col.long())  # sorted
    r, c = key // n_cols, key % n_cols
    dt = _index_dtype(n_rows + 1, n_cols, key.numel())
    rowptr = torch.zeros(n_rows + 1, dtype=torch.long, device=row.device)
    rowptr[1:] = torch.cumsum(torch.bincount(r, minlength=n_rows), 0)
    return rowptr.to(dt), c.to(dt)


def bipartite_norm_adj(users: Tensor, items: Tensor, n_users: int, n_items: int) -> Tuple[Tensor, Tensor, Tensor]:
    """Symmetric D^-1/2 A D^-1/2 over n_users + n_items nodes in CSR (float32 values)."""
    u, i = users.long(), items.long() + n_users
    n = n_users + n_items
    rowptr, col = csr_from_coo(torch.cat([u, i]), torch.cat([i, u]), n, n)
    deg = (rowptr[1:] - rowptr[:-1]).double()
    rows = torch.repeat_interleave(torch.arange(n, device=users.device), (rowptr[1:] - rowptr[:-1]).long())
    dinv = deg.clamp(min=1).rsqrt()
    value = (dinv[rows] * dinv[col.long()]).float()
    return rowptr, col, value


def spmm(rowptr: Tensor, col: Tensor, value: Optional[Tensor], x: Tensor) -> Tensor:
    """CSR @ dense; binary matrix when value is None. fp32 accumulation for half inputs."""
    n_rows = rowptr.numel() - 1
    counts = (rowptr[1:] - rowptr[:-1]).long()
    rows = torch.repeat_interleave(torch.arange(n_rows, device=x.device), counts)
    acc = torch.float64 if x.dtype == torch.float64 else torch.float32
    contrib = x.index_select(0, col.long()).to(acc)
    if value is not None:
        contrib = contrib * value.to(acc).unsqueeze(1)
    out = torch.zeros(n_rows, x.shape[1], dtype=acc, device=x.device).index_add(0, rows, contrib)
    return out.to(x.dtype)


def lightgcn_propagate(rowptr: Tensor, col: Tensor, value: Tensor, x0: Tensor, weights: Tensor) -> Tensor:
    """sum_k weights[k] * A^k x0 for k = 0..len(weights)-1."""
    w = weights.to(x0.device)
    out = x0 * w[0].to(x0.dtype)
    x = x0
    for k in range(1, w.numel()):
        x = spmm(rowptr, col, value, x)
        out = out + x * w[k].to(x0.dtype)
    return out



# ----------------------------------------------------------------------------
# Sampler: fused hard-negative sampling                 (issue: sampler)
# ----------------------------------------------------------------------------


# ----------------------------------------------------------------------------
# Contrastive: edge-drop views, batched InfoNCE          (issue: contrastive)
# ----------------------------------------------------------------------------
