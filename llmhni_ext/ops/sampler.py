"""Sampler op: fused hard-negative sampling (``llmhni::sample_negatives``).

Dispatches (:func:`llmhni_ext._backend.dispatch`, cached per op and device) to the
compiled CPU/CUDA kernel, or to the reference twin in :mod:`llmhni_ext.reference.sampler`
where none serves the device. The op has integer outputs
and non-differentiable scores, so it registers a fake kernel (for ``torch.compile``)
and no autograd.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor

from .. import _backend


def sample_negatives(rowptr: Tensor, col: Tensor, users: Tensor, n_items: int, mode: str,
                     num_negatives: int, num_candidates: int, top_k: int, sim_threshold: float,
                     seed: int, offset: int, max_redraws: int, candidates: Optional[Tensor] = None,
                     pop_cdf: Optional[Tensor] = None, user_emb: Optional[Tensor] = None,
                     item_emb: Optional[Tensor] = None, user_sem: Optional[Tensor] = None,
                     item_sem: Optional[Tensor] = None, check_rows: bool = True) -> Tuple[Tensor, Tensor, Tensor]:
    """See :func:`llmhni_ext.reference.sample_negatives` for the contract."""
    fn = _backend.dispatch("sample_negatives", users.device)
    return fn(rowptr, col, users, int(n_items), str(mode), int(num_negatives), int(num_candidates),
              int(top_k), float(sim_threshold), int(seed), int(offset), int(max_redraws), candidates,
              pop_cdf, user_emb, item_emb, user_sem, item_sem, bool(check_rows))


@_backend.on_load
def _register() -> None:
    if not hasattr(torch.ops.llmhni, "sample_negatives"):
        return

    @torch.library.register_fake("llmhni::sample_negatives")
    def _fake(rowptr, col, users, n_items, mode, num_negatives, num_candidates, top_k, sim_threshold,
              seed, offset, max_redraws, candidates=None, pop_cdf=None, user_emb=None, item_emb=None,
              user_sem=None, item_sem=None, check_rows=True):
        named = {"rowptr": rowptr, "col": col, "candidates": candidates, "pop_cdf": pop_cdf, "user_emb": user_emb,
                 "item_emb": item_emb, "user_sem": user_sem, "item_sem": item_sem}
        for name, t in named.items():
            if t is not None and t.device != users.device:
                raise RuntimeError(f"sample_negatives: users is on {users.device} but {name} is on {t.device}; "
                                   "move them to one device")
        B = users.shape[0]
        neg = users.new_empty((B, num_negatives), dtype=torch.long)
        if user_emb is not None and item_emb is not None:
            scores = users.new_empty((B, num_negatives), dtype=torch.float32)
        else:
            scores = users.new_empty((0,), dtype=torch.float32)
        return neg, scores, users.new_empty((4,), dtype=torch.long)
