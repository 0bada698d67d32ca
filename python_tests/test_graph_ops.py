"""Graph ops (csr_from_coo, bipartite_norm_adj, csr_transpose, spmm, csr_sddmm,
lightgcn_propagate): compiled kernels against their reference twins, autograd,
determinism, and clear errors on bad input."""
import contextlib
import dataclasses
import os

import pytest
import torch

from llmhni_ext import _backend, graph, reference

ML1M = os.path.join(os.environ.get("LLMHNI_SHARED", os.path.join(os.path.dirname(__file__), "..", "..", "shared")),
                    "data", "lightgcn-format", "ml-1m", "train.txt")

compiled = pytest.mark.skipif(_backend.load() == "reference", reason="no compiled kernels (reference backend)")
ops = torch.ops.llmhni

# (n_users, n_items, n_edges): empty graphs, nodes without edges, duplicates, ragged rows.
SHAPES = [(0, 0, 0), (0, 5, 0), (3, 0, 0), (1, 1, 1), (4, 7, 0), (5, 9, 30), (40, 55, 300), (17, 3, 200),
          (200, 150, 4000), (1000, 30, 3000)]


def _interactions(n_users, n_items, n_edges, seed, dtype=torch.int64, skew=True):
    g = torch.Generator().manual_seed(seed)
    if n_edges == 0:
        return torch.zeros(0, dtype=dtype), torch.zeros(0, dtype=dtype)
    if skew:  # a few heavy users and items, many light ones
        uw = torch.rand(n_users, generator=g) ** 4 + 1e-3
        iw = torch.rand(n_items, generator=g) ** 4 + 1e-3
        u = torch.multinomial(uw, n_edges, replacement=True, generator=g)
        i = torch.multinomial(iw, n_edges, replacement=True, generator=g)
    else:
        u = torch.randint(0, n_users, (n_edges,), generator=g)
        i = torch.randint(0, n_items, (n_edges,), generator=g)
    return u.to(dtype), i.to(dtype)


@contextlib.contextmanager
def nan_filled_empty():
    """Uninitialised outputs start as NaN, so an element a kernel forgets to write shows."""
    old = (torch.are_deterministic_algorithms_enabled(), torch.utils.deterministic.fill_uninitialized_memory)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.utils.deterministic.fill_uninitialized_memory = True
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(old[0])
        torch.utils.deterministic.fill_uninitialized_memory = old[1]


def _adj(n_users, n_items, n_edges, seed=0):
    u, i = _interactions(n_users, n_items, n_edges, seed)
    return reference.bipartite_norm_adj(u, i, n_users, n_items)


def _rect_csr(n_rows, n_cols, n_edges, seed, dtype=torch.int32):
    r, c = _interactions(n_rows, n_cols, n_edges, seed)
    return reference.csr_from_coo(r, c, n_rows, n_cols) if n_rows and n_cols else (
        torch.zeros(n_rows + 1, dtype=dtype), torch.zeros(0, dtype=dtype))


# ---------------------------------------------------------------- construction

@compiled
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("idx", [torch.int32, torch.int64])
def test_csr_from_coo_matches_reference(shape, idx):
    n_rows, n_cols, n = shape
    r, c = _interactions(n_rows, n_cols, n, seed=n_rows + n, dtype=idx) if n_rows and n_cols else (
        torch.zeros(0, dtype=idx), torch.zeros(0, dtype=idx))
    got = ops.csr_from_coo(r, c, n_rows, n_cols)
    want = reference.csr_from_coo(r, c, n_rows, n_cols)
    for a, b in zip(got, want):
        assert a.dtype == torch.int32 and torch.equal(a, b)


