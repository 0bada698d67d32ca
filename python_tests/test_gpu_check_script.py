"""bench/gpu_check.sh and the GPU benchmarks' CPU side: the script's flow (budget, skipped
steps, outputs under $OUT) against a stand-in interpreter that reports a card, its refusal
without one, and the training-step benchmark as a CPU smoke run. No GPU is needed."""
import os
import stat
import subprocess
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "bench", "gpu_check.sh")

# answers the script's questions about the card and fakes the build; anything else runs for real
FAKE_PYTHON = f"""#!/bin/bash
if [ "$1" = "-c" ]; then
  case "$2" in
    *is_available*) exit 0;;
    *get_device_capability*) echo 9.0; exit 0;;
    *get_device_name*) echo STAND-IN CARD; exit 0;;
    *torch.version.cuda*) echo "torch (stand-in), CUDA 13.0"; exit 0;;
  esac
fi
if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then echo "build skipped (stand-in)"; exit 0; fi
if [ "$1" = "-" ]; then cat > /dev/null; echo "backend check skipped (stand-in)"; exit 0; fi
exec {sys.executable} "$@"
"""


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLMHNI_", "GPU_CHECK_"))}
    env.pop("OUT", None)
    env.update(extra)
    return env


def test_flow_budget_and_outputs_with_a_stand_in_card(tmp_path):
    py = tmp_path / "python"
    py.write_text(FAKE_PYTHON)
    py.chmod(py.stat().st_mode | stat.S_IEXEC)
    out, shared = tmp_path / "out", tmp_path / "shared"
    out.mkdir()
    shared.mkdir()
    r = subprocess.run(["bash", SCRIPT], env=_env(PYTHON=str(py), OUT=str(out), LLMHNI_SHARED=str(shared),
                                                  GPU_CHECK_STEPS="parity sanitizer", COMPUTE_SANITIZER=""),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    summary = (out / "summary.md").read_text()
    assert "llmhni GPU check on STAND-IN CARD" in summary and "build: ok" in summary
    assert "parity: skipped" in summary and "ml-100k is missing" in summary
    assert "compute-sanitizer is not on this machine" in summary
    assert "CUDA tests" not in summary  # not among GPU_CHECK_STEPS
    assert {"gpu_check.log", "build.log", "summary.md"} <= set(os.listdir(out))
    assert len(os.listdir(out)) <= 8  # what the device machine sends back

    # a budget too small for any step: every chosen step says it was skipped
    out2 = tmp_path / "out2"
    out2.mkdir()
    r = subprocess.run(["bash", SCRIPT], env=_env(PYTHON=str(py), OUT=str(out2), GPU_CHECK_BUDGET="20",
                                                  GPU_CHECK_STEPS="tests bench"),
                       capture_output=True, text=True, timeout=300)
    summary = (out2 / "summary.md").read_text()
    assert "CUDA tests: skipped (out of budget)" in summary and "gpu_graph: skipped (out of budget)" in summary


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without a GPU")
def test_refuses_without_a_card(tmp_path):
    r = subprocess.run(["bash", SCRIPT], env=_env(OUT=str(tmp_path), PYTHON=sys.executable),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "sees no CUDA device" in r.stdout


def _graphgen_dir():
    for d in (os.environ.get("LLMHNI_SHARED"), os.path.join(os.path.dirname(ROOT), "shared"),
              os.path.join(ROOT, "shared")):
        if d and os.path.isfile(os.path.join(d, "bench", "graphgen.py")):
            return d
    return None


@pytest.mark.skipif(_graphgen_dir() is None, reason="needs shared/bench/graphgen.py")
def test_train_step_benchmark_cpu_smoke(tmp_path):
    r = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "gpu_train_step.py"), "--device", "cpu",
                        "--scale", "ml100k", "--epoch-scale", "ml100k", "--steps", "2", "--batch", "1024"],
                       env=_env(LLMHNI_SHARED=_graphgen_dir(), LLMHNI_CACHE_DIR=str(tmp_path), OMP_NUM_THREADS="1"),
                       cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = [line.split("\t") for line in r.stdout.splitlines() if line.startswith("ROW\t")]
    assert len(rows) == 4 and all(len(x) == 7 and x[1] == "train" for x in rows)
    assert all(float(x[3]) > 0 and float(x[5]) > 0 for x in rows)
