"""The training methods, one module each, registered here by name.

=====================  ==========================================================
bpr                    BPR with uniform negatives (plain LightGCN / MF / NGCF)
dns                    BPR with dynamic hard negatives (highest-scored of M candidates)
wbpr                   BPR with popularity-weighted negatives (WBPR)
tce                    truncated BCE: drop the largest-loss samples (T-CE)
rce                    reweighted BCE: weight each sample by its detached prediction (R-CE)
bod                    weighted BPR + alignment/uniformity, weights from a generator trained by gradient matching (BOD)
sgl                    BPR + InfoNCE between two edge-dropped views (SGL-ED)
simgcl                 BPR + InfoNCE between two noise-perturbed propagations (SimGCL)
xsimgcl                one noisy propagation, final layer mean contrasted with layer l* (XSimGCL)
rlmrec-con             BPR + InfoNCE between representations and projected profile embeddings
rlmrec-gen             BPR on a masked propagation + reconstruction of the masked profiles
llmhni                 L_rec (semantic hard negatives) + l1 L_de + l2 L_hal on G and G'
llmhni-wo-sem          ablation: without semantic sampling (score-only hard negatives)
llmhni-wo-align        ablation: without objective alignment (raw text similarity)
llmhni-wo-denoise      ablation: without interaction denoising (no G', no L_de)
llmhni-wo-hal          ablation: without hallucination-robust learning (no L_hal)
=====================  ==========================================================

Adding a method: a module with a :class:`~llmhni_ext.methods.base.Method` subclass (its
sampler mode, ``rec_loss``, ``aux_losses``, the settings it ``reads``), and one line below.
"""
from __future__ import annotations

from typing import Any, Dict, Tuple, Type

from .base import Graph, Method, RunContext, Step
from .bod import BOD
from .bpr import BPR
from .dns import DNS
from .llmhni import (LLMHNI, LLMHNIWithoutAlignment, LLMHNIWithoutDenoising,
                     LLMHNIWithoutHallucinationRobustness, LLMHNIWithoutSemanticSampling)
from .rce import RCE
from .sgl import SGL
from .simgcl import SimGCL
from .rlmrec import RLMRecCon, RLMRecGen
from .tce import TCE
from .wbpr import WBPR
from .xsimgcl import XSimGCL

__all__ = ["Graph", "Method", "RunContext", "Step", "REGISTRY", "METHODS", "NEEDS_SIGNALS", "get",
           "relevant_method_keys"]

#: name -> method class, in the order ``--help`` lists them
REGISTRY: Dict[str, Type[Method]] = {m.name: m for m in (
    BPR, DNS, WBPR, TCE, RCE, BOD, SGL, SimGCL, XSimGCL, RLMRecCon, RLMRecGen,
    LLMHNI, LLMHNIWithoutSemanticSampling, LLMHNIWithoutAlignment, LLMHNIWithoutDenoising,
    LLMHNIWithoutHallucinationRobustness,
)}

#: name -> (one-line description, the settings the name implies)
METHODS: Dict[str, Tuple[str, Dict[str, Any]]] = {n: (m.description, dict(m.implies)) for n, m in REGISTRY.items()}

#: the methods that need the signals stage's output
NEEDS_SIGNALS = {n for n, m in REGISTRY.items() if m.needs_signals}


def get(name: str) -> Type[Method]:
    """The method class registered as ``name``."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; known: {', '.join(REGISTRY)}") from None


def relevant_method_keys(name: str) -> Tuple[str, ...]:
    """The ``method.*`` settings that change what method ``name`` trains."""
    return ("name", "num_negatives") + get(name).reads
