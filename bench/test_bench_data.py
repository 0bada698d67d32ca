"""Data loading speed: our LightGCN-format loader against the per-token Python loop that
LightGCN-style code uses (read each line, convert every id with int(), append to lists,
build a scipy matrix), on the shared ML-1M and Last.fm files.

    python bench/test_bench_data.py            # prints times and ratios
    pytest bench/test_bench_data.py            # pytest-benchmark
"""
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from llmhni_ext.data import load_dataset, resolve_data_root  # noqa: E402

ROOT = resolve_data_root()


def per_token_loader(folder: Path):
    """The straightforward loader: a Python int() per id, lists, then a CSR per split."""
    out = {}
    for split in ("train", "valid", "test"):
        users, items = [], []
        n_users = n_items = 0
        with open(folder / f"{split}.txt") as f:
            for line in f:
                parts = line.strip().split(" ")
                if len(parts) < 2:
                    continue
                u = int(parts[0])
                its = [int(i) for i in parts[1:]]
                users.extend([u] * len(its))
                items.extend(its)
                n_users = max(n_users, u + 1)
                n_items = max(n_items, max(its) + 1)
        out[split] = (np.array(users), np.array(items), n_users, n_items)
    n_u = max(v[2] for v in out.values())
    n_i = max(v[3] for v in out.values())
    return {k: sp.csr_matrix((np.ones(len(v[0])), (v[0], v[1])), shape=(n_u, n_i)) for k, v in out.items()}


def _skip(name):
    return pytest.mark.skipif(not (ROOT / "lightgcn-format" / name).is_dir(), reason=f"no {name} in {ROOT}")


@_skip("ml-1m")
def test_load_ml1m_ours(benchmark):
    ds = benchmark(load_dataset, "ml-1m")
    assert len(ds.train) == 590733


@_skip("ml-1m")
def test_load_ml1m_per_token_loop(benchmark):
    m = benchmark(per_token_loader, ROOT / "lightgcn-format" / "ml-1m")
    assert m["train"].nnz == 590733


def _best(fn, *a, repeat=5):
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn(*a)
        best = min(best, time.perf_counter() - t)
    return best


if __name__ == "__main__":
    import os
    import platform
    import torch
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}")
    for name in ("ml-1m", "lastfm"):
        folder = ROOT / "lightgcn-format" / name
        if not folder.is_dir():
            print(f"{name}: not in {ROOT}, skipped")
            continue
        ours = _best(load_dataset, name)
        peer = _best(per_token_loader, folder)
        print(f"{name}: load_dataset {ours * 1e3:.0f} ms (ids checked, duplicates/overlaps counted, Dataset built); "
              f"per-token loop {peer * 1e3:.0f} ms (no checks); ratio {peer / ours:.2f}x")
    if (ROOT / "ml-100k").is_dir():
        t = _best(lambda: load_dataset("ml-100k", download=False), repeat=3)
        print(f"ml-100k with LLM profiles and texts: {t * 1e3:.0f} ms")
