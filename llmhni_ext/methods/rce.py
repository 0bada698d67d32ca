"""Reweighted cross-entropy (R-CE): down-weight the samples the model fits badly
(Wang et al., "Denoising implicit feedback for recommendation", WSDM 2021)."""
from __future__ import annotations

from torch import Tensor

from .. import losses
from .base import Method, Step


class RCE(Method):
    name = "rce"
    description = "reweighted BCE (R-CE)"
    reads = ("rce_beta",)

    def rec_loss(self, s_pos: Tensor, s_neg: Tensor, step: Step) -> Tensor:
        return losses.rce_loss(s_pos, s_neg, self.cfg.rce_beta)
