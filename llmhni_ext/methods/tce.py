"""Truncated cross-entropy (T-CE): drop the largest-loss samples, a share growing over a
warm-up (Wang et al., "Denoising implicit feedback for recommendation", WSDM 2021)."""
from __future__ import annotations

from torch import Tensor

from .. import losses
from .base import Method, Step


class TCE(Method):
    name = "tce"
    description = "truncated BCE (T-CE)"
    reads = ("tce_max_drop", "tce_warmup_epochs")
    rec_couples_rows = True            # the kept share is chosen over the whole batch

    def rec_loss(self, s_pos: Tensor, s_neg: Tensor, step: Step) -> Tensor:
        """``L_TCE`` with drop rate ``min(epoch / warmup, 1) * max_drop``."""
        rate = losses.tce_drop_rate(step.epoch, self.cfg.tce_max_drop, self.cfg.tce_warmup_epochs)
        return losses.tce_loss(s_pos, s_neg, rate)
