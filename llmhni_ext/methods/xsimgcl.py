"""XSimGCL: SimGCL with one propagation (Yu et al., "XSimGCL: towards extremely simple graph
contrastive learning for recommendation", TKDE 2023).

Noise ``eps * sign(x) * normalize(U(0, 1))`` is added to every layer's output of the one
training propagation; BPR scores the mean of layers 1..K, and InfoNCE contrasts that mean
with layer ``l*``'s output (the cross-layer contrast). Prediction uses the noise-free mean of
layers 1..K. Defined on LightGCN's propagation."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Tuple

import torch
from torch import Tensor

from .. import graph as _graph
from .. import losses
from ..models.base import perturb
from .base import Method, Step
from .settings import MethodSettings, require, setting

METHODS = ("XSimGCL",)


@dataclass
class XSimGCLSettings(MethodSettings):
    """SELFRec's defaults."""
    xsimgcl_lambda: float = setting(0.2, "weight of the cross-layer contrast", ge=0)
    xsimgcl_tau: float = setting(0.15, "InfoNCE temperature", gt=0)
    xsimgcl_eps: float = setting(0.2, "size of the noise added at every layer", ge=0)
    xsimgcl_layer: int = setting(1, "the layer l* contrasted with the output", ge=1)

    def check(self, model: Any) -> None:
        require(self.xsimgcl_layer <= model.layers, "xsimgcl_layer", f"must be at most model.layers ({model.layers})",
                self.xsimgcl_layer)


class XSimGCL(Method):
    name = "xsimgcl"
    description = "LightGCN + cross-layer contrast in one noisy propagation (XSimGCL)"
    Settings = XSimGCLSettings
    backbones = ("lightgcn",)          # it perturbs LightGCN's propagation layer by layer

    def _layers(self, eps: float, gen) -> List[Tensor]:
        x, out = self.model.ego(), []
        for _ in range(self.ctx.cfg.model.layers):
            part = self.graph.part
            x = perturb(part.layer(x) if part is not None else _graph.spmm(self.graph.adj, x), eps, gen)
            out.append(x)
        return out

    def representations(self, step: Step) -> Tensor:
        layers = self._layers(self.cfg.xsimgcl_eps, step.gen)
        step.scratch["cl_layer"] = layers[self.cfg.xsimgcl_layer - 1]
        return torch.stack(layers).mean(0)

    @torch.no_grad()
    def eval_representations(self) -> Tensor:
        return torch.stack(self._layers(0.0, None)).mean(0)

    def aux_losses(self, step: Step, z: Tensor) -> Dict[str, Tuple[float, Tensor]]:
        """``L_cl = InfoNCE_tau(z, z^(l*))`` over the batch's users and items."""
        bu, bi = step.batch_nodes(self.ctx.n_users)
        cl = losses.ssl_loss(z, step.scratch["cl_layer"], bu, bi, self.cfg.xsimgcl_tau)
        return {"cl": (self.cfg.xsimgcl_lambda, cl)}
