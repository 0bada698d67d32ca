"""WBPR: BPR with popularity-weighted negatives, p(j) proportional to degree(j)^alpha
(Gantner et al., "Personalized ranking for non-uniformly sampled items", KDD Cup 2011 / JMLR W&CP 2012)."""
from __future__ import annotations

from dataclasses import dataclass

from ..sampling import SamplerSpec
from .base import Method
from .settings import MethodSettings, setting

METHODS = ("WBPR",)


@dataclass
class WBPRSettings(MethodSettings):
    wbpr_alpha: float = setting(1.0, "negatives drawn with p(j) ~ degree(j)^alpha (Gantner et al.: 1)", ge=0)


class WBPR(Method):
    name = "wbpr"
    description = "BPR, popularity-weighted negatives (WBPR)"
    sampler_mode = "popularity"
    Settings = WBPRSettings

    def sampler_spec(self) -> SamplerSpec:
        return SamplerSpec.popularity(self.cfg.wbpr_alpha, self.cfg.num_negatives)
