"""SGL-ED: BPR plus InfoNCE between two edge-dropped views of G (Wu et al., SIGIR 2021)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple

from torch import Tensor

from .. import losses
from .base import Method, Step
from .settings import MethodSettings, setting

METHODS = ("SGL",)


@dataclass
class SGLSettings(MethodSettings):
    sgl_lambda: float = setting(0.01, "weight of the contrastive term", ge=0)
    sgl_tau: float = setting(0.2, "InfoNCE temperature", gt=0)
    sgl_keep_prob: float = setting(0.8, "edge keep rate of the two views (1 - rho)", gt=0, le=1)

    #: SGL read the shared ssl_lambda / ssl_tau / keep_prob until it had its own settings
    legacy_keys = {"sgl_lambda": "ssl_lambda", "sgl_tau": "ssl_tau", "sgl_keep_prob": "keep_prob"}


class SGL(Method):
    name = "sgl"
    description = "BPR + edge-drop contrastive views (SGL-ED)"
    Settings = SGLSettings

    @property
    def view_keep_prob(self) -> float:
        return self.cfg.sgl_keep_prob

    def aux_losses(self, step: Step, z: Tensor) -> Dict[str, Tuple[float, Tensor]]:
        """``L_ssl`` between f(d(G)) and f(d'(G)), views redrawn every epoch."""
        a, b = self.edge_dropped_views(step.epoch, self.graph)
        za, zb = self.model(a, generator=step.gen), self.model(b, generator=step.gen)
        bu, bi = step.batch_nodes(self.ctx.n_users)
        return {"ssl": (self.cfg.sgl_lambda, losses.ssl_loss(za, zb, bu, bi, self.cfg.sgl_tau))}
