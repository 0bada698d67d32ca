"""Dynamic negative sampling: the highest-scored of M uniform candidates (Zhang et al., SIGIR 2013)."""
from __future__ import annotations

from dataclasses import dataclass

from ..sampling import SamplerSpec
from .base import Method
from .settings import MethodSettings, setting

METHODS = ("DNS",)


@dataclass
class DNSSettings(MethodSettings):
    # M=8, K=2 had the best validation Recall@20 of a sweep over M in {1..32}, K in {1..8} on
    # ML-100K at 20% noise (bench/RESULTS.md); harder settings (M=32) overfit the noisy positives
    num_candidates: int = setting(8, "M uniform candidates per negative, the best-scored wins (dns, llmhni)", ge=1)


class DNS(Method):
    name = "dns"
    description = "BPR, dynamic hard negatives (DNS)"
    sampler_mode = "dns"
    Settings = DNSSettings

    def sampler_spec(self) -> SamplerSpec:
        return SamplerSpec.dns(self.cfg.num_candidates, self.cfg.num_negatives)
