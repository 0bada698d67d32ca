"""GPU benchmark of the graph ops for bench/gpu_check.sh: spmm and 3-layer LightGCN
propagation (forward + backward) against torch.sparse.mm (cuSPARSE CSR and COO) on
the Yelp2018- and Amazon-book-sized graphs, realistic and heavy, d = 64 (and spmm
at d = 32 and 128 on the realistic Yelp2018 graph); then spmm's achieved bandwidth as a
fraction of the card's measured device-to-device copy bandwidth."""
import sys

import torch

import graphs
import propagation
from llmhni_ext import graph

DEV = "cuda"


def copy_gbps() -> float:
    """Bytes moved (read + write) per second by a 1 GiB device-to-device copy, in GB/s."""
    x = torch.empty(256 * 2**20, dtype=torch.float32, device=DEV)
    y = torch.empty_like(x)
    ms = graphs.cuda_ms(lambda: y.copy_(x), 20, 3)
    return 2 * x.numel() * x.element_size() / (ms * 1e-3) / 1e9


def spmm_bandwidth(scale: str, copy: float, d: int = 64) -> None:
    """spmm's time against the time a copy at ``copy`` GB/s needs for the bytes spmm must move
    at least: the CSR structure and values once, X once, Y once."""
    adj = graphs.adjacency(scale, "realistic").to(DEV)
    x = torch.randn(adj.n_cols, d, device=DEV)
    ms = graphs.cuda_ms(lambda: graph.spmm(adj, x), 50, 5)
    least = (adj.rowptr.numel() * adj.rowptr.element_size() + adj.col.numel() * adj.col.element_size()
             + adj.value.numel() * adj.value.element_size() + (adj.n_cols + adj.n_rows) * d * x.element_size())
    floor_ms = least / (copy * 1e9) * 1e3
    print(f"spmm {scale} realistic d={d}: {ms * 1e3:.1f} us, {least / 2**20:.1f} MiB at least, "
          f"{least / (ms * 1e-3) / 1e9:.0f} GB/s = {floor_ms / ms:.0%} of the copy bandwidth "
          f"({copy:.0f} GB/s; floor {floor_ms * 1e3:.1f} us)", flush=True)
    print("\t".join(["ROW", "graph", f"spmm bandwidth {scale} realistic d={d}", f"{ms:.4f}",
                     "copy of the least bytes", f"{floor_ms:.4f}", f"{floor_ms / ms:.2f}"]), flush=True)


if __name__ == "__main__":
    rc = propagation.main(["--device", "cuda", "--rows", "--repeats", "30"])
    for d in (32, 128):
        rc |= propagation.main(["--device", "cuda", "--rows", "--repeats", "30", "--dim", str(d),
                                "--graph", "yelp2018/realistic"])
    bw = copy_gbps()
    for scale in ("yelp2018", "amazon-book"):
        spmm_bandwidth(scale, bw)
    sys.exit(rc)
