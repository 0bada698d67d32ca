"""Contrastive ops: edge-dropped views and batched cosine InfoNCE.

Each function dispatches (:func:`llmhni_ext._backend.dispatch`, cached per op and device)
to ``torch.ops.llmhni.<op>`` when a kernel for the tensors' device was compiled, else to
the reference twin in :mod:`llmhni_ext.reference.contrastive`; both check the arguments.
The InfoNCE op's autograd (backward = ``infonce_backward``, which recomputes the
scores block by block) and the fake kernels for ``torch.compile`` are registered
once the compiled library loads.
"""
from __future__ import annotations

from typing import List, Tuple

import torch
from torch import Tensor

from .. import _backend


def edge_drop_mask(rowptr: Tensor, col: Tensor, keep_prob: float, num_views: int, seed: int,
                   offset: int) -> Tensor:
    return _backend.dispatch("edge_drop_mask", col.device)(rowptr, col, float(keep_prob), int(num_views),
                                                            int(seed), int(offset))


def edge_drop_compact(rowptr: Tensor, col: Tensor, keep_prob: float, num_views: int, seed: int,
                      offset: int) -> Tuple[List[Tensor], List[Tensor], List[Tensor]]:
    out = _backend.dispatch("edge_drop_compact", col.device)(rowptr, col, float(keep_prob), int(num_views),
                                                              int(seed), int(offset))
    return list(out[0]), list(out[1]), list(out[2])


def infonce(a: Tensor, b: Tensor, temperature: float) -> Tensor:
    """Loss [P] for a, b [P, B, d]; differentiable in a and b (the compiled op through its
    registered autograd, the reference twin through plain autograd)."""
    return _backend.dispatch("infonce", a.device)(a, b, float(temperature))[0]


@_backend.on_load
def _register() -> None:
    lib = torch.ops.llmhni
    if not hasattr(lib, "infonce"):
        return

    @torch.library.register_fake("llmhni::edge_drop_mask")
    def _edge_drop_mask_fake(rowptr, col, keep_prob, num_views, seed, offset):
        return col.new_empty((num_views, col.shape[0]), dtype=torch.float32)

    @torch.library.register_fake("llmhni::edge_drop_compact")
    def _edge_drop_compact_fake(rowptr, col, keep_prob, num_views, seed, offset):
        ctx = torch.library.get_ctx()
        rps, cols, vals = [], [], []
        for _ in range(num_views):
            nnz = ctx.new_dynamic_size()
            rps.append(rowptr.new_empty(rowptr.shape))
            cols.append(col.new_empty((nnz,)))
            vals.append(col.new_empty((nnz,), dtype=torch.float32))
        return rps, cols, vals

    def _acc(dtype):
        return torch.float64 if dtype == torch.float64 else torch.float32

    @torch.library.register_fake("llmhni::infonce")
    def _infonce_fake(a, b, temperature):
        return a.new_empty((a.shape[0],)), a.new_empty((a.shape[0], a.shape[1]), dtype=_acc(a.dtype))

    @torch.library.register_fake("llmhni::infonce_backward")
    def _infonce_backward_fake(grad_loss, a, b, lse, temperature):
        return torch.empty_like(a), torch.empty_like(b)

    def _setup_context(ctx, inputs, output):
        a, b, temperature = inputs
        ctx.save_for_backward(a, b, output[1])
        ctx.temperature = temperature

    def _backward(ctx, grad_loss, grad_lse):
        a, b, lse = ctx.saved_tensors
        if grad_loss is None:
            return None, None, None
        ga, gb = torch.ops.llmhni.infonce_backward(grad_loss.contiguous(), a, b, lse, ctx.temperature)
        return ga, gb, None

    torch.library.register_autograd("llmhni::infonce", _backward, setup_context=_setup_context)
