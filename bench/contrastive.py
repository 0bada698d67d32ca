"""Edge-drop views and batched InfoNCE against their peers, ratios from one run.

    PYTHONPATH=. python bench/contrastive.py [--repeats 7] [--scale yelp2018] [--threads 2]

Peers (written here the way the peer projects do it, not imported from them):
* SGL's dropped view as RecBole and SELFRec build it on the CPU every epoch: a random
  subset of the interactions, a new scipy matrix [[0, R], [R^T, 0]], D^-1/2 A D^-1/2,
  conversion to a torch sparse COO tensor;
* the straightforward PyTorch InfoNCE: F.normalize, a B x B matmul, cross_entropy.

Also measures (a) which view layout is faster end to end (a dropped view followed by a
3-layer propagation forward and backward: compacted CSR versus zeroed values on the
full structure) and (b) the peak memory of InfoNCE forward+backward (separate processes).
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
warnings.simplefilter("ignore")

from llmhni_ext import _backend  # noqa: E402
from llmhni_ext import graph as G  # noqa: E402
from llmhni_ext.contrastive import edge_drop_views, infonce  # noqa: E402

SCALES = ["ml100k", "gowalla", "yelp2018", "amazon-book"]


def load_graph(scale: str = "yelp2018", seed: int = 0):
    """(users, items, n_users, n_items) of the realistic synthetic graph of that size
    (bench/graphs.py: shared/bench/graphgen.py, cached)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import graphs  # bench/graphs.py
    return graphs.interactions(scale, "realistic", seed=seed)


CPU_MS: dict = {}  # id(fn) -> median process CPU time (all threads) of the last timeit


def timeit(fn, repeats: int, warmup: int = 1) -> float:
    """Median wall time in ms (the median CPU time of the process goes to CPU_MS[id(fn)])."""
    for _ in range(warmup):
        fn()
    times, cpu = [], []
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    CPU_MS[id(fn)] = 1e3 * float(np.median(cpu))
    return 1e3 * float(np.median(times))


def timed(fn, repeats: int):
    """(wall ms, CPU ms) medians."""
    wall = timeit(fn, repeats)
    return wall, CPU_MS[id(fn)]


def sgl_rebuild(users_np: np.ndarray, items_np: np.ndarray, n_users: int, n_items: int, keep: float,
                rng: np.random.Generator) -> torch.Tensor:
    """SGL's CPU rebuild of a dropped view (RecBole / SELFRec procedure)."""
    import scipy.sparse as sp
    n_inter = users_np.shape[0]
    idx = rng.choice(n_inter, size=int(n_inter * keep), replace=False)
    u, i = users_np[idx], items_np[idx]
    n = n_users + n_items
    r = sp.csr_matrix((np.ones(len(u), dtype=np.float32), (u, i + n_users)), shape=(n, n))
    a = r + r.T
    d = np.asarray(a.sum(axis=1)).flatten() + 1e-7
    dinv = sp.diags(np.power(d, -0.5))
    norm = (dinv @ a @ dinv).tocoo()
    idx_t = torch.from_numpy(np.vstack([norm.row, norm.col]).astype(np.int64))
    return torch.sparse_coo_tensor(idx_t, torch.from_numpy(norm.data.astype(np.float32)), (n, n)).coalesce()


