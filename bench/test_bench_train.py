"""pytest-benchmark: one training step of LightGCN (BPR) and of LLMHNI on MovieLens-100K.

    PYTHONPATH=. pytest bench/test_bench_train.py --benchmark-only

The epoch-time comparison against PyG- and RecBole-style LightGCN on ML-1M, with
ratios, is bench/epoch_time.py."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

DATA = os.environ.get("LLMHNI_DATA_ROOT", "/work/shared/data")
pytestmark = pytest.mark.skipif(not os.path.isdir(os.path.join(DATA, "ml-100k")), reason="ML-100K not present")


@pytest.fixture(scope="module")
def ds():
    from llmhni_ext.data import load_dataset
    return load_dataset("ml-100k", DATA, noise=0.2, seed=0)


@pytest.mark.parametrize("method", ["bpr", "llmhni", "sgl"])
def test_train_step(benchmark, ds, method):
    from epoch_time import standin_signals
    from llmhni_ext.config import RunConfig
    from llmhni_ext.train import Trainer
    cfg = RunConfig()
    cfg.method.name, cfg.train.progress = method, False
    tr = Trainer(cfg.validate(), ds, signals=standin_signals(ds))
    state = {"s": 0}

    def step():
        tr.train_step(0, state["s"] % tr.steps_per_epoch)
        state["s"] += 1
    benchmark.pedantic(step, rounds=10, warmup_rounds=2)
