"""LightGCN: ``z = sum_{k=0..K} 1/(K+1) * A_hat^k e^(0)`` with ``A_hat = D^-1/2 A D^-1/2``."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from .. import distributed, graph
from ..graph import CSR
from .base import Backbone, perturb


class LightGCN(Backbone):
    """He et al., SIGIR 2020: no feature transforms, no non-linearities, layer mean."""

    def __init__(self, n_users: int, n_items: int, dim: int, layers: int, seed: int = 0) -> None:
        super().__init__(n_users, n_items, dim, seed)
        self.layers = layers

    def forward(self, adj: Optional[CSR], noise_eps: float = 0.0,
                generator: Optional[torch.Generator] = None, ego: Optional[Tensor] = None) -> Tensor:
        if adj is None:
            raise ValueError("LightGCN needs a graph (the normalised adjacency)")
        x0 = self.embedding if ego is None else ego
        layer = getattr(adj, "layer", None)            # a rank's block of a partitioned graph
        if noise_eps <= 0:
            if layer is not None:
                return distributed.propagate(adj, x0, self.layers)
            # the fused K-layer propagation with the layer mean, forward and backward in one op
            return graph.propagate(adj, x0, self.layers)
        # SimGCL: perturb every layer's output, then average layers 1..K (as SimGCL does)
        x, acc = x0, None
        for _ in range(self.layers):
            x = perturb(layer(x) if layer is not None else graph.spmm(adj, x), noise_eps, generator)
            acc = x if acc is None else acc + x
        return x if acc is None else acc / self.layers
