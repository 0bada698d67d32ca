"""Training epoch time on ML-1M: LightGCN and LLMHNI in llmhni's loop, against LightGCN
written the way PyG's LightGCN example and RecBole write it, side by side in one run.

    PYTHONPATH=. python bench/epoch_time.py [--data-root /work/shared/data] [--steps 60] [--threads 2]

Every variant trains the same model (LightGCN, d=64, 3 layers, batch 2048, Adam, BPR with
one negative per pair, L2 on the batch's ego embeddings) for ``--steps`` steps after two
warm-up steps; the epoch time is the mean step time times the steps of one epoch
(ceil(|train| / batch)). Peers are the real libraries where installed (``--peers``):

* PyG: ``torch_geometric.nn.models.LightGCN`` (``LGConv`` layers, its
  ``recommendation_loss``) with ``torch.randint`` negatives as in PyG's example, and the same
  model with llmhni's propagation and sampler swapped in (``llmhni_ext.integrations.pyg``);
* RecBole: ``recbole.model.general_recommender.LightGCN`` with RecBole's own dataloader and
  sampler, and with llmhni's (``llmhni_ext.integrations.recbole``); RecBole 1.2.1 pins
  ``numpy<2``, so run this in its own environment (``--skip-ours --peers recbole``).

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
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import graphs  # noqa: E402  (bench/graphs.py)
from llmhni_ext.config import RunConfig  # noqa: E402
from llmhni_ext.data import load_dataset  # noqa: E402
from llmhni_ext.train import Trainer  # noqa: E402

D, LAYERS, BATCH, LR, L2 = 64, 3, 2048, 1e-3, 1e-4


# ------------------------------------------------------------------------ peers (the real libraries)

def _edge_index(ds):
    u, i = ds.train.users.long(), ds.train.items.long() + ds.n_users
    return torch.stack([torch.cat([u, i]), torch.cat([i, u])])


def _time_loop(steps, opt, loss_of_step):
    """Mean seconds of one optimiser step (``loss_of_step(s)``, backward, step) over ``steps``
    steps after two warm-up steps."""
    times = []
    for s in range(steps + 2):
        t0 = time.perf_counter()
        loss = loss_of_step(s)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if s >= 2:
            times.append(time.perf_counter() - t0)
    return float(np.mean(times))


def time_pyg(ds, steps, with_llmhni: bool):
    """PyG's own LightGCN (``LGConv`` layers, ``recommendation_loss``) with ``torch.randint``
    negatives as in PyG's example, or with llmhni's propagation and sampler swapped in."""
    from torch_geometric.nn.models import LightGCN

    from llmhni_ext.integrations.pyg import NegativeSampler, use_llmhni_propagation
    nu, ni = ds.n_users, ds.n_items
    edge_index = _edge_index(ds)
    torch.manual_seed(0)
    model = LightGCN(nu + ni, D, LAYERS)
    sampler = None
    if with_llmhni:
        use_llmhni_propagation(model)
        sampler = NegativeSampler.from_edge_index(edge_index, nu, ni)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    gen = torch.Generator().manual_seed(0)
    tu, ti = ds.train.users.long(), ds.train.items.long() + nu
    perm = torch.randperm(tu.numel(), generator=gen)

    def loss_of_step(s):
        idx = perm[s * BATCH: (s + 1) * BATCH]
        u, pos = tu[idx], ti[idx]
        neg = sampler.sample(u) if sampler is not None else torch.randint(nu, nu + ni, u.shape, generator=gen)
        label = torch.stack([torch.cat([u, u]), torch.cat([pos, neg])])
        pos_rank, neg_rank = model(edge_index, label).chunk(2)
        return model.recommendation_loss(pos_rank, neg_rank, node_id=label.unique(), lambda_reg=L2)

    return _time_loop(steps, opt, loss_of_step)


def time_recbole(ds, steps, with_llmhni: bool, workdir: str):
    """RecBole's own LightGCN, dataloader and sampler (a RecBole atomic file of the training
    pairs), or with llmhni's data_preparation and lightgcn_class() swapped in. One step is
    one batch of RecBole's training dataloader, its construction included."""
    os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    from recbole.config import Config
    from recbole.data import create_dataset
    from recbole.data import data_preparation as recbole_preparation
    from recbole.model.general_recommender import LightGCN

    from llmhni_ext.integrations.recbole import data_preparation, lightgcn_class
    name = "bench"
    folder = os.path.join(workdir, name)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{name}.inter")
    if not os.path.isfile(path):
        with open(path, "w") as f:
            f.write("user_id:token\titem_id:token\n")
            f.writelines(f"{u}\t{i}\n" for u, i in zip(ds.train.users.tolist(), ds.train.items.tolist()))
    config = Config(model="LightGCN", dataset=name, config_dict={
        "data_path": workdir, "use_gpu": False, "show_progress": False, "state": "ERROR", "seed": 0,
        "embedding_size": D, "n_layers": LAYERS, "reg_weight": L2, "learning_rate": LR, "train_batch_size": BATCH,
        "eval_args": {"split": {"RS": [0.98, 0.01, 0.01]}, "order": "RO", "group_by": "user", "mode": "full"},
        "load_col": {"inter": ["user_id", "item_id"]}})
    dataset = create_dataset(config)
    prep, cls = (data_preparation, lightgcn_class()) if with_llmhni else (recbole_preparation, LightGCN)
    train_data, _, _ = prep(config, dataset)
    torch.manual_seed(0)
    model = cls(config, train_data.dataset)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    state = {"it": iter(train_data)}

    def loss_of_step(_s):
        try:
            batch = next(state["it"])
        except StopIteration:
            state["it"] = iter(train_data)
            batch = next(state["it"])
        return model.calculate_loss(batch)

    return _time_loop(steps, opt, loss_of_step)


