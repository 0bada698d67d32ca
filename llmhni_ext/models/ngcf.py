"""NGCF (Wang et al., SIGIR 2019).

``e^(k+1) = LeakyReLU( W1 (A_hat e^(k) + e^(k)) + W2 (A_hat e^(k) ⊙ e^(k)) )``, message
dropout, row-normalised; ``z = [e^(0) || e^(1) || ... || e^(K)]``."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from .. import graph
from ..graph import CSR
from .base import Backbone, perturb


class NGCF(Backbone):
    def __init__(self, n_users: int, n_items: int, dim: int, layers: int, seed: int = 0,
                 dropout: float = 0.1) -> None:
        super().__init__(n_users, n_items, dim, seed)
        self.layers = layers
        self.dropout = dropout
        g = torch.Generator().manual_seed(seed + 1)
        self.w1 = nn.ParameterList()
        self.w2 = nn.ParameterList()
        self.b1 = nn.ParameterList()
        self.b2 = nn.ParameterList()
        bound = (6.0 / (2 * dim)) ** 0.5  # Xavier uniform
        for _ in range(layers):
            self.w1.append(nn.Parameter((torch.rand(dim, dim, generator=g) * 2 - 1) * bound))
            self.w2.append(nn.Parameter((torch.rand(dim, dim, generator=g) * 2 - 1) * bound))
            self.b1.append(nn.Parameter(torch.zeros(dim)))
            self.b2.append(nn.Parameter(torch.zeros(dim)))

    def forward(self, adj: Optional[CSR], noise_eps: float = 0.0,
                generator: Optional[torch.Generator] = None, ego: Optional[Tensor] = None) -> Tensor:
        if adj is None:
            raise ValueError("NGCF needs a graph (the normalised adjacency)")
        x = self.embedding if ego is None else ego
        outs = [x]
        for k in range(self.layers):
            side = adj.layer(x) if hasattr(adj, "layer") else graph.spmm(adj, x)   # a rank's block when partitioned
            h = nn.functional.leaky_relu((side + x) @ self.w1[k] + self.b1[k]
                                         + (side * x) @ self.w2[k] + self.b2[k], 0.2)
            if self.training and self.dropout > 0:
                keep = 1.0 - self.dropout
                mask = (torch.rand(h.shape, generator=generator) < keep).to(h.device, h.dtype) / keep
                h = h * mask
            x = perturb(h, noise_eps, generator)
            outs.append(nn.functional.normalize(x, dim=1))
        return torch.cat(outs, dim=1)
