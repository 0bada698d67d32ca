"""The same ``llmhni train`` run on the CPU and on CUDA, compared epoch by epoch (bench/gpu_check.sh).

    python bench/cuda_parity.py --data-root SHARED/data [--epochs 10] [--out DIR]

Both runs share one signals cache: the CPU run computes the signals (the pre-trained backbone,
the encoder's embeddings, the judge's verdicts, G'), the CUDA run reuses them, so what is
compared is the training loop alone. LLMHNI on ML-100K with the hashing encoder and the
embedding judge (no model files needed). Same seed: the batches, the initial weights, the
edge-dropped views and the sampler's draws are bit-identical on both devices; what differs
is the order of floating-point sums (propagation, matrix products, reductions), so the
per-epoch losses agree to about 1e-6 at first and drift apart slowly, and the metrics agree
within a few thousandths. Prints the per-epoch losses, the final metrics side by side and a
verdict (exit 1 if a metric differs by more than ``--tol``).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

METRICS = ("recall@20", "ndcg@20", "recall@10", "ndcg@10")


def run(device: str, args, out: str, cache: str) -> float:
    cmd = [sys.executable, "-m", "llmhni_ext.cli", "train", "--config", "ml100k", "--method", args.method,
           "--data-root", args.data_root, "--epochs", str(args.epochs), "--seed", "0", "--device", device,
           "--set", "signals.encoder=hashing", "--set", "signals.judge=embedding", "--set", "train.eval_every=1",
           "--no-progress", "--cache-dir", cache, "--out", out]
    if device == "cpu":
        cmd += ["--threads", str(args.threads)]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", required=True)
    ap.add_argument("--method", default="llmhni")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=0, help="CPU run's torch threads (0: torch's default)")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--tol", type=float, default=0.01, help="largest metric difference called agreement")
    ap.add_argument("--out", default=None, help="folder for both runs (default: a temporary one)")
    args = ap.parse_args(argv)
    root = args.out or tempfile.mkdtemp(prefix="llmhni-parity-")
    cache = os.path.join(root, "cache")
    folders = {dev: os.path.join(root, dev.replace(":", "")) for dev in ("cpu", args.device)}
    secs = {dev: run(dev, args, folder, cache) for dev, folder in folders.items()}
    res, hist = {}, {}
    for dev, folder in folders.items():
        with open(os.path.join(folder, "results.json"), encoding="utf-8") as f:
            res[dev] = json.load(f)
        with open(os.path.join(folder, "metrics.jsonl"), encoding="utf-8") as f:
            hist[dev] = [json.loads(line) for line in f if line.strip()]
    cpu, gpu = "cpu", args.device
    print(f"\n# llmhni train --config ml100k --method {args.method} --epochs {args.epochs}: "
          f"cpu {secs[cpu]:.0f} s, {gpu} {secs[gpu]:.0f} s (signals computed by the CPU run)")
    print("| epoch | loss cpu | loss cuda | rel. diff | valid R@20 cpu | valid R@20 cuda |")
    print("|---|---|---|---|---|---|")
    for a, b in zip(hist[cpu], hist[gpu]):
        rel = abs(a["loss"] - b["loss"]) / max(abs(a["loss"]), 1e-12)
        va, vb = a.get("valid_recall@20", float("nan")), b.get("valid_recall@20", float("nan"))
        print(f"| {a['epoch']} | {a['loss']:.7f} | {b['loss']:.7f} | {rel:.1e} | {va:.4f} | {vb:.4f} |")
    worst = 0.0
    print("\n| split | metric | cpu | cuda | diff |")
    print("|---|---|---|---|---|")
    for split in ("valid", "test"):
        for m in METRICS:
            a, b = res[cpu][split][m], res[gpu][split][m]
            worst = max(worst, abs(a - b))
            print(f"| {split} | {m} | {a:.4f} | {b:.4f} | {b - a:+.4f} |")
    print(f"\nbest epoch cpu {res[cpu]['best_epoch']}, cuda {res[gpu]['best_epoch']}; "
          f"largest metric difference {worst:.4f} (tolerance {args.tol})")
    ok = worst <= args.tol
    print("PARITY", "ok" if ok else "DIFFERS", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
