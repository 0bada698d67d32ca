"""Every random stream of a training run, named: each is a function of the run's seed and
the position in the run, so that a resumed run draws exactly what the uninterrupted one would.

``derive_seed(seed, Stream.BATCH_ORDER, epoch)`` is the seed of epoch ``epoch``'s batch order.
The stream numbers are part of every recorded trajectory: never renumber one."""
from __future__ import annotations

from enum import IntEnum

_MIX = 0x9E3779B97F4A7C15
_MASK64 = 2**64 - 1


class Stream(IntEnum):
    """The training loop's random streams (their values are fixed forever)."""
    SAMPLER = 1        # the negative sampler's Philox key (its counter is the global step)
    BATCH_ORDER = 2    # the order of the training interactions (or users) of each epoch
    VIEWS = 3          # the edge-dropped views of each epoch (SGL, L_hal)
    STEP = 4           # per-step dropout and noise (NGCF dropout, SimGCL / XSimGCL noise)
    AUX_NODES = 5      # which of a batch's nodes the LLMHNI contrastive terms use
    METHOD = 6         # a method's own draws (masks, per-method generators)


def derive_seed(*parts: int) -> int:
    """A 63-bit seed from integers (splitmix-style), for per-epoch / per-step streams."""
    h = 0
    for p in parts:
        h = (h ^ (int(p) + _MIX + ((h << 6) & _MASK64) + (h >> 2))) & _MASK64
        h = (h * 0xBF58476D1CE4E5B9) & _MASK64
        h ^= h >> 31
    return h & (2**63 - 1)
