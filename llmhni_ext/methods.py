"""The training methods the loop knows, and what each one means.

Every method trains the same backbone on the same kernels; they differ in the negatives
(sampler mode), the recommendation loss and the auxiliary losses:

=====================  ==========================================================
bpr                    BPR with uniform negatives (plain LightGCN / MF / NGCF)
dns                    BPR with dynamic hard negatives (highest-scored of M candidates)
tce                    truncated BCE: drop the largest-loss samples (T-CE)
rce                    reweighted BCE: weight each sample by its detached prediction (R-CE)
sgl                    BPR + InfoNCE between two edge-dropped views (SGL-ED)
simgcl                 BPR + InfoNCE between two noise-perturbed propagations (SimGCL)
llmhni                 L_rec (semantic hard negatives) + l1 L_de + l2 L_hal on G and G'
llmhni-wo-sem          ablation: without semantic sampling (score-only hard negatives)
llmhni-wo-align        ablation: without objective alignment (raw text similarity)
llmhni-wo-denoise      ablation: without interaction denoising (no G', no L_de)
llmhni-wo-hal          ablation: without hallucination-robust learning (no L_hal)
=====================  ==========================================================
"""
from __future__ import annotations

from typing import Any, Dict

#: name -> (one-line description, MethodConfig fields the name implies)
METHODS: Dict[str, tuple] = {
    "bpr": ("BPR, uniform negatives", {}),
    "dns": ("BPR, dynamic hard negatives (DNS)", {}),
    "tce": ("truncated BCE (T-CE)", {}),
    "rce": ("reweighted BCE (R-CE)", {}),
    "sgl": ("BPR + edge-drop contrastive views (SGL-ED)", {}),
    "simgcl": ("BPR + noise-perturbed contrastive views (SimGCL)", {}),
    "llmhni": ("LLMHNI: semantic hard negatives + L_de + L_hal", {}),
    "llmhni-wo-sem": ("LLMHNI without semantic sampling", {"semantic_sampling": False}),
    "llmhni-wo-align": ("LLMHNI without objective alignment", {"objective_alignment": False}),
    "llmhni-wo-denoise": ("LLMHNI without interaction denoising", {"interaction_denoising": False}),
    "llmhni-wo-hal": ("LLMHNI without hallucination-robust learning", {"hallucination_robust": False}),
}

#: the methods that need the signals stage (semantic embeddings, judged edges)
NEEDS_SIGNALS = {m for m in METHODS if m.startswith("llmhni")}


def implied_settings(name: str) -> Dict[str, Any]:
    """MethodConfig fields fixed by the method name (the ablation switches)."""
    return dict(METHODS[name][1])


def is_llmhni(name: str) -> bool:
    return name.startswith("llmhni")


_LLMHNI_KEYS = ("num_candidates", "top_k", "sim_threshold", "lambda_de", "lambda_hal", "tau_de", "tau_hal",
                "keep_prob", "predict_graph", "semantic_sampling", "objective_alignment", "interaction_denoising",
                "hallucination_robust", "aux_every", "aux_max_nodes")
#: the MethodConfig fields each method reads (besides name and num_negatives)
METHOD_KEYS: Dict[str, tuple] = {
    "bpr": (), "dns": ("num_candidates",), "tce": ("tce_max_drop", "tce_warmup_epochs"), "rce": ("rce_beta",),
    "sgl": ("ssl_lambda", "ssl_tau", "keep_prob"), "simgcl": ("ssl_lambda", "ssl_tau", "simgcl_eps"),
    **{m: _LLMHNI_KEYS for m in METHODS if m.startswith("llmhni")},
}


def relevant_method_keys(name: str) -> tuple:
    """The ``method.*`` settings that change what method ``name`` trains."""
    return ("name", "num_negatives") + METHOD_KEYS.get(name, tuple(f for f in _all_fields()))


def _all_fields() -> tuple:
    from .config import MethodConfig
    import dataclasses
    return tuple(f.name for f in dataclasses.fields(MethodConfig))
