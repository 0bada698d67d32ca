"""The embedding-similarity judge: a fast PROXY for the language-model judges.

User-centric score: cos(z_u, z_i). Item-centric score: mean_j cos(z_j, z_i) over the
context items j. Calibration on the user's own positives: the context items (user
view) and each context item against the others (item view, leave-one-out). Results
produced with it are labelled "embedding (proxy)" wherever they are reported.
"""
from __future__ import annotations

from typing import Dict, Sequence

import torch
import torch.nn.functional as F

from .base import JudgeInputs, ScoreJudge, UserTask


class EmbeddingJudge(ScoreJudge):
    kind = "score"
    proxy = True
    depends_on = "vectors"     # the verdicts are functions of the vectors alone

    def __init__(self, space: str = "projected") -> None:
        self.name = f"embedding-proxy:{space}"
        self.version = "v1"

    def run(self, tasks: Sequence[UserTask], inputs: JudgeInputs, cache, progress: bool = False) -> Dict[str, float]:
        if inputs.user_vec is None or inputs.item_vec is None:
            raise ValueError("the embedding judge needs user and item vectors")
        uv = F.normalize(torch.as_tensor(inputs.user_vec).float(), dim=-1)
        iv = F.normalize(torch.as_tensor(inputs.item_vec).float(), dim=-1)
        done = 0
        for t in tasks:
            ctx = torch.as_tensor(t.context, dtype=torch.long)
            cv = iv[ctx] if len(t.context) else None
            for i in t.items:
                for p in ("user", "item"):
                    if self.key(inputs, t.user, i, p) in cache:
                        continue
                    if p == "user":
                        s = float(uv[t.user] @ iv[i])
                    else:
                        s = float((cv @ iv[i]).mean()) if cv is not None else float("nan")
                    cache.put(self.record(inputs, t.user, i, p, "cand", score=s))
                    done += 1
            for j_pos, j in enumerate(t.context):
                if self.key(inputs, t.user, j, "user") not in cache:
                    cache.put(self.record(inputs, t.user, j, "user", "calib", score=float(uv[t.user] @ iv[j])))
                others = [c for c in t.context if c != j]
                if others and self.key(inputs, t.user, j, "item") not in cache:
                    s = float((iv[torch.as_tensor(others)] @ iv[j]).mean())
                    cache.put(self.record(inputs, t.user, j, "item", "calib", score=s))
        return {"judged": float(done)}
