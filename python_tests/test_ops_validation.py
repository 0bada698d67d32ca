"""The raw ops validate their inputs on every call where a stale check could crash them or
return wrong rows: writes that bypass torch's version counter, strided views of checked
tensors, malformed CSRs handed to the sampler. Each case raises the same error in the
compiled op and in its reference twin."""
import pytest
import torch

from llmhni_ext import _backend
from llmhni_ext import reference as R
from llmhni_ext.ops import sampler as S

pytestmark = pytest.mark.skipif(_backend.load() == "reference", reason="no compiled kernels (reference backend)")
ops = torch.ops.llmhni


def _csr():
    rowptr = torch.tensor([0, 2, 3, 5], dtype=torch.int32)
    col = torch.tensor([0, 2, 1, 0, 2], dtype=torch.int32)
    return rowptr, col


def test_write_through_numpy_is_seen_by_the_next_call():
    rowptr, col = _csr()
    x = torch.randn(3, 4)
    ops.spmm(rowptr, col, None, x)            # validated once
    col.numpy()[1] = 1_000_000                             # no version bump
    with pytest.raises(RuntimeError, match=r"spmm: col has values in \[0, 1000000\]"):
        ops.spmm(rowptr, col, None, x)
    col.numpy()[1] = 2
    rowptr.numpy()[1] = 4                                  # non-monotone through .numpy()
    with pytest.raises(RuntimeError, match="rowptr must be non-decreasing"):
        ops.lightgcn_propagate(rowptr, col, None, x, [0.5, 0.5])


def test_write_through_data_is_seen_by_the_next_call():
    rowptr, col = _csr()
    x = torch.randn(3, 4)
    ops.spmm(rowptr, col, None, x)
    col.data[0] = -7
    with pytest.raises(RuntimeError, match=r"spmm: col has values in \[-7, 2\]"):
        ops.spmm(rowptr, col, None, x)


def test_strided_view_of_a_checked_tensor_is_refused():
    rowptr, _ = _csr()
    store = torch.tensor([0, 9, 2, 9, 1, 9, 0, 9, 2, 9], dtype=torch.int32)
    col = store[:5]
    x = torch.randn(3, 4)
    with pytest.raises(RuntimeError, match="col has values in"):
        ops.spmm(rowptr, col, None, x)
    good = store[::2]                                      # same storage, offset and length
    assert not good.is_contiguous()
    with pytest.raises(RuntimeError, match="rowptr and col must be contiguous"):
        ops.spmm(rowptr, good, None, x)


def _sampler_call(fn, rowptr, col, users, n_items=6, **kw):
    return fn(rowptr, col, users, n_items, "uniform", 2, 1, 1, 1.0, 0, 0, 8, **kw)


BAD_SAMPLER_CSRS = [
    # (what, rowptr, col, message)
    ("non-monotone rowptr", [0, 3, 1, 4], [0, 1, 2, 3], "rowptr must be non-decreasing"),
    ("column out of range", [0, 2, 3, 4], [0, 9, 1, 2], r"col has values in \[0, 9\] but must lie in \[0, 6\)"),
    ("negative column", [0, 2, 3, 4], [0, -1, 1, 2], r"col has values in \[-1, 2\]"),
    ("unsorted row", [0, 3, 3, 4], [4, 1, 2, 3], "the columns of row 0 are not sorted"),
    ("duplicate in a row", [0, 2, 4, 4], [0, 1, 5, 5], "the columns of row 1 are not sorted"),
    ("rowptr[0] != 0", [1, 2, 3, 4], [0, 1, 2, 3], r"rowptr\[0\] must be 0"),
    ("rowptr end", [0, 2, 3, 9], [0, 1, 2, 3], r"rowptr\[-1\] must equal nnz"),
]


