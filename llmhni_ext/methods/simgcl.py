"""SimGCL: BPR plus InfoNCE between two propagations perturbed by random uniform noise
(Yu et al., "Are graph augmentations necessary?", SIGIR 2022)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple

from torch import Tensor

from .. import losses
from .base import Method, Step
from .settings import MethodSettings, setting

METHODS = ("SimGCL",)


@dataclass
class SimGCLSettings(MethodSettings):
    ssl_lambda: float = setting(0.01, "weight of the contrastive term (0.1 holds BPR near ln 2 on ML-100K; "
                                      "0.01 > 0.003 > 0.1 on validation)", ge=0)
    ssl_tau: float = setting(0.2, "InfoNCE temperature", gt=0)
    simgcl_eps: float = setting(0.1, "size of the uniform noise added at every layer", ge=0)


class SimGCL(Method):
    name = "simgcl"
    description = "BPR + noise-perturbed contrastive views (SimGCL)"
    Settings = SimGCLSettings

    def aux_losses(self, step: Step, z: Tensor) -> Dict[str, Tuple[float, Tensor]]:
        """``L_ssl`` between two propagations with ``eps``-scaled noise added at every layer."""
        eps = self.cfg.simgcl_eps
        za = self.model(self.graph.propagation, noise_eps=eps, generator=step.gen)
        zb = self.model(self.graph.propagation, noise_eps=eps, generator=step.gen)
        bu, bi = step.batch_nodes(self.ctx.n_users)
        return {"ssl": (self.cfg.ssl_lambda, losses.ssl_loss(za, zb, bu, bi, self.cfg.ssl_tau))}
