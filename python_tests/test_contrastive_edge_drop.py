"""Edge-drop views: kernels equal their reference twins; symmetric dropping, keep rate,
isolated nodes, reproducibility by (seed, offset), clear errors."""
import math
import warnings

import pytest
import torch

from llmhni_ext import _backend, reference
from llmhni_ext import graph as G
from llmhni_ext.contrastive import edge_drop_views

warnings.simplefilter("ignore", _backend.BackendWarning)


def _graph(n_users, n_items, n_inter, seed=0, index=torch.int32):
    gen = torch.Generator().manual_seed(seed)
    # skewed degrees: a few heavy users and items, many light ones
    u = (torch.rand(n_inter, generator=gen) ** 2 * n_users).long().clamp(max=max(n_users - 1, 0))
    i = (torch.rand(n_inter, generator=gen) ** 3 * n_items).long().clamp(max=max(n_items - 1, 0))
    adj = G.normalized_bipartite_adj(u, i, n_users, n_items)
    if index == torch.int64:
        adj = G.CSR(adj.rowptr.long(), adj.col.long(), adj.value, adj.n_rows, adj.n_cols, symmetric=True)
    return adj


def _empty_graph(n):
    return G.CSR(torch.zeros(n + 1, dtype=torch.int32), torch.zeros(0, dtype=torch.int32),
                 torch.zeros(0), n, n, symmetric=True)


needs_cpu_kernel = pytest.mark.skipif(not _backend.has_kernel("edge_drop_mask", "cpu"),
                                      reason="no compiled CPU kernel (reference backend)")


@pytest.fixture
def fill_uninitialized():
    """Fresh allocations are filled with NaN / max-int, so unwritten output elements show."""
    torch.use_deterministic_algorithms(True)
    torch.utils.deterministic.fill_uninitialized_memory = True
    yield
    torch.use_deterministic_algorithms(False)


SHAPES = [(0, 0, 0), (5, 0, 0), (1, 1, 1), (3, 4, 7), (50, 70, 400), (300, 200, 5000), (1000, 1500, 20000)]


@needs_cpu_kernel
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("index", [torch.int32, torch.int64])
@pytest.mark.parametrize("keep_prob,views", [(0.8, 1), (0.5, 3), (0.0, 2), (1.0, 1), (0.3, 6)])
def test_mask_and_compact_equal_reference(shape, index, keep_prob, views, fill_uninitialized):
    adj = _empty_graph(shape[0]) if shape[2] == 0 else _graph(*shape, index=index)
    rowptr, col = adj.rowptr.to(index), adj.col.to(index)
    seed, offset = 1234 + shape[2], 7
    got = torch.ops.llmhni.edge_drop_mask(rowptr, col, keep_prob, views, seed, offset)
    want = reference.edge_drop_mask(rowptr, col, keep_prob, views, seed, offset)
    assert got.dtype == torch.float32 and got.shape == (views, col.numel())
    assert torch.equal(got, want)
    got_c = torch.ops.llmhni.edge_drop_compact(rowptr, col, keep_prob, views, seed, offset)
    want_c = reference.edge_drop_compact(rowptr, col, keep_prob, views, seed, offset)
    for g_list, w_list in zip(got_c, want_c):
        assert len(g_list) == len(w_list) == views
        for g, w in zip(g_list, w_list):
            assert g.dtype == w.dtype and torch.equal(g, w)
    for v in range(views):  # the compacted view is the mask view without its zeros
        kept = want[v] != 0
        assert torch.equal(got_c[1][v], col[kept]) and torch.equal(got_c[2][v], want[v][kept])


@pytest.mark.parametrize("compact", [True, False])
def test_views_are_symmetric_and_renormalised(compact):
    adj = _graph(200, 300, 3000, seed=1)
    for view in edge_drop_views(adj, 0.6, num_views=3, seed=5, compact=compact):
        d = view.to_dense().double()
        assert torch.equal(d, d.T), "both directions of an edge must be dropped together"
        a = (d != 0).double()
        deg = a.sum(1)
        dinv = torch.where(deg > 0, deg.rsqrt(), torch.zeros_like(deg))
        torch.testing.assert_close(d, dinv[:, None] * a * dinv[None, :], rtol=1e-6, atol=0)
        # the kept structure is a subset of the original
        assert bool(((a != 0) <= (adj.to_dense() != 0)).all())


