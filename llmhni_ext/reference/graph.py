"""Reference twins of the graph ops (csrc/graph/): CSR construction, spmm, csr_sddmm and
the fused LightGCN propagation."""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch
from torch import Tensor

from . import checks as C
from .._common import index_dtype
from .common import inv_sqrt_degree

OPS = ["csr_from_coo", "bipartite_norm_adj", "csr_transpose", "spmm", "csr_sddmm", "lightgcn_propagate"]


def csr_from_coo(row: Tensor, col: Tensor, n_rows: int, n_cols: int) -> Tuple[Tensor, Tensor]:
    """Binary CSR (rowptr, col) of the pairs, rows sorted, duplicates merged."""
    C.coo_args("csr_from_coo", row, col, n_rows, n_cols, "row", "col")
    key = torch.unique(row.long() * n_cols + col.long())  # sorted
    r, c = key // n_cols, key % n_cols
    dt = index_dtype(n_rows + 1, n_cols, row.numel())
    rowptr = torch.zeros(n_rows + 1, dtype=torch.long, device=row.device)
    rowptr[1:] = torch.cumsum(torch.bincount(r, minlength=n_rows), 0)
    return rowptr.to(dt), c.to(dt)


def bipartite_norm_adj(users: Tensor, items: Tensor, n_users: int, n_items: int) -> Tuple[Tensor, Tensor, Tensor]:
    """Symmetric D^-1/2 A D^-1/2 over n_users + n_items nodes in CSR (float32 values)."""
    C.coo_args("bipartite_norm_adj", users, items, n_users, n_items, "users", "items")
    u, i = users.long(), items.long() + n_users
    n = n_users + n_items
    rowptr, col = csr_from_coo(torch.cat([u, i]), torch.cat([i, u]), n, n)
    dt = index_dtype(n + 1, n, 2 * users.numel())
    rowptr, col = rowptr.to(dt), col.to(dt)
    deg = (rowptr[1:] - rowptr[:-1]).double()
    rows = torch.repeat_interleave(torch.arange(n, device=users.device), (rowptr[1:] - rowptr[:-1]).long())
    dinv = inv_sqrt_degree(deg.clamp(min=1))
    value = (dinv[rows] * dinv[col.long()]).float()
    return rowptr, col, value


def csr_transpose(rowptr: Tensor, col: Tensor, n_cols: int) -> Tuple[Tensor, Tensor, Tensor]:
    """(t_rowptr, t_col, t_perm) of A^T; t_perm[k] is the entry of A that becomes entry k of A^T."""
    C.csr_transpose_args(rowptr, col, n_cols)
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
    C.spmm_args(rowptr, col, value, x, t_rowptr, t_col, t_perm)
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
    """``out[e] = a[row(e)] · b[col(e)]`` for each stored entry (float32; float64 for float64)."""
    C.sddmm_args(rowptr, col, a, b)
    n_rows = rowptr.numel() - 1
    rows = torch.repeat_interleave(torch.arange(n_rows, device=a.device), (rowptr[1:] - rowptr[:-1]).long())
    acc = torch.float64 if a.dtype == torch.float64 else torch.float32
    return (a.index_select(0, rows).to(acc) * b.index_select(0, col.long()).to(acc)).sum(1)


def lightgcn_propagate(rowptr: Tensor, col: Tensor, value: Optional[Tensor], x0: Tensor, weights: List[float],
                       t_rowptr: Optional[Tensor] = None, t_col: Optional[Tensor] = None,
                       t_perm: Optional[Tensor] = None) -> Tensor:
    """sum_k weights[k] * A^k x0 for k = 0..len(weights)-1 (accumulated in fp32/fp64)."""
    C.propagate_args(rowptr, col, value, x0, weights, t_rowptr, t_col, t_perm)
    w = [float(v) for v in weights]
    acc = torch.float64 if x0.dtype == torch.float64 else torch.float32
    x = x0.to(acc)
    out = x * w[0]
    for k in range(1, len(w)):
        x = spmm(rowptr, col, value, x)
        out = out + x * w[k]
    return out.to(x0.dtype)
