"""Batched cosine InfoNCE: values and gradients equal the reference twin (normalise,
matmul, cross-entropy) for many batch sizes, widths, temperatures and dtypes; float64
gradcheck; opcheck; empty batches, zero vectors, determinism and clear errors."""
import warnings

import pytest
import torch
import torch.nn.functional as F

from llmhni_ext import _backend, reference
from llmhni_ext.contrastive import infonce

warnings.simplefilter("ignore", _backend.BackendWarning)

needs_cpu_kernel = pytest.mark.skipif(not _backend.has_kernel("infonce", "cpu"),
                                      reason="no compiled CPU kernel (reference backend)")

EPS = {torch.float64: 1e-12, torch.float32: 2e-6, torch.bfloat16: 2 ** -7, torch.float16: 2 ** -10}


@pytest.fixture
def fill_uninitialized():
    torch.use_deterministic_algorithms(True)
    torch.utils.deterministic.fill_uninitialized_memory = True
    yield
    torch.use_deterministic_algorithms(False)


def _inputs(P, B, d, dtype, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed + 1000 * B + d)
    a = (torch.randn(P, B, d, generator=g) * scale).to(dtype)
    # b correlated with a, like two views of one node
    b = (a.float() + 0.7 * torch.randn(P, B, d, generator=g) * scale).to(dtype)
    return a, b


def _close(got, want, dtype, what, term=0.0):
    """Within a few units of the dtype's precision, relative to the reference's magnitude
    (or to the size ``term`` of the terms that cancel into it, when that is larger)."""
    tol = 4 * EPS[dtype]
    scale = max(want.double().abs().max().item() if want.numel() else 0.0, term)
    err = (got.double() - want.double()).abs().max().item() if want.numel() else 0.0
    assert err <= tol * max(scale, 1e-30) + (1e-30 if dtype == torch.float64 else 1e-12), \
        f"{what}: max error {err:.3g} vs scale {scale:.3g} ({dtype})"


CASES = [  # P, B, d, temperature
    (1, 1, 16, 0.2), (1, 2, 16, 0.05), (2, 37, 32, 1.0), (1, 300, 64, 0.1), (3, 129, 128, 0.5),
    (2, 2049, 64, 0.2), (1, 4100, 16, 0.05),
]