def test_keep_rate_matches_keep_prob():
    adj = _graph(400, 600, 8000, seed=2)
    p, views = 0.8, 16
    vals = edge_drop_views(adj, p, num_views=views, seed=11, compact=False)
    kept = torch.stack([v.value != 0 for v in vals]).double()  # [views, nnz]
    n = kept.numel() / 2  # each undirected edge is stored twice
    rate = kept.mean().item()
    assert abs(rate - p) < 4 * math.sqrt(p * (1 - p) / n), rate
    # per view and per edge too: no view and no edge is systematically different
    per_view = kept.mean(1)
    assert float((per_view - p).abs().max()) < 5 * math.sqrt(p * (1 - p) / (kept.shape[1] / 2))
    # views are independent: the agreement of two views is p^2 + (1-p)^2
    agree = (kept[0] == kept[1]).double().mean().item()
    assert abs(agree - (p * p + (1 - p) ** 2)) < 0.03


def test_nodes_that_lose_every_edge_have_empty_rows_and_no_nan():
    adj = _graph(100, 100, 300, seed=3)
    for compact in (True, False):
        for p in (0.0, 0.05, 0.3):
            for view in edge_drop_views(adj, p, num_views=2, seed=1, compact=compact):
                assert torch.isfinite(view.value).all()
                if compact:
                    assert int(view.rowptr[-1]) == view.nnz == view.value.numel()
                if p == 0.0:
                    assert not bool((view.value != 0).any())
                x = torch.randn(adj.n_rows, 8)
                y = G.spmm(view, x)
                assert torch.isfinite(y).all()
                lost = (view.to_dense() != 0).sum(1) == 0
                assert bool((y[lost] == 0).all())


def test_reproducible_by_seed_and_different_across_offsets_and_seeds():
    adj = _graph(300, 300, 4000, seed=4)
    a = edge_drop_views(adj, 0.7, num_views=2, seed=42, offset=3)
    b = edge_drop_views(adj, 0.7, num_views=2, seed=42, offset=3)
    for x, y in zip(a, b):
        assert torch.equal(x.rowptr, y.rowptr) and torch.equal(x.col, y.col) and torch.equal(x.value, y.value)
    c = edge_drop_views(adj, 0.7, num_views=2, seed=42, offset=4)
    d = edge_drop_views(adj, 0.7, num_views=2, seed=43, offset=3)
    assert not torch.equal(a[0].rowptr, c[0].rowptr)
    assert not torch.equal(a[0].rowptr, d[0].rowptr)
    assert not torch.equal(a[0].rowptr, a[1].rowptr)  # views of one call differ
    # view v does not depend on how many views were asked for
    e = edge_drop_views(adj, 0.7, num_views=5, seed=42, offset=3)
    assert torch.equal(e[1].col, a[1].col) and torch.equal(e[1].value, a[1].value)
    # nor on the thread count
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        f = edge_drop_views(adj, 0.7, num_views=2, seed=42, offset=3)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(f[1].value, a[1].value)
    # large and negative seeds and offsets are accepted
    edge_drop_views(adj, 0.7, seed=2**64 - 1, offset=2**63 + 5)
    edge_drop_views(adj, 0.7, seed=-3, offset=-1)


def test_views_feed_propagation():
    adj = _graph(60, 80, 700, seed=6)
    x = torch.randn(adj.n_rows, 16)
    for compact in (True, False):
        view = edge_drop_views(adj, 0.75, seed=9, compact=compact)[0]
        d = view.to_dense()
        want = (x + d @ x + d @ (d @ x)) / 3
        torch.testing.assert_close(G.propagate(view, x, 2), want, rtol=1e-5, atol=1e-5)


@needs_cpu_kernel
def test_opcheck():
    adj = _graph(40, 50, 300, seed=7)
    for op in (torch.ops.llmhni.edge_drop_mask, torch.ops.llmhni.edge_drop_compact):
        torch.library.opcheck(op, (adj.rowptr, adj.col, 0.8, 2, 3, 4),
                              test_utils=("test_schema", "test_autograd_registration", "test_faketensor"))


