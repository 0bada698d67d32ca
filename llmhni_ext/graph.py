"""Sparse graphs in CSR form and LightGCN-style propagation over them.

The user-item graph of a recommender is kept as a :class:`CSR`:

* :func:`csr_from_coo` builds the user -> item matrix (rows sorted, duplicates merged)
  that samplers use for "is this item a positive of this user" look-ups;
* :func:`normalized_bipartite_adj` builds the symmetric-normalised adjacency
  ``D^-1/2 A D^-1/2`` of LightGCN over ``n_users + n_items`` nodes (item ``j`` is node
  ``n_users + j``) directly in CSR: never a dense matrix, never an (N+M)^2 structure;
* :func:`spmm` multiplies it with dense embeddings and :func:`propagate` runs K layers
  and their weighted sum ``sum_k w_k A^k x0`` (LightGCN's layer mean by default).

Indices are int32 whenever they fit.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Dict, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from ._common import index_dtype



@dataclass(frozen=True)
class CSR:
    """A sparse matrix in compressed sparse row form.

    ``rowptr`` [n_rows + 1] and ``col`` [nnz] share one integer dtype (int32 when the
    sizes fit); columns are sorted within each row. ``value`` [nnz] is a float tensor,
    or None for a binary (structure-only) matrix. ``symmetric`` promises A^T == A in
    structure and values, which lets backward passes reuse A instead of its transpose.
    """

    rowptr: Tensor
    col: Tensor
    value: Optional[Tensor]
    n_rows: int
    n_cols: int
    symmetric: bool = False
    # A^T's structure, computed once on first use by a backward pass (see transpose_parts).
    _cache: Dict[str, tuple] = field(default_factory=dict, compare=False, repr=False)

    @property
    def nnz(self) -> int:
        return int(self.col.numel())

    @property
    def device(self) -> torch.device:
        return self.col.device

    def to(self, device: Union[str, torch.device]) -> "CSR":
        device = torch.device(device)
        return replace(self, rowptr=self.rowptr.to(device), col=self.col.to(device),
                       value=None if self.value is None else self.value.to(device), _cache={})

    def with_value(self, value: Optional[Tensor]) -> "CSR":
        if value is not None and value.shape != (self.nnz,):
            raise ValueError(f"value must have shape ({self.nnz},), got {tuple(value.shape)}")
        return replace(self, value=value)

    def transpose_parts(self) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
        """(t_rowptr, t_col, t_perm) of A^T, with ``value_T = value[t_perm]``.

        A symmetric CSR is its own transpose (t_perm None). Otherwise the transpose is
        built once and cached on this object (and shared by :meth:`with_value`, which
        keeps the structure)."""
        if self.symmetric:
            return self.rowptr, self.col, None
        hit = self._cache.get("t")
        # valid only for these very structure tensors (dataclasses.replace may swap them)
        if hit is None or hit[0] is not self.rowptr or hit[1] is not self.col:
            from .ops import graph as _ops
            hit = (self.rowptr, self.col, _ops.csr_transpose(self.rowptr, self.col, self.n_cols))
            self._cache["t"] = hit
        return hit[2]

    def transpose(self) -> "CSR":
        """A^T as a CSR (values permuted; structure cached)."""
        if self.symmetric:
            return self
        t_rowptr, t_col, t_perm = self.transpose_parts()
        value = None if self.value is None else self.value[t_perm.long()]
        return CSR(t_rowptr, t_col, value, self.n_cols, self.n_rows)

    def row_ids(self) -> Tensor:
        """Row index of every stored entry (int64, [nnz])."""
        counts = self.rowptr[1:] - self.rowptr[:-1]
        return torch.repeat_interleave(torch.arange(self.n_rows, device=self.device), counts.long())

    def degrees(self) -> Tensor:
        return (self.rowptr[1:] - self.rowptr[:-1]).long()

    @classmethod
    def from_edge_index(cls, edge_index: Tensor, num_nodes: Optional[int] = None, *,
                        normalize: bool = True) -> "CSR":
        """The propagation matrix of a PyG-style ``edge_index`` [2, E] (messages flow from
        ``edge_index[0]`` to ``edge_index[1]``, so row ``i`` gathers its sources).

        ``normalize`` gives ``D^-1/2 A D^-1/2`` as LightGCN's ``LGConv`` (``gcn_norm`` without
        self loops, in-degrees); otherwise the binary A. Duplicate edges count once. The
        result is marked symmetric when ``edge_index`` holds both directions of every edge."""
        if not isinstance(edge_index, Tensor) or edge_index.dim() != 2 or edge_index.shape[0] != 2:
            raise ValueError(f"CSR.from_edge_index: edge_index must be a [2, E] tensor, got "
                             f"{tuple(edge_index.shape) if isinstance(edge_index, Tensor) else type(edge_index)}")
        n = int(edge_index.max()) + 1 if num_nodes is None and edge_index.numel() else int(num_nodes or 0)
        src, dst = edge_index[0], edge_index[1]
        a = csr_from_coo(dst, src, n, n)
        symmetric = bool(torch.equal(*(_sorted_keys(x, y, n) for x, y in ((src, dst), (dst, src)))))
        if not normalize:
            return replace(a, symmetric=symmetric)
        deg = a.degrees().double()
        dinv = torch.where(deg > 0, deg.rsqrt(), torch.zeros_like(deg))
        value = (dinv[a.row_ids()] * dinv[a.col.long()]).float()
        return CSR(a.rowptr, a.col, value, n, n, symmetric=symmetric)

    @classmethod
    def from_scipy(cls, m) -> "CSR":
        """From any scipy sparse matrix (summed duplicates, explicit zeros dropped, float32 values)."""
        import numpy as np
        import scipy.sparse as sp
        if not sp.issparse(m):
            raise ValueError(f"CSR.from_scipy: expected a scipy sparse matrix, got {type(m).__name__}")
        c = sp.csr_matrix(m)
        c.sum_duplicates()
        c.eliminate_zeros()
        c.sort_indices()
        n_rows, n_cols = c.shape
        dt = index_dtype(n_rows + 1, n_cols, c.nnz)
        return CSR(torch.from_numpy(c.indptr.astype(np.int64)).to(dt), torch.from_numpy(c.indices.astype(np.int64)).to(dt),
                   torch.from_numpy(c.data.astype(np.float32)), int(n_rows), int(n_cols))

    def to_dense(self) -> Tensor:
        """Dense copy, for tests on small graphs only."""
        out = torch.zeros(self.n_rows, self.n_cols, dtype=torch.float64 if self.value is None else self.value.dtype,
                          device=self.device)
        v = torch.ones(self.nnz, dtype=out.dtype, device=self.device) if self.value is None else self.value
        out.index_put_((self.row_ids(), self.col.long()), v, accumulate=True)
        return out


def _sorted_keys(a: Tensor, b: Tensor, n: int) -> Tensor:
    return torch.unique(a.long() * max(n, 1) + b.long())


def csr_from_coo(rows: Tensor, cols: Tensor, n_rows: int, n_cols: int) -> CSR:
    """Binary CSR of the (row, col) pairs: rows sorted, duplicate pairs merged."""
    from .ops import graph as _ops
    rowptr, col = _ops.csr_from_coo(rows, cols, n_rows, n_cols)
    return CSR(rowptr, col, None, n_rows, n_cols)


def normalized_bipartite_adj(users: Tensor, items: Tensor, n_users: int, n_items: int) -> CSR:
    """LightGCN's ``D^-1/2 A D^-1/2`` over users and items, A = [[0, R], [R^T, 0]].

    Duplicate interactions are merged; users or items without edges are allowed (their
    rows are empty)."""
    from .ops import graph as _ops
    rowptr, col, value = _ops.bipartite_norm_adj(users, items, n_users, n_items)
    n = n_users + n_items
    return CSR(rowptr, col, value, n, n, symmetric=True)


def spmm(adj: CSR, x: Tensor) -> Tensor:
    """``adj @ x`` for a dense ``x`` [n_cols, d]; differentiable in ``x`` and ``adj.value``."""
    from .ops import graph as _ops
    return _ops.spmm(adj, x)


def propagate(adj: CSR, x0: Tensor, num_layers: int,
              layer_weights: Optional[Union[Sequence[float], Tensor]] = None) -> Tensor:
    """``sum_{k=0..K} w_k A^k x0`` in one fused op (LightGCN: w_k = 1 / (K + 1)).

    Computed by Horner's rule, one sparse pass per layer; the backward is the same op
    on ``A^T`` (``adj`` itself when symmetric). Differentiable in ``x0`` (not in the
    weights or the edge values); needs a square ``adj``."""
    from .ops import graph as _ops
    if isinstance(num_layers, bool) or not isinstance(num_layers, int):
        raise ValueError(f"propagate: num_layers must be an int, got {num_layers!r}")
    if num_layers < 0:
        raise ValueError(f"propagate: num_layers must be >= 0, got {num_layers}")
    if layer_weights is None:
        layer_weights = [1.0 / (num_layers + 1)] * (num_layers + 1)
    if isinstance(layer_weights, Tensor):
        layer_weights = layer_weights.detach().cpu().tolist()
    w = [float(v) for v in layer_weights]
    if len(w) != num_layers + 1:
        raise ValueError(f"layer_weights must have num_layers + 1 = {num_layers + 1} entries, got {len(w)}")
    return _ops.lightgcn_propagate(adj, x0, w)
