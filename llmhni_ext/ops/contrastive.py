"""Contrastive ops: edge-dropped views and batched cosine InfoNCE.

Each function dispatches to ``torch.ops.llmhni.<op>`` when a kernel for the tensors'
device was compiled, else to the reference twin in :mod:`llmhni_ext.reference`.
The InfoNCE op's autograd (backward = ``infonce_backward``, which recomputes the
scores block by block) and the fake kernels for ``torch.compile`` are registered
once the compiled library loads.
"""
from __future__ import annotations

from typing import List, Tuple

import torch
from torch import Tensor

from .. import _backend
from .. import reference as _ref


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
    """Loss [P] for a, b [P, B, d]; differentiable in a and b."""
    if _backend.has_kernel("infonce", a.device.type) and _backend.has_kernel("infonce_backward", a.device.type):
        return torch.ops.llmhni.infonce(a, b, float(temperature))[0]
    # Reference path: plain autograd through normalise, matmul, logsumexp.
    _check_infonce_inputs(a, b, temperature)
    return _ref.infonce(a, b, float(temperature))[0]


def _check_infonce_inputs(a: Tensor, b: Tensor, temperature: float) -> None:
    """The compiled op's argument checks, for the reference path (same messages)."""
    floats = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
    for name, t in (("a", a), ("b", b)):
        if t.dtype not in floats:
            raise RuntimeError(f"infonce: {name} must be float32, float64, float16 or bfloat16, got {t.dtype}")
    if a.dtype != b.dtype:
        raise RuntimeError(f"infonce: a and b must share one dtype, got {a.dtype} and {b.dtype}")
    if a.device != b.device:
        raise RuntimeError(f"infonce: a is on {a.device} but b is on {b.device}; move them to one device")
    if a.dim() != 3:
        raise RuntimeError(f"infonce: a ([P, B, d]) must be 3-D, got shape {list(a.shape)}")
    if a.shape != b.shape:
        raise RuntimeError(f"infonce: a and b must have the same shape [P, B, d], got {list(a.shape)} and "
                           f"{list(b.shape)}")
    if not (temperature > 0 and temperature < float("inf")):
        raise RuntimeError(f"infonce: temperature must be a positive number, got {temperature}")


def _check_edge_drop_inputs(rowptr: Tensor, col: Tensor, keep_prob: float, num_views: int) -> None:
    """The compiled op's argument checks, for the reference path (same messages)."""
    op = "edge_drop"
    for name, t in (("rowptr", rowptr), ("col", col)):
        if t.dtype not in (torch.int32, torch.int64):
            raise RuntimeError(f"{op}: {name} must be an int32 or int64 tensor, got {t.dtype}")
        if t.dim() != 1:
            raise RuntimeError(f"{op}: {name} must be 1-D, got shape {list(t.shape)}")
    if rowptr.dtype != col.dtype:
        raise RuntimeError(f"{op}: rowptr and col must share one index dtype, got {rowptr.dtype} and {col.dtype}")
    if rowptr.device != col.device:
        raise RuntimeError(f"{op}: rowptr is on {rowptr.device} but col is on {col.device}; move them to one device")
    if not (0.0 <= keep_prob <= 1.0):
        raise RuntimeError(f"{op}: keep_prob must lie in [0, 1], got {keep_prob}")
    if num_views < 1:
        raise RuntimeError(f"{op}: num_views must be at least 1, got {num_views}")
    n = rowptr.numel() - 1
    if n < 0:
        raise RuntimeError(f"{op}: rowptr must have n_rows + 1 >= 1 entries, got 0")
    if int(rowptr[0]) != 0 or int(rowptr[-1]) != col.numel() or bool((rowptr[1:] < rowptr[:-1]).any()):
        raise RuntimeError(f"{op}: rowptr must start at 0, be non-decreasing and end at col.numel()")
    if col.numel() and (int(col.min()) < 0 or int(col.max()) >= n):
        raise RuntimeError(f"{op}: col has values out of range for a square graph of {n} nodes")


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
