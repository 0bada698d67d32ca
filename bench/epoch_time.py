"""Training epoch time on ML-1M: LightGCN and LLMHNI in llmhni's loop, against LightGCN
written the way PyG's LightGCN example and RecBole write it, side by side in one run.

    PYTHONPATH=. python bench/epoch_time.py [--data-root /work/shared/data] [--steps 60] [--threads 2]

Every variant trains the same model (LightGCN, d=64, 3 layers, batch 2048, Adam, BPR with
one negative per pair, L2 on the batch's ego embeddings) for ``--steps`` steps after two
warm-up steps; the epoch time is the mean step time times the steps of one epoch
(ceil(|train| / batch)). Peers, written here (neither library is installed):

* ``pyg-style``: PyG's ``examples/lightgcn.py`` with ``LGConv``: the symmetric normalisation
  is recomputed from ``edge_index`` in every layer call (``gcn_norm``), messages are
  gathered per edge (``x_j * norm``) and scatter-added; negatives ``torch.randint`` (no
  rejection of positives, as in the example);
* ``recbole-style``: RecBole's ``LightGCN``: a normalised COO ``torch.sparse`` matrix built
  once, ``torch.sparse.mm`` per layer, layers stacked and averaged; negatives drawn per
  batch with NumPy and positives rejected by re-drawing against per-user sets (RecBole's
  sampler does this in Python/NumPy).

LLMHNI's signals are stand-ins of the real sizes for timing only (64-d semantic
embeddings, 5% of training edges judged noisy, 1% of that count added as hard edges):
the epoch cost does not depend on what the judges said. LLMHNI runs with the sampler and
auxiliary-term settings of the data set's bundled preset (``method.num_candidates``,
``top_k``, ``aux_every``, ``aux_max_nodes`` of ``llmhni_ext/configs/ml1m.yaml``), and once
more with its auxiliary terms on every step over all of the batch's nodes. Use a ``--steps``
that is a multiple of ``aux_every`` so that the mean covers whole cycles.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from llmhni_ext.config import RunConfig  # noqa: E402
from llmhni_ext.data import load_dataset  # noqa: E402
from llmhni_ext.train import Trainer  # noqa: E402

D, LAYERS, BATCH, LR, L2 = 64, 3, 2048, 1e-3, 1e-4


# ------------------------------------------------------------------------ peers

class PygStyleLightGCN(torch.nn.Module):
    """LGConv-style: gcn_norm from edge_index every layer, gather + scatter-add messages."""

    def __init__(self, n_users, n_items, users, items):
        super().__init__()
        self.n_users, self.n = n_users, n_users + n_items
        g = torch.Generator().manual_seed(0)
        self.emb = torch.nn.Parameter(torch.randn(self.n, D, generator=g) * 0.1)
        u, i = users.long(), items.long() + n_users
        self.edge_index = torch.stack([torch.cat([u, i]), torch.cat([i, u])])

    def lgconv(self, x):
        row, col = self.edge_index
        deg = torch.zeros(self.n, dtype=x.dtype).scatter_add_(0, col, torch.ones(col.numel(), dtype=x.dtype))
        dinv = deg.pow(-0.5)
        dinv[dinv == float("inf")] = 0
        norm = dinv[row] * dinv[col]
        msg = x.index_select(0, row) * norm.unsqueeze(1)
        return torch.zeros_like(x).index_add_(0, col, msg)

    def forward(self):
        x, out = self.emb, self.emb / (LAYERS + 1)
        for _ in range(LAYERS):
            x = self.lgconv(x)
            out = out + x / (LAYERS + 1)
        return out

    def sample(self, users, items, gen):
        return torch.randint(0, self.n - self.n_users, (users.numel(),), generator=gen)


class RecBoleStyleLightGCN(torch.nn.Module):
    """RecBole-style: torch.sparse.mm on a COO normalised adjacency, layers stacked and averaged."""

    def __init__(self, n_users, n_items, users, items):
        super().__init__()
        self.n_users, self.n_items, self.n = n_users, n_items, n_users + n_items
        g = torch.Generator().manual_seed(0)
        self.emb = torch.nn.Parameter(torch.randn(self.n, D, generator=g) * 0.1)
        u, i = users.numpy(), items.numpy() + n_users
        row, col = np.concatenate([u, i]), np.concatenate([i, u])
        deg = np.bincount(row, minlength=self.n).astype(np.float32) + 1e-7
        val = np.power(deg[row], -0.5) * np.power(deg[col], -0.5)
        self.adj = torch.sparse_coo_tensor(torch.from_numpy(np.stack([row, col])), torch.from_numpy(val),
                                           (self.n, self.n)).coalesce()
        self.pos_sets = [set() for _ in range(n_users)]
        for a, b in zip(users.tolist(), items.tolist()):
            self.pos_sets[a].add(b)
        self.rng = np.random.default_rng(0)

    def forward(self):
        x, layers = self.emb, [self.emb]
        for _ in range(LAYERS):
            x = torch.sparse.mm(self.adj, x)
            layers.append(x)
        return torch.stack(layers, dim=1).mean(dim=1)

    def sample(self, users, items, gen):
        us = users.numpy()
        neg = self.rng.integers(0, self.n_items, us.size)
        bad = np.array([neg[k] in self.pos_sets[us[k]] for k in range(us.size)])
        while bad.any():
            idx = np.nonzero(bad)[0]
            neg[idx] = self.rng.integers(0, self.n_items, idx.size)
            bad[idx] = np.array([neg[k] in self.pos_sets[us[k]] for k in idx])
        return torch.from_numpy(neg)


def peer_step(model, opt, users, items, gen):
    neg = model.sample(users, items, gen)
    z = model()
    nu = model.n_users
    zu, zp, zn = z[users], z[nu + items], z[nu + neg]
    loss = -F.logsigmoid((zu * zp).sum(-1) - (zu * zn).sum(-1)).mean()
    e = model.emb
    reg = (e[users].pow(2).sum() + e[nu + items].pow(2).sum() + e[nu + neg].pow(2).sum()) / (2 * users.numel())
    loss = loss + L2 * reg
    opt.zero_grad()
    loss.backward()
    opt.step()


def time_peer(cls, ds, steps):
    tu, ti = ds.train.users, ds.train.items
    model = cls(ds.n_users, ds.n_items, tu, ti)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    gen = torch.Generator().manual_seed(0)
    perm = torch.randperm(tu.numel(), generator=gen)
    times = []
    for s in range(steps + 2):
        idx = perm[s * BATCH: (s + 1) * BATCH]
        t0 = time.perf_counter()
        peer_step(model, opt, tu[idx], ti[idx], gen)
        if s >= 2:
            times.append(time.perf_counter() - t0)
    return float(np.mean(times))


# ------------------------------------------------------------------------ ours

def standin_signals(ds, seed=0):
    g = torch.Generator().manual_seed(seed)
    n = len(ds.train)
    noisy = torch.randperm(n, generator=g)[: n // 20]
    n_hard = max(1, noisy.numel() // 100)
    hu = torch.randint(0, ds.n_users, (n_hard,), generator=g)
    hi = torch.randint(0, ds.n_items, (n_hard,), generator=g)
    return SimpleNamespace(user_sem=F.normalize(torch.randn(ds.n_users, 64, generator=g), dim=1),
                           item_sem=F.normalize(torch.randn(ds.n_items, 64, generator=g), dim=1),
                           user_raw=None, item_raw=None,
                           noisy_edges=torch.stack([ds.train.users[noisy], ds.train.items[noisy]]),
                           hard_edges=torch.stack([hu, hi]), summary={"stand_in": True})


_PRESET_KEYS = ("num_candidates", "top_k", "aux_every", "aux_max_nodes")


def preset_method_settings(dataset):
    """The sampler and auxiliary-term settings of the bundled preset for ``dataset``
    (``llmhni_ext/configs/<preset>.yaml``), which is what ``llmhni train --config`` runs."""
    from llmhni_ext.config import load_yaml
    name = {"ml-1m": "ml1m", "ml-100k": "ml100k", "lastfm": "lastfm"}.get(dataset)
    if name is None:
        return {}
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "llmhni_ext", "configs",
                        name + ".yaml")
    me = load_yaml(path).method
    return {k: getattr(me, k) for k in _PRESET_KEYS}


def _fmt(kw):
    return ", ".join(f"{k}={v}" for k, v in kw.items())


def time_ours(method, ds, steps, signals=None, **method_kw):
    cfg = RunConfig()
    cfg.method.name, cfg.model.dim, cfg.model.layers = method, D, LAYERS
    cfg.train.batch_size, cfg.train.lr, cfg.train.l2, cfg.train.progress = BATCH, LR, L2, False
    for k, v in method_kw.items():
        setattr(cfg.method, k, v)
    tr = Trainer(cfg.validate(), ds, signals=signals)
    times = []
    for s in range(steps + 2):
        t0 = time.perf_counter()
        tr.train_step(0, s)
        if s >= 2:
            times.append(time.perf_counter() - t0)
    return float(np.mean(times)), tr.steps_per_epoch


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", default=os.environ.get("LLMHNI_DATA_ROOT", "/work/shared/data"))
    ap.add_argument("--dataset", default="ml-1m")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-peers", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    ds = load_dataset(args.dataset, args.data_root)
    from llmhni_ext import backend_info
    print(f"{args.dataset}: {ds.n_users} users, {ds.n_items} items, {len(ds.train)} training pairs; "
          f"d={D}, {LAYERS} layers, batch {BATCH}; torch {torch.__version__}, {args.threads} threads; "
          f"backend {backend_info().get('mode', backend_info())}")
    sig = standin_signals(ds)
    rows = []
    t_bpr, n_steps = time_ours("bpr", ds, args.steps)
    rows.append(("llmhni_ext LightGCN (bpr)", t_bpr))
    preset = preset_method_settings(args.dataset)
    rows.append((f"llmhni_ext LLMHNI (preset: {_fmt(preset)})",
                 time_ours("llmhni", ds, args.steps, signals=sig, **preset)[0]))
    every = {**preset, "aux_every": 1, "aux_max_nodes": 0}
    rows.append((f"llmhni_ext LLMHNI, aux terms every step ({_fmt(every)})",
                 time_ours("llmhni", ds, args.steps, signals=sig, **every)[0]))
    rows.append(("llmhni_ext LLMHNI w/o L_hal (preset)",
                 time_ours("llmhni-wo-hal", ds, args.steps, signals=sig, **preset)[0]))
    rows.append(("llmhni_ext SGL", time_ours("sgl", ds, args.steps)[0]))
    if not args.skip_peers:
        rows.append(("pyg-style LightGCN", time_peer(PygStyleLightGCN, ds, args.steps)))
        rows.append(("recbole-style LightGCN", time_peer(RecBoleStyleLightGCN, ds, args.steps)))
    print(f"\n| variant | ms/step | s/epoch ({n_steps} steps) | x plain LightGCN (ours) |")
    print("|---|---|---|---|")
    for name, t in rows:
        print(f"| {name} | {t * 1e3:.1f} | {t * n_steps:.1f} | {t / t_bpr:.2f} |")


if __name__ == "__main__":
    main()
