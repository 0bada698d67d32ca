"""What every backbone shares: ego embeddings, scoring, the user/item split."""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor, nn

from ..graph import CSR


class Backbone(nn.Module):
    """Layer-0 embeddings ``e^(0)`` for users then items, and a graph encoder on top."""

    def __init__(self, n_users: int, n_items: int, dim: int, seed: int = 0) -> None:
        super().__init__()
        if n_users <= 0 or n_items <= 0 or dim <= 0:
            raise ValueError(f"need n_users, n_items, dim > 0, got {n_users}, {n_items}, {dim}")
        self.n_users, self.n_items, self.dim = n_users, n_items, dim
        g = torch.Generator().manual_seed(seed)
        # LightGCN's initialisation: N(0, 0.1^2)
        self.embedding = nn.Parameter(torch.randn(n_users + n_items, dim, generator=g) * 0.1)

    @property
    def n_nodes(self) -> int:
        return self.n_users + self.n_items

    def ego(self) -> Tensor:
        return self.embedding

    def forward(self, adj: Optional[CSR], noise_eps: float = 0.0,
                generator: Optional[torch.Generator] = None, ego: Optional[Tensor] = None) -> Tensor:  # pragma: no cover
        """Representations ``z`` [n_users + n_items, d'] on ``adj``; ``noise_eps`` > 0 adds SimGCL's
        noise at every layer; ``ego`` replaces the layer-0 embeddings (e.g. with masked rows)."""
        raise NotImplementedError

    def split(self, z: Tensor) -> Tuple[Tensor, Tensor]:
        return z[: self.n_users], z[self.n_users:]


def perturb(x: Tensor, eps: float, generator: Optional[torch.Generator]) -> Tensor:
    """SimGCL's noise: ``x + eps * sign(x) * normalize(U(0, 1))``."""
    if eps <= 0:
        return x
    r = torch.rand(x.shape, generator=generator, dtype=x.dtype).to(x.device)
    return x + eps * torch.sign(x) * nn.functional.normalize(r, dim=-1)
