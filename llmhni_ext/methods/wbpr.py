"""WBPR: BPR with popularity-weighted negatives, p(j) proportional to degree(j)^alpha
(Gantner et al., "Personalized ranking for non-uniformly sampled items", KDD Cup 2011 / JMLR W&CP 2012)."""
from __future__ import annotations

from typing import Any, Dict

from torch import Tensor

from .base import Method, Step


class WBPR(Method):
    name = "wbpr"
    description = "BPR, popularity-weighted negatives (WBPR)"
    sampler_mode = "popularity"
    reads = ("wbpr_alpha",)

    def sampler_kwargs(self, step: Step, z: Tensor) -> Dict[str, Any]:
        return {"alpha": self.cfg.wbpr_alpha}
