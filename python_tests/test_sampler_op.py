"""llmhni::sample_negatives: kernels against the reference twin, semantics, errors."""
from __future__ import annotations

import itertools
import zlib

import pytest
import torch

from llmhni_ext import _backend
from llmhni_ext import reference as R
from llmhni_ext.ops import sampler as ops

MODES = ("uniform", "popularity", "dns", "llmhni")


def random_graph(n_users, n_items, n_inter, gen, index_dtype=torch.int64, dense_user=True):
    """Sorted CSR with empty rows, ragged rows and (optionally) a user missing one item."""
    u = torch.randint(0, max(n_users - 1, 1), (n_inter,), generator=gen)
    i = torch.randint(0, n_items, (n_inter,), generator=gen)
    if dense_user and n_users > 1 and n_items > 1:  # last user: every item but a random one
        keep = torch.randperm(n_items, generator=gen)[1:]
        u, i = torch.cat([u, torch.full_like(keep, n_users - 1)]), torch.cat([i, keep])
    rowptr, col = R.csr_from_coo(u, i, n_users, n_items)
    return rowptr.to(index_dtype), col.to(index_dtype)


def pop_cdf(col, n_items, alpha=0.75):
    deg = torch.bincount(col.long(), minlength=n_items).double()
    w = torch.floor(deg.pow(alpha) / deg.pow(alpha).sum() * 2**40).long()
    w = torch.where((deg > 0) & (w == 0), torch.ones_like(w), w)
    return torch.cumsum(w, 0)


def call(fn, rowptr, col, users, n_items, mode, N=1, M=8, K=3, thr=0.3, seed=0, offset=0, redraws=64,
         candidates=None, cdf=None, emb=None, sem=None):
    eu, ei = emb if emb is not None else (None, None)
    su, si = sem if sem is not None else (None, None)
    return fn(rowptr, col, users, n_items, mode, N, M, K, thr, seed, offset, redraws, candidates, cdf,
              eu, ei, su, si)


def positives_of(rowptr, col):
    rp, c = rowptr.long(), col.long()
    return [set(c[rp[u]:rp[u + 1]].tolist()) for u in range(rp.numel() - 1)]


def assert_no_positive(neg, users, pos_sets):
    for u, row in zip(users.tolist(), neg.reshape(neg.shape[0], -1 if neg.numel() else 0).tolist()):
        assert not (set(row) & pos_sets[u]), f"user {u} got a positive"