@pytest.mark.parametrize("what,rowptr,col,msg", BAD_SAMPLER_CSRS, ids=[b[0] for b in BAD_SAMPLER_CSRS])
@pytest.mark.parametrize("dtype", [torch.int32, torch.int64])
def test_sampler_checks_the_whole_csr_by_default(what, rowptr, col, msg, dtype):
    rp, c = torch.tensor(rowptr, dtype=dtype), torch.tensor(col, dtype=dtype)
    users = torch.tensor([0, 1, 2])
    errors = []
    for fn in (S.sample_negatives, R.sample_negatives):
        with pytest.raises(RuntimeError, match=msg) as e:
            _sampler_call(fn, rp, c, users)
        errors.append(str(e.value).splitlines()[0])
    assert errors[0] == errors[1], what


def test_sampler_trusting_the_csr_still_checks_the_batch_rows():
    rp, c = torch.tensor([0, 3, 1, 4]), torch.tensor([0, 1, 2, 3])
    for fn in (S.sample_negatives, R.sample_negatives):
        with pytest.raises(RuntimeError, match=r"the row of user 1 spans \[3, 1\)"):
            _sampler_call(fn, rp, c, torch.tensor([0, 1]), check_rows=False)
    # the kernels read no row outside the batch, so those need no check (the reference twin
    # builds every row and needs a well-formed rowptr)
    _sampler_call(S.sample_negatives, torch.tensor([0, 2, 1, 4]), c, torch.tensor([0]), check_rows=False)


@pytest.mark.parametrize("mode", ["uniform", "popularity"])
def test_trusted_bad_csr_never_yields_ids_out_of_range(mode):
    """check_rows=False on a CSR whose columns are garbage: no crash, every id in range, even
    through the exact complement fallback (max_redraws=0 sends every draw there)."""
    n_items = 5
    rp = torch.tensor([0, 4, 4])
    c = torch.tensor([7, -3, 2, 2])
    cdf = torch.cumsum(torch.ones(n_items, dtype=torch.long), 0)
    for redraws in (0, 4):
        neg, _, _ = S.sample_negatives(rp, c, torch.tensor([0, 1] * 50), n_items, mode, 3, 1, 1, 1.0, 0, 0, redraws,
                                       None, cdf if mode == "popularity" else None, check_rows=False)
        assert int(neg.min()) >= 0 and int(neg.max()) < n_items


def test_negative_sampler_checks_its_csr_once_and_trusts_it():
    from llmhni_ext.sampling import NegativeSampler
    s = NegativeSampler(torch.tensor([0, 0, 1]), torch.tensor([2, 1, 0]), 2, 4)
    neg = s.sample(torch.tensor([0, 1, 1]))
    assert neg.shape == (3,)
    assert not bool(((neg == 1) | (neg == 2))[0])


def test_propagate_rejects_negative_layer_counts():
    from llmhni_ext.graph import normalized_bipartite_adj, propagate
    adj = normalized_bipartite_adj(torch.tensor([0, 1]), torch.tensor([0, 1]), 2, 2)
    for bad in (-1, -5):
        with pytest.raises(ValueError, match="num_layers must be >= 0"):
            propagate(adj, torch.randn(4, 3), bad)
    with pytest.raises(ValueError, match="num_layers must be an int"):
        propagate(adj, torch.randn(4, 3), 1.5)
    assert torch.equal(propagate(adj, torch.ones(4, 3), 0), torch.ones(4, 3))


def test_graph_reference_twins_agree_on_structure_errors():
    """The graph ops and their twins reject the same malformed CSR with the same message."""
    rowptr, col = torch.tensor([0, 2, 1, 3]), torch.tensor([0, 1, 2])
    x = torch.randn(3, 2)
    msgs = []
    for fn in (ops.spmm, R.spmm):
        with pytest.raises(RuntimeError) as e:
            fn(rowptr, col, None, x)
        msgs.append(str(e.value).splitlines()[0])
    assert msgs[0] == msgs[1] and "non-decreasing" in msgs[0]


def test_spmm_with_an_empty_dense_operand_and_stored_entries_raises():
    """Found by the fuzz test: every column is out of range when x has no rows (it crashed)."""
    rowptr, col = torch.tensor([0, 1], dtype=torch.int32), torch.tensor([0], dtype=torch.int32)
    for fn in (ops.spmm, R.spmm):
        with pytest.raises(RuntimeError, match=r"spmm: col has values in \[0, 0\] but must lie in \[0, 0\)"):
            fn(rowptr, col, None, torch.zeros(0, 3))
    assert ops.spmm(torch.tensor([0, 0]), torch.zeros(0, dtype=torch.long), None, torch.zeros(0, 3)).shape == (1, 3)