def _call_both(rowptr, col, keep_prob=0.5, views=1):
    """The error from the compiled op (when present) and from the public API."""
    errs = []
    if _backend.has_kernel("edge_drop_mask", "cpu"):
        for op in (torch.ops.llmhni.edge_drop_mask, torch.ops.llmhni.edge_drop_compact):
            with pytest.raises(RuntimeError) as e:
                op(rowptr, col, keep_prob, views, 0, 0)
            errs.append(str(e.value))
    n = max(rowptr.numel() - 1, 0)
    with pytest.raises((RuntimeError, ValueError)) as e:
        edge_drop_views(G.CSR(rowptr, col, None, n, n), keep_prob, num_views=views)
    errs.append(str(e.value))
    return errs


@pytest.mark.parametrize("case,match", [
    ("float_index", "int32 or int64"),
    ("mixed_index", "index dtype|int32 or int64"),
    ("keep_prob", "keep_prob"),
    ("views", "num_views"),
    ("col_range", "out of range|must lie in"),
    ("rowptr_order", "rowptr"),
    ("rowptr_end", "rowptr"),
])
def test_bad_input_raises_clear_errors(case, match):
    rowptr = torch.tensor([0, 1, 2], dtype=torch.int32)
    col = torch.tensor([1, 0], dtype=torch.int32)
    kw = {}
    if case == "float_index":
        rowptr = rowptr.float()
    elif case == "mixed_index":
        rowptr = rowptr.long()
    elif case == "keep_prob":
        kw["keep_prob"] = 1.5
    elif case == "views":
        kw["views"] = 0
    elif case == "col_range":
        col = torch.tensor([1, 2], dtype=torch.int32)
    elif case == "rowptr_order":
        rowptr, col = torch.tensor([0, 2, 1], dtype=torch.int32), torch.tensor([1], dtype=torch.int32)
    elif case == "rowptr_end":
        rowptr = torch.tensor([0, 1, 3], dtype=torch.int32)
    for msg in _call_both(rowptr, col, **kw):
        assert any(m in msg for m in match.split("|")), msg


def test_api_rejects_non_square_and_non_csr():
    adj = G.csr_from_coo(torch.tensor([0]), torch.tensor([1]), 1, 3)
    with pytest.raises(ValueError, match="square"):
        edge_drop_views(adj, 0.5)
    with pytest.raises(TypeError, match="CSR"):
        edge_drop_views(torch.eye(3), 0.5)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("shape", [(0, 0, 0), (3, 4, 7), (300, 200, 5000), (2000, 3000, 60000)])
@pytest.mark.parametrize("index", [torch.int32, torch.int64])
def test_cuda_equals_cpu_and_reference(shape, index):
    adj = _empty_graph(shape[0]) if shape[2] == 0 else _graph(*shape, index=index)
    rowptr, col = adj.rowptr.to(index), adj.col.to(index)
    for views in (1, 5):
        want = reference.edge_drop_mask(rowptr, col, 0.7, views, 99, 3)
        got = torch.ops.llmhni.edge_drop_mask(rowptr.cuda(), col.cuda(), 0.7, views, 99, 3)
        assert torch.equal(got.cpu(), want)
        want_c = reference.edge_drop_compact(rowptr, col, 0.7, views, 99, 3)
        got_c = torch.ops.llmhni.edge_drop_compact(rowptr.cuda(), col.cuda(), 0.7, views, 99, 3)
        for g_list, w_list in zip(got_c, want_c):
            for g, w in zip(g_list, w_list):
                assert g.is_cuda and torch.equal(g.cpu(), w)
    views_gpu = edge_drop_views(adj.to("cuda"), 0.7, num_views=2, seed=5)
    views_cpu = edge_drop_views(adj, 0.7, num_views=2, seed=5)
    for a, b in zip(views_gpu, views_cpu):
        assert torch.equal(a.value.cpu(), b.value) and torch.equal(a.col.cpu(), b.col)
