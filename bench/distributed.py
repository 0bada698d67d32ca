"""Step time and graph memory per rank of `llmhni train` as 1 and 2 processes (torch.distributed,
gloo on this CPU): data-parallel steps with the partitioned LightGCN propagation.

    PYTHONPATH=. python bench/distributed.py [--dataset ml-1m] [--epochs 3] [--nproc 1,2]

Each process gets one thread (`--threads 1`), so 2 processes use the 2 cores. Prints, per
process count, the mean epoch time (training steps only, rank 0's clock), the test Recall@20,
and the adjacency entries and bytes each rank holds (int32 column + fp32 value per entry and
int32 row pointers). Time nothing else while it runs.

GPU recipe (one process per GPU, NCCL): `torchrun --nproc-per-node $NGPU -m llmhni_ext.cli train
--config ml1m --method bpr --device cuda` (each rank takes the GPU named by LOCAL_RANK).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="ml-1m")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--nproc", default="1,2")
    ap.add_argument("--method", default="bpr")
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for n in [int(x) for x in a.nproc.split(",")]:
            out = os.path.join(d, f"p{n}")
            cmd = [sys.executable, "-m", "llmhni_ext.cli", "train", "--dataset", a.dataset, "--method", a.method,
                   "--epochs", str(a.epochs), "--threads", "1", "--no-progress", "--out", out, "--nproc", str(n),
                   "--set", f"train.eval_every={a.epochs}"]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                print(r.stdout[-2000:], r.stderr[-2000:])
                return 1
            res = json.load(open(os.path.join(out, "results.json")))
            part = res.get("distributed") or {}
            n_rows = res["data"]["n_users"] + res["data"]["n_items"]
            blocks = (part.get("block_nnz") or [[None]])[0]
            total = part.get("nnz", [None])[0]
            rows.append((n, res["mean_epoch_seconds"], res["test"]["recall@20"], total, blocks, n_rows))
    print(f"{'processes':>9} | {'s/epoch':>8} | {'test R@20':>9} | graph entries per rank (bytes)")
    for n, s, r20, total, blocks, n_rows in rows:
        if n == 1 or blocks[0] is None:
            desc = "whole graph on the one process"
        else:
            desc = ", ".join(f"{b:,} ({(8 * b + 4 * n_rows / n) / 2**20:.1f} MiB)" for b in blocks) + \
                f" of {total:,} ({(8 * total + 4 * n_rows) / 2**20:.1f} MiB)"
        print(f"{n:>9} | {s:>8.3f} | {r20:>9.4f} | {desc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
