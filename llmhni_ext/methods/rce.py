"""Reweighted cross-entropy (R-CE): down-weight the samples the model fits badly
(Wang et al., "Denoising implicit feedback for recommendation", WSDM 2021)."""
from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from .. import losses
from .base import Method, Step
from .settings import MethodSettings, setting

METHODS = ("RCE",)


@dataclass
class RCESettings(MethodSettings):
    rce_beta: float = setting(0.25, "weight exponent: each sample weighted by its detached prediction^beta", ge=0)


class RCE(Method):
    name = "rce"
    description = "reweighted BCE (R-CE)"
    Settings = RCESettings

    def rec_loss(self, s_pos: Tensor, s_neg: Tensor, step: Step) -> Tensor:
        return losses.rce_loss(s_pos, s_neg, self.cfg.rce_beta)
