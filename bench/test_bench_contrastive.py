"""pytest-benchmark: edge-drop views and InfoNCE against their peers (CPU).

    PYTHONPATH=. pytest bench/test_bench_contrastive.py --benchmark-group-by=group

Compare the rows of one group (same run, same machine). bench/contrastive.py prints
the same comparisons as ratios, plus peak memory, for bench/RESULTS.md.
"""
import os
import sys
import warnings

import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
warnings.simplefilter("ignore")

import contrastive as cb  # noqa: E402  (bench/contrastive.py)

from llmhni_ext import graph as G  # noqa: E402
from llmhni_ext.contrastive import edge_drop_views, infonce  # noqa: E402

SCALE = os.environ.get("LLMHNI_BENCH_SCALE", "yelp2018")


@pytest.fixture(scope="module")
def graph():
    try:
        users, items, nu, ni = cb.load_graph(SCALE)
    except FileNotFoundError as e:
        pytest.skip(str(e))
    return users, items, nu, ni, G.normalized_bipartite_adj(users, items, nu, ni)


@pytest.mark.benchmark(group="dropped view (keep 0.8)")
def test_sgl_rebuild(benchmark, graph):
    users, items, nu, ni, _ = graph
    rng = np.random.default_rng(0)
    benchmark(cb.sgl_rebuild, users.numpy(), items.numpy(), nu, ni, 0.8, rng)


@pytest.mark.benchmark(group="dropped view (keep 0.8)")
@pytest.mark.parametrize("compact", [True, False], ids=["compacted", "zeroed"])
def test_edge_drop_views(benchmark, graph, compact):
    adj = graph[-1]
    offsets = iter(range(10**9))
    benchmark(lambda: edge_drop_views(adj, 0.8, offset=next(offsets), compact=compact))


@pytest.mark.benchmark(group="InfoNCE fwd+bwd, B=4096, d=64, 2 pairs")
@pytest.mark.parametrize("impl", ["pytorch", "llmhni"])
def test_infonce(benchmark, impl):
    torch.manual_seed(0)
    a = torch.randn(2, 4096, 64, requires_grad=True)
    b = torch.randn(2, 4096, 64, requires_grad=True)
    if impl == "pytorch":
        def run():
            (cb.torch_infonce(a[0], b[0], 0.2) + cb.torch_infonce(a[1], b[1], 0.2)).backward()
    else:
        def run():
            infonce(a, b, 0.2).sum().backward()
    benchmark(run)
