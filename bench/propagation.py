"""LightGCN propagation against its peers: a table of times and ratios from one run.

    PYTHONPATH=. python bench/propagation.py                   # CPU, 2 threads
    PYTHONPATH=. python bench/propagation.py --device cuda     # GPU (bench/gpu_check.sh)

For each graph (synthetic Yelp2018- and Amazon-book-sized, realistic and heavy; the
real ML-1M split), d = 64:
* spmm forward: llmhni vs ``torch.sparse.mm`` on CSR and vs scipy CSR @ dense (CPU);
* 3-layer LightGCN propagation, forward + backward: llmhni's fused op vs
  ``torch.sparse.mm`` on a COO tensor, one call per layer (RecBole / SELFRec);
* building the normalised adjacency: llmhni vs the scipy route LightGCN code takes,
  and the peak extra memory of llmhni's build against the size of the CSR it returns.

``--rows`` also prints machine-readable ``ROW`` lines (the contract of gpu_check.sh).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import warnings

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import graphs  # noqa: E402

from llmhni_ext import backend_info, graph  # noqa: E402

warnings.simplefilter("ignore")


def _pair(ours, peer, device: str, repeats: int):
    """(ours ms, peer ms): best of `repeats`, the two run alternately so that both see the
    same machine load (this CPU is shared; the minimum is the least disturbed run)."""
    import time
    t_ours, t_peer = [], []
    for fn in (ours, peer):  # warm-up
        fn()
        graphs.sync(device)
    for _ in range(repeats):
        for fn, ts in ((ours, t_ours), (peer, t_peer)):
            t0 = time.perf_counter()
            fn()
            graphs.sync(device)
            ts.append(time.perf_counter() - t0)
    return min(t_ours) * 1e3, min(t_peer) * 1e3


_MEM_PROBE = r"""
import gc, json, sys
sys.path.insert(0, sys.argv[1]); sys.path.insert(0, sys.argv[2])
import torch, graphs
from llmhni_ext import graph
torch.set_num_threads(int(sys.argv[4]))
u, i, nu, ni = graphs.interactions(sys.argv[3], "realistic")
graph.normalized_bipartite_adj(u[:10], i[:10], nu, ni)   # load the library first
gc.collect()
def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
rss = status("VmRSS:")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")                                           # reset the peak RSS
adj = graph.normalized_bipartite_adj(u, i, nu, ni)
peak = status("VmHWM:")
csr = adj.rowptr.numel() * adj.rowptr.element_size() + adj.col.numel() * adj.col.element_size() \
      + adj.value.numel() * adj.value.element_size()