@needs_cpu_kernel
@pytest.mark.parametrize("P,B,d,t", CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
def test_op_equals_reference(P, B, d, t, dtype, fill_uninitialized):
    if dtype in (torch.float64, torch.float16, torch.bfloat16) and B > 2100:
        pytest.skip("largest batch checked in float32 only (time)")
    a, b = _inputs(P, B, d, dtype)
    loss, lse = torch.ops.llmhni.infonce(a, b, t)
    loss_r, lse_r = reference.infonce(a, b, t)
    assert loss.dtype == dtype and loss.shape == (P,)
    assert lse.shape == (P, B) and lse.dtype == lse_r.dtype
    # the loss is lse - s_ii, two terms of size up to 1 / t
    _close(loss, loss_r, dtype, "loss", 1.0 / t)
    _close(lse, lse_r, torch.float64 if dtype == torch.float64 else torch.float32, "lse", 1.0 / t)
    g = torch.rand(P, generator=torch.Generator().manual_seed(3)).to(dtype) + 0.5
    ga, gb = torch.ops.llmhni.infonce_backward(g, a, b, lse, t)
    ga_r, gb_r = reference.infonce_backward(g, a, b, lse_r, t)
    assert ga.dtype == dtype and ga.shape == a.shape and gb.shape == b.shape
    # each gradient row sums terms of size g / (t * B * |x|)
    term = 1.5 / (t * B * a.float().norm(dim=-1).mean().item())
    _close(ga, ga_r, dtype, "grad a", term)
    _close(gb, gb_r, dtype, "grad b", term)


@pytest.mark.parametrize("shape", [(5, 16), (2, 64, 32)])
def test_api_gradients_equal_plain_pytorch(shape):
    """The public function against the way SGL writes it (F.normalize, matmul, cross_entropy)."""
    a = torch.randn(*shape, requires_grad=True)
    b = torch.randn(*shape, requires_grad=True)
    loss = infonce(a, b, 0.2)
    assert loss.shape == shape[:-2]
    (loss.sum() if loss.dim() else loss).backward()
    a2, b2 = a.detach().clone().requires_grad_(), b.detach().clone().requires_grad_()
    an, bn = F.normalize(a2, dim=-1), F.normalize(b2, dim=-1)
    s = an @ bn.transpose(-1, -2) / 0.2
    target = torch.arange(shape[-2])
    want = torch.stack([F.cross_entropy(x, target) for x in s.reshape(-1, *s.shape[-2:])])
    want.sum().backward()
    torch.testing.assert_close(loss.reshape(-1), want, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(a.grad, a2.grad, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(b.grad, b2.grad, rtol=1e-4, atol=1e-6)


def test_gradcheck_float64():
    a = torch.randn(2, 7, 5, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, 7, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, y: infonce(x, y, 0.3), (a, b))
    a1 = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    b1 = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, y: infonce(x, y, 0.07), (a1, b1))


@needs_cpu_kernel
def test_opcheck():
    a, b = _inputs(2, 9, 8, torch.float32)
    a.requires_grad_(True)
    b.requires_grad_(True)
    torch.library.opcheck(torch.ops.llmhni.infonce, (a, b, 0.2))
    _, lse = torch.ops.llmhni.infonce(a.detach(), b.detach(), 0.2)
    torch.library.opcheck(torch.ops.llmhni.infonce_backward, (torch.ones(2), a.detach(), b.detach(), lse, 0.2))


def test_empty_batch_and_no_pairs():
    for shape in [(0, 8), (3, 0, 8), (0, 4, 8)]:
        a = torch.randn(*shape, requires_grad=True)
        b = torch.randn(*shape, requires_grad=True)
        loss = infonce(a, b, 0.2)
        assert loss.shape == shape[:-2] and bool((loss == 0).all())
        loss.sum().backward()
        assert a.grad.shape == a.shape and bool((a.grad == 0).all())


def test_zero_vectors_are_finite_and_match_reference():
    a, b = _inputs(1, 6, 4, torch.float32)
    a[0, 2] = 0
    b[0, 4] = 0
    a.requires_grad_(True)
    b.requires_grad_(True)
    loss = infonce(a, b, 0.5)
    loss.sum().backward()
    assert torch.isfinite(loss).all() and torch.isfinite(a.grad).all() and torch.isfinite(b.grad).all()
    ar, br = a.detach().clone().requires_grad_(), b.detach().clone().requires_grad_()
    lr, _ = reference.infonce(ar, br, 0.5)
    lr.sum().backward()
    torch.testing.assert_close(loss, lr)
    torch.testing.assert_close(a.grad, ar.grad, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(b.grad, br.grad, rtol=1e-4, atol=1e-6)


def test_deterministic():
    a, b = _inputs(2, 1500, 64, torch.float32, seed=5)
    out = []
    for _ in range(2):
        x, y = a.clone().requires_grad_(), b.clone().requires_grad_()
        loss = infonce(x, y, 0.1)
        loss.sum().backward()
        out.append((loss.detach(), x.grad, y.grad))
    threads = torch.get_num_threads()
    try:  # and whatever the thread count
        torch.set_num_threads(1)
        x, y = a.clone().requires_grad_(), b.clone().requires_grad_()
        loss = infonce(x, y, 0.1)
        loss.sum().backward()
        out.append((loss.detach(), x.grad, y.grad))
    finally:
        torch.set_num_threads(threads)
    for run in out[1:]:
        for u, v in zip(out[0], run):
            assert torch.equal(u, v)


def test_low_temperature_is_stable():
    a, b = _inputs(1, 200, 32, torch.float32, seed=6)
    loss = infonce(a, b, 0.01)
    want, _ = reference.infonce(a, b, 0.01)
    assert torch.isfinite(loss).all()
    torch.testing.assert_close(loss, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case,exc,match", [
    ("shape", ValueError, "same shape"),
    ("dim", ValueError, r"\[B, d\]"),
    ("temperature", ValueError, "temperature"),
    ("nan_temperature", ValueError, "temperature"),
    ("int", RuntimeError, "float32, float64, float16 or bfloat16"),
    ("mixed", RuntimeError, "share one dtype"),
])
def test_bad_input_raises_clear_errors(case, exc, match):
    a, b, t = torch.randn(4, 8), torch.randn(4, 8), 0.2
    if case == "shape":
        b = torch.randn(5, 8)
    elif case == "dim":
        a, b = torch.randn(8), torch.randn(8)
    elif case == "temperature":
        t = 0.0
    elif case == "nan_temperature":
        t = float("nan")
    elif case == "int":
        a, b = a.long(), b.long()
    elif case == "mixed":
        b = b.double()
    with pytest.raises(exc, match=match):
        infonce(a, b, t)


@needs_cpu_kernel
def test_op_checks_shapes_of_backward_inputs():
    a, b = _inputs(2, 5, 4, torch.float32)
    with pytest.raises(RuntimeError, match="infonce_backward: lse must have shape"):
        torch.ops.llmhni.infonce_backward(torch.ones(2), a, b, torch.zeros(2, 4), 0.2)
    with pytest.raises(RuntimeError, match="infonce_backward: grad_loss must have shape"):
        torch.ops.llmhni.infonce_backward(torch.ones(3), a, b, torch.zeros(2, 5), 0.2)
    with pytest.raises(RuntimeError, match="infonce: a \\(\\[P, B, d\\]\\) must be 3-D"):
        torch.ops.llmhni.infonce(a[0], b[0], 0.2)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("P,B,d,t", CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cuda_equals_reference(P, B, d, t, dtype):
    a, b = _inputs(P, B, d, dtype)
    a, b = a.cuda().requires_grad_(), b.cuda().requires_grad_()
    loss = infonce(a, b, t)
    g = torch.rand(P, device="cuda").to(dtype) + 0.5
    (loss * g).sum().backward()
    loss_r, lse_r = reference.infonce(a.detach().cpu(), b.detach().cpu(), t)
    ga_r, gb_r = reference.infonce_backward(g.cpu(), a.detach().cpu(), b.detach().cpu(), lse_r, t)
    _close(loss.detach().cpu(), loss_r, dtype, "loss", 1.0 / t)
    term = 1.5 / (t * B * a.detach().float().norm(dim=-1).mean().item())
    _close(a.grad.cpu(), ga_r, dtype, "grad a", term)
    _close(b.grad.cpu(), gb_r, dtype, "grad b", term)
