"""What every judge shares: the inputs, the record format, and the calibration that
turns scores into High/Mid/Low labels.

Records (one per judged (user, item, perspective)) are dicts with ``dataset, user, item,
perspective, judge, version`` (the cache key) plus ``role`` (``cand`` a candidate,
``calib`` one of the user's own positives used for calibration, ``base`` a context-free
baseline with user -1), and ``label`` (label judges) or ``score`` (score judges).
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..prompts import LABELS


@dataclass
class JudgeInputs:
    dataset: str
    noun: str
    user_profile: List[str]            #: per user, the text a user-centric judge reads
    item_text: List[str]               #: per item, the full item text (chat judges)
    item_name: List[str]               #: per item, a short name (titles; likelihood judges, histories)
    user_vec: Optional[object] = None  #: [n_users, p] tensor (embedding judge)
    item_vec: Optional[object] = None
    _fingerprints: Dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    def fingerprint(self, what: str) -> str:
        """A hash of everything a judge's answers depend on beyond (user, item): ``"texts"``
        (noun, profiles, item texts and names) or ``"vectors"`` (the user and item vectors).
        Computed once per inputs."""
        fp = self._fingerprints.get(what)
        if fp is None:
            h = hashlib.sha256(what.encode())
            if what == "texts":
                for part in ([self.noun], self.user_profile, self.item_text, self.item_name):
                    h.update(len(part).to_bytes(8, "little"))
                    for t in part:
                        b = str(t).encode("utf-8", "surrogatepass")
                        h.update(len(b).to_bytes(8, "little") + b)
            elif what == "vectors":
                import torch
                for v in (self.user_vec, self.item_vec):
                    if v is None:
                        h.update(b"none")
                        continue
                    t = torch.as_tensor(v).detach().float().cpu().contiguous()
                    h.update(str(tuple(t.shape)).encode())
                    h.update(t.numpy().tobytes())
            else:
                raise ValueError(f"unknown fingerprint {what!r}")
            fp = self._fingerprints[what] = h.hexdigest()[:16]
        return fp


@dataclass
class UserTask:
    user: int
    items: List[int]                   #: candidates to judge (positives and negatives)
    context: List[int]                 #: highest-scored interacted items, best first


class Judge:
    #: "label" judges record High/Mid/Low directly; "score" judges record scores that
    #: :func:`calibrated_labels` turns into labels
    kind = "label"
    name = "judge"
    version = "v1"
    proxy = False

    def run(self, tasks: Sequence[UserTask], inputs: JudgeInputs, cache, progress: bool = False) -> Dict[str, float]:
        """Judges what ``cache`` lacks, writing each record as it is done; returns counters."""
        raise NotImplementedError

    #: what the answers depend on besides (user, item) and the judge's settings: "texts" or "vectors"
    depends_on = "texts"

    def prompt_identity(self) -> str:
        """Every prompt text and setting the answers depend on (hashed into the cache key)."""
        return ""

    def cache_version(self, inputs: JudgeInputs) -> str:
        """``version`` of a record: the judge's version, a hash of its prompts and settings
        and a hash of the inputs it reads, so a changed prompt, profile or vector never
        reuses a stale verdict."""
        cached = getattr(self, "_cache_version", None)
        if cached is not None and cached[0] is inputs:
            return cached[1]
        ident = hashlib.sha256(self.prompt_identity().encode()).hexdigest()[:12]
        v = f"{self.version}+p{ident}+{self.depends_on[0]}{inputs.fingerprint(self.depends_on)}"
        self._cache_version = (inputs, v)
        return v

    def record(self, inputs: JudgeInputs, user: int, item: int, perspective: str, role: str, **values) -> dict:
        r = {"dataset": inputs.dataset, "user": int(user), "item": int(item), "perspective": perspective,
             "judge": self.name, "version": self.cache_version(inputs), "role": role}
        r.update(values)
        return r

    def key(self, inputs: JudgeInputs, user: int, item: int, perspective: str):
        return (str(inputs.dataset), int(user), int(item), perspective, self.name, self.cache_version(inputs))

    def labels(self, tasks: Sequence[UserTask], inputs: JudgeInputs, cache, *, high_margin: float = 0.5,
               low_margin: float = 1.5) -> Tuple[Dict[Tuple[int, int, str], str], Dict[str, float]]:
        """(user, item, perspective) -> High/Mid/Low/unknown of every judged candidate, and
        what the labelling used (thresholds). A label judge recorded its labels already."""
        out: Dict[Tuple[int, int, str], str] = {}
        for t in tasks:
            for i in t.items:
                for p in ("user", "item"):
                    r = cache.get(self.key(inputs, t.user, i, p))
                    if r is not None:
                        out[(t.user, i, p)] = r.get("label", "unknown")
        return out, {}


class ScoreJudge(Judge):
    """A judge that records scores: :meth:`labels` calibrates them on each user's own
    positives (:func:`calibrated_labels`); with ``uses_baseline`` a candidate's score is
    taken relative to its context-free baseline (user -1)."""
    kind = "score"
    uses_baseline = False

    def labels(self, tasks: Sequence[UserTask], inputs: JudgeInputs, cache, *, high_margin: float = 0.5,
               low_margin: float = 1.5) -> Tuple[Dict[Tuple[int, int, str], str], Dict[str, float]]:
        def val(u, i, p):
            r = cache.get(self.key(inputs, u, i, p))
            if r is None or r.get("score") is None:
                return None
            s = float(r["score"])
            if self.uses_baseline:
                b = cache.get(self.key(inputs, -1, i, p))
                if b is None or b.get("score") is None:
                    return None
                s -= float(b["score"])
            return s

        cand: Dict[Tuple[int, int, str], float] = {}
        calib: Dict[Tuple[int, str], List[float]] = {}
        for t in tasks:
            for i in t.items:
                for p in ("user", "item"):
                    v = val(t.user, i, p)
                    if v is not None:
                        cand[(t.user, i, p)] = v
            for p, js in (("user", t.context), ("item", t.context[1:])):
                vs = [val(t.user, j, p) for j in js]
                calib[(t.user, p)] = [v for v in vs if v is not None]
        return calibrated_labels(cand, calib, high_margin, low_margin)


def calibrated_labels(cand: Dict[Tuple[int, int, str], float], calib: Dict[Tuple[int, str], List[float]],
                      high_margin: float = 0.5, low_margin: float = 1.5) -> Tuple[Dict[Tuple[int, int, str], str], Dict[str, float]]:
    """Labels from scores, per perspective p, calibrated on each user's own positives:

        ref_u = median(calibration scores of u),  sigma = pooled std of (c - ref_u),
        High if s >= ref_u - high_margin * sigma,  Low if s < ref_u - low_margin * sigma,  else Mid.

    A user without calibration scores uses the median over all users. Returns the labels
    keyed like ``cand`` and the thresholds used (for the summary)."""
    out: Dict[Tuple[int, int, str], str] = {}
    info: Dict[str, float] = {}
    for p in sorted({k[2] for k in cand}):
        refs: Dict[int, float] = {}
        dev: List[float] = []
        allc: List[float] = []
        for (u, pp), vals in calib.items():
            v = [x for x in vals if x is not None and math.isfinite(x)]
            if pp != p or not v:
                continue
            refs[u] = float(np.median(v))
            dev.extend(x - refs[u] for x in v)
            allc.extend(v)
        glob = float(np.median(allc)) if allc else 0.0
        sigma = float(np.sqrt(np.mean(np.square(dev)))) if len(dev) > len(refs) else (float(np.std(allc)) if allc else 1.0)
        if not math.isfinite(sigma) or sigma <= 1e-12:
            sigma = float(np.std(allc)) if len(allc) > 1 else 1.0
            sigma = sigma if sigma > 1e-12 else 1.0
        info[f"{p}_sigma"], info[f"{p}_ref_median"] = sigma, glob
        for (u, i, pp), s in cand.items():
            if pp != p:
                continue
            if s is None or not math.isfinite(s):
                out[(u, i, p)] = "unknown"
                continue
            ref = refs.get(u, glob)
            out[(u, i, p)] = "High" if s >= ref - high_margin * sigma else ("Low" if s < ref - low_margin * sigma else "Mid")
    return out, info


assert LABELS == ("High", "Mid", "Low")
