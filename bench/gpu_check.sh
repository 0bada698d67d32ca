#!/usr/bin/env bash
# The project's one GPU check: builds the CUDA extension for this card only, runs the CUDA tests,
# every GPU benchmark, the CPU-vs-CUDA training parity run and compute-sanitizer, then prints a
# short table last. Budget: GPU_CHECK_BUDGET seconds in all (default 470, under 8 minutes on one
# H100/H200); a step that no longer fits is skipped and says so.
#
#   bash bench/gpu_check.sh            (from anywhere; PYTHON=... picks the interpreter)
#   GPU_CHECK_STEPS="bench parity" bash bench/gpu_check.sh     (a subset, e.g. to confirm a fix)
#
# Steps (GPU_CHECK_STEPS, default all, always after the build): tests, bench, parity, sanitizer.
# Outputs: every log and summary.md go to $OUT when it is set (the device machine), else to a
# temporary folder that is printed; at most 8 files: gpu_check.log (all of this script's output),
# build.log, tests.log, bench.log, parity.log, sanitizer.log, summary.md.
# Data: the graph benchmarks read $LLMHNI_SHARED/bench/graphgen.py and the parity run
# $LLMHNI_SHARED/data/ml-100k (+ ml-100k-llm-profiles); $LLMHNI_SHARED defaults to shared/
# beside or inside the repository. On a machine that gets only the checkout, copy those into the
# checkout's shared/ first (git-ignored: the data's licences forbid committing it).
#
# CONTRACT for GPU benchmarks (adding one is a one-file change, nothing to edit here):
#   * a module bench/gpu_<family>.py, run as `python bench/gpu_<family>.py` from a scratch
#     directory, against the INSTALLED llmhni_ext (do not put the repository on sys.path;
#     bench/ itself is on it, so `import graphs` and friends work);
#   * it must finish within $GPU_BENCH_TIMEOUT seconds (default 120) and exit 0;
#   * it prints one line per measurement, tab-separated, starting with ROW:
#       ROW <family> <case> <llmhni ms> <peer name> <peer ms> <peer ms / llmhni ms>
#     anything else it prints goes to the log only.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
START=$SECONDS
BUDGET="${GPU_CHECK_BUDGET:-470}"
STEPS="${GPU_CHECK_STEPS:-tests bench parity sanitizer}"
WORK="$(mktemp -d -t llmhni-gpu-XXXXXX)"
OUTD="${OUT:-$WORK/out}"
mkdir -p "$OUTD"
# with $OUT set the logs live there, and the scratch folder (build caches, runs) goes at exit
[ -n "${OUT:-}" ] && trap 'rm -rf "$WORK"' EXIT
exec > >(tee -a "$OUTD/gpu_check.log") 2>&1
ROWS="$WORK/rows.tsv"
: > "$ROWS"
if [ -z "${LLMHNI_SHARED:-}" ]; then
  if [ -d "$ROOT/../shared" ]; then LLMHNI_SHARED="$(cd "$ROOT/../shared" && pwd)"; else LLMHNI_SHARED="$ROOT/shared"; fi
fi
export LLMHNI_SHARED
export LLMHNI_CACHE_DIR="$WORK/cache"
log() { echo "[gpu_check +$((SECONDS - START))s] $*"; }
left() { echo $((BUDGET - (SECONDS - START))); }
want() { [[ " $STEPS " == *" $1 "* ]]; }
summary=()
# fits NEED MAX: prints the seconds a step may take (at most MAX, leaving 15 s for the summary),
# or fails when fewer than NEED are left
fits() { local t=$(( $(left) - 15 )); [ "$t" -ge "$1" ] || return 1; [ "$t" -gt "$2" ] && t=$2; echo "$t"; }
skip() { log "SKIPPED $1: $(left) s of the budget left"; summary+=("$1: skipped (out of budget)"); }
# pytest_counts LOG: pytest's closing line of counts in LOG
pytest_counts() { grep -E '(passed|failed|error|skipped|no tests ran)' "$1" | tail -n 1; }
# the CUDA tests of the installed package, run from a scratch directory
CUDA_PYTEST=(-m pytest "$ROOT/python_tests" -m cuda -q -p no:cacheprovider -c "$ROOT/pyproject.toml" --rootdir "$ROOT")