def torch_infonce(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """The straightforward PyTorch InfoNCE for one pair [B, d]."""
    an, bn = F.normalize(a, dim=1), F.normalize(b, dim=1)
    return F.cross_entropy(an @ bn.T / t, torch.arange(a.shape[0], device=a.device))


def _peak_child(kind: str, B: int, d: int, P: int) -> None:
    """In a fresh process whose large allocations are mmapped (so freed memory goes back to
    the system and RSS follows live memory): the growth in MiB of the peak RSS during one
    InfoNCE forward+backward, after a warm-up on a tiny batch."""
    torch.manual_seed(0)
    a = torch.randn(P, B, d, requires_grad=True)
    b = torch.randn(P, B, d, requires_grad=True)

    def run(x, y):
        if kind == "llmhni":
            infonce(x, y, 0.2).sum().backward()
        else:
            sum(torch_infonce(x[p], y[p], 0.2) for p in range(P)).backward()
    run(a[:, :16].detach().requires_grad_(), b[:, :16].detach().requires_grad_())  # libraries, backend
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    run(a, b)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print((peak - base) / 1024.0)


def peak_mib(kind: str, B: int, d: int, P: int) -> float:
    env = {**os.environ, "PYTHONPATH": ROOT, "MALLOC_MMAP_THRESHOLD_": "65536"}
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--peak-child", kind, str(B), str(d), str(P)],
                         capture_output=True, text=True, env=env, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", default="yelp2018", choices=sorted(SCALES))
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--keep", type=float, default=0.8)
    ap.add_argument("--peak-child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.peak_child:
        kind, B, d, P = args.peak_child
        _peak_child(kind, int(B), int(d), int(P))
        return
    _backend.load()
    print(f"# machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads; backend {_backend.load()} "
          f"(edge_drop: {_backend.backend_for('edge_drop_compact', 'cpu')}, "
          f"infonce: {_backend.backend_for('infonce', 'cpu')}, "
          f"propagate: {_backend.backend_for('lightgcn_propagate', 'cpu')})")
    B, d = args.batch, args.dim
    memory_lines = []  # measured first, in fresh processes, before this one grows
    for P in (1, 2):
        mem_ref = peak_mib("torch", B, d, P)
        mem_ours = peak_mib("llmhni", B, d, P)
        memory_lines.append(
            f"InfoNCE fwd+bwd extra peak memory (B={B}, d={d}, {P} pair(s); peak RSS growth): "
            f"PyTorch {mem_ref:.1f} MiB, llmhni {mem_ours:.1f} MiB "
            f"(inputs {P * B * d * 4 * 2 / 2**20:.1f} MiB; one B x B fp32 matrix {B * B * 4 / 2**20:.1f} MiB)")
    users, items, nu, ni = load_graph(args.scale)
    adj = G.normalized_bipartite_adj(users, items, nu, ni)
    print(f"# graph: {args.scale} realistic, {nu} users, {ni} items, {users.numel()} interactions, "
          f"nnz {adj.nnz}; keep {args.keep}; d {args.dim}; B {args.batch}")
    rows = []

    # --- dropped view: ours vs SGL's rebuild
    u_np, i_np = users.numpy(), items.numpy()
    rng = np.random.default_rng(0)
    t_sgl, c_sgl = timed(lambda: sgl_rebuild(u_np, i_np, nu, ni, args.keep, rng), args.repeats)
    off = iter(range(10**9))
    t_compact, c_compact = timed(lambda: edge_drop_views(adj, args.keep, offset=next(off)), args.repeats)
    t_mask, c_mask = timed(lambda: edge_drop_views(adj, args.keep, offset=next(off), compact=False), args.repeats)
    t_two, c_two = timed(lambda: edge_drop_views(adj, args.keep, num_views=2, offset=next(off)), args.repeats)
    rows += [("dropped view: SGL CPU rebuild (scipy, torch sparse)", t_sgl, 1.0, c_sgl, 1.0),
             ("dropped view: llmhni compacted", t_compact, t_sgl / t_compact, c_compact, c_sgl / c_compact),
             ("dropped view: llmhni zeroed values", t_mask, t_sgl / t_mask, c_mask, c_sgl / c_mask),
             ("2 dropped views in one call: llmhni compacted", t_two, 2 * t_sgl / t_two, c_two, 2 * c_sgl / c_two)]

    # --- end to end: view + 3-layer propagation forward and backward
    x0 = torch.randn(adj.n_rows, args.dim)

    def end_to_end(compact: bool):
        view = edge_drop_views(adj, args.keep, offset=next(off), compact=compact)[0]
        x = x0.detach().requires_grad_(True)
        G.propagate(view, x, 3).sum().backward()
    e2e_c, ce2e_c = timed(lambda: end_to_end(True), max(3, args.repeats // 2))
    e2e_m, ce2e_m = timed(lambda: end_to_end(False), max(3, args.repeats // 2))
    rows += [("view + 3-layer propagate fwd+bwd: zeroed values", e2e_m, 1.0, ce2e_m, 1.0),
             ("view + 3-layer propagate fwd+bwd: compacted", e2e_c, e2e_m / e2e_c, ce2e_c, ce2e_m / ce2e_c)]

    # --- InfoNCE forward + backward
    for P in (1, 2):
        a = torch.randn(P, B, d, requires_grad=True)
        b = torch.randn(P, B, d, requires_grad=True)
        t_ref, c_ref = timed(lambda: sum(torch_infonce(a[p], b[p], 0.2) for p in range(P)).backward(), args.repeats)
        t_ours, c_ours = timed(lambda: infonce(a, b, 0.2).sum().backward(), args.repeats)
        rows += [(f"InfoNCE fwd+bwd, {P} pair(s): PyTorch (normalize, matmul, cross_entropy)", t_ref, 1.0, c_ref, 1.0),
                 (f"InfoNCE fwd+bwd, {P} pair(s): llmhni", t_ours, t_ref / t_ours, c_ours, c_ref / c_ours)]
    print("| what | wall ms | ratio (peer / this) | CPU ms (all threads) | CPU ratio |")
    print("|---|---:|---:|---:|---:|")
    for name, ms, ratio, cpu, cpu_ratio in rows:
        print(f"| {name} | {ms:.2f} | {ratio:.2f}x | {cpu:.2f} | {cpu_ratio:.2f}x |")
    print()
    for line in memory_lines:
        print(line)


if __name__ == "__main__":
    main()
