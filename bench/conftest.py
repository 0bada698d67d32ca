"""pytest-benchmark settings for bench/: 2 CPU threads, the repository on sys.path."""
import os
import sys

import pytest
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
for path in (HERE, os.path.dirname(HERE)):
    if path not in sys.path:
        sys.path.insert(0, path)


@pytest.fixture(autouse=True, scope="session")
def _two_threads():
    threads = int(os.environ.get("LLMHNI_BENCH_THREADS", "2"))
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    yield
    torch.set_num_threads(old)