print(json.dumps({"extra": peak - rss, "csr": csr}))
"""


def build_memory(scale: str, threads: int):
    """(peak extra bytes while building, bytes of the CSR) in a fresh process (Linux only)."""
    if not os.path.exists("/proc/self/clear_refs"):
        return None
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", _MEM_PROBE, root, os.path.dirname(os.path.abspath(__file__)),
                          scale, str(threads)], capture_output=True, text=True)
    if out.returncode != 0:
        return None
    res = json.loads(out.stdout.strip().splitlines()[-1])
    return res["extra"], res["csr"]


def run(args) -> list:
    device = args.device
    torch.manual_seed(0)
    rows = []  # (area, case, ours ms, peer, peer ms)
    for scale, kind in args.graphs:
        u, i, nu, ni = graphs.interactions(scale, kind)
        name = f"{scale}/{kind}" if scale != "ml-1m" else "ml-1m"
        adj = graph.normalized_bipartite_adj(u, i, nu, ni)
        if device == "cpu":
            t_ours, t_sp = _pair(lambda: graph.normalized_bipartite_adj(u, i, nu, ni),
                                 lambda: graphs.scipy_norm_adj(u, i, nu, ni), device, max(3, args.repeats // 2))
            rows.append(("build norm adj", name, t_ours, "scipy (LightGCN code)", t_sp))
        adj = adj.to(device)
        x = torch.randn(adj.n_rows, args.dim, device=device)
        csr = graphs.torch_csr(adj.to("cpu")).to(device)
        coo = graphs.torch_coo(adj.to("cpu")).to(device)
        t = _pair(lambda: graph.spmm(adj, x), lambda: torch.sparse.mm(csr, x), device, args.repeats)
        rows.append(("spmm fwd", name, t[0], "torch.sparse.mm CSR", t[1]))
        if device == "cpu":
            sp_a, xn = graphs.scipy_csr(adj), x.numpy()
            t = _pair(lambda: graph.spmm(adj, x), lambda: sp_a @ xn, device, args.repeats)
            rows.append(("spmm fwd", name, t[0], "scipy CSR @ dense", t[1]))
        else:
            t = _pair(lambda: graph.spmm(adj, x), lambda: torch.sparse.mm(coo, x), device, args.repeats)
            rows.append(("spmm fwd", name, t[0], "torch.sparse.mm COO", t[1]))
        g = torch.randn_like(x)
        xg = x.clone().requires_grad_()

        def ours_fb():
            out = graph.propagate(adj, xg, 3)
            torch.autograd.grad(out, xg, g)

        def peer_fb():
            out = graphs.recbole_propagate(coo, xg, 3)
            torch.autograd.grad(out, xg, g)

        t = _pair(ours_fb, peer_fb, device, args.repeats)
        rows.append(("LightGCN 3 layers fwd+bwd", name, t[0], "torch.sparse.mm COO (RecBole/SELFRec)", t[1]))
    if device == "cpu" and args.memory:
        mem = build_memory(args.memory, args.threads)
        if mem is not None:
            extra, csr_bytes = mem
            rows.append(("build peak extra memory (MiB)", f"{args.memory}/realistic", extra / 2**20,
                         "size of the CSR (MiB)", csr_bytes / 2**20))
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--threads", type=int, default=2, help="CPU threads (torch.set_num_threads)")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--graph", dest="graphs", action="append", default=None, metavar="SCALE/KIND",
                   help="e.g. yelp2018/realistic, amazon-book/heavy, ml-1m (repeatable)")
    p.add_argument("--memory", default="amazon-book", help="scale whose CSR build memory is measured ('' to skip)")
    p.add_argument("--rows", action="store_true", help="also print ROW lines for gpu_check.sh")
    p.add_argument("--allow-reference", action="store_true",
                   help="measure even when no compiled kernels load (the reference twins are slow)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda needs a CUDA device")
    default = ["yelp2018/realistic", "yelp2018/heavy", "amazon-book/realistic", "ml-1m"]
    if args.device == "cuda":
        default = ["yelp2018/realistic", "yelp2018/heavy", "amazon-book/realistic", "amazon-book/heavy"]
    args.graphs = [tuple((g + "/realistic").split("/")[:2]) if "/" not in g else tuple(g.split("/"))
                   for g in (args.graphs or default)]
    if args.device == "cuda":
        args.memory = ""
    info = backend_info()
    served = info["ops"]["spmm"].get(args.device, "reference")
    if served == "reference" and not args.allow_reference:
        print(f"propagation: no compiled kernel serves spmm on {args.device} ({info['reason']}); "
              "build the extension (pip install .) or pass --allow-reference", file=sys.stderr)
        return 2
    machine = torch.cuda.get_device_name() if args.device == "cuda" else f"{graphs.cpu_model()}, {args.threads} threads"
    rows = run(args)
    print(f"\nllmhni graph propagation, d = {args.dim}, backend {served}, {machine}, torch {torch.__version__}; "
          f"best of {args.repeats}, llmhni and peer alternating")
    print("| op | graph | llmhni | peer | peer time | peer / llmhni |")
    print("|---|---|---|---|---|---|")
    for area, case, ours, peer, theirs in rows:
        unit = "" if "MiB" in area else " ms"
        ratio = f"{theirs / ours:.2f}x" if "MiB" not in area else f"extra = {ours / theirs:.2f}x CSR"
        print(f"| {area} | {case} | {ours:.2f}{unit} | {peer} | {theirs:.2f}{unit} | {ratio} |")
    if args.rows:
        for area, case, ours, peer, theirs in rows:
            print("\t".join(["ROW", "graph", f"{area} {case}", f"{ours:.3f}", peer, f"{theirs:.3f}",
                             f"{theirs / ours:.2f}"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
