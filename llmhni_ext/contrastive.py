"""Graph contrastive learning: randomly edge-dropped views and the InfoNCE loss.

LLMHNI's hallucination-robust loss contrasts node representations propagated on
randomly edge-dropped views of the original graph G and of the denoised graph G';
its denoising loss contrasts representations on G and G' (SGL-style InfoNCE,
users and items in separate calls).

* :func:`edge_drop_views` makes dropped views of a normalised adjacency
  ``D^-1/2 A D^-1/2`` (as built by :func:`llmhni_ext.graph.normalized_bipartite_adj`)
  directly from its CSR: each undirected edge is kept with probability ``keep_prob``
  (both stored directions together) and the kept graph is re-normalised with its own
  degrees. The draws come from the counter-based Philox generator keyed by
  ``(seed, offset)``, so a view is the same on CPU and CUDA and run to run; advance
  ``offset`` (e.g. per epoch) for fresh views.
* :func:`infonce` is the cosine InfoNCE over in-batch negatives, in O(B*d) memory.
"""
from __future__ import annotations

from typing import List

from torch import Tensor

from .graph import CSR
from .ops import contrastive as _ops

__all__ = ["edge_drop_views", "infonce"]


def edge_drop_views(adj: CSR, keep_prob: float, *, num_views: int = 1, seed: int = 0, offset: int = 0,
                    compact: bool = True) -> List[CSR]:
    """``num_views`` randomly edge-dropped, re-normalised views of the square graph ``adj``.

    For view v, every undirected edge {r, c} of ``adj`` is kept with probability
    ``keep_prob`` (one decision for both stored entries), and the view's values are
    ``D_v^-1/2 A_v D_v^-1/2`` with ``A_v`` the binary kept structure and ``D_v`` its
    degrees; ``adj``'s own values are ignored. Nodes that lose every edge get empty rows.

    ``compact=True`` (the default, faster for propagation: see bench/RESULTS.md) returns
    CSRs holding only the kept entries; ``compact=False`` returns views sharing
    ``adj``'s structure with dropped entries set to 0. Views are symmetric CSRs that
    :func:`llmhni_ext.graph.spmm` and :func:`llmhni_ext.graph.propagate` accept.
    The result is a pure function of (adj structure, keep_prob, seed, offset, view index).
    """
    if not isinstance(adj, CSR):
        raise TypeError(f"edge_drop_views: adj must be a llmhni_ext.graph.CSR, got {type(adj).__name__}")
    if adj.n_rows != adj.n_cols:
        raise ValueError(f"edge_drop_views: adj must be square (a graph over n nodes), got {adj.n_rows} x {adj.n_cols}")
    keep_prob = float(keep_prob)
    if not 0.0 <= keep_prob <= 1.0:
        raise ValueError(f"edge_drop_views: keep_prob must lie in [0, 1], got {keep_prob}")
    if int(num_views) != num_views or num_views < 1:
        raise ValueError(f"edge_drop_views: num_views must be a positive integer, got {num_views}")
    if not (-(2**63) <= seed < 2**64 and -(2**63) <= offset < 2**64):
        raise ValueError("edge_drop_views: seed and offset must fit in 64 bits")
    # The op takes signed 64-bit integers; the generator reads them as unsigned.
    seed = seed - 2**64 if seed >= 2**63 else seed
    offset = offset - 2**64 if offset >= 2**63 else offset
    n = adj.n_rows
    if compact:
        rps, cols, vals = _ops.edge_drop_compact(adj.rowptr, adj.col, keep_prob, int(num_views), seed, offset)
        return [CSR(rp, c, v, n, n, symmetric=True) for rp, c, v in zip(rps, cols, vals)]
    values = _ops.edge_drop_mask(adj.rowptr, adj.col, keep_prob, int(num_views), seed, offset)
    return [CSR(adj.rowptr, adj.col, values[v], n, n, symmetric=True) for v in range(int(num_views))]


def infonce(a: Tensor, b: Tensor, temperature: float) -> Tensor:
    """Cosine InfoNCE of anchors ``a`` against candidates ``b`` over in-batch negatives.

        L = 1/B sum_i -log( exp(s_ii) / sum_j exp(s_ij) ),   s_ij = cos(a_i, b_j) / temperature

    ``a`` and ``b`` are [B, d] (returns a scalar) or [P, B, d] (returns [P], one loss per
    pair of views, computed in one call). Row i of ``b`` is the positive of row i of ``a``;
    the other rows of ``b`` are its negatives (pass users and items in separate calls, as
    SGL does). float32/float64/bfloat16/float16 inputs; accumulation in fp32 (fp64 for
    fp64); the loss has the inputs' dtype. Memory O(B*d): the B x B scores are never
    stored (the backward recomputes them). An empty batch gives 0.
    """
    if not isinstance(a, Tensor) or not isinstance(b, Tensor):
        raise TypeError("infonce: a and b must be tensors")
    if a.dim() not in (2, 3):
        raise ValueError(f"infonce: a must be [B, d] or [P, B, d], got shape {list(a.shape)}")
    if a.shape != b.shape:
        raise ValueError(f"infonce: a and b must have the same shape, got {list(a.shape)} and {list(b.shape)}")
    t = float(temperature)
    if not (t > 0 and t < float("inf")):
        raise ValueError(f"infonce: temperature must be a positive number, got {temperature}")
    if a.dim() == 2:
        return _ops.infonce(a.unsqueeze(0), b.unsqueeze(0), t)[0]
    return _ops.infonce(a, b, t)
