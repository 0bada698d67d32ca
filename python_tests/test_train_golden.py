"""Every method trains exactly as recorded in ``golden/trajectories.json`` (see ``_golden.py``).

The recording was the same bit for bit under AVX-512 and emulated AVX2 (one thread); on a CPU
whose kernels differ from the recording's, the values must still agree to float tolerance."""
import json
import os

import pytest
import torch

from _golden import CASES, trajectory

GOLDEN = json.load(open(os.path.join(os.path.dirname(__file__), "golden", "trajectories.json")))


@pytest.mark.parametrize("method,backbone", CASES, ids=[f"{m}-{b}" for m, b in CASES])
def test_training_is_bit_identical_to_the_recorded_trajectory(method, backbone):
    want = GOLDEN["cases"][f"{method}/{backbone}"]
    got = trajectory(method, backbone)
    if got == want:
        return
    # the same code on other CPU kernels: equal to float tolerance, never a different trajectory
    assert [sorted(s) for s in got["steps"]] == [sorted(s) for s in want["steps"]]
    for g, w in zip(got["steps"], want["steps"]):
        for k in w:
            assert float.fromhex(g[k]) == pytest.approx(float.fromhex(w[k]), rel=1e-4, abs=1e-7), (k, g, w)
    assert torch.backends.cpu.get_cpu_capability() != GOLDEN["cpu_capability"], \
        "same CPU kernels as the recording, yet the weights differ: training changed"
