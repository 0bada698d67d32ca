"""Backbones: MF, LightGCN and NGCF over the project's propagation ops.

Every backbone holds layer-0 (ego) embeddings for ``n_users + n_items`` nodes (item ``j``
is node ``n_users + j``) and maps them, given a normalised graph, to final node
representations ``z`` [n_users + n_items, out_dim]; scores are ``<z_u, z_i>``.
"""
from __future__ import annotations

from .base import Backbone
from .lightgcn import LightGCN
from .mf import MF
from .ngcf import NGCF


def build_backbone(name: str, n_users: int, n_items: int, dim: int, layers: int, *, seed: int = 0,
                   ngcf_dropout: float = 0.1) -> Backbone:
    """A freshly initialised backbone by name (mf | lightgcn | ngcf)."""
    if name == "mf":
        return MF(n_users, n_items, dim, seed=seed)
    if name == "lightgcn":
        return LightGCN(n_users, n_items, dim, layers, seed=seed)
    if name == "ngcf":
        return NGCF(n_users, n_items, dim, layers, seed=seed, dropout=ngcf_dropout)
    raise ValueError(f"unknown backbone {name!r} (expected mf, lightgcn or ngcf)")


__all__ = ["Backbone", "MF", "LightGCN", "NGCF", "build_backbone"]
