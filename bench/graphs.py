"""Benchmark graphs and the peers' ways of multiplying them.

Graphs: the synthetic Yelp2018- and Amazon-book-sized bipartite graphs of
``shared/bench/graphgen.py`` (``realistic`` and ``heavy``), and the real ML-1M split
from ``shared/data/lightgcn-format``. ``shared/`` is ``$LLMHNI_SHARED`` or the folder
beside the repository. Generated graphs are cached as ``.npz`` under
``$LLMHNI_CACHE_DIR/bench`` (default ``~/.cache/llmhni/bench``), written atomically.

Peers (written here the way those projects do it, not imported from them):
* ``torch.sparse.mm`` on a CSR tensor, and scipy's ``csr_matrix @ ndarray``;
* RecBole / SELFRec LightGCN: the normalised adjacency as a torch sparse COO tensor,
  ``torch.sparse.mm`` once per layer, the layer mean over ``torch.stack``.
"""
from __future__ import annotations

import os
import sys
import warnings
from types import SimpleNamespace
from typing import Dict, Tuple, Union

import numpy as np
import torch

from llmhni_ext._common import cache_root

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCALES: Dict[str, Tuple[int, int, int]] = {
    "ml100k": (943, 1682, 100_000),
    "gowalla": (29_858, 40_981, 1_027_370),
    "yelp2018": (31_668, 38_048, 1_561_406),
    "amazon-book": (52_643, 91_599, 2_984_108),
}


def shared_dir() -> str:
    """$LLMHNI_SHARED, else shared/ beside the repository, else shared/ inside it."""
    if os.environ.get("LLMHNI_SHARED"):
        return os.environ["LLMHNI_SHARED"]
    beside = os.path.join(os.path.dirname(ROOT), "shared")
    return beside if os.path.isdir(beside) else os.path.join(ROOT, "shared")


def cache_dir() -> str:
    root = cache_root()
    path = os.path.join(root, "bench")
    os.makedirs(path, exist_ok=True)
    return path


def _graphgen():
    path = os.path.join(shared_dir(), "bench")
    if not os.path.isfile(os.path.join(path, "graphgen.py")):
        raise FileNotFoundError(f"graphgen.py not found in {path}; set LLMHNI_SHARED to the shared folder")
    if path not in sys.path:
        sys.path.insert(0, path)
    import graphgen  # type: ignore
    return graphgen


def interactions(scale: str = "yelp2018", kind: str = "realistic", seed: int = 0):
    """(users, items, n_users, n_items): int64 tensors of a synthetic graph (cached)."""
    if scale == "ml-1m":
        return ml1m()
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose from {sorted(SCALES) + ['ml-1m']}")
    nu, ni, ne = SCALES[scale]
    path = os.path.join(cache_dir(), f"{scale}-{kind}-{seed}.npz")
    if not os.path.isfile(path):
        u, i = _graphgen().powerlaw_interactions(nu, ni, ne, seed=seed, kind=kind)
        tmp = f"{path}.{os.getpid()}.tmp.npz"
        np.savez(tmp, users=u.astype(np.int64), items=i.astype(np.int64))
        os.replace(tmp, path)  # atomic: an interrupted run never leaves a broken cache file
    with np.load(path) as z:
        return torch.from_numpy(z["users"]), torch.from_numpy(z["items"]), nu, ni


def ml1m():
    """(users, items, n_users, n_items) of ML-1M's LightGCN-format training split."""
    path = os.path.join(shared_dir(), "data", "lightgcn-format", "ml-1m", "train.txt")
    users, items = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            ids = line.split()
            if len(ids) > 1:
                users += [int(ids[0])] * (len(ids) - 1)
                items += [int(t) for t in ids[1:]]
    u, i = torch.tensor(users), torch.tensor(items)
    return u, i, int(u.max()) + 1, int(i.max()) + 1


def adjacency(scale: str = "yelp2018", kind: str = "realistic"):
    """LightGCN's normalised adjacency of the graph as an llmhni CSR."""
    from llmhni_ext import graph
    u, i, nu, ni = interactions(scale, kind)
    return graph.normalized_bipartite_adj(u, i, nu, ni)


# ---------------------------------------------------------------- peers

def torch_csr(adj) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.sparse_csr_tensor(adj.rowptr.long(), adj.col.long(), adj.value, (adj.n_rows, adj.n_cols))


def torch_coo(adj) -> torch.Tensor:
    idx = torch.stack([adj.row_ids(), adj.col.long()])
    return torch.sparse_coo_tensor(idx, adj.value, (adj.n_rows, adj.n_cols)).coalesce()


def scipy_csr(adj):
    import scipy.sparse as sp
    return sp.csr_matrix((adj.value.cpu().numpy(), adj.col.cpu().numpy(), adj.rowptr.cpu().numpy()),
                         shape=(adj.n_rows, adj.n_cols))


def recbole_propagate(coo: torch.Tensor, x: torch.Tensor, num_layers: int = 3) -> torch.Tensor:
    """LightGCN forward as RecBole and SELFRec write it."""
    embs = [x]
    h = x
    for _ in range(num_layers):
        h = torch.sparse.mm(coo, h)
        embs.append(h)
    return torch.stack(embs, dim=1).mean(dim=1)


def scipy_norm_adj(users: torch.Tensor, items: torch.Tensor, n_users: int, n_items: int):
    """The normalised adjacency built the LightGCN/SELFRec way, with scipy."""
    import scipy.sparse as sp
    u, i = users.numpy(), items.numpy()
    R = sp.csr_matrix((np.ones(len(u), dtype=np.float32), (u, i)), shape=(n_users, n_items))
    R.data[:] = 1.0  # merge duplicates
    A = sp.bmat([[None, R], [R.T, None]], format="csr")
    deg = np.asarray(A.sum(1)).ravel()
    dinv = np.power(np.maximum(deg, 1), -0.5).astype(np.float32)
    D = sp.diags(dinv)
    return (D @ A @ D).tocsr()


def timeit(fn, repeats: int = 7, warmup: int = 1) -> float:
    """Median wall time of fn() in milliseconds."""
    import time
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts) * 1e3)


def sync(device: Union[str, torch.device]) -> None:
    """Wait for the device's queued work (a no-op on the CPU)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def cuda_ms(fn, repeats: int = 20, warmup: int = 5) -> float:
    """Median time of fn() on the current CUDA stream in milliseconds (CUDA events)."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        ts.append(start.elapsed_time(end))
    return float(np.median(ts))


def standin_signals(ds, seed: int = 0):
    """LLMHNI's signals as stand-ins of the real sizes, for timing only: 64-d unit semantic
    embeddings, 5% of the training edges judged noisy, 1% of that count added as hard edges.
    A step's cost does not depend on what the judges said."""
    g = torch.Generator().manual_seed(seed)
    n = len(ds.train)
    noisy = torch.randperm(n, generator=g)[: n // 20]
    n_hard = max(1, noisy.numel() // 100)
    hu = torch.randint(0, ds.n_users, (n_hard,), generator=g)
    hi = torch.randint(0, ds.n_items, (n_hard,), generator=g)
    unit = lambda n_rows: torch.nn.functional.normalize(torch.randn(n_rows, 64, generator=g), dim=1)  # noqa: E731
    return SimpleNamespace(user_sem=unit(ds.n_users), item_sem=unit(ds.n_items), user_raw=None, item_raw=None,
                           noisy_edges=torch.stack([ds.train.users[noisy], ds.train.items[noisy]]),
                           hard_edges=torch.stack([hu, hi]), summary={"stand_in": True})


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform
    return platform.processor() or platform.machine()