CASES = list(itertools.product(
    [(0, 1, 1), (1, 1, 1), (7, 2, 5), (33, 3, 64)],          # (B, N, M)
    [(1, 1), (7, 3), (64, 64)],                                # (d, semantic d)
    [torch.float32, torch.bfloat16, torch.float16],
    [torch.int32, torch.int64],
    [0, 1, 64],                                                # max_redraws
))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape,dims,dtype,index_dtype,redraws", CASES[::9] + CASES[4::23])
def test_kernel_matches_reference(mode, shape, dims, dtype, index_dtype, redraws):
    B, N, M = shape
    d, ds = dims
    gen = torch.Generator().manual_seed(zlib.crc32(repr((mode, shape, dims, dtype, redraws)).encode()))
    n_users, n_items = 23, 37
    rowptr, col = random_graph(n_users, n_items, 300, gen, index_dtype)
    users = torch.randint(0, n_users, (B,), generator=gen)
    emb = (torch.randn(n_users, d, generator=gen).to(dtype), torch.randn(n_items, d, generator=gen).to(dtype))
    sem = (torch.randn(n_users, ds, generator=gen).to(dtype), torch.randn(n_items, ds, generator=gen).to(dtype))
    kw = dict(N=N, M=M, K=max(1, M // 3), thr=0.2, seed=int(torch.randint(0, 2**62, (1,), generator=gen)),
              offset=int(torch.randint(0, 2**40, (1,), generator=gen)), redraws=redraws,
              cdf=pop_cdf(col, n_items), emb=emb, sem=sem)
    got = call(ops.sample_negatives, rowptr, col, users, n_items, mode, **kw)
    want = call(R.sample_negatives, rowptr, col, users, n_items, mode, **kw)
    assert got[0].shape == (B, N) and got[0].dtype == torch.int64
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=0, atol=0, equal_nan=True)
    assert_no_positive(got[0], users, positives_of(rowptr, col))
    assert bool(((got[0] >= 0) & (got[0] < n_items)).all())
    assert not bool(torch.isnan(got[1]).any())  # every score written


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("d,M,K", [(8, 1, 1), (13, 17, 5), (64, 64, 8), (67, 33, 33), (3, 70, 2)])
def test_kernel_matches_reference_dense_rows(mode, d, M, K):
    """fp32 and int32 like the benchmarks: long rows (many rejections and replays), widths
    with and without a d % 8 tail, M not a multiple of 4 or 16, several slots per thread."""
    gen = torch.Generator().manual_seed(d * 1000 + M)
    n_users, n_items = 12, 150
    rowptr, col = random_graph(n_users, n_items, 1500, gen, torch.int32)  # ~130 of 150 items per user
    users = torch.randint(0, n_users, (97,), generator=gen)
    emb = (torch.randn(n_users, d, generator=gen), torch.randn(n_items, d, generator=gen))
    sem = (torch.randn(n_users, d + 1, generator=gen), torch.randn(n_items, d + 1, generator=gen))
    kw = dict(N=2, M=M, K=K, thr=0.1, seed=77, offset=5, redraws=8, cdf=pop_cdf(col, n_items), emb=emb, sem=sem)
    threads = torch.get_num_threads()
    try:
        for t in (1, 2):
            torch.set_num_threads(t)
            got = call(ops.sample_negatives, rowptr, col, users, n_items, mode, **kw)
            want = call(R.sample_negatives, rowptr, col, users, n_items, mode, **kw)
            for g, w in zip(got, want):
                assert torch.equal(g, w)
    finally:
        torch.set_num_threads(threads)
    assert int(got[2][0]) > 0  # rejections happened
    assert_no_positive(got[0], users, positives_of(rowptr, col))


_SCALAR_CHECK = """
import torch, sys
sys.path.insert(0, {tests!r})
from test_sampler_op import MODES, call, pop_cdf, random_graph
from llmhni_ext import reference as R
from llmhni_ext.ops import sampler as ops
gen = torch.Generator().manual_seed(8)
rowptr, col = random_graph(12, 150, 1500, gen, torch.int32)
users = torch.randint(0, 12, (41,), generator=gen)
emb = (torch.randn(12, 64, generator=gen), torch.randn(150, 64, generator=gen))
for mode in MODES:
    kw = dict(N=2, M=37, K=5, thr=0.1, seed=3, offset=2**33 + 5, redraws=8, cdf=pop_cdf(col, 150), emb=emb, sem=emb)
    got = call(ops.sample_negatives, rowptr, col, users, 150, mode, **kw)
    want = call(R.sample_negatives, rowptr, col, users, 150, mode, **kw)
    assert all(torch.equal(g, w) for g, w in zip(got, want)), mode
print("ok")
"""


@pytest.mark.skipif(not _backend.has_kernel("sample_negatives", "cpu"), reason="no compiled CPU kernel")
def test_kernel_scalar_philox_path_matches_reference():
    """LLMHNI_SAMPLER_NO_AVX2=1: the path of CPUs without AVX2 (read once, so in a fresh process)."""
    import os
    import subprocess
    import sys
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, LLMHNI_SAMPLER_NO_AVX2="1")
    env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(here), env.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, "-c", _SCALAR_CHECK.format(tests=here)], env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stdout + out.stderr


