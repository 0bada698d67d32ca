"""The argument checks of the compiled ops, for the reference twins: the same conditions,
in the same order, with the same messages (``RuntimeError``, starting with the op name).

The C++ checks are the source of truth (``csrc/common/checks.h``, ``csrc/common/csr_checks.h``
and each family's ``<family>_checks.h``); every function here names the one it mirrors, and
``python_tests/test_ops_validation.py`` asserts that both raise the same error for the same
bad input. Only the reference twins call these: the public wrappers check only their own
arguments, and the compiled ops check theirs in C++.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from torch import Tensor

_ST = {torch.float32: "Float", torch.float64: "Double", torch.float16: "Half", torch.bfloat16: "BFloat16",
       torch.int32: "Int", torch.int64: "Long", torch.int16: "Short", torch.int8: "Char", torch.uint8: "Byte",
       torch.bool: "Bool", torch.complex64: "ComplexFloat", torch.complex128: "ComplexDouble"}
_FLOATS = (torch.float32, torch.float64, torch.float16, torch.bfloat16)

# csrc/sampler/sampler_common.h
SAMPLER_MODES = ("uniform", "popularity", "dns", "llmhni")
SAMPLER_MAX_CANDIDATES = 1024
SAMPLER_MAX_CDF_TOTAL = 2**46


def st(dtype: torch.dtype) -> str:
    """A dtype as c10 prints a ScalarType (Float, Long, ...)."""
    return _ST.get(dtype, str(dtype))


def shape(t: Tensor) -> str:
    """Sizes as c10 prints them: [2, 3]."""
    return "[" + ", ".join(str(s) for s in t.shape) + "]"


def num(x: float) -> str:
    """A double as a C++ stream prints it by default (%g)."""
    return "%g" % x


def fail(op: str, msg: str) -> None:
    raise RuntimeError(f"{op}: {msg}")


# ---------------------------------------------------------------- csrc/common/checks.h

def check_index(t: Tensor, op: str, name: str) -> None:
    if t.dtype not in (torch.int32, torch.int64):
        fail(op, f"{name} must be an int32 or int64 tensor, got {st(t.dtype)}")
    if t.dim() != 1:
        fail(op, f"{name} must be 1-D, got shape {shape(t)}")


def check_floating(t: Tensor, op: str, name: str) -> None:
    if t.dtype not in _FLOATS:
        fail(op, f"{name} must be float32, float64, float16 or bfloat16, got {st(t.dtype)}")


def check_dim(t: Tensor, dim: int, op: str, name: str) -> None:
    if t.dim() != dim:
        fail(op, f"{name} must be {dim}-D, got shape {shape(t)}")


def check_same_device(a: Tensor, b: Tensor, op: str, name_a: str, name_b: str) -> None:
    if a.device != b.device:
        fail(op, f"{name_a} is on {a.device} but {name_b} is on {b.device}; move them to one device")


def check_range(idx: Tensor, upper: int, op: str, name: str) -> None:
    if idx.numel() == 0:
        return
    lo, hi = int(idx.min()), int(idx.max())
    if lo < 0 or hi >= upper:
        fail(op, f"{name} has values in [{lo}, {hi}] but must lie in [0, {upper})")


def check_csr(op: str, rowptr: Tensor, col: Tensor, n_cols: int, sorted_rows: bool = False) -> None:
    """check_rowptr_cpu + check_csr_cpu: rowptr[0] == 0, non-decreasing, rowptr[-1] == nnz,
    columns in [0, n_cols) and, with ``sorted_rows``, strictly increasing within a row."""
    nnz, n_rows = col.numel(), rowptr.numel() - 1
    first, last = int(rowptr[0]), int(rowptr[-1])
    if first != 0:
        fail(op, f"malformed CSR, rowptr[0] must be 0, got {first}")
    if last != nnz:
        fail(op, f"malformed CSR, rowptr[-1] must equal nnz = col.numel() = {nnz}, got {last}")
    if n_rows > 0:
        d = (rowptr[1:] - rowptr[:-1]).long()
        if bool((d < 0).any()):
            r = int(torch.argmax((d < 0).long()))
            fail(op, f"malformed CSR, rowptr must be non-decreasing (row {r} has {int(d[r])} entries)")
    if nnz:
        lo, hi = int(col.min()), int(col.max())
        if lo < 0 or hi >= n_cols:
            fail(op, f"col has values in [{lo}, {hi}] but must lie in [0, {n_cols})")
    if sorted_rows and nnz > 1:
        start = torch.zeros(nnz + 1, dtype=torch.bool, device=col.device)
        start[rowptr.long()] = True
        viol = (col[1:] <= col[:-1]) & ~start[1:nnz]
        if bool(viol.any()):
            p = int(torch.argmax(viol.long())) + 1
            r = int(torch.searchsorted(rowptr.long(), torch.tensor([p], device=col.device), right=True)) - 1
            fail(op, f"the columns of row {r} are not sorted and duplicate-free (each row of the CSR must be "
                     "strictly increasing)")


# ---------------------------------------------------------------- csrc/common/csr_checks.h

def check_csr_tensors(op: str, rowptr: Tensor, col: Tensor) -> None:
    check_index(rowptr, op, "rowptr")
    check_index(col, op, "col")
    if rowptr.dtype != col.dtype:
        fail(op, f"rowptr ({st(rowptr.dtype)}) and col ({st(col.dtype)}) must share one integer dtype")
    if rowptr.numel() < 1:
        fail(op, "rowptr must have n_rows + 1 >= 1 entries, got 0")
    check_same_device(rowptr, col, op, "rowptr", "col")


def check_csr_structure(op: str, rowptr: Tensor, col: Tensor, n_cols: int) -> None:
    if not (rowptr.is_contiguous() and col.is_contiguous()):
        fail(op, "rowptr and col must be contiguous")
    if n_cols < 0:
        fail(op, f"the number of columns must be non-negative, got {n_cols}")
    check_csr(op, rowptr, col, n_cols)


# ---------------------------------------------------------------- csrc/graph/graph_checks.h

def _check_value(op: str, col: Tensor, value: Optional[Tensor]) -> None:
    if value is None:
        return
    check_floating(value, op, "value")
    if value.dim() != 1 or value.numel() != col.numel():
        fail(op, f"value must have shape (nnz,) = ({col.numel()},), got {shape(value)}")
    check_same_device(col, value, op, "col", "value")


def _check_dense(op: str, col: Tensor, x: Tensor, name: str) -> None:
    check_floating(x, op, name)
    check_dim(x, 2, op, name)
    check_same_device(col, x, op, "col", name)


def _check_transpose(op: str, col: Tensor, t_rowptr, t_col, t_perm) -> None:
    if (t_rowptr is None) != (t_col is None):
        fail(op, "give both t_rowptr and t_col (the transpose of A) or neither")
    if t_perm is not None and t_rowptr is None:
        fail(op, "t_perm needs t_rowptr and t_col")
    if t_rowptr is None:
        return
    check_csr_tensors(op, t_rowptr, t_col)
    if t_col.numel() != col.numel():
        fail(op, f"the transpose has {t_col.numel()} entries but A has {col.numel()}")
    check_same_device(col, t_col, op, "col", "t_col")
    if t_perm is not None:
        check_index(t_perm, op, "t_perm")
        if t_perm.numel() != col.numel():
            fail(op, f"t_perm must have nnz = {col.numel()} entries, got {t_perm.numel()}")
        check_same_device(col, t_perm, op, "col", "t_perm")


def _check_weighted_csr_and_dense(op, rowptr, col, value, x, x_name, t_rowptr, t_col, t_perm) -> None:
    check_csr_tensors(op, rowptr, col)
    _check_value(op, col, value)
    _check_dense(op, col, x, x_name)
    _check_transpose(op, col, t_rowptr, t_col, t_perm)


def spmm_args(rowptr, col, value, x, t_rowptr, t_col, t_perm) -> None:
    _check_weighted_csr_and_dense("spmm", rowptr, col, value, x, "x", t_rowptr, t_col, t_perm)
    check_csr_structure("spmm", rowptr, col, x.shape[0])


def sddmm_args(rowptr, col, a, b) -> None:
    op = "csr_sddmm"
    check_csr_tensors(op, rowptr, col)
    _check_dense(op, col, a, "a")
    _check_dense(op, col, b, "b")
    if a.dtype != b.dtype:
        fail(op, f"a ({st(a.dtype)}) and b ({st(b.dtype)}) must have one dtype")
    if a.shape[0] != rowptr.numel() - 1:
        fail(op, f"a must have n_rows = {rowptr.numel() - 1} rows, got {a.shape[0]}")
    if a.shape[1] != b.shape[1]:
        fail(op, f"a and b must have the same width, got {a.shape[1]} and {b.shape[1]}")
    check_csr_structure(op, rowptr, col, b.shape[0])


def propagate_args(rowptr, col, value, x0, weights: Sequence[float], t_rowptr, t_col, t_perm) -> None:
    op = "lightgcn_propagate"
    _check_weighted_csr_and_dense(op, rowptr, col, value, x0, "x0", t_rowptr, t_col, t_perm)
    if len(weights) < 1:
        fail(op, "weights must have at least one entry (w_0 for layer 0)")
    n_rows = rowptr.numel() - 1
    if x0.shape[0] != n_rows:
        fail(op, f"A must be square with one row per node of x0: A has {n_rows} rows, x0 has {x0.shape[0]}")
    check_csr_structure(op, rowptr, col, n_rows)


def csr_transpose_args(rowptr, col, n_cols: int) -> None:
    op = "csr_transpose"
    check_csr_tensors(op, rowptr, col)
    if n_cols < 0:
        fail(op, f"n_cols must be non-negative, got {n_cols}")
    check_csr_structure(op, rowptr, col, n_cols)


def coo_args(op: str, row: Tensor, col: Tensor, n_rows: int, n_cols: int, row_name: str, col_name: str) -> None:
    check_index(row, op, row_name)
    check_index(col, op, col_name)
    if row.numel() != col.numel():
        fail(op, f"{row_name} and {col_name} must have the same length, got {row.numel()} and {col.numel()}")
    check_same_device(row, col, op, row_name, col_name)
    if n_rows < 0 or n_cols < 0:
        fail(op, f"sizes must be non-negative, got {n_rows} and {n_cols}")
    check_range(row, n_rows, op, row_name)
    check_range(col, n_cols, op, col_name)


# ---------------------------------------------------------------- csrc/contrastive/contrastive_checks.h

def edge_drop_args(rowptr: Tensor, col: Tensor, keep_prob: float, num_views: int, op: str) -> None:
    check_index(rowptr, op, "rowptr")
    check_index(col, op, "col")
    if rowptr.dtype != col.dtype:
        fail(op, f"rowptr and col must share one index dtype, got {st(rowptr.dtype)} and {st(col.dtype)}")
    check_same_device(rowptr, col, op, "rowptr", "col")
    if rowptr.numel() < 1:
        fail(op, "rowptr must have n_rows + 1 >= 1 entries, got 0")
    if not (math.isfinite(keep_prob) and 0.0 <= keep_prob <= 1.0):
        fail(op, f"keep_prob must lie in [0, 1], got {num(keep_prob)}")
    if num_views < 1:
        fail(op, f"num_views must be at least 1, got {num_views}")
    n = rowptr.numel() - 1
    if n > 2 ** 32:
        fail(op, f"at most 2^32 nodes are supported, got {n}")
    if num_views > 2 ** 20:
        fail(op, f"num_views must be at most 2^20, got {num_views}")
    check_csr_structure(op, rowptr.contiguous(), col.contiguous(), n)


def infonce_args(a: Tensor, b: Tensor, temperature: float, op: str = "infonce") -> None:
    check_floating(a, op, "a")
    check_floating(b, op, "b")
    if a.dtype != b.dtype:
        fail(op, f"a and b must share one dtype, got {st(a.dtype)} and {st(b.dtype)}")
    check_same_device(a, b, op, "a", "b")
    check_dim(a, 3, op, "a ([P, B, d])")
    if a.shape != b.shape:
        fail(op, f"a and b must have the same shape [P, B, d], got {shape(a)} and {shape(b)}")
    if not (a.shape[2] >= 1 or a.shape[1] == 0):
        fail(op, "the representation dimension d must be at least 1")
    if not (math.isfinite(temperature) and temperature > 0.0):
        fail(op, f"temperature must be a positive number, got {num(temperature)}")


def infonce_backward_args(grad_loss: Tensor, a: Tensor, b: Tensor, lse: Tensor, temperature: float) -> None:
    op = "infonce_backward"
    infonce_args(a, b, temperature, op)
    check_floating(grad_loss, op, "grad_loss")
    check_floating(lse, op, "lse")
    check_same_device(a, grad_loss, op, "a", "grad_loss")
    check_same_device(a, lse, op, "a", "lse")
    if grad_loss.dim() != 1 or grad_loss.shape[0] != a.shape[0]:
        fail(op, f"grad_loss must have shape [P] = [{a.shape[0]}], got {shape(grad_loss)}")
    if lse.dim() != 2 or lse.shape[0] != a.shape[0] or lse.shape[1] != a.shape[1]:
        fail(op, f"lse must have shape [P, B] = [{a.shape[0]}, {a.shape[1]}], got {shape(lse)}")


# ---------------------------------------------------------------- csrc/sampler/sampler_checks.h

def sampler_args(rowptr, col, users, n_items, mode, num_negatives, num_candidates, top_k, max_redraws,
                 candidates, pop_cdf, user_emb, item_emb, user_sem, item_sem, check_rows=True) -> None:
    """csrc/sampler/sampler_checks.h: check_sample_args, then check_sample_values."""
    op = "sample_negatives"

    def fail(msg: str) -> None:
        raise RuntimeError(f"{op}: {msg}")

    for name, t in (("rowptr", rowptr), ("col", col), ("users", users)):
        if t.dtype not in (torch.int32, torch.int64) or t.dim() != 1:
            fail(f"{name} must be a 1-D int32 or int64 tensor, got {st(t.dtype)} of shape {shape(t)}")
    if mode not in SAMPLER_MODES:
        fail(f"mode must be one of {', '.join(SAMPLER_MODES)}, got '{mode}'")
    if rowptr.numel() < 1:
        fail("rowptr must hold n_users + 1 >= 1 entries")
    if n_items < 1:
        fail(f"n_items must be >= 1, got {n_items}")
    if num_negatives < 1:
        fail(f"num_negatives must be >= 1, got {num_negatives}")
    if not 1 <= num_candidates <= SAMPLER_MAX_CANDIDATES:
        fail(f"num_candidates must lie in [1, {SAMPLER_MAX_CANDIDATES}], got {num_candidates}")
    if not 0 <= max_redraws <= 2**20:
        fail(f"max_redraws must lie in [0, 1048576], got {max_redraws}")
    if mode == "llmhni" and not 1 <= top_k <= num_candidates:
        fail(f"top_k must lie in [1, num_candidates={num_candidates}], got {top_k}")
    named = [("rowptr", rowptr), ("col", col), ("candidates", candidates), ("pop_cdf", pop_cdf),
             ("user_emb", user_emb), ("item_emb", item_emb), ("user_sem", user_sem), ("item_sem", item_sem)]
    for name, t in named:
        if t is not None and t.device != users.device:
            fail(f"users is on {users.device} but {name} is on {t.device}; move them to one device")
    n_users = rowptr.numel() - 1
    if mode == "popularity" and candidates is None:
        if pop_cdf is None:
            fail("mode 'popularity' needs pop_cdf (int64 cumulative item weights)")
        if pop_cdf.dtype != torch.int64 or pop_cdf.shape != (n_items,):
            fail(f"pop_cdf must be an int64 tensor of shape [n_items={n_items}], got {st(pop_cdf.dtype)} "
                 f"of shape {shape(pop_cdf)}")
    needs = {"dns": ("user_emb", "item_emb"), "llmhni": ("user_emb", "item_emb", "user_sem", "item_sem")}
    for name in needs.get(mode, ()):
        if dict(named)[name] is None:
            fail(f"mode '{mode}' needs {name}")
    for a_name, b_name in (("user_emb", "item_emb"), ("user_sem", "item_sem")):
        a, b = dict(named)[a_name], dict(named)[b_name]
        if (a is None) != (b is None):
            fail(f"{a_name} and {b_name} must be given together")
        if a is None:
            continue
        for name, t, rows in ((a_name, a, n_users), (b_name, b, n_items)):
            if t.dtype not in (torch.float32, torch.float16, torch.bfloat16):
                fail(f"{name} must be float32, float16 or bfloat16, got {st(t.dtype)}")
            if t.dim() != 2 or t.shape[0] != rows:
                fail(f"{name} must have shape [{rows}, d], got {shape(t)}")
        if a.dtype != b.dtype or a.shape[1] != b.shape[1]:
            fail(f"{a_name} ({st(a.dtype)}, d={a.shape[1]}) and {b_name} ({st(b.dtype)}, d={b.shape[1]}) "
                 "must share dtype and width")
    B = users.numel()
    if candidates is not None:
        if candidates.dtype not in (torch.int32, torch.int64) or tuple(candidates.shape) != (B, num_negatives, num_candidates):
            fail(f"candidates must be an int32 or int64 tensor of shape [B={B}, num_negatives={num_negatives}, "
                 f"num_candidates={num_candidates}], got {st(candidates.dtype)} of shape {shape(candidates)}")
    # value checks (one host round trip in the kernels)
    if check_rows:
        check_csr(op, rowptr, col, n_items, sorted_rows=True)
    if int(rowptr[-1]) != col.numel():
        fail(f"rowptr[-1] = {int(rowptr[-1])} but col holds {col.numel()} entries: malformed CSR")
    if B:
        lo, hi = int(users.min()), int(users.max())
        if lo < 0 or hi >= n_users:
            fail(f"users has values in [{lo}, {hi}] but must lie in [0, {n_users})")
        if n_users > 0:
            u = users.long()
            rlo, rhi = rowptr[u].long(), rowptr[u + 1].long()
            bad = (rlo < 0) | (rhi < rlo) | (rhi > col.numel())
            if bool(bad.any()):
                j = int(torch.argmax(bad.long()))
                fail(f"malformed CSR, the row of user {int(u[j])} spans [{int(rlo[j])}, {int(rhi[j])}) which is "
                     f"not a range inside [0, nnz = {col.numel()}]")
    if candidates is not None and candidates.numel():
        lo, hi = int(candidates.min()), int(candidates.max())
        if lo < 0 or hi >= n_items:
            fail(f"candidates has values in [{lo}, {hi}] but must lie in [0, {n_items})")
    if mode == "popularity" and candidates is None:
        last, first = int(pop_cdf[-1]), int(pop_cdf[0])
        if first < 0 or last <= 0 or last > SAMPLER_MAX_CDF_TOTAL or bool((pop_cdf[1:] < pop_cdf[:-1]).any()):
            fail(f"pop_cdf must be non-decreasing, start >= 0 and end in (0, 2^46], got [{first}, ..., {last}]")
    if candidates is None and B:
        deg = (rowptr[users.long() + 1] - rowptr[users.long()]).long()
        full = int(deg.max())
        if full >= n_items:
            u = int(users[int(torch.argmax(deg))])
            fail(f"user {u} has interacted with all {n_items} items, so it has no negative to sample; "
                 "drop such users from the batch")


# ---------------------------------------------------------------- csrc/common/philox_cpu.cpp

def philox_args(index: Tensor) -> None:
    if index.dtype != torch.int64 or index.dim() != 1:
        fail("philox_random", f"index must be a 1-D int64 tensor, got {st(index.dtype)} {shape(index)}")
