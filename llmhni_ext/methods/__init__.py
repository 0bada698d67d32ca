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

Adding a method: a module with its settings dataclass (:mod:`~llmhni_ext.methods.settings`),
its :class:`~llmhni_ext.methods.base.Method` subclass (sampler spec, ``rec_loss``,
``aux_losses``) and a ``METHODS`` tuple naming its classes, and one line in :data:`MODULES`.
"""
from __future__ import annotations

import importlib
from typing import Any, Dict, Tuple, Type

from .base import Graph, Method, RunContext, Step
from .settings import MethodSettings, merged_config_class

__all__ = ["Graph", "Method", "MethodSettings", "RunContext", "Step", "MODULES", "REGISTRY", "METHODS",
           "NEEDS_SIGNALS", "MethodConfig", "get", "relevant_method_keys"]

#: the modules holding the methods, in the order ``--help`` lists them (each names its classes in METHODS)
MODULES = ("bpr", "dns", "wbpr", "tce", "rce", "bod", "sgl", "simgcl", "xsimgcl", "rlmrec", "llmhni")


def _collect() -> Dict[str, Type[Method]]:
    out: Dict[str, Type[Method]] = {}
    for mod in MODULES:
        m = importlib.import_module(f"{__name__}.{mod}")
        for cls_name in m.METHODS:
            cls = getattr(m, cls_name)
            if cls.name in out:
                raise TypeError(f"method name {cls.name!r} is registered twice ({mod}.{cls_name})")
            bad = sorted(set(cls.implies) - set(cls.Settings.keys()))
            if bad:
                raise TypeError(f"method {cls.name!r} implies {bad}, which are not among its settings")
            out[cls.name] = cls
    return out


#: name -> method class
REGISTRY: Dict[str, Type[Method]] = _collect()

#: the run configuration's ``method`` section: ``name`` and every method's settings (flat keys)
MethodConfig = merged_config_class([m.Settings for m in REGISTRY.values()], default_name="llmhni")

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
    return ("name",) + get(name).Settings.keys()
