"""Negative sampling: llmhni's fused sampler against the peers' ways, ratios from one run.

    PYTHONPATH=. python bench/sampler.py [--batch 2048] [--threads 2] [--repeats 7] [--device cpu]

Graph: the realistic Yelp2018-sized graph of shared/bench/graphgen.py (31,668 users,
38,048 items, 1,561,406 interactions); d = 64, projected semantic dimension 64.

Peers (written here the way those projects do it, not imported from them):
* ``python_loop``: per-sample rejection against a dict of sets, as SELFRec and the
  official LightGCN code do (``while j in train[u]: j = randint``);
* ``torch_rejection``: vectorised PyTorch rejection: searchsorted over the sorted
  ``user * n_items + item`` keys, redraw the hits until none is left;
* ``torch_llmhni``: the straightforward PyTorch version of the llmhni choice: draw M
  candidates, mask positives (searchsorted), gather their embeddings, backbone scores,
  cosine on the projected semantic embeddings, threshold mask, top-k, argmin. It
  projects nothing per step (the projected embeddings are given, as for ours).
"""
from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import warnings

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
warnings.simplefilter("ignore")

import graphs  # noqa: E402
from llmhni_ext import _backend  # noqa: E402
from llmhni_ext.sampling import NegativeSampler, SamplerSpec  # noqa: E402


class Peers:
    """The peers' samplers over one training graph."""

    def __init__(self, users: torch.Tensor, items: torch.Tensor, n_users: int, n_items: int, device="cpu"):
        self.n_items = n_items
        self.train = [set() for _ in range(n_users)]
        for u, i in zip(users.tolist(), items.tolist()):
            self.train[u].add(i)
        self.keys = torch.unique(users.long() * n_items + items.long()).to(device)

    def python_loop(self, batch_users):
        out = []
        for u in batch_users.tolist():
            j = random.randint(0, self.n_items - 1)
            while j in self.train[u]:
                j = random.randint(0, self.n_items - 1)
            out.append(j)
        return torch.tensor(out)

    def _is_positive(self, u, j):
        k = u * self.n_items + j
        pos = torch.searchsorted(self.keys, k).clamp(max=self.keys.numel() - 1)
        return self.keys[pos] == k

    def torch_rejection(self, batch_users):
        u = batch_users.long()
        neg = torch.randint(0, self.n_items, u.shape, device=u.device)
        hit = self._is_positive(u, neg)
        while bool(hit.any()):
            idx = hit.nonzero().squeeze(1)
            neg[idx] = torch.randint(0, self.n_items, idx.shape, device=u.device)
            hit[idx] = self._is_positive(u[idx], neg[idx])
        return neg

    def torch_llmhni(self, batch_users, eu, ei, su, si, M=64, K=8, thr=0.9):
        u = batch_users.long()
        cand = torch.randint(0, self.n_items, (u.numel(), M), device=u.device)
        positive = self._is_positive(u.unsqueeze(1), cand)
        score = torch.bmm(ei[cand], eu[u].unsqueeze(2)).squeeze(2)           # [B, M]
        score = score.masked_fill(positive, float("-inf"))
        cos = F.cosine_similarity(su[u].unsqueeze(1), si[cand], dim=2)     # [B, M]
        top = score.topk(K, dim=1).indices
        cos_top = cos.gather(1, top).masked_fill(cos.gather(1, top) > thr, float("inf"))
        pick = top.gather(1, cos_top.argmin(1, keepdim=True))
        return cand.gather(1, pick).squeeze(1)


def timeit_cpu(fn, repeats: int, warmup: int = 1) -> float:
    """Median CPU time (all threads of this process) of fn() in ms: steadier than wall
    time on a machine shared with other jobs."""
    import time
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeats):
        t0 = time.process_time()
        fn()
        ts.append(time.process_time() - t0)
    ts.sort()
    return ts[len(ts) // 2] * 1e3


def setup(device="cpu", d=64, ds=64, seed=0):
    users, items, n_users, n_items = graphs.interactions("yelp2018", "realistic")
    g = torch.Generator().manual_seed(seed)
    emb = dict(user_emb=torch.randn(n_users, d, generator=g).to(device),
               item_emb=torch.randn(n_items, d, generator=g).to(device),
               user_sem=F.normalize(torch.randn(n_users, ds, generator=g), dim=1).to(device),
               item_sem=F.normalize(torch.randn(n_items, ds, generator=g), dim=1).to(device))
    sampler = NegativeSampler(users.to(device), items.to(device), n_users, n_items, seed=seed)
    peers = Peers(users, items, n_users, n_items, device)
    return users, n_users, n_items, emb, sampler, peers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=2048)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--candidates", type=int, default=64)
    ap.add_argument("--top-k", type=int, default=8)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    users, n_users, n_items, emb, sampler, peers = setup()
    g = torch.Generator().manual_seed(1)
    batch = users[torch.randint(0, users.numel(), (args.batch,), generator=g)]
    M, K = args.candidates, args.top_k
    fns = {
        "llmhni uniform": lambda: sampler.sample(batch),
        "python loop (SELFRec/LightGCN)": lambda: peers.python_loop(batch),
        "torch rejection (searchsorted)": lambda: peers.torch_rejection(batch),
        "llmhni llmhni": lambda: sampler.sample(batch, spec=SamplerSpec.llmhni(emb["user_sem"], emb["item_sem"], M, K), user_emb=emb["user_emb"], item_emb=emb["item_emb"]),
        "torch llmhni (straightforward)": lambda: peers.torch_llmhni(
            batch, emb["user_emb"], emb["item_emb"], emb["user_sem"], emb["item_sem"], M, K),
        "llmhni dns": lambda: sampler.sample(batch, spec=SamplerSpec.dns(M), user_emb=emb["user_emb"], item_emb=emb["item_emb"]),
    }
    t = {k: graphs.timeit(f, args.repeats) for k, f in fns.items()}
    c = {k: timeit_cpu(f, args.repeats) for k, f in fns.items()}
    print(f"# sampler, yelp2018 realistic, batch {args.batch}, M={M}, K={K}, d=64, ds=64, "
          f"{args.threads} threads, backend {_backend.backend_for('sample_negatives', 'cpu')}, "
          f"{graphs.cpu_model()} ({platform.machine()}), torch {torch.__version__}")
    print("| name | ms | ratio | cpu ms | cpu ratio |")
    print("|---|---|---|---|---|")
    rows = [("llmhni uniform", None), ("python loop (SELFRec/LightGCN)", "llmhni uniform"),
            ("torch rejection (searchsorted)", "llmhni uniform"), ("llmhni llmhni", None),
            ("torch llmhni (straightforward)", "llmhni llmhni"), ("llmhni dns", None)]
    for name, ours in rows:
        ratio = f"{t[name] / t[ours]:.1f}x slower than {ours}" if ours else ""
        cratio = f"{c[name] / c[ours]:.1f}x" if ours else ""
        print(f"| {name} | {t[name]:.3f} | {ratio} | {c[name]:.3f} | {cratio} |")


if __name__ == "__main__":
    main()
