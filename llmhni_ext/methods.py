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
