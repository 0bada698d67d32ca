#!/usr/bin/env bash
# The project's one GPU check: builds the CUDA extension, runs the CUDA tests, runs every
# GPU benchmark and prints a short table last. Budget: under 8 minutes on one H100/H200.
#
#   bash bench/gpu_check.sh            (from anywhere; PYTHON=... picks the interpreter)
#
# CONTRACT for GPU benchmarks (adding one is a one-file change, nothing to edit here):
#   * a module bench/gpu_<family>.py, run as `python bench/gpu_<family>.py` from a scratch
#     directory, against the INSTALLED llmhni_ext (do not put the repository on sys.path;
#     bench/ itself is on it, so `import graphs` and friends work);
#   * it must finish within $GPU_BENCH_TIMEOUT seconds (default 120) and exit 0;
#   * it prints one line per measurement, tab-separated, starting with ROW:
#       ROW <family> <case> <llmhni ms> <peer name> <peer ms> <peer ms / llmhni ms>
#     anything else it prints goes to the log only.
# Shared data: graph benchmarks read $LLMHNI_SHARED (default: shared/ beside or inside
# the repository).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
START=$SECONDS
WORK="$(mktemp -d -t llmhni-gpu-XXXXXX)"
ROWS="$WORK/rows.tsv"
: > "$ROWS"
log() { echo "[gpu_check +$((SECONDS - START))s] $*"; }
summary=()

"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" \
  || { echo "gpu_check: $PY cannot import torch or sees no CUDA device"; exit 1; }
CAP="$("$PY" -c "import torch; print('%d.%d' % torch.cuda.get_device_capability())")"
GPU="$("$PY" -c "import torch; print(torch.cuda.get_device_name())")"
export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-$CAP}"   # this card only: faster build
export MAX_JOBS="${MAX_JOBS:-$(nproc)}"
export FORCE_CUDA=1
log "GPU: $GPU (sm $CAP); building the CUDA extension (arch $TORCH_CUDA_ARCH_LIST, $MAX_JOBS jobs)"

# 1. build and install (no isolation: use the torch that is here)
if ! (cd "$ROOT" && "$PY" -m pip install --no-build-isolation --no-deps . ) > "$WORK/build.log" 2>&1; then
  tail -n 60 "$WORK/build.log"; echo "gpu_check: build FAILED"; exit 1
fi
log "built"
(cd "$WORK" && LLMHNI_NO_JIT=1 "$PY" - <<'PYEOF'
import json, llmhni_ext
info = llmhni_ext.backend_info()
print(json.dumps({k: info[k] for k in ("mode", "torch", "torch_cuda", "build")})[:2000])
assert info["mode"] == "compiled", info["reason"]
missing = [op for op, dev in info["ops"].items() if dev.get("cuda") != "compiled"]
print("ops without a CUDA kernel (reference twin on CUDA):", missing)
PYEOF
) || { echo "gpu_check: the installed extension does not load"; exit 1; }

# 2. CUDA tests (installed package: run from a scratch directory, never JIT)
log "CUDA tests"
set +e
(cd "$WORK" && LLMHNI_NO_JIT=1 timeout 240 "$PY" -m pytest "$ROOT/python_tests" -m cuda -q -p no:cacheprovider \
   -c "$ROOT/pyproject.toml" --rootdir "$ROOT" 2>&1 | tail -n 40)
test_rc=${PIPESTATUS[0]}
set -e
summary+=("CUDA tests: $([ "$test_rc" = 0 ] && echo passed || echo "FAILED (rc $test_rc)")")

# 3. GPU benchmarks: every bench/gpu_*.py (see the contract above)
for bench in "$ROOT"/bench/gpu_*.py; do
  [ -e "$bench" ] || continue
  name="$(basename "$bench" .py)"
  log "benchmark $name"
  set +e
  (cd "$WORK" && LLMHNI_NO_JIT=1 PYTHONPATH="$ROOT/bench" timeout "${GPU_BENCH_TIMEOUT:-120}" "$PY" "$bench") \
    > "$WORK/$name.log" 2>&1
  rc=$?
  set -e
  grep $'^ROW\t' "$WORK/$name.log" >> "$ROWS" || true
  tail -n 5 "$WORK/$name.log" | sed "s/^/  [$name] /"
  summary+=("$name: $([ "$rc" = 0 ] && echo ok || echo "FAILED (rc $rc, log $WORK/$name.log)")")
done

# 4. the short table, last
echo
echo "== llmhni GPU check on $GPU, torch $("$PY" -c 'import torch; print(torch.__version__)'), $((SECONDS - START)) s =="
for line in "${summary[@]}"; do echo "  $line"; done
echo
echo "| family | case | llmhni ms | peer | peer ms | peer / llmhni |"
echo "|---|---|---|---|---|---|"
awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %sx |\n", $2, $3, $4, $5, $6, $7 }' "$ROWS"
[ "$test_rc" = 0 ]
