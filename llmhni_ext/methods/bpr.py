"""BPR with uniform negatives: plain LightGCN / NGCF / MF (Rendle et al., UAI 2009)."""
from __future__ import annotations

from .base import Method

METHODS = ("BPR",)


class BPR(Method):
    name = "bpr"
    description = "BPR, uniform negatives"
