"""Two small facts every layer shares: where llmhni caches things, and which index type fits.

Kept free of imports beyond the standard library and torch so that the backend loader,
the data layer and the ops can all use it."""
from __future__ import annotations

import os

import torch

#: the largest value an int32 index holds
INT32_MAX = 2**31 - 1


def cache_root() -> str:
    """``$LLMHNI_CACHE_DIR``, else ``~/.cache/llmhni`` (compiled kernels, downloads, signals,
    backbones, benchmark graphs each keep a folder of their own under it)."""
    return os.environ.get("LLMHNI_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "llmhni")


def index_dtype(*sizes: int) -> torch.dtype:
    """int32 when every size fits in it, else int64."""
    return torch.int32 if max(sizes, default=0) <= INT32_MAX else torch.int64
