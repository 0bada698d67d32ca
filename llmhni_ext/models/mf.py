"""Matrix factorisation: ``z = e^(0)``, no graph."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from ..graph import CSR
from .base import Backbone, perturb


class MF(Backbone):
    """``s(u, i) = <e_u, e_i>``; the graph argument is ignored."""

    def forward(self, adj: Optional[CSR], noise_eps: float = 0.0,
                generator: Optional[torch.Generator] = None, ego: Optional[Tensor] = None) -> Tensor:
        return perturb(self.embedding if ego is None else ego, noise_eps, generator)
