"""Reference twins: one short pure-PyTorch implementation per op.

Each function has the same name and signature as the op's schema in ``csrc/``
(``torch.ops.llmhni.<name>``). It is the API contract, the fallback when no compiled
kernel serves a device, and the oracle every kernel test compares against. Keep them
short and obviously right; speed does not matter here.

The modules mirror ``csrc/``: :mod:`.common` (Philox, ``csrc/common/``), :mod:`.graph`
(``csrc/graph/``), :mod:`.sampler` (``csrc/sampler/``), :mod:`.contrastive`
(``csrc/contrastive/``), and :mod:`.checks`, the argument checks of the compiled ops with
the same messages, which only these twins call.
"""
from __future__ import annotations

import json
from typing import List

import torch

from .._version import __version__
from . import checks  # noqa: F401
from .common import OPS as _COMMON_OPS
from .common import philox4x32, philox_random, uniform_float, uniform_index  # noqa: F401
from .contrastive import OPS as _CONTRASTIVE_OPS
from .contrastive import edge_drop_compact, edge_drop_mask, infonce, infonce_backward  # noqa: F401
from .graph import OPS as _GRAPH_OPS
from .graph import bipartite_norm_adj, csr_from_coo, csr_sddmm, csr_transpose, lightgcn_propagate, spmm  # noqa: F401
from .sampler import OPS as _SAMPLER_OPS
from .sampler import (SAMPLER_FALLBACK_SUB, SAMPLER_MAX_CANDIDATES, SAMPLER_MAX_CDF_TOTAL,  # noqa: F401
                      SAMPLER_MODES, _sampler_draw, sample_negatives)

__all__ = ["OPS", "build_info", "checks", "philox4x32", "philox_random", "uniform_float", "uniform_index",
           "csr_from_coo", "bipartite_norm_adj", "csr_transpose", "spmm", "csr_sddmm", "lightgcn_propagate",
           "sample_negatives", "SAMPLER_FALLBACK_SUB", "SAMPLER_MAX_CANDIDATES", "SAMPLER_MAX_CDF_TOTAL",
           "SAMPLER_MODES", "edge_drop_mask", "edge_drop_compact", "infonce", "infonce_backward"]

#: Names of all ops in the llmhni library (kept in sync with csrc/*_schema.cpp by the tests).
OPS: List[str] = ["build_info", *_COMMON_OPS, *_GRAPH_OPS, *_SAMPLER_OPS, *_CONTRASTIVE_OPS]


def build_info() -> str:
    return json.dumps({"version": __version__, "torch": torch.__version__, "cuda": "",
                       "with_cuda": False, "kernels": []})
