"""SGL-ED: BPR plus InfoNCE between two edge-dropped views of G (Wu et al., SIGIR 2021)."""
from __future__ import annotations

from typing import Dict, Tuple

from torch import Tensor

from .. import losses
from .base import Method, Step


class SGL(Method):
    name = "sgl"
    description = "BPR + edge-drop contrastive views (SGL-ED)"
    reads = ("sgl_lambda", "sgl_tau", "sgl_keep_prob")

    @property
    def view_keep_prob(self) -> float:
        return self.cfg.sgl_keep_prob

    def aux_losses(self, step: Step, z: Tensor) -> Dict[str, Tuple[float, Tensor]]:
        """``L_ssl`` between f(d(G)) and f(d'(G)), views redrawn every epoch."""
        a, b = self.edge_dropped_views(step.epoch, self.graph)
        za, zb = self.model(a, generator=step.gen), self.model(b, generator=step.gen)
        bu, bi = step.batch_nodes(self.ctx.n_users)
        return {"ssl": (self.cfg.sgl_lambda, losses.ssl_loss(za, zb, bu, bi, self.cfg.sgl_tau))}