@compiled
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("idx", [torch.int32, torch.int64])
def test_bipartite_norm_adj_matches_reference(shape, idx):
    u, i = _interactions(*shape, seed=7, dtype=idx) if shape[0] and shape[1] else (
        torch.zeros(0, dtype=idx), torch.zeros(0, dtype=idx))
    with nan_filled_empty():
        got = ops.bipartite_norm_adj(u, i, shape[0], shape[1])
    want = reference.bipartite_norm_adj(u, i, shape[0], shape[1])
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    assert got[2].dtype == torch.float32
    torch.testing.assert_close(got[2], want[2], rtol=1e-6, atol=0)
    # symmetric, as promised by CSR.symmetric
    n = shape[0] + shape[1]
    t = ops.csr_transpose(got[0], got[1], n)
    assert torch.equal(t[0], got[0]) and torch.equal(t[1], got[1]) and torch.equal(got[2][t[2].long()], got[2])


@compiled
@pytest.mark.parametrize("shape", [(0, 4, 0), (3, 1, 2), (30, 20, 100), (500, 40, 2000), (40, 500, 2000)])
def test_csr_transpose_matches_reference(shape):
    rp, c = _rect_csr(*shape, seed=3)
    got = ops.csr_transpose(rp, c, shape[1])
    want = reference.csr_transpose(rp, c, shape[1])
    for a, b in zip(got, want):
        assert torch.equal(a, b)


def test_graph_api_builds_int32_symmetric_csr():
    u, i = _interactions(40, 55, 300, seed=1)
    adj = graph.normalized_bipartite_adj(u, i, 40, 55)
    assert adj.symmetric and adj.rowptr.dtype == torch.int32 and adj.n_rows == 95
    dense = adj.to_dense()
    torch.testing.assert_close(dense, dense.T)
    b = graph.csr_from_coo(u, i, 40, 55)
    assert b.value is None and b.nnz == torch.unique(u * 55 + i).numel()


def test_transpose_cache_follows_the_structure():
    rp, c = _rect_csr(9, 5, 20, seed=1)
    a = graph.CSR(rp, c, torch.rand(c.numel()), 9, 5)
    first = a.transpose_parts()
    assert a.transpose_parts()[0] is first[0]  # cached
    assert a.with_value(torch.rand(c.numel())).transpose_parts()[0] is first[0]  # same structure
    rp2, c2 = _rect_csr(9, 5, 25, seed=2)
    b = dataclasses.replace(a, rowptr=rp2, col=c2, value=torch.rand(c2.numel()))
    for got, want in zip(b.transpose_parts(), reference.csr_transpose(rp2, c2, 5)):
        assert torch.equal(got, want)
    torch.testing.assert_close(a.transpose().to_dense(), a.to_dense().T)


# ---------------------------------------------------------------- products

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]


def _close_to_exact(got, ref, exact, dtype):
    """|got - exact| within twice the reference's own error in this dtype (plus one ulp)."""
    ref_err = (ref.double() - exact).abs().max().item() if ref.numel() else 0.0
    ulp = torch.finfo(dtype).eps * (exact.abs().max().item() if exact.numel() else 0.0)
    err = (got.double() - exact).abs().max().item() if got.numel() else 0.0
    assert err <= 2 * ref_err + ulp + 1e-12, (err, ref_err, ulp)


@compiled
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("d", [1, 16, 32, 64, 100, 128, 130])
def test_spmm_matches_reference_fp32(shape, d):
    rp, c, v = _adj(*shape)
    n = shape[0] + shape[1]
    x = torch.randn(n, d)
    with nan_filled_empty():
        got = ops.spmm(rp, c, v, x)
        got_binary = ops.spmm(rp, c, None, x)
    torch.testing.assert_close(got, reference.spmm(rp, c, v, x), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got_binary, reference.spmm(rp, c, None, x), rtol=1e-5, atol=1e-4)


@compiled
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("d", [8, 64, 128])
def test_spmm_every_dtype_within_reference_error(dtype, d):
    rp, c, v = _adj(200, 150, 4000, seed=5)
    x = torch.randn(350, d).to(dtype)
    with nan_filled_empty():
        got = ops.spmm(rp, c, v, x)
    assert got.dtype == dtype and torch.isfinite(got).all()
    exact = reference.spmm(rp, c, v.double(), x.double())
    _close_to_exact(got, reference.spmm(rp, c, v, x), exact, dtype)


