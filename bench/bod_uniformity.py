"""BOD's uniformity term, forward and backward: llmhni's tiled product against the pdist formula.

    PYTHONPATH=. python bench/bod_uniformity.py [--repeats 5] [--threads 1]

Peer: ``torch.pdist(F.normalize(x), p=2).pow(2).mul(-t).exp().mean().log()``, the formula of the
alignment/uniformity paper that BOD's code uses, timed in the same run on the same inputs. The
batch sizes are BOD's (a training batch of 4,096 rows; 64 columns for LightGCN, 256 for NGCF's
concatenated layers). Also prints each one's largest gradient error against the pdist formula
in float64.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from llmhni_ext.methods.bod import uniformity  # noqa: E402


def pdist_uniformity(x: torch.Tensor, t: float = 2.0) -> torch.Tensor:
    return torch.pdist(F.normalize(x, dim=-1), p=2).pow(2).mul(-t).exp().mean().log()


def time_ms(fn, x: torch.Tensor, repeats: int) -> float:
    def once():
        (g,) = torch.autograd.grad(fn(x), x)
        return g
    once()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        once()
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def grad_error(fn, x: torch.Tensor) -> float:
    x64 = x.detach().double().requires_grad_()
    (want,) = torch.autograd.grad(pdist_uniformity(x64), x64)
    (got,) = torch.autograd.grad(fn(x), x)
    return float((got.double() - want).abs().max() / want.abs().max())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--sizes", default="1024x64,4096x64,4096x256", help="comma-separated BxD")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"# machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads")
    print("| B x d | pdist formula ms | llmhni ms | speed-up | grad error pdist / llmhni (vs float64) |")
    print("|---|---|---|---|---|")
    for size in args.sizes.split(","):
        b, d = (int(v) for v in size.split("x"))
        x = torch.randn(b, d, generator=torch.Generator().manual_seed(0)).requires_grad_()
        peer, mine = time_ms(pdist_uniformity, x, args.repeats), time_ms(uniformity, x, args.repeats)
        print(f"| {b} x {d} | {peer:.1f} | {mine:.1f} | {peer / mine:.2f}x | "
              f"{grad_error(pdist_uniformity, x):.1e} / {grad_error(uniformity, x):.1e} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
