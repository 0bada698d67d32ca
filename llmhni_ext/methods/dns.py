"""Dynamic negative sampling: the highest-scored of M uniform candidates (Zhang et al., SIGIR 2013)."""
from __future__ import annotations

from .base import Method


class DNS(Method):
    name = "dns"
    description = "BPR, dynamic hard negatives (DNS)"
    sampler_mode = "dns"
    reads = ("num_candidates",)