"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" \
  || { echo "gpu_check: $PY cannot import torch or sees no CUDA device"; exit 1; }
CAP="$("$PY" -c "import torch; print('%d.%d' % torch.cuda.get_device_capability())")"
GPU="$("$PY" -c "import torch; print(torch.cuda.get_device_name())")"
VERS="$("$PY" -c "import torch; print(f'torch {torch.__version__}, CUDA {torch.version.cuda}')")"
export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-$CAP}"   # this card only: faster build
export MAX_JOBS="${MAX_JOBS:-$(nproc)}"
export FORCE_CUDA=1
log "GPU: $GPU (sm $CAP), $VERS; nvcc: $(nvcc --version 2>/dev/null | tail -n 1); out: $OUTD"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,memory.total --format=csv,noheader 2>/dev/null || true

# 1. build and install (no isolation: use the torch that is here)
log "building the CUDA extension (arch $TORCH_CUDA_ARCH_LIST, $MAX_JOBS jobs)"
if ! (cd "$ROOT" && "$PY" -m pip install --no-build-isolation --no-deps . ) > "$OUTD/build.log" 2>&1; then
  tail -n 60 "$OUTD/build.log"; echo "gpu_check: build FAILED"; exit 1
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
summary+=("build: ok ($((SECONDS - START)) s)")

# 2. CUDA tests (installed package: run from a scratch directory, never JIT)
test_rc=0
if want tests; then
  if t=$(fits 30 150); then
    log "CUDA tests (limit $t s)"
    (cd "$WORK" && LLMHNI_NO_JIT=1 timeout "$t" "$PY" "${CUDA_PYTEST[@]}" -rs > "$OUTD/tests.log" 2>&1)
    test_rc=$?
    tail -n 15 "$OUTD/tests.log"
    summary+=("CUDA tests: $([ "$test_rc" = 0 ] && echo passed || echo "FAILED (rc $test_rc)"): $(pytest_counts "$OUTD/tests.log")")
  else skip "CUDA tests"; fi
fi

# 3. GPU benchmarks: every bench/gpu_*.py (see the contract above)
if want bench; then
  for bench in "$ROOT"/bench/gpu_*.py; do
    [ -e "$bench" ] || continue
    name="$(basename "$bench" .py)"
    if ! t=$(fits 20 "${GPU_BENCH_TIMEOUT:-120}"); then skip "$name"; continue; fi
    log "benchmark $name (limit $t s)"
    echo "===== $name" >> "$OUTD/bench.log"
    (cd "$WORK" && LLMHNI_NO_JIT=1 PYTHONUNBUFFERED=1 PYTHONPATH="$ROOT/bench" timeout "$t" "$PY" "$bench") \
      > "$WORK/$name.log" 2>&1
    rc=$?
    cat "$WORK/$name.log" >> "$OUTD/bench.log"
    grep $'^ROW\t' "$WORK/$name.log" >> "$ROWS" || true
    tail -n 5 "$WORK/$name.log" | sed "s/^/  [$name] /"
    summary+=("$name: $([ "$rc" = 0 ] && echo ok || echo "FAILED (rc $rc, see bench.log)")")
  done
fi

