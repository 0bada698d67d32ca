"""Each loss against its equation, written out by hand on tiny inputs."""
import math

import pytest
import torch

from llmhni_ext import losses


def sig(x):
    return 1.0 / (1.0 + math.exp(-x))


def test_bpr_matches_equation():
    pos = torch.tensor([2.0, -1.0, 0.5])
    neg = torch.tensor([1.0, 0.0, 0.5])
    want = -(math.log(sig(1.0)) + math.log(sig(-1.0)) + math.log(sig(0.0))) / 3
    assert losses.bpr_loss(pos, neg).item() == pytest.approx(want, rel=1e-6)


def test_bpr_several_negatives_averages_pairs():
    pos = torch.tensor([1.0, 2.0])
    neg = torch.tensor([[0.0, 1.0], [3.0, 2.0]])
    want = -(math.log(sig(1.0)) + math.log(sig(0.0)) + math.log(sig(-1.0)) + math.log(sig(0.0))) / 4
    assert losses.bpr_loss(pos, neg).item() == pytest.approx(want, rel=1e-6)


def test_l2_reg_is_half_squared_norm_over_batch():
    e = torch.tensor([[1.0, 2.0], [3.0, -1.0]])
    assert losses.l2_reg(e, batch_size=4).item() == pytest.approx((1 + 4 + 9 + 1) / (2 * 4))
    assert losses.l2_reg(e[:1], e[1:], batch_size=2).item() == pytest.approx(15 / 4)


def _infonce_by_hand(a, b, tau):
    a = [[v / math.sqrt(sum(w * w for w in x)) for v in x] for x in a.tolist()]
    b = [[v / math.sqrt(sum(w * w for w in x)) for v in x] for x in b.tolist()]
    tot = 0.0
    for i, ai in enumerate(a):
        s = [sum(p * q for p, q in zip(ai, bj)) / tau for bj in b]
        tot += -(s[i] - math.log(sum(math.exp(v) for v in s)))
    return tot / len(a)


def test_de_loss_is_crossgraph_infonce_over_users_and_items():
    g = torch.Generator().manual_seed(1)
    z_g, z_gp = torch.randn(7, 3, generator=g), torch.randn(7, 3, generator=g)
    users, items = torch.tensor([0, 2]), torch.tensor([4, 5, 6])
    want = _infonce_by_hand(z_g[users], z_gp[users], 0.5) + _infonce_by_hand(z_g[items], z_gp[items], 0.5)
    assert losses.de_loss(z_g, z_gp, users, items, 0.5).item() == pytest.approx(want, rel=1e-5)


def test_hal_and_ssl_losses_match_equation():
    g = torch.Generator().manual_seed(2)
    a, b = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    users, items = torch.tensor([1, 0]), torch.tensor([3, 5])
    want = _infonce_by_hand(a[users], b[users], 0.2) + _infonce_by_hand(a[items], b[items], 0.2)
    assert losses.hal_loss(a, b, users, items, 0.2).item() == pytest.approx(want, rel=1e-5)
    assert losses.ssl_loss(a, b, users, items, 0.2).item() == pytest.approx(want, rel=1e-5)


def test_infonce_empty_batch_is_zero():
    z = torch.randn(5, 3)
    assert losses.infonce(z[:0], z[:0], 0.2).item() == 0.0


def test_objective_combines_terms():
    r, d, h = torch.tensor(1.0), torch.tensor(2.0), torch.tensor(3.0)
    assert losses.objective(r, {"de": (0.1, d), "hal": (0.5, h)}).item() == pytest.approx(1 + 0.2 + 1.5)
    assert losses.objective(r, {"hal": (0.5, h)}).item() == pytest.approx(2.5)
    assert losses.objective(r, {}).item() == pytest.approx(1.0)


def test_tce_drops_largest_losses():
    pos = torch.tensor([3.0, -4.0])   # BCE: small, large
    neg = torch.tensor([-3.0, 5.0])   # BCE: small, large
    bce = [-math.log(sig(3.0)), -math.log(sig(-4.0)), -math.log(1 - sig(-3.0)), -math.log(1 - sig(5.0))]
    keep = sorted(bce)[:2]
    assert losses.tce_loss(pos, neg, 0.5).item() == pytest.approx(sum(keep) / 2, rel=1e-5)
    assert losses.tce_loss(pos, neg, 0.0).item() == pytest.approx(sum(bce) / 4, rel=1e-5)


def test_tce_schedule():
    assert losses.tce_drop_rate(0, 0.2, 10) == 0.0
    assert losses.tce_drop_rate(5, 0.2, 10) == pytest.approx(0.1)
    assert losses.tce_drop_rate(50, 0.2, 10) == pytest.approx(0.2)


def test_rce_weights_by_detached_prediction():
    pos = torch.tensor([1.0, -2.0], requires_grad=True)
    neg = torch.tensor([0.5, -1.0], requires_grad=True)
    beta = 0.5
    terms = [sig(1.0) ** beta * -math.log(sig(1.0)), sig(-2.0) ** beta * -math.log(sig(-2.0)),
             (1 - sig(0.5)) ** beta * -math.log(1 - sig(0.5)), (1 - sig(-1.0)) ** beta * -math.log(1 - sig(-1.0))]
    loss = losses.rce_loss(pos, neg, beta)
    assert loss.item() == pytest.approx(sum(terms) / 4, rel=1e-5)
    loss.backward()
    # the weight is a constant: d/ds of w * -log(sig(s)) = -w * (1 - sig(s)) / 4
    assert pos.grad[0].item() == pytest.approx(-(sig(1.0) ** beta) * (1 - sig(1.0)) / 4, rel=1e-5)