def _bad_inputs():
    """(op, args) with one thing wrong each, one or more per op and check."""
    i32, i64, f32 = torch.int32, torch.int64, torch.float32
    rp, c = torch.tensor([0, 1, 2]), torch.tensor([1, 0])
    x = torch.randn(2, 3)
    yield "spmm", (rp.to(i32), c, None, x)                                   # mixed index dtypes
    yield "spmm", (rp, c, torch.ones(3), x)                                  # value of the wrong length
    yield "spmm", (rp, c, None, x.long())                                    # integer x
    yield "spmm", (rp, c, None, x[0])                                        # 1-D x
    yield "spmm", (rp, c, None, x, rp, None, None)                           # half a transpose
    yield "spmm", (rp, torch.tensor([1, 5]), None, x)                        # column out of range
    yield "csr_sddmm", (rp, c, x, torch.randn(2, 4))                         # widths differ
    yield "csr_sddmm", (rp, c, x, x.double())                                # dtypes differ
    yield "lightgcn_propagate", (rp, c, None, x, [])                         # no weights
    yield "lightgcn_propagate", (rp, c, None, torch.randn(3, 3), [0.5, 0.5])  # not square with x0
    yield "csr_transpose", (rp, c, -1)
    yield "csr_transpose", (torch.tensor([0, 2, 1]), c, 2)
    yield "csr_from_coo", (torch.tensor([0, 1]), torch.tensor([0]), 2, 2)   # lengths differ
    yield "csr_from_coo", (torch.tensor([0, 3]), torch.tensor([0, 1]), 2, 2)  # row out of range
    yield "bipartite_norm_adj", (torch.tensor([0.0]), torch.tensor([0]), 1, 1)
    yield "bipartite_norm_adj", (torch.tensor([0]), torch.tensor([0]), -1, 1)
    yield "edge_drop_mask", (rp, c, 1.5, 1, 0, 0)
    yield "edge_drop_mask", (rp, c, 0.5, 0, 0, 0)
    yield "edge_drop_compact", (rp.to(i32), c, 0.5, 1, 0, 0)
    yield "edge_drop_compact", (rp, torch.tensor([1, 2]), 0.5, 1, 0, 0)
    a = torch.randn(1, 4, 3)
    yield "infonce", (a, a.double(), 0.2)
    yield "infonce", (a, torch.randn(1, 4, 2), 0.2)
    yield "infonce", (a, a, 0.0)
    yield "infonce", (a[0], a[0], 0.2)
    yield "infonce_backward", (torch.ones(2), a, a, torch.zeros(1, 4), 0.2)
    yield "infonce_backward", (torch.ones(1), a, a, torch.zeros(4), 0.2)
    yield "philox_random", (0, 0, torch.tensor([1, 2], dtype=i32), 0)
    yield "sample_negatives", (rp, c, torch.tensor([0, 2]), 2, "uniform", 1, 1, 1, 1.0, 0, 0, 4)
    yield "sample_negatives", (rp, c, torch.tensor([0.0]), 2, "uniform", 1, 1, 1, 1.0, 0, 0, 4)
    yield "sample_negatives", (rp, c, torch.tensor([0]), 2, "dns", 1, 4, 1, 1.0, 0, 0, 4, None, None,
                               torch.randn(2, 3, dtype=f32), torch.randn(3, 3))
    del i64


@pytest.mark.parametrize("op,args", list(_bad_inputs()), ids=[f"{o}-{k}" for k, (o, _) in enumerate(_bad_inputs())])
def test_compiled_and_reference_raise_the_same_error(op, args):
    errors = []
    for fn in (getattr(ops, op), getattr(R, op)):
        with pytest.raises(Exception) as e:
            fn(*args)
        errors.append((type(e.value), str(e.value).splitlines()[0]))
    assert errors[0] == errors[1]
    assert errors[0][1].startswith(f"{op}:"), errors[0]
