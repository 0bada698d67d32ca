"""GPU benchmark of the contrastive ops, run by bench/gpu_check.sh (its contract: the
installed llmhni_ext, bench/ on sys.path, tab-separated ROW lines).

    PYTHONPATH=bench python bench/gpu_contrastive.py [--repeats 30]

Timed with CUDA events after warm-up, medians:
* a dropped view (keep 0.8) of the realistic Yelp2018-sized graph: llmhni (compacted and
  zeroed values) versus a PyTorch rebuild on the GPU (mask, bincount degrees, coalesce);
* InfoNCE forward+backward for two view pairs, B = 4096, d = 64: llmhni versus the
  straightforward PyTorch version (F.normalize, matmul, cross_entropy per pair), and
  the peak extra GPU memory of both.
"""
from __future__ import annotations

import argparse
import warnings

import torch
import torch.nn.functional as F

warnings.simplefilter("ignore")

import graphs  # noqa: E402  (bench/graphs.py)

from llmhni_ext import _backend  # noqa: E402
from llmhni_ext import graph as G  # noqa: E402
from llmhni_ext.contrastive import edge_drop_views, infonce  # noqa: E402


def torch_rebuild(users: torch.Tensor, items: torch.Tensor, n_users: int, n_items: int, keep: float) -> torch.Tensor:
    """A dropped view rebuilt with PyTorch on the GPU: mask, degrees by bincount, coalesce."""
    m = torch.rand(users.numel(), device=users.device) < keep
    u, i = users[m], items[m] + n_users
    n = n_users + n_items
    row, col = torch.cat([u, i]), torch.cat([i, u])
    deg = torch.bincount(row, minlength=n).float()
    dinv = torch.where(deg > 0, deg.rsqrt(), torch.zeros_like(deg))
    return torch.sparse_coo_tensor(torch.stack([row, col]), dinv[row] * dinv[col], (n, n)).coalesce()


def torch_infonce(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    an, bn = F.normalize(a, dim=1), F.normalize(b, dim=1)
    return F.cross_entropy(an @ bn.T / t, torch.arange(a.shape[0], device=a.device))


def row(case: str, ours: float, peer: str, peer_ms: float) -> None:
    print(f"ROW\tcontrastive\t{case}\t{ours:.3f}\t{peer}\t{peer_ms:.3f}\t{peer_ms / ours:.2f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--scale", default="yelp2018")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("gpu_contrastive: no CUDA device")
        return
    _backend.load()
    dev = torch.device("cuda")
    print(f"# {torch.cuda.get_device_name()}; edge_drop: {_backend.backend_for('edge_drop_compact', 'cuda')}, "
          f"infonce: {_backend.backend_for('infonce', 'cuda')}", flush=True)
    users, items, nu, ni = graphs.interactions(args.scale, "realistic")
    users, items = users.to(dev), items.to(dev)
    adj = G.normalized_bipartite_adj(users, items, nu, ni)
    t_peer = graphs.cuda_ms(lambda: torch_rebuild(users, items, nu, ni, 0.8), args.repeats)
    off = iter(range(10**9))
    t_c = graphs.cuda_ms(lambda: edge_drop_views(adj, 0.8, offset=next(off)), args.repeats)
    t_m = graphs.cuda_ms(lambda: edge_drop_views(adj, 0.8, offset=next(off), compact=False), args.repeats)
    row(f"dropped view {args.scale} keep 0.8 (compacted)", t_c, "PyTorch rebuild", t_peer)
    row(f"dropped view {args.scale} keep 0.8 (zeroed values)", t_m, "PyTorch rebuild", t_peer)

    a = torch.randn(2, 4096, 64, device=dev, requires_grad=True)
    b = torch.randn(2, 4096, 64, device=dev, requires_grad=True)

    def peer():
        (torch_infonce(a[0], b[0], 0.2) + torch_infonce(a[1], b[1], 0.2)).backward()

    def ours():
        infonce(a, b, 0.2).sum().backward()
    t_ref = graphs.cuda_ms(peer, args.repeats)
    t_ours = graphs.cuda_ms(ours, args.repeats)
    row("InfoNCE fwd+bwd 2 pairs B=4096 d=64", t_ours, "PyTorch normalize+matmul+CE", t_ref)
    mem = {}
    for name, fn in (("pytorch", peer), ("llmhni", ours)):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        mem[name] = (torch.cuda.max_memory_allocated() - base) / 2**20
    print(f"InfoNCE peak extra GPU memory: PyTorch {mem['pytorch']:.1f} MiB, llmhni {mem['llmhni']:.1f} MiB")


if __name__ == "__main__":
    main()