def test_llmhni_equals_reference_given_candidates():
    gen = torch.Generator().manual_seed(1)
    n_users, n_items, B, N, M, K = 40, 500, 64, 2, 64, 8
    rowptr, col = random_graph(n_users, n_items, 2000, gen)
    users = torch.randint(0, n_users, (B,), generator=gen)
    cands = torch.randint(0, n_items, (B, N, M), generator=gen)
    emb = (torch.randn(n_users, 32, generator=gen), torch.randn(n_items, 32, generator=gen))
    sem = (torch.randn(n_users, 16, generator=gen), torch.randn(n_items, 16, generator=gen))
    for thr in (-0.5, 0.0, 0.3, 1.0):
        got = call(ops.sample_negatives, rowptr, col, users, n_items, "llmhni", N=N, M=M, K=K, thr=thr,
                   candidates=cands, emb=emb, sem=sem)
        want = call(R.sample_negatives, rowptr, col, users, n_items, "llmhni", N=N, M=M, K=K, thr=thr,
                    candidates=cands, emb=emb, sem=sem)
        for g, w in zip(got, want):
            assert torch.equal(g, w)
        # semantics in float64: the choice is in the top K, passes the threshold and is the least similar
        eu, ei = emb[0].double(), emb[1].double()
        su = torch.nn.functional.normalize(sem[0].double(), dim=1)
        si = torch.nn.functional.normalize(sem[1].double(), dim=1)
        for b in range(B):
            for n in range(N):
                c = cands[b, n]
                score = ei[c] @ eu[users[b]]
                top = c[torch.sort(score, descending=True, stable=True).indices[:K]]
                cos = si[top] @ su[users[b]]
                ok = cos <= thr + 1e-5
                chosen = int(got[0][b, n])
                if bool(ok.any()):
                    assert chosen in top.tolist()
                    assert float(si[chosen] @ su[users[b]]) <= float(cos[ok].min()) + 1e-5
                else:
                    cos_all = si[c] @ su[users[b]]
                    assert float(si[chosen] @ su[users[b]]) <= float(cos_all.min()) + 1e-5
        filtered, fallbacks = int(got[2][2]), int(got[2][3])
        if thr >= 1.0:
            assert filtered == 0 and fallbacks == 0
        if thr <= -0.5:
            assert fallbacks > 0


def test_dns_returns_argmax():
    gen = torch.Generator().manual_seed(2)
    n_users, n_items, B, M = 30, 400, 50, 32
    rowptr, col = random_graph(n_users, n_items, 1000, gen)
    users = torch.randint(0, n_users, (B,), generator=gen)
    emb = (torch.randn(n_users, 64, generator=gen), torch.randn(n_items, 64, generator=gen))
    neg, scores, counts = call(ops.sample_negatives, rowptr, col, users, n_items, "dns", M=M, seed=5, emb=emb)
    # the drawn candidates are those of the uniform stream with the same M
    cands = R._sampler_draw(rowptr.long(), col.long(), users.long(), n_items, M, M, 5, 0, 64, None,
                            torch.zeros(4, dtype=torch.long))
    exact = (emb[1].double()[cands] * emb[0].double()[users].unsqueeze(1)).sum(-1)
    best = exact.max(1).values
    chosen = (emb[1].double()[neg[:, 0]] * emb[0].double()[users]).sum(-1)
    torch.testing.assert_close(chosen, best, rtol=0, atol=1e-4)
    torch.testing.assert_close(scores[:, 0].double(), chosen, rtol=0, atol=1e-4)


