"""GPU benchmark of the negative sampler (one module of bench/gpu_check.sh).

    PYTHONPATH=. python bench/gpu_sampler.py [--batch 4096] [--candidates 64] [--top-k 8]

Prints Markdown rows ``| name | ms | ratio |`` (CUDA-event timing, median of
--repeats after warm-up) on the realistic Yelp2018-sized graph, d = 64, semantic d = 64:
fused llmhni against the straightforward PyTorch version (bench/sampler.py:
Peers.torch_llmhni, on the GPU) and against fused uniform sampling; also the CPU/CUDA
agreement of the samples for the same seed. ``--device cpu`` runs it as a smoke test.
"""
from __future__ import annotations

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sampler as S  # noqa: E402
from llmhni_ext.sampling import SamplerSpec  # noqa: E402


def time_ms(fn, device, repeats=20, warmup=3):
    """CUDA-event median on a GPU, wall-clock median on the CPU (smoke test)."""
    import graphs
    if device.type == "cuda":
        return graphs.cuda_ms(fn, repeats, warmup)
    return graphs.timeit(fn, repeats, warmup)

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--candidates", type=int, default=64)
    ap.add_argument("--top-k", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    dev = torch.device(args.device)
    from llmhni_ext import _backend
    users, n_users, n_items, emb, sampler, peers = S.setup(dev)
    g = torch.Generator().manual_seed(1)
    batch = users[torch.randint(0, users.numel(), (args.batch,), generator=g)].to(dev)
    M, K = args.candidates, args.top_k
    llm = lambda: sampler.sample(batch, spec=SamplerSpec.llmhni(emb["user_sem"], emb["item_sem"], M, K), offset=0,
                                 user_emb=emb["user_emb"], item_emb=emb["item_emb"])  # noqa: E731
    t = {
        "sampler uniform (fused)": time_ms(lambda: sampler.sample(batch, offset=0), dev, args.repeats),
        "sampler llmhni (fused)": time_ms(llm, dev, args.repeats),
        "sampler dns (fused)": time_ms(lambda: sampler.sample(batch, spec=SamplerSpec.dns(M), offset=0,
                                                              user_emb=emb["user_emb"], item_emb=emb["item_emb"]), dev, args.repeats),
        "sampler llmhni (torch, straightforward)": time_ms(
            lambda: peers.torch_llmhni(batch, emb["user_emb"], emb["item_emb"], emb["user_sem"], emb["item_sem"],
                                       M, K), dev, args.repeats),
    }
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    print(f"# sampler on {name}, backend {_backend.backend_for('sample_negatives', dev.type)}, yelp2018 realistic, "
          f"batch {args.batch}, M={M}, K={K}, d=64, ds=64")
    print("| name | ms | ratio |")
    print("|---|---|---|")
    base = t["sampler llmhni (fused)"]
    for k, v in t.items():
        print(f"| {k} | {v:.3f} | {v / base:.2f}x llmhni fused |")
    # bench/gpu_check.sh's contract: ROW <family> <case> <llmhni ms> <peer> <peer ms> <peer/llmhni>
    peer = t["sampler llmhni (torch, straightforward)"]
    uni = t["sampler uniform (fused)"]
    print(f"ROW\tsampler\tllmhni B={args.batch} M={M} K={K}\t{base:.3f}\ttorch straightforward\t{peer:.3f}\t{peer / base:.2f}")
    print(f"ROW\tsampler\tllmhni vs uniform (target <= 1.5x)\t{base:.3f}\tllmhni uniform\t{uni:.3f}\t{uni / base:.2f}")
    if dev.type == "cuda":  # CPU and CUDA give the same samples for the same seed and offset
        cpu_emb = {k: v.cpu() for k, v in emb.items()}
        a = llm().cpu()
        b = sampler.sample(batch.cpu(), spec=SamplerSpec.llmhni(cpu_emb["user_sem"], cpu_emb["item_sem"], M, K),
                           offset=0, user_emb=cpu_emb["user_emb"], item_emb=cpu_emb["item_emb"])
        print(f"| sampler llmhni CPU == CUDA | {'yes' if torch.equal(a, b) else 'NO'} | |")


if __name__ == "__main__":
    main()
