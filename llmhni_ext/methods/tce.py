"""Truncated cross-entropy (T-CE): drop the largest-loss samples, a share growing over a
warm-up (Wang et al., "Denoising implicit feedback for recommendation", WSDM 2021)."""
from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from .. import losses
from .base import Method, Step
from .settings import MethodSettings, setting

METHODS = ("TCE",)


@dataclass
class TCESettings(MethodSettings):
    tce_max_drop: float = setting(0.1, "largest share of the batch's samples dropped (0.1 > 0.2 on ML-100K "
                                       "validation, 20% noise)", ge=0, lt=1)
    tce_warmup_epochs: int = setting(10, "epochs over which the drop rate grows to tce_max_drop", ge=1)


class TCE(Method):
    name = "tce"
    description = "truncated BCE (T-CE)"
    Settings = TCESettings
    rec_couples_rows = True            # the kept share is chosen over the whole batch

    def rec_loss(self, s_pos: Tensor, s_neg: Tensor, step: Step) -> Tensor:
        """``L_TCE`` with drop rate ``min(epoch / warmup, 1) * max_drop``."""
        rate = losses.tce_drop_rate(step.epoch, self.cfg.tce_max_drop, self.cfg.tce_warmup_epochs)
        return losses.tce_loss(s_pos, s_neg, rate)
