"""SimGCL: BPR plus InfoNCE between two propagations perturbed by random uniform noise
(Yu et al., "Are graph augmentations necessary?", SIGIR 2022)."""
from __future__ import annotations

from typing import Dict, Tuple

from torch import Tensor

from .. import losses
from .base import Method, Step


class SimGCL(Method):
    name = "simgcl"
    description = "BPR + noise-perturbed contrastive views (SimGCL)"
    reads = ("ssl_lambda", "ssl_tau", "simgcl_eps")

    def aux_losses(self, step: Step, z: Tensor) -> Dict[str, Tuple[float, Tensor]]:
        """``L_ssl`` between two propagations with ``eps``-scaled noise added at every layer."""
        eps = self.cfg.simgcl_eps
        za = self.model(self.graph.propagation, noise_eps=eps, generator=step.gen)
        zb = self.model(self.graph.propagation, noise_eps=eps, generator=step.gen)
        bu, bi = step.batch_nodes(self.ctx.n_users)
        return {"ssl": (self.cfg.ssl_lambda, losses.ssl_loss(za, zb, bu, bi, self.cfg.ssl_tau))}
