"""Graph ops: CSR construction, spmm, fused LightGCN propagation.

Each function dispatches to ``torch.ops.llmhni.<op>`` when a kernel for the tensors'
device is compiled, else to its reference twin. Once the library is loaded,
:func:`_register` adds the fake kernels (for ``torch.compile``) and autograd:

* ``spmm``: ``d x = A^T g`` (an spmm on the transpose: row-parallel, no atomics) and
  ``d value[e] = <g[row e], x[col e]>`` (``csr_sddmm``);
* ``lightgcn_propagate``: the backward of ``sum_k w_k A^k x0`` is
  ``sum_k w_k (A^T)^k g``, the same fused op on ``A^T`` (Horner:
  ``h = w_K g; h = w_k g + A^T h``), so nothing is saved but the graph.

The transpose is passed in by the caller (``CSR.transpose_parts()``, cached; a
symmetric CSR passes itself), or computed in the backward when absent.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor

from .. import _backend
from .._common import index_dtype



def csr_from_coo(rows: Tensor, cols: Tensor, n_rows: int, n_cols: int) -> Tuple[Tensor, Tensor]:
    return _backend.dispatch("csr_from_coo", rows.device)(rows, cols, n_rows, n_cols)


def bipartite_norm_adj(users: Tensor, items: Tensor, n_users: int, n_items: int) -> Tuple[Tensor, Tensor, Tensor]:
    return _backend.dispatch("bipartite_norm_adj", users.device)(users, items, n_users, n_items)


def csr_transpose(rowptr: Tensor, col: Tensor, n_cols: int) -> Tuple[Tensor, Tensor, Tensor]:
    return _backend.dispatch("csr_transpose", col.device)(rowptr, col, n_cols)


def csr_sddmm(rowptr: Tensor, col: Tensor, a: Tensor, b: Tensor) -> Tensor:
    return _backend.dispatch("csr_sddmm", a.device)(rowptr, col, a, b)


def _transpose_args(adj, needed: bool) -> Tuple[Optional[Tensor], Optional[Tensor], Optional[Tensor]]:
    if not needed:
        return None, None, None
    return adj.transpose_parts()


def spmm(adj, x: Tensor) -> Tensor:
    needs_t = torch.is_grad_enabled() and x.requires_grad
    return _backend.dispatch("spmm", x.device)(adj.rowptr, adj.col, adj.value, x, *_transpose_args(adj, needs_t))


def lightgcn_propagate(adj, x0: Tensor, weights: Sequence[float]) -> Tensor:
    if adj.value is not None and adj.value.requires_grad and torch.is_grad_enabled():
        raise ValueError("propagate: the fused op is differentiable in x0 only; for gradients with respect to "
                         "the edge values call spmm once per layer")
    if adj.n_rows != adj.n_cols:
        raise ValueError(f"propagate: the adjacency must be square, got {adj.n_rows} x {adj.n_cols}")
    w = [float(v) for v in weights]
    needs_t = torch.is_grad_enabled() and x0.requires_grad
    return _backend.dispatch("lightgcn_propagate", x0.device)(adj.rowptr, adj.col, adj.value, x0, w,
                                                              *_transpose_args(adj, needs_t))


# ---------------------------------------------------------------------------- autograd

def _transpose_in_backward(rowptr, col, value, n_cols, t_rowptr, t_col, t_perm):
    """(rowptr, col, value) of A^T from what the forward was given."""
    if t_rowptr is None:
        t_rowptr, t_col, t_perm = torch.ops.llmhni.csr_transpose(rowptr, col, n_cols)
    if value is None:
        return t_rowptr, t_col, None
    return t_rowptr, t_col, (value if t_perm is None else value[t_perm.long()])


def _spmm_setup(ctx, inputs, output):
    rowptr, col, value, x, t_rowptr, t_col, t_perm = inputs
    ctx.n_cols = x.shape[0]
    ctx.x_dtype = x.dtype
    ctx.value_dtype = None if value is None else value.dtype
    ctx.save_for_backward(rowptr, col, value, x, t_rowptr, t_col, t_perm)


def _spmm_backward(ctx, grad):
    rowptr, col, value, x, t_rowptr, t_col, t_perm = ctx.saved_tensors
    need_value, need_x = ctx.needs_input_grad[2], ctx.needs_input_grad[3]
    grad_value = grad_x = None
    grad = grad.contiguous()
    if need_x:
        tr, tc, tv = _transpose_in_backward(rowptr, col, value, ctx.n_cols, t_rowptr, t_col, t_perm)
        grad_x = torch.ops.llmhni.spmm(tr, tc, tv, grad)
    if need_value:
        grad_value = torch.ops.llmhni.csr_sddmm(rowptr, col, grad, x.to(grad.dtype)).to(ctx.value_dtype)
    return None, None, grad_value, grad_x, None, None, None


def _prop_setup(ctx, inputs, output):
    rowptr, col, value, x0, weights, t_rowptr, t_col, t_perm = inputs
    ctx.weights = list(weights)
    ctx.n = x0.shape[0]
    ctx.save_for_backward(rowptr, col, value, t_rowptr, t_col, t_perm)


def _prop_backward(ctx, grad):
    rowptr, col, value, t_rowptr, t_col, t_perm = ctx.saved_tensors
    if ctx.needs_input_grad[2]:
        raise RuntimeError("lightgcn_propagate is differentiable in x0 only; call spmm per layer for "
                           "gradients with respect to the edge values")
    grad_x0 = None
    if ctx.needs_input_grad[3]:
        tr, tc, tv = _transpose_in_backward(rowptr, col, value, ctx.n, t_rowptr, t_col, t_perm)
        grad_x0 = torch.ops.llmhni.lightgcn_propagate(tr, tc, tv, grad.contiguous(), ctx.weights)
    return None, None, None, grad_x0, None, None, None, None


@_backend.on_load
def _register() -> None:
    lib = "llmhni::"

    @torch.library.register_fake(lib + "csr_from_coo")
    def _(row, col, n_rows, n_cols):
        nnz = torch.library.get_ctx().new_dynamic_size()
        dt = index_dtype(n_rows + 1, n_cols, row.numel())
        return row.new_empty(n_rows + 1, dtype=dt), row.new_empty(nnz, dtype=dt)

    @torch.library.register_fake(lib + "bipartite_norm_adj")
    def _(users, items, n_users, n_items):
        nnz = torch.library.get_ctx().new_dynamic_size()
        n = n_users + n_items
        dt = index_dtype(n + 1, n, 2 * users.numel())
        return (users.new_empty(n + 1, dtype=dt), users.new_empty(nnz, dtype=dt),
                users.new_empty(nnz, dtype=torch.float32))

    @torch.library.register_fake(lib + "csr_transpose")
    def _(rowptr, col, n_cols):
        return col.new_empty(n_cols + 1), col.new_empty(col.shape), col.new_empty(col.shape)

    @torch.library.register_fake(lib + "spmm")
    def _(rowptr, col, value, x, t_rowptr=None, t_col=None, t_perm=None):
        torch._check(x.dim() == 2, lambda: "spmm: x must be 2-D")
        return x.new_empty(rowptr.shape[0] - 1, x.shape[1])

    @torch.library.register_fake(lib + "csr_sddmm")
    def _(rowptr, col, a, b):
        return a.new_empty(col.shape, dtype=torch.float64 if a.dtype == torch.float64 else torch.float32)

    @torch.library.register_fake(lib + "lightgcn_propagate")
    def _(rowptr, col, value, x0, weights, t_rowptr=None, t_col=None, t_perm=None):
        return torch.empty_like(x0, memory_format=torch.contiguous_format)

    torch.library.register_autograd(lib + "spmm", _spmm_backward, setup_context=_spmm_setup)
    torch.library.register_autograd(lib + "lightgcn_propagate", _prop_backward, setup_context=_prop_setup)
