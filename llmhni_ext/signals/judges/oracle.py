"""The ``oracle`` judge: FOR ANALYSIS ONLY. It answers from the data's labels with a set
error rate, to measure what a judge of a given quality is worth (``llmhni compare`` with
``signals.judge=oracle``); it is never a default, and every summary and result that used it
says so.

A candidate's correct verdict is *hard* (High from both perspectives) when the pair is truly
relevant and *noisy* (Low, Low) otherwise. Truth: the synthetic world's ground truth when
the data set has one, else the injected-noise labels for training positives (a clean
positive is relevant); non-interactions without ground truth are never called hard (the
held-out interactions are not used: that would leak test data into training). Each verdict
is right with probability ``accuracy``, decided by a hash of (seed, user, item)."""
from __future__ import annotations

import hashlib
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np
import torch

from ...seeding import derive_seed
from .base import Judge, JudgeInputs, UserTask

#: (users, items) int64 arrays -> (relevant: bool array, known: bool array)
Truth = Callable[[np.ndarray, np.ndarray], Tuple[np.ndarray, np.ndarray]]


def truth_from_dataset(ds) -> Truth:
    """The labels the oracle answers from (see the module docstring); refuses unlabelled data."""
    world = getattr(ds, "truth", None)
    if world is not None:
        def from_world(u: np.ndarray, i: np.ndarray):
            return world.relevant(u, i).numpy().astype(bool), np.ones(len(u), dtype=bool)
        return from_world
    noise = getattr(ds, "train_noise", None)
    if noise is None or not bool(torch.as_tensor(noise).any()):
        raise ValueError(f"the oracle judge needs labels: data set {ds.name!r} has neither ground truth nor "
                         f"injected noise (set data.noise > 0, or use the synthetic world)")
    keys = ds.train.users.numpy().astype(np.int64) * ds.n_items + ds.train.items.numpy()
    noisy = dict(zip(keys.tolist(), torch.as_tensor(noise).numpy().astype(bool).tolist()))
    n_items = ds.n_items

    def from_noise(u: np.ndarray, i: np.ndarray):
        k = (u.astype(np.int64) * n_items + i).tolist()
        known = np.asarray([x in noisy for x in k], dtype=bool)          # training positives only
        relevant = np.asarray([not noisy.get(x, True) for x in k], dtype=bool)
        return relevant, known
    return from_noise


class OracleJudge(Judge):
    kind = "label"
    proxy = True
    analysis_only = True
    depends_on = "texts"

    def __init__(self, truth: Truth, accuracy: float, seed: int = 0, fingerprint: str = "") -> None:
        if not 0.0 <= accuracy <= 1.0:
            raise ValueError(f"oracle accuracy must be in [0, 1], got {accuracy}")
        self.truth, self.accuracy, self.seed = truth, float(accuracy), int(seed)
        self.name = f"oracle(accuracy={self.accuracy:g})"
        self.version = "v1"
        self._fp = fingerprint
        self._labels: Dict[Tuple[int, int, str], str] = {}

    def prompt_identity(self) -> str:
        return f"oracle|accuracy={self.accuracy!r}|seed={self.seed}|labels={self._fp}"

    def _right(self, u: int, i: int) -> bool:
        return derive_seed(self.seed, 0x0AC1E, u, i) / 2.0**63 < self.accuracy

    def run(self, tasks: Sequence[UserTask], inputs: JudgeInputs, cache, progress: bool = False) -> Dict[str, float]:
        pairs = [(t.user, i) for t in tasks for i in t.items]
        if not pairs:
            return {"judged": 0.0}
        u = np.asarray([p[0] for p in pairs], dtype=np.int64)
        i = np.asarray([p[1] for p in pairs], dtype=np.int64)
        relevant, known = self.truth(u, i)
        for (uu, ii), rel, kn in zip(pairs, relevant.tolist(), known.tolist()):
            hard = bool(rel) if kn else False
            if kn and not self._right(uu, ii):
                hard = not hard
            lab = "High" if hard else "Low"
            self._labels[(uu, ii, "user")] = self._labels[(uu, ii, "item")] = lab
        return {"judged": float(2 * len(pairs)), "with_labels": float(known.sum())}

    def labels(self, tasks, inputs, cache, **_) -> Tuple[Dict[Tuple[int, int, str], str], Dict[str, float]]:
        keys = {(t.user, i, p) for t in tasks for i in t.items for p in ("user", "item")}
        return {k: v for k, v in self._labels.items() if k in keys}, {"accuracy": self.accuracy}


def labels_fingerprint(ds) -> str:
    """A hash of the labels the oracle reads (noise labels, or the world's preferences)."""
    h = hashlib.sha256(ds.train_fingerprint().encode())
    world: Optional[object] = getattr(ds, "truth", None)
    if world is not None:
        h.update(np.ascontiguousarray(world.user_pref).tobytes())
        h.update(np.ascontiguousarray(world.item_mix).tobytes())
    elif getattr(ds, "train_noise", None) is not None:
        h.update(torch.as_tensor(ds.train_noise).numpy().tobytes())
    return h.hexdigest()[:16]
