"""pytest-benchmark suite of the negative sampler (CPU; see bench/sampler.py for ratios).

    PYTHONPATH=. python -m pytest bench/test_bench_sampler.py --benchmark-only
"""
from __future__ import annotations

import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sampler as S  # noqa: E402
from llmhni_ext.sampling import SamplerSpec  # noqa: E402

BATCH, M, K = 2048, 64, 8


@pytest.fixture(scope="module")
def world():
    torch.set_num_threads(2)
    users, n_users, n_items, emb, sampler, peers = S.setup()
    g = torch.Generator().manual_seed(1)
    batch = users[torch.randint(0, users.numel(), (BATCH,), generator=g)]
    return batch, emb, sampler, peers


def test_uniform_llmhni(benchmark, world):
    batch, _, sampler, _ = world
    benchmark(lambda: sampler.sample(batch))


def test_uniform_python_loop(benchmark, world):
    batch, _, _, peers = world
    benchmark(lambda: peers.python_loop(batch))


def test_uniform_torch_rejection(benchmark, world):
    batch, _, _, peers = world
    benchmark(lambda: peers.torch_rejection(batch))


def test_llmhni_fused(benchmark, world):
    batch, emb, sampler, _ = world
    benchmark(lambda: sampler.sample(batch, spec=SamplerSpec.llmhni(emb["user_sem"], emb["item_sem"], M, K), user_emb=emb["user_emb"], item_emb=emb["item_emb"]))


def test_llmhni_torch(benchmark, world):
    batch, emb, _, peers = world
    benchmark(lambda: peers.torch_llmhni(batch, emb["user_emb"], emb["item_emb"], emb["user_sem"],
                                         emb["item_sem"], M, K))


def test_dns_fused(benchmark, world):
    batch, emb, sampler, _ = world
    benchmark(lambda: sampler.sample(batch, spec=SamplerSpec.dns(M), user_emb=emb["user_emb"], item_emb=emb["item_emb"]))
