"""Graph ops: CSR construction, spmm, fused LightGCN propagation.

(Interim version: dispatches straight to the reference twins; the compiled kernels,
their fake kernels and autograd registration replace this.)"""
from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor

from .. import _backend


def csr_from_coo(rows: Tensor, cols: Tensor, n_rows: int, n_cols: int) -> Tuple[Tensor, Tensor]:
    return _backend.dispatch("csr_from_coo", rows.device)(rows, cols, n_rows, n_cols)


def bipartite_norm_adj(users: Tensor, items: Tensor, n_users: int, n_items: int) -> Tuple[Tensor, Tensor, Tensor]:
    return _backend.dispatch("bipartite_norm_adj", users.device)(users, items, n_users, n_items)


def spmm(adj, x: Tensor) -> Tensor:
    return _backend.dispatch("spmm", x.device)(adj.rowptr, adj.col, adj.value, x)


def lightgcn_propagate(adj, x0: Tensor, weights: Tensor) -> Tensor:
    return _backend.dispatch("lightgcn_propagate", x0.device)(adj.rowptr, adj.col, adj.value, x0, weights)
