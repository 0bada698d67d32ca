"""Reference twin of the counter-based generator every random op uses (csrc/common/philox.h)
and its integer-to-uniform mappings: the same numbers as the kernels, bit for bit."""
from __future__ import annotations

import math
from typing import Tuple

import torch
from torch import Tensor

from . import checks as C

OPS = ["philox_random"]

_MASK32 = 0xFFFFFFFF


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
    C.philox_args(index)
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


def sqrt_rn(x: Tensor) -> Tensor:
    """Correctly rounded float32 square root (IEEE ``sqrtf``, like the kernels' ``std::sqrt``
    and ``__fsqrt_rn``). ``torch.sqrt`` on the CPU may be off by one unit in the last place,
    in float32 and float64 alike, which would make the twin disagree with the kernels.

    A float64 root is within one float32 ulp of the answer; it is then moved to the neighbour
    whose rounding interval holds ``x``: the midpoints between float32 neighbours have 25
    significant bits, so their squares are exact in float64."""
    x = x.float()
    r = torch.sqrt(x.double()).float()
    up = torch.nextafter(r, torch.full_like(r, float("inf")))
    down = torch.nextafter(r, torch.zeros_like(r))
    xd, rd = x.double(), r.double()
    hi, lo = (rd + up.double()) * 0.5, (rd + down.double()) * 0.5
    return torch.where(xd > hi * hi, up, torch.where(xd < lo * lo, down, r))


def inv_sqrt_degree(deg: Tensor) -> Tensor:
    """1 / sqrt(d) in float64, correctly rounded like the kernels' ``1.0 / std::sqrt(double(d))``,
    for integer-valued degrees ``deg`` (0 gives inf; callers mask it). The distinct degrees
    are few, so they are computed with Python's IEEE ``math.sqrt`` and gathered back."""
    values, inverse = torch.unique(deg.double(), return_inverse=True)
    table = torch.tensor([1.0 / math.sqrt(v) if v > 0 else math.inf for v in values.tolist()],
                         dtype=torch.float64, device=deg.device)
    return table[inverse] if deg.numel() else deg.double()