# 4. the same training run on the CPU and on CUDA (ML-100K, LLMHNI)
if want parity; then
  if [ ! -d "$LLMHNI_SHARED/data/ml-100k" ]; then
    summary+=("parity: skipped ($LLMHNI_SHARED/data/ml-100k is missing)")
  elif t=$(fits 40 120); then
    log "CPU vs CUDA training parity (limit $t s)"
    (cd "$WORK" && LLMHNI_NO_JIT=1 PYTHONUNBUFFERED=1 timeout "$t" "$PY" "$ROOT/bench/cuda_parity.py" \
       --data-root "$LLMHNI_SHARED/data" --epochs "${GPU_PARITY_EPOCHS:-10}" --out "$WORK/parity") > "$OUTD/parity.log" 2>&1
    rc=$?
    tail -n 16 "$OUTD/parity.log"
    summary+=("parity (CPU vs CUDA, ML-100K LLMHNI): $([ "$rc" = 0 ] && echo ok || echo "FAILED or DIFFERS (rc $rc, see parity.log)")")
  else skip "parity"; fi
fi

# 5. compute-sanitizer on a representative subset of the op tests: memcheck on every llmhni
#    kernel (torch's caching allocator off, so that an overrun leaves its allocation), racecheck
#    on the sampler's scored kernel, the one that uses shared memory.
# sanitize TOOL KERNEL LIMIT TESTS: TOOL on the kernels whose names hold KERNEL, during the CUDA
# tests that -k TESTS selects
sanitize() {
  local t rc errs
  if ! t=$(fits 30 "$3"); then skip "sanitizer $1"; return; fi
  log "compute-sanitizer --tool $1 (kernels matching '$2', limit $t s)"
  echo "===== $1: -k $4" >> "$OUTD/sanitizer.log"
  (cd "$WORK" && LLMHNI_NO_JIT=1 PYTORCH_NO_CUDA_MEMORY_CACHING=1 timeout "$t" "$SAN" --tool "$1" \
     ${SAN_FILTER:+--kernel-name "kns=$2"} --print-limit 20 --error-exitcode 9 "$PY" "${CUDA_PYTEST[@]}" -k "$4") \
     >> "$OUTD/sanitizer.log" 2>&1
  rc=$?
  errs="$(grep -E 'ERROR SUMMARY' "$OUTD/sanitizer.log" | tail -n 1)"
  log "$1: rc $rc; $errs; $(pytest_counts "$OUTD/sanitizer.log")"
  summary+=("sanitizer $1: rc $rc; ${errs:-no error summary (see sanitizer.log)}; $(pytest_counts "$OUTD/sanitizer.log")")
}
if want sanitizer; then
  # $COMPUTE_SANITIZER names the binary ("" for none); default: the one on PATH or in /usr/local/cuda
  SAN="${COMPUTE_SANITIZER-$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null || true)}"
  if [ -z "$SAN" ]; then
    summary+=("sanitizer: compute-sanitizer is not on this machine")
  else
    SAN_FILTER=""   # kernel-name filtering, where this version has it
    "$SAN" --help 2>&1 | grep -q -- "--kernel-name" && SAN_FILTER=1
    sanitize memcheck llmhni 120 "test_construction_cuda_matches_cpu or test_propagate_and_grads \
or test_spmm_value_grad or (test_spmm_cuda_matches_reference and 64-) or (test_cpu_cuda_agree and dtype0) \
or test_cuda_equals_cpu_and_reference or (test_cuda_equals_reference and dtype0)"
    sanitize racecheck sample_scored 60 "test_cpu_cuda_agree and dtype0 and (dns or llmhni)"
  fi
fi

# 6. the short table, last (also $OUTD/summary.md)
{
  echo
  echo "== llmhni GPU check on $GPU, $VERS, $((SECONDS - START)) s =="
  for line in "${summary[@]}"; do echo "  $line"; done
  echo
  echo "| family | case | llmhni ms | peer | peer ms | peer / llmhni |"
  echo "|---|---|---|---|---|---|"
  awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %sx |\n", $2, $3, $4, $5, $6, $7 }' "$ROWS"
} | tee "$OUTD/summary.md"
[ -z "${OUT:-}" ] && echo "(logs in $OUTD)"
[ "$test_rc" = 0 ]