@compiled
@pytest.mark.parametrize("shape", [(0, 4, 0), (3, 1, 2), (30, 20, 100), (500, 40, 2000), (40, 500, 2000)])
def test_rectangular_spmm_and_sddmm(shape):
    rp, c = _rect_csr(*shape, seed=11)
    v = torch.rand(c.numel())
    x = torch.randn(shape[1], 24)
    g = torch.randn(shape[0], 24)
    with nan_filled_empty():
        got = ops.spmm(rp, c, v, x)
        sd = ops.csr_sddmm(rp, c, g, x)
    torch.testing.assert_close(got, reference.spmm(rp, c, v, x), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(sd, reference.csr_sddmm(rp, c, g, x), rtol=1e-5, atol=1e-5)
    # int64 indices take the same paths
    rpl, cl = rp.long(), c.long()
    assert torch.equal(ops.spmm(rpl, cl, v, x), got) and torch.equal(ops.csr_sddmm(rpl, cl, g, x), sd)
    for a, b in zip(ops.csr_transpose(rpl, cl, shape[1]), ops.csr_transpose(rp, c, shape[1])):
        assert a.dtype == torch.int64 and torch.equal(a, b.long())


@compiled
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layers", [0, 1, 3])
def test_lightgcn_propagate_matches_reference(dtype, layers):
    rp, c, v = _adj(200, 150, 4000, seed=9)
    x = torch.randn(350, 64).to(dtype)
    w = [1.0 / (layers + 1)] * (layers + 1)
    with nan_filled_empty():
        got = ops.lightgcn_propagate(rp, c, v, x, w)
    assert got.dtype == dtype
    exact = reference.lightgcn_propagate(rp, c, v.double(), x.double(), w)
    _close_to_exact(got, reference.lightgcn_propagate(rp, c, v, x, w), exact, dtype)


@compiled
@pytest.mark.parametrize("shape", [(0, 0, 0), (4, 7, 0), (5, 9, 30), (1000, 30, 3000)])
def test_propagate_weighted_sum(shape):
    rp, c, v = _adj(*shape, seed=2)
    x = torch.randn(shape[0] + shape[1], 32, dtype=torch.float64)
    w = [0.5, 0.2, -0.1, 0.4]
    got = ops.lightgcn_propagate(rp, c, v, x, w)
    torch.testing.assert_close(got, reference.lightgcn_propagate(rp, c, v, x, w))
    assert torch.equal(ops.lightgcn_propagate(rp.long(), c.long(), v, x, w), got)  # int64 indices


# ---------------------------------------------------------------- autograd

@compiled
def test_spmm_gradcheck_x_and_value_symmetric_and_not():
    adj = graph.normalized_bipartite_adj(*_interactions(6, 5, 20, seed=4), 6, 5)
    v = adj.value.double().requires_grad_()
    x = torch.randn(11, 3, dtype=torch.float64, requires_grad=True)
    t = adj.transpose_parts()
    assert torch.autograd.gradcheck(lambda v, x: ops.spmm(adj.rowptr, adj.col, v, x, *t), (v, x))
    rp, c = _rect_csr(7, 4, 15, seed=5)
    v2 = torch.rand(c.numel(), dtype=torch.float64, requires_grad=True)
    x2 = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    # without the transpose (computed in the backward) and with it
    assert torch.autograd.gradcheck(lambda v, x: ops.spmm(rp, c, v, x), (v2, x2))
    t2 = ops.csr_transpose(rp, c, 4)
    assert torch.autograd.gradcheck(lambda v, x: ops.spmm(rp, c, v, x, *t2), (v2, x2))


@compiled
def test_propagate_gradcheck_and_matches_reference_grad():
    adj = graph.normalized_bipartite_adj(*_interactions(6, 5, 20, seed=6), 6, 5)
    x = torch.randn(11, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: graph.propagate(adj, x, 3, [0.4, 0.3, 0.2, 0.1]), (x,))
    # a non-symmetric square CSR uses the cached transpose
    rp, c = _rect_csr(9, 9, 30, seed=7)
    a = graph.CSR(rp, c, torch.rand(c.numel(), dtype=torch.float64), 9, 9)
    x2 = torch.randn(9, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: graph.propagate(a, x, 2), (x2,))
    g = torch.randn(9, 4, dtype=torch.float64)
    (gx,) = torch.autograd.grad(graph.propagate(a, x2, 2), x2, g)
    x3 = x2.detach().clone().requires_grad_()
    (gr,) = torch.autograd.grad(reference.lightgcn_propagate(rp, c, a.value, x3, [1 / 3] * 3), x3, g)
    torch.testing.assert_close(gx, gr)


@compiled
def test_spmm_grad_fp32_matches_reference():
    rp, c, v = _adj(200, 150, 4000, seed=8)
    adj = graph.CSR(rp, c, v.clone().requires_grad_(), 350, 350, symmetric=True)
    x = torch.randn(350, 64, requires_grad=True)
    g = torch.randn(350, 64)
    gv, gx = torch.autograd.grad(graph.spmm(adj, x), (adj.value, x), g)
    v2, x2 = v.clone().requires_grad_(), x.detach().clone().requires_grad_()
    rv, rx = torch.autograd.grad(reference.spmm(rp, c, v2, x2), (v2, x2), g)
    torch.testing.assert_close(gx, rx, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gv, rv, rtol=1e-4, atol=1e-4)


@compiled
def test_opcheck_every_graph_op():
    u, i = _interactions(30, 20, 120, seed=12)
    rp, c, v = ops.bipartite_norm_adj(u, i, 30, 20)
    x = torch.randn(50, 8, requires_grad=True)
    xd = torch.randn(50, 8, dtype=torch.float64, requires_grad=True)
    torch.library.opcheck(ops.csr_transpose, (rp, c, 50))
    torch.library.opcheck(ops.spmm, (rp, c, v, x))
    torch.library.opcheck(ops.spmm, (rp, c, v.double().requires_grad_(), xd, rp, c, None))
    torch.library.opcheck(ops.csr_sddmm, (rp, c, x.detach(), x.detach()))
    torch.library.opcheck(ops.lightgcn_propagate, (rp, c, v, x, [0.25, 0.25, 0.25, 0.25]))
    torch.library.opcheck(ops.lightgcn_propagate, (rp, c, v, xd, [0.5, 0.5], rp, c, None))
    # data-dependent output sizes: schema and fake-kernel checks only
    for op, args in [(ops.csr_from_coo, (u, i, 30, 20)), (ops.bipartite_norm_adj, (u, i, 30, 20))]:
        torch.library.opcheck(op, args, test_utils=("test_schema", "test_autograd_registration", "test_faketensor"))


# ---------------------------------------------------------------- determinism

@compiled
def test_bitwise_deterministic_and_thread_count_independent():
    u, i = _interactions(2000, 1500, 40000, seed=13)
    rp, c, v = ops.bipartite_norm_adj(u, i, 2000, 1500)
    adj = graph.CSR(rp, c, v.requires_grad_(), 3500, 3500, symmetric=True)
    x = torch.randn(3500, 64, requires_grad=True)
    results = []
    threads = torch.get_num_threads()
    try:
        for nt in (threads, 1, threads):
            torch.set_num_threads(nt)
            y = graph.spmm(adj, x)
            p = graph.propagate(graph.CSR(rp, c, v.detach(), 3500, 3500, symmetric=True), x, 3)
            gv, gx = torch.autograd.grad((y * y).sum() + p.sum(), (adj.value, x))
            results.append((y.detach(), p.detach(), gv, gx))
    finally:
        torch.set_num_threads(threads)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert torch.equal(a, b)


# ---------------------------------------------------------------- errors

@compiled
def test_clear_errors_on_bad_input():
    u = torch.tensor([0, 1, 2]); i = torch.tensor([0, 1, 5])
    with pytest.raises(RuntimeError, match=r"bipartite_norm_adj: items has values in \[0, 5\]"):
        ops.bipartite_norm_adj(u, i, 3, 5)
    with pytest.raises(RuntimeError, match="csr_from_coo: row and col must have the same length"):
        ops.csr_from_coo(u, i[:2], 3, 6)
    with pytest.raises(RuntimeError, match="csr_from_coo: row must be an int32 or int64"):
        ops.csr_from_coo(u.float(), i, 3, 6)
    rp, c, v = ops.bipartite_norm_adj(u, torch.tensor([0, 1, 2]), 3, 5)
    x = torch.randn(8, 4)
    with pytest.raises(RuntimeError, match="spmm: col has values in"):
        ops.spmm(rp, c, v, x[:5])
    bad = rp.clone()
    bad[2] = rp[3] + 1  # rows 2 and 3 now have negative length
    with pytest.raises(RuntimeError, match="spmm: malformed CSR, rowptr must be non-decreasing"):
        ops.spmm(bad, c, v, x)
    with pytest.raises(RuntimeError, match=r"spmm: malformed CSR, rowptr\[-1\] must equal nnz"):
        ops.spmm(rp, c[:-1], None, x)
    with pytest.raises(RuntimeError, match=r"spmm: malformed CSR, rowptr\[0\] must be 0"):
        ops.spmm(rp + 1, torch.cat([c, c[:1]]), None, x)
    with pytest.raises(RuntimeError, match="spmm: rowptr .* and col .* must share one integer dtype"):
        ops.spmm(rp.long(), c, v, x)
    with pytest.raises(RuntimeError, match=r"spmm: value must have shape \(nnz,\)"):
        ops.spmm(rp, c, v[:-1], x)
    with pytest.raises(RuntimeError, match="spmm: x must be float32, float64, float16 or bfloat16"):
        ops.spmm(rp, c, v, x.int())
    with pytest.raises(RuntimeError, match="spmm: x must be 2-D"):
        ops.spmm(rp, c, v, x[:, 0])
    with pytest.raises(RuntimeError, match="lightgcn_propagate: A must be square"):
        ops.lightgcn_propagate(rp[:-2], c[: int(rp[-3])], None, x, [0.5, 0.5])
    with pytest.raises(RuntimeError, match="lightgcn_propagate: weights must have at least one entry"):
        ops.lightgcn_propagate(rp, c, v, x, [])
    with pytest.raises(RuntimeError, match="csr_sddmm: a must have n_rows"):
        ops.csr_sddmm(rp, c, x[:3], x)
    # an in-place change after a successful call is still caught (validation is per version)
    ok = rp.clone()
    ops.spmm(ok, c, v, x)
    ok[1] = 100
    with pytest.raises(RuntimeError, match="spmm: malformed CSR"):
        ops.spmm(ok, c, v, x)


def test_api_errors():
    adj = graph.normalized_bipartite_adj(torch.tensor([0]), torch.tensor([0]), 1, 1)
    with pytest.raises(ValueError, match="layer_weights must have num_layers"):
        graph.propagate(adj, torch.randn(2, 3), 2, [1.0])
    with pytest.raises(ValueError, match="value must have shape"):
        adj.with_value(torch.ones(5))


# ---------------------------------------------------------------- real graph

@compiled
@pytest.mark.skipif(not os.path.isfile(ML1M), reason="shared ML-1M data not found")
def test_ml1m_graph_matches_reference():
    users, items = [], []
    with open(ML1M) as f:
        for line in f:
            ids = [int(t) for t in line.split()]
            users += [ids[0]] * (len(ids) - 1)
            items += ids[1:]
    u, i = torch.tensor(users), torch.tensor(items)
    n_users, n_items = int(u.max()) + 1, int(i.max()) + 1
    got = ops.bipartite_norm_adj(u, i, n_users, n_items)
    want = reference.bipartite_norm_adj(u, i, n_users, n_items)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    torch.testing.assert_close(got[2], want[2], rtol=1e-6, atol=0)
    x = torch.randn(n_users + n_items, 64)
    torch.testing.assert_close(ops.lightgcn_propagate(*got, x, [0.25] * 4),
                               reference.lightgcn_propagate(*want, x, [0.25] * 4), rtol=1e-4, atol=1e-5)