def test_reproducible_across_threads_and_offsets():
    gen = torch.Generator().manual_seed(3)
    n_users, n_items = 200, 300
    rowptr, col = random_graph(n_users, n_items, 8000, gen)
    users = torch.randint(0, n_users, (3000,), generator=gen)
    emb = (torch.randn(n_users, 16, generator=gen), torch.randn(n_items, 16, generator=gen))
    sem = (torch.randn(n_users, 8, generator=gen), torch.randn(n_items, 8, generator=gen))
    threads = torch.get_num_threads()
    try:
        outs = []
        for t in (1, 2, 1):
            torch.set_num_threads(t)
            outs.append(call(ops.sample_negatives, rowptr, col, users, n_items, "llmhni", M=16, K=4, seed=9,
                             offset=4, emb=emb, sem=sem))
    finally:
        torch.set_num_threads(threads)
    for o in outs[1:]:
        for a, b in zip(outs[0], o):
            assert torch.equal(a, b)
    other = call(ops.sample_negatives, rowptr, col, users, n_items, "llmhni", M=16, K=4, seed=9, offset=5,
                 emb=emb, sem=sem)
    assert (other[0] != outs[0][0]).float().mean() > 0.3
    other_seed = call(ops.sample_negatives, rowptr, col, users, n_items, "uniform", seed=10, offset=4)
    same_seed = call(ops.sample_negatives, rowptr, col, users, n_items, "uniform", seed=9, offset=4)
    assert (other_seed[0] != same_seed[0]).float().mean() > 0.5


def test_user_with_every_item_raises():
    rowptr = torch.tensor([0, 3, 4])
    col = torch.tensor([0, 1, 2, 1])
    for fn in (ops.sample_negatives, R.sample_negatives):
        with pytest.raises(RuntimeError, match="user 0 has interacted with all 3 items"):
            call(fn, rowptr, col, torch.tensor([1, 0]), 3, "uniform")
        neg = call(fn, rowptr, col, torch.tensor([1, 1]), 3, "uniform", redraws=0)[0]
        assert set(neg.flatten().tolist()) <= {0, 2}


def _bad_calls():
    rowptr, col = torch.tensor([0, 2, 3]), torch.tensor([0, 3, 1])
    users = torch.tensor([0, 1])
    emb = (torch.randn(2, 4), torch.randn(5, 4))
    yield "users has values in", dict(users=torch.tensor([0, 2]))
    yield "users has values in", dict(users=torch.tensor([-1, 0]))
    yield "users must be a 1-D int32 or int64", dict(users=torch.tensor([[0, 1]]))
    yield "users must be a 1-D int32 or int64", dict(users=torch.tensor([0.0, 1.0]))
    yield "mode must be one of", dict(mode="hard")
    yield "num_candidates must lie in", dict(M=0)
    yield "num_candidates must lie in", dict(M=5000)
    yield "num_negatives must be >= 1", dict(N=0)
    yield "top_k must lie in", dict(mode="llmhni", K=9, M=8, emb=emb, sem=emb)
    yield "max_redraws must lie in", dict(redraws=-1)
    yield "mode 'dns' needs user_emb", dict(mode="dns")
    yield "mode 'llmhni' needs user_sem", dict(mode="llmhni", emb=emb)
    yield "mode 'popularity' needs pop_cdf", dict(mode="popularity")
    yield "pop_cdf must be an int64 tensor", dict(mode="popularity", cdf=torch.ones(5))
    yield "pop_cdf must be non-decreasing", dict(mode="popularity", cdf=torch.tensor([3, 2, 5, 6, 7]))
    yield "pop_cdf must be non-decreasing", dict(mode="popularity", cdf=torch.zeros(5, dtype=torch.long))
    yield "item_emb must have shape", dict(mode="dns", emb=(emb[0], torch.randn(4, 4)))
    yield "user_emb must be float32, float16 or bfloat16", dict(mode="dns", emb=(emb[0].double(), emb[1].double()))
    yield "must share dtype and width", dict(mode="dns", emb=(emb[0], torch.randn(5, 3)))
    yield "candidates must be an int32 or int64 tensor of shape", dict(candidates=torch.zeros(2, 8, dtype=torch.long))
    yield "candidates has values in", dict(candidates=torch.full((2, 1, 8), 5))
    yield "malformed CSR", dict(col=torch.tensor([0, 3]))
    yield "users has values in", dict(rowptr=torch.tensor([0]), col=torch.zeros(0, dtype=torch.long))
    yield "move them to one device", dict(mode="dns", emb=(emb[0].to("meta"), emb[1]))


