"""Graph ops on CUDA: kernels against the CPU reference twins, heavy rows split across
warps, determinism and autograd. Skipped without a GPU (bench/gpu_check.sh runs them)."""
import pytest
import torch

from llmhni_ext import _backend, graph, reference

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]
ops = torch.ops.llmhni


@pytest.fixture(autouse=True)
def _cuda_kernels():
    if not _backend.has_kernel("spmm", "cuda"):
        pytest.skip("no CUDA kernels compiled in this build")


def _graph(n_users, n_items, n_edges, seed, hub=0):
    g = torch.Generator().manual_seed(seed)
    u = torch.randint(0, max(n_users, 1), (n_edges,), generator=g)
    i = torch.randint(0, max(n_items, 1), (n_edges,), generator=g)
    if hub:  # one user and one item with very many edges: rows split across many warps
        u = torch.cat([u, torch.zeros(hub, dtype=torch.long)])
        i = torch.cat([i, torch.randint(0, n_items, (hub,), generator=g)])
        u = torch.cat([u, torch.randint(0, n_users, (hub,), generator=g)])
        i = torch.cat([i, torch.zeros(hub, dtype=torch.long)])
    return u, i


SHAPES = [(0, 0, 0, 0), (3, 4, 0, 0), (1, 1, 1, 0), (50, 70, 600, 0), (300, 200, 5000, 0),
          (2000, 3000, 20000, 0), (2000, 3000, 20000, 50000)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("d", [1, 32, 64, 100, 128, 256])
def test_spmm_cuda_matches_reference(shape, d):
    nu, ni, ne, hub = shape
    u, i = _graph(nu, ni, ne, seed=d, hub=hub)
    rp, c, v = reference.bipartite_norm_adj(u, i, nu, ni)
    x = torch.randn(nu + ni, d)
    want = reference.spmm(rp, c, v, x)
    got = ops.spmm(rp.cuda(), c.cuda(), v.cuda(), x.cuda())
    torch.testing.assert_close(got.cpu(), want, rtol=1e-4, atol=1e-5)
    got_b = ops.spmm(rp.cuda(), c.cuda(), None, x.cuda())
    torch.testing.assert_close(got_b.cpu(), reference.spmm(rp, c, None, x), rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_spmm_cuda_dtypes(dtype):
    u, i = _graph(300, 200, 5000, seed=3, hub=3000)
    rp, c, v = reference.bipartite_norm_adj(u, i, 300, 200)
    x = torch.randn(500, 64).to(dtype)
    exact = reference.spmm(rp, c, v.double(), x.double())
    ref_err = (reference.spmm(rp, c, v, x).double() - exact).abs().max().item()
    got = ops.spmm(rp.cuda(), c.cuda(), v.cuda(), x.cuda()).cpu()
    assert got.dtype == dtype
    assert (got.double() - exact).abs().max().item() <= 2 * ref_err + torch.finfo(dtype).eps * exact.abs().max().item()


def test_construction_cuda_matches_cpu():
    u, i = _graph(2000, 3000, 20000, seed=5, hub=5000)
    for idx in (torch.int32, torch.int64):
        got = ops.bipartite_norm_adj(u.to(idx).cuda(), i.to(idx).cuda(), 2000, 3000)
        want = reference.bipartite_norm_adj(u, i, 2000, 3000)
        assert torch.equal(got[0].cpu(), want[0]) and torch.equal(got[1].cpu(), want[1])
        torch.testing.assert_close(got[2].cpu(), want[2], rtol=1e-6, atol=0)
        r = ops.csr_from_coo(u.to(idx).cuda(), i.to(idx).cuda(), 2000, 3000)
        for a, b in zip(r, reference.csr_from_coo(u, i, 2000, 3000)):
            assert torch.equal(a.cpu(), b)
    rp, c = reference.csr_from_coo(u, i, 2000, 3000)
    for a, b in zip(ops.csr_transpose(rp.cuda(), c.cuda(), 3000), reference.csr_transpose(rp, c, 3000)):
        assert torch.equal(a.cpu(), b)


def test_propagate_and_grads_cuda_match_cpu_and_are_deterministic():
    u, i = _graph(2000, 3000, 20000, seed=7, hub=20000)
    adj = graph.normalized_bipartite_adj(u, i, 2000, 3000)
    cadj = adj.to("cuda")
    x = torch.randn(5000, 64)
    xc = x.cuda().requires_grad_()
    runs = []
    for _ in range(2):
        y = graph.propagate(cadj, xc, 3)
        (g,) = torch.autograd.grad((y * y).sum(), xc)
        runs.append((y.detach(), g))
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])
    xr = x.clone().requires_grad_()
    yr = reference.lightgcn_propagate(adj.rowptr, adj.col, adj.value, xr, [0.25] * 4)
    (gr,) = torch.autograd.grad((yr * yr).sum(), xr)
    torch.testing.assert_close(runs[0][0].cpu(), yr.detach(), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(runs[0][1].cpu(), gr, rtol=1e-4, atol=1e-4)


def test_spmm_value_grad_and_sddmm_cuda():
    u, i = _graph(300, 200, 5000, seed=9, hub=2000)
    rp, c, v = reference.bipartite_norm_adj(u, i, 300, 200)
    x = torch.randn(500, 32, dtype=torch.float64)
    vc = v.double().cuda().requires_grad_()
    xc = x.cuda().requires_grad_()
    assert torch.autograd.gradcheck(lambda v, x: ops.spmm(rp.cuda(), c.cuda(), v, x), (vc, xc), fast_mode=True)
    a = torch.randn(500, 32)
    torch.testing.assert_close(ops.csr_sddmm(rp.cuda(), c.cuda(), a.cuda(), a.cuda()).cpu(),
                               reference.csr_sddmm(rp, c, a, a), rtol=1e-4, atol=1e-4)


def test_cuda_errors_are_clear():
    rp, c, v = reference.bipartite_norm_adj(torch.tensor([0, 1]), torch.tensor([1, 0]), 2, 2)
    with pytest.raises(RuntimeError, match="spmm: col has values in"):
        ops.spmm(rp.cuda(), c.cuda(), v.cuda(), torch.randn(3, 4, device="cuda"))
    with pytest.raises(RuntimeError, match="spmm: rowptr is on cuda.* but col is on cpu"):
        ops.spmm(rp.cuda(), c, v.cuda(), torch.randn(4, 4, device="cuda"))
