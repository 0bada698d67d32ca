"""Fuzz test of the raw ops' argument checking (``torch.ops.llmhni.*``).

Hypothesis draws calls of every op from mostly well-formed inputs with one thing broken
(a non-monotone rowptr, an id out of range, an unsorted row, a wrong dtype, shape, length
or stride, a bad scalar) and runs each in a worker process (``_fuzz_worker.py``). A call
must return, or raise a Python exception with a message; it must never kill the process,
and the sampler must never return an id outside [0, n_items), even when told to trust a
malformed CSR. The reference twin runs the same call and must raise the same error type
with the same message whenever either raises (one validation layer, mirrored). ``LLMHNI_FUZZ_EXAMPLES`` sets the number of calls per op (default 300).
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmhni_ext import _backend

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

pytestmark = pytest.mark.skipif(_backend.load() == "reference", reason="fuzzes the compiled kernels")
EXAMPLES = int(os.environ.get("LLMHNI_FUZZ_EXAMPLES", "300"))
WORKER = Path(__file__).with_name("_fuzz_worker.py")


class Worker:
    """One long-lived worker process; restarted after a crash."""

    def __init__(self):
        self.proc = None
        self.calls = 0

    def start(self):
        env = dict(os.environ, OMP_NUM_THREADS="1")
        self.proc = subprocess.Popen([sys.executable, str(WORKER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env, cwd=str(WORKER.parent))

    def run(self, case):
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        self.calls += 1
        try:
            self.proc.stdin.write(json.dumps(case) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except BrokenPipeError:
            line = ""
        if not line:
            rc = self.proc.wait(timeout=30)
            err = self.proc.stderr.read()[-2000:]
            self.proc = None
            return {"status": "crash", "rc": rc, "stderr": err}
        return json.loads(line)

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def worker():
    w = Worker()
    t0 = time.perf_counter()
    yield w
    w.close()
    print(f"\nfuzz: {w.calls} calls in {time.perf_counter() - t0:.1f} s")


FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))


def T(values, dtype="int64", shape=None, strided=False):
    return {"tensor": values, "dtype": dtype, "shape": shape, "strided": strided}


idx_dtype = st.sampled_from(["int32", "int64"])
any_dtype = st.sampled_from(["int32", "int64", "int64", "int32", "float32", "uint8", "bool"])
float_dtype = st.sampled_from(["float32", "float32", "float64", "float16", "bfloat16", "int64"])


@st.composite
def csr(draw, square=False, max_rows=6, max_cols=8):
    n_rows = draw(st.integers(0, max_rows))
    n_cols = n_rows if square else draw(st.integers(0, max_cols))
    rows = [sorted(draw(st.sets(st.integers(0, max(n_cols - 1, 0)), max_size=n_cols))) if n_cols else []
            for _ in range(n_rows)]
    rowptr = [0]
    for r in rows:
        rowptr.append(rowptr[-1] + len(r))
    col = [c for r in rows for c in r]
    dt = draw(idx_dtype)
    rdt, cdt = dt, dt
    shape = None
    strided = False
    how = draw(st.sampled_from(["none"] * 8 + ["swap", "shift", "col_high", "col_neg", "unsort", "truncate",
                                "extend", "rowptr_dtype", "col_dtype", "strided", "rowptr_2d", "empty_rowptr",
                                "huge"]))
    if how == "swap" and len(rowptr) > 2:
        i = draw(st.integers(0, len(rowptr) - 2))
        rowptr[i], rowptr[i + 1] = rowptr[i + 1] + 1, rowptr[i]
    elif how == "shift":
        i = draw(st.integers(0, len(rowptr) - 1))
        rowptr[i] += draw(st.sampled_from([-3, -1, 1, 5]))
    elif how == "col_high" and col:
        col[draw(st.integers(0, len(col) - 1))] = n_cols + draw(st.integers(0, 3))
    elif how == "col_neg" and col:
        col[draw(st.integers(0, len(col) - 1))] = -draw(st.integers(1, 3))
    elif how == "unsort":
        for r0 in range(len(rows)):
            if len(rows[r0]) > 1:
                a, b = rowptr[r0], rowptr[r0 + 1]
                col[a:b] = col[a:b][::-1]
                break
    elif how == "truncate" and col:
        col = col[:-1]
    elif how == "extend":
        col = col + [0]
    elif how == "rowptr_dtype":
        rdt = draw(any_dtype)
    elif how == "col_dtype":
        cdt = draw(any_dtype)
    elif how == "strided":
        strided = True
    elif how == "rowptr_2d" and len(rowptr) % 2 == 0:
        shape = [2, len(rowptr) // 2]
    elif how == "empty_rowptr":
        rowptr = []
    elif how == "huge" and col:
        col[0] = 2 ** 31 - 1 if cdt == "int32" else 2 ** 62
    return {"rowptr": T(rowptr, rdt, shape), "col": T(col, cdt, None, strided), "n_rows": n_rows, "n_cols": n_cols,
            "nnz": len(col), "how": how}


@st.composite
def dense(draw, rows, cols=None):
    r = max(0, rows + draw(st.sampled_from([0, 0, 0, 0, 1, -1])))
    d = cols if cols is not None else draw(st.integers(0, 3))
    dt = draw(float_dtype)
    vals = [[float((i * 7 + j) % 5 - 2) for j in range(d)] for i in range(r)]
    return T(vals if r else [], dt, [r, d])


def _assert_clean(res, case):
    assert res["status"] in ("ok", "error"), f"{res} for {json.dumps(case)[:1500]}"


def _run(worker, case, compare=True):
    """Runs ``case``; with ``compare`` the reference twin must raise the same errors."""
    case["compare"] = compare
    _assert_clean(worker.run(case), case)


@FUZZ
@given(g=csr(), data=st.data())
def test_fuzz_spmm(worker, g, data):
    x = data.draw(dense(g["n_cols"]))
    value = data.draw(st.sampled_from([None, "ok", "short"]))
    v = None if value is None else T([0.5] * max(0, g["nnz"] - (value == "short")), "float32")
    tr = data.draw(st.sampled_from([None, None, "self", "perm", "bad_perm", "half"]))
    targs = []
    if tr is not None:
        perm = list(range(g["nnz"]))
        if tr == "bad_perm" and perm:
            perm[0] = g["nnz"] + 3
        targs = [g["rowptr"], g["col"] if tr != "half" else None, T(perm) if tr in ("perm", "bad_perm") else None]
    case = {"op": "spmm", "args": [g["rowptr"], g["col"], v, x, *targs]}
    _run(worker, case)


@FUZZ
@given(g=csr(), data=st.data())
def test_fuzz_csr_sddmm(worker, g, data):
    d = data.draw(st.integers(0, 3))
    case = {"op": "csr_sddmm", "args": [g["rowptr"], g["col"], data.draw(dense(g["n_rows"], d)),
                                        data.draw(dense(g["n_cols"], d))]}
    _run(worker, case)


@FUZZ
@given(g=csr(square=True), data=st.data())
def test_fuzz_lightgcn_propagate(worker, g, data):
    weights = data.draw(st.lists(st.floats(-1, 1), max_size=4))
    case = {"op": "lightgcn_propagate", "args": [g["rowptr"], g["col"], None, data.draw(dense(g["n_rows"])), weights]}
    _run(worker, case)


@FUZZ
@given(g=csr(), extra=st.integers(-2, 2))
def test_fuzz_csr_transpose(worker, g, extra):
    case = {"op": "csr_transpose", "args": [g["rowptr"], g["col"], g["n_cols"] + extra]}
    _run(worker, case)


@FUZZ
@given(op=st.sampled_from(["csr_from_coo", "bipartite_norm_adj"]),
       row=st.lists(st.integers(-2, 7), max_size=10), col=st.lists(st.integers(-2, 9), max_size=10),
       n_rows=st.integers(-1, 7), n_cols=st.integers(-1, 9), dt=st.tuples(any_dtype, any_dtype))
def test_fuzz_construction(worker, op, row, col, n_rows, n_cols, dt):
    case = {"op": op, "args": [T(row, dt[0]), T(col, dt[1]), n_rows, n_cols]}
    _run(worker, case)


@FUZZ
@given(op=st.sampled_from(["edge_drop_mask", "edge_drop_compact"]), g=csr(square=True),
       keep=st.sampled_from([0.0, 0.5, 0.5, 0.5, 1.0, -0.1, 1.5, float("nan")]),
       views=st.sampled_from([1, 1, 2, 3, 0, -1]),
       seed=st.integers(0, 2 ** 40), offset=st.integers(0, 5))
def test_fuzz_edge_drop(worker, op, g, keep, views, seed, offset):
    case = {"op": op, "args": [g["rowptr"], g["col"], keep, views, seed, offset]}
    _run(worker, case)


@FUZZ
@given(p=st.integers(0, 2), b=st.integers(0, 4), d=st.integers(0, 3), dt=float_dtype, mismatch=st.booleans(),
       temp=st.sampled_from([0.2, 1.0, 0.0, -1.0, float("nan"), float("inf")]), backward=st.booleans())
def test_fuzz_infonce(worker, p, b, d, dt, mismatch, temp, backward):
    a = T([[[0.1 * (i + j + k) for k in range(d)] for j in range(b)] for i in range(p)] if p else [], dt, [p, b, d])
    bb = T([[[0.2] * (d + mismatch) for _ in range(b)] for _ in range(p)] if p else [], dt, [p, b, d + mismatch])
    if backward:
        case = {"op": "infonce_backward", "args": [T([1.0] * p, "float32"), a, bb,
                                                  T([[0.0] * b for _ in range(p)] if p else [], "float32", [p, b]),
                                                  temp]}
    else:
        case = {"op": "infonce", "args": [a, bb, temp]}
    _run(worker, case)


@FUZZ
@given(g=csr(), data=st.data())
def test_fuzz_sample_negatives(worker, g, data):
    n_users = g["n_rows"]
    bad = data.draw(st.sampled_from([None] * 6 + ["users_range", "users_dtype", "N", "M", "K", "redraws",
                                                 "n_items", "mode", "cand_range", "emb_shape", "cdf"]))
    n_items = g["n_cols"] + (data.draw(st.sampled_from([1, -1])) if bad == "n_items" else 0)
    mode = "hard" if bad == "mode" else data.draw(st.sampled_from(["uniform", "popularity", "dns", "llmhni"]))
    users = data.draw(st.lists(st.integers(0, max(n_users - 1, 0)), max_size=6)) if n_users else []
    if bad == "users_range":
        users = users + [data.draw(st.sampled_from([-1, n_users]))]
    N, M = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 9))
    K = data.draw(st.integers(1, M))
    redraws = data.draw(st.sampled_from([0, 1, 8]))
    N, M, K = (0 if bad == "N" else N), (0 if bad == "M" else M), (M + 1 if bad == "K" else K)
    redraws = -1 if bad == "redraws" else redraws
    check_rows = data.draw(st.booleans())
    cdf = None
    if mode == "popularity":
        vals = list(range(1, max(n_items, 0) + 1))
        cdf = T(vals[::-1] if bad == "cdf" else vals, "int64")
    d = data.draw(st.integers(1, 3))
    ni = max(n_items, 0) + (1 if bad == "emb_shape" else 0)
    emb = (T([[0.1 * (u + k) for k in range(d)] for u in range(n_users)] if n_users else [], "float32", [n_users, d]),
           T([[0.1 * (i - k) for k in range(d)] for i in range(ni)] if ni else [], "float32", [ni, d]))
    use_emb = mode in ("dns", "llmhni") or data.draw(st.booleans())
    cands = None
    if bad == "cand_range" or data.draw(st.integers(0, 4)) == 0:
        top = max(n_items, 1) + (1 if bad == "cand_range" else 0)
        cands = T([[[(u + m) % top for m in range(max(M, 0))] for _ in range(max(N, 0))]
                   for u in range(len(users))] if users else [], "int64", [len(users), max(N, 0), max(M, 0)])
    udt = "float32" if bad == "users_dtype" else data.draw(st.sampled_from(["int64", "int32"]))
    case = {"op": "sample_negatives",
            "args": [g["rowptr"], g["col"], T(users, udt), n_items, mode, N, M, K, 0.5, 0, 0, redraws, cands, cdf,
                     emb[0] if use_emb else None, emb[1] if use_emb else None,
                     emb[0] if mode == "llmhni" else None, emb[1] if mode == "llmhni" else None, check_rows]}
    _run(worker, case, compare=check_rows)   # trusting the CSR, only the kernel promises memory safety


@FUZZ
@given(seed=st.integers(-5, 2 ** 62), offset=st.integers(-5, 10), idx=st.lists(st.integers(-3, 10), max_size=5),
       sub=st.integers(-2, 5), dt=any_dtype)
def test_fuzz_philox(worker, seed, offset, idx, sub, dt):
    case = {"op": "philox_random", "args": [seed, offset, T(idx, dt), sub]}
    _run(worker, case)


def test_worker_reports_a_crash_as_a_failure(worker):
    """The harness itself: a process that dies is reported as a crash, not as a hang."""
    w = Worker()
    w.start()
    w.proc.stdin.write("not json\n")
    w.proc.stdin.flush()
    res = w.run({"op": "philox_random", "args": [0, 0, T([0]), 0]})
    assert res["status"] == "crash"