@pytest.mark.parametrize("fn", [ops.sample_negatives, R.sample_negatives], ids=["op", "reference"])
@pytest.mark.parametrize("msg,kw", list(_bad_calls()), ids=[m for m, _ in _bad_calls()])
def test_bad_input_raises(fn, msg, kw):
    args = dict(rowptr=torch.tensor([0, 2, 3]), col=torch.tensor([0, 3, 1]), users=torch.tensor([0, 1]),
                n_items=5, mode="uniform")
    kw = dict(kw)
    args.update({k: kw.pop(k) for k in list(kw) if k in args})
    with pytest.raises(RuntimeError, match=msg):
        call(fn, args["rowptr"], args["col"], args["users"], args["n_items"], args["mode"], **kw)


@pytest.mark.skipif(not _backend.has_kernel("sample_negatives", "cpu"), reason="no compiled CPU kernel")
@pytest.mark.parametrize("mode", MODES)
def test_opcheck(mode):
    gen = torch.Generator().manual_seed(4)
    rowptr, col = random_graph(10, 20, 60, gen)
    users = torch.randint(0, 10, (6,), generator=gen)
    emb = (torch.randn(10, 8, generator=gen), torch.randn(20, 8, generator=gen))
    args = (rowptr, col, users, 20, mode, 2, 6, 3, 0.5, 1, 2, 64, None, pop_cdf(col, 20), *emb, *emb)
    torch.library.opcheck(torch.ops.llmhni.sample_negatives.default, args)


def test_fake_kernel_shapes():
    if not _backend.has_kernel("sample_negatives", "cpu"):
        pytest.skip("no compiled CPU kernel")
    from torch._subclasses.fake_tensor import FakeTensorMode
    rowptr, col = torch.tensor([0, 2, 3]), torch.tensor([0, 3, 1])
    with FakeTensorMode() as m:
        u = m.from_tensor(torch.tensor([0, 1, 1]))
        neg, scores, counts = torch.ops.llmhni.sample_negatives(m.from_tensor(rowptr), m.from_tensor(col), u, 5,
                                                               "uniform", 4, 1, 1, 0.5, 0, 0, 64)
    assert neg.shape == (3, 4) and scores.shape == (0,) and counts.shape == (4,)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("redraws", [0, 64])
def test_cpu_cuda_agree(mode, dtype, redraws):
    gen = torch.Generator().manual_seed(6)
    n_users, n_items = 300, 700
    rowptr, col = random_graph(n_users, n_items, 20000, gen, torch.int32)
    users = torch.randint(0, n_users, (1000,), generator=gen)
    emb = (torch.randn(n_users, 64, generator=gen).to(dtype), torch.randn(n_items, 64, generator=gen).to(dtype))
    sem = (torch.randn(n_users, 48, generator=gen).to(dtype), torch.randn(n_items, 48, generator=gen).to(dtype))
    kw = dict(N=2, M=64, K=8, thr=0.1, seed=11, offset=3, redraws=redraws, cdf=pop_cdf(col, n_items), emb=emb, sem=sem)
    cpu = call(ops.sample_negatives, rowptr, col, users, n_items, mode, **kw)
    cu = lambda t: None if t is None else (tuple(x.cuda() for x in t) if isinstance(t, tuple) else t.cuda())  # noqa: E731
    kw_cuda = {k: cu(v) if k in ("cdf", "emb", "sem") else v for k, v in kw.items()}
    gpu = call(ops.sample_negatives, rowptr.cuda(), col.cuda(), users.cuda(), n_items, mode, **kw_cuda)
    for a, b in zip(cpu, gpu):
        assert torch.equal(a, b.cpu())
    ref = call(R.sample_negatives, rowptr, col, users, n_items, mode, **kw)
    for a, b in zip(ref, gpu):
        assert torch.equal(a, b.cpu())