# ------------------------------------------------------------------------ ours

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
    ap.add_argument("--peers", default="pyg,recbole", help="real libraries to time beside llmhni (comma list; "
                    "a library that is not installed is reported as such)")
    ap.add_argument("--skip-ours", action="store_true", help="only the peers (e.g. in RecBole's environment)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    ds = load_dataset(args.dataset, args.data_root)
    from llmhni_ext import backend_info
    print(f"{args.dataset}: {ds.n_users} users, {ds.n_items} items, {len(ds.train)} training pairs; "
          f"d={D}, {LAYERS} layers, batch {BATCH}; torch {torch.__version__}, {args.threads} threads; "
          f"backend {backend_info().get('mode', backend_info())}")
    sig = graphs.standin_signals(ds)
    rows = []
    t_bpr, n_steps = time_ours("bpr", ds, args.steps)
    rows.append(("llmhni_ext LightGCN (bpr)", t_bpr))
    if not args.skip_ours:
        preset = preset_method_settings(args.dataset)
        rows.append((f"llmhni_ext LLMHNI (preset: {_fmt(preset)})",
                     time_ours("llmhni", ds, args.steps, signals=sig, **preset)[0]))
        every = {**preset, "aux_every": 1, "aux_max_nodes": 0}
        rows.append((f"llmhni_ext LLMHNI, aux terms every step ({_fmt(every)})",
                     time_ours("llmhni", ds, args.steps, signals=sig, **every)[0]))
        rows.append(("llmhni_ext LLMHNI w/o L_hal (preset)",
                     time_ours("llmhni-wo-hal", ds, args.steps, signals=sig, **preset)[0]))
        rows.append(("llmhni_ext SGL", time_ours("sgl", ds, args.steps)[0]))
    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    missing = []
    if "pyg" in peers:
        try:
            import torch_geometric
            v = torch_geometric.__version__
            rows.append((f"PyG {v} LightGCN (LGConv, randint negatives)", time_pyg(ds, args.steps, False)))
            rows.append((f"PyG {v} LightGCN + llmhni propagation and sampler", time_pyg(ds, args.steps, True)))
        except ImportError:
            missing.append("torch_geometric")
    if "recbole" in peers:
        try:
            import recbole
            import tempfile
            with tempfile.TemporaryDirectory() as work:
                v = recbole.__version__
                rows.append((f"RecBole {v} LightGCN (its dataloader and sampler)",
                             time_recbole(ds, args.steps, False, work)))
                rows.append((f"RecBole {v} LightGCN + llmhni sampler and propagation",
                             time_recbole(ds, args.steps, True, work)))
        except ImportError:
            missing.append("recbole")
    print(f"\n| variant | ms/step | s/epoch ({n_steps} steps) | x plain LightGCN (ours) |")
    print("|---|---|---|---|")
    for name, t in rows:
        print(f"| {name} | {t * 1e3:.1f} | {t * n_steps:.1f} | {t / t_bpr:.2f} |")
    if missing:
        print(f"\nnot installed here, so not timed: {', '.join(missing)}")


if __name__ == "__main__":
    main()
