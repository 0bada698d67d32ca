"""The baselines of the paper's table, each against what its own paper defines."""
import math

import pytest
import torch
import torch.nn.functional as F

from llmhni_ext import pipeline
from llmhni_ext.config import RunConfig
from llmhni_ext.methods import REGISTRY
from llmhni_ext.methods.bod import gradient_mismatch, uniformity, weighted_alignment, weighted_bpr
from llmhni_ext.train import Trainer

from test_train_support import tiny_dataset, tiny_signals


def cfg_for(method, backbone="lightgcn", **method_kw):
    cfg = RunConfig()
    cfg.method.name, cfg.model.backbone, cfg.model.dim, cfg.model.layers = method, backbone, 16, 2
    cfg.train.epochs, cfg.train.batch_size, cfg.train.progress, cfg.train.lr = 2, 64, False, 0.01
    for k, v in method_kw.items():
        setattr(cfg.method, k, v)
    return cfg.validate()


def test_wbpr_draws_negatives_in_proportion_to_popularity():
    ds = tiny_dataset(n_users=60, n_items=40)
    tr = Trainer(cfg_for("wbpr"), ds)
    assert tr.method.sampler_mode == "popularity"
    spec = tr.method.sampler_spec()
    assert (spec.mode, spec.alpha) == ("popularity", 1.0)
    user = 0
    mine = set(ds.train.items[ds.train.users == user].tolist())
    neg = tr.sampler.sample(torch.full((20000,), user), spec=spec)
    freq = torch.bincount(neg, minlength=40).double()
    deg = torch.bincount(tr.method.graph.items, minlength=40).double()
    other = torch.tensor([j for j in range(40) if j not in mine])
    want = deg[other] / deg[other].sum()
    got = freq[other] / freq.sum()
    assert freq[list(mine)].sum() == 0
    torch.testing.assert_close(got, want, atol=0.01, rtol=0.1)


def test_xsimgcl_contrasts_layer_l_with_the_noisy_mean_and_predicts_without_noise():
    ds = tiny_dataset()
    tr = Trainer(cfg_for("xsimgcl", xsimgcl_layer=1), ds)
    a, b = tr.representations(), tr.representations()
    assert torch.equal(a[0], b[0])                         # no noise at prediction
    from llmhni_ext import graph
    e = tr.model.ego()
    x1 = graph.spmm(tr.method.graph.adj, e)
    x2 = graph.spmm(tr.method.graph.adj, x1)
    torch.testing.assert_close(torch.cat(a), (x1 + x2) / 2)   # layers 1..K, no layer 0
    out = tr.train_step(0, 0)
    assert "cl" in out and out["cl"] > 0
    with pytest.raises(ValueError, match="model.backbone: method 'xsimgcl' is defined for lightgcn only"):
        Trainer(cfg_for("xsimgcl", "ngcf"), ds)
    with pytest.raises(ValueError, match="xsimgcl_layer"):
        Trainer(cfg_for("xsimgcl", xsimgcl_layer=3), ds)


@pytest.mark.parametrize("method", ["rlmrec-con", "rlmrec-gen"])
def test_rlmrec_trains_its_projection_and_needs_profile_embeddings(method):
    ds = tiny_dataset()
    sig = tiny_signals(ds)
    tr = Trainer(cfg_for(method), ds, signals=sig)
    before = [p.detach().clone() for p in tr.method.parameters()]
    assert before and all(any(p is q for g in tr.opt.param_groups for q in g["params"]) for p in tr.method.parameters())
    out = tr.train_step(0, 0)
    key = "kd" if method == "rlmrec-con" else "gen"
    assert out[key] > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, tr.method.parameters()))
    assert REGISTRY[method].needs_signals == "texts"
    with pytest.raises(ValueError, match="text embeddings"):
        Trainer(cfg_for(method), ds, signals=None)


def test_rlmrec_gen_masks_a_share_of_the_nodes_with_the_token():
    ds = tiny_dataset()
    tr = Trainer(cfg_for("rlmrec-gen", rlmrec_mask_ratio=0.2), ds, signals=tiny_signals(ds))
    from llmhni_ext.methods import Step
    step = Step(0, 0, 0, torch.arange(4), torch.arange(4), torch.Generator())
    tr.method.representations(step)
    seeds = step.scratch["seeds"]
    assert seeds.numel() == round(0.2 * (ds.n_users + ds.n_items)) and seeds.unique().numel() == seeds.numel()


def test_text_only_methods_skip_the_judge(monkeypatch):
    seen = {}
    import llmhni_ext.signals as S
    monkeypatch.setattr(S, "prepare_signals", lambda ds, scfg, **kw: seen.update(judge=scfg.judge, bb=kw))
    cfg = cfg_for("rlmrec-con")
    cfg.signals = cfg.signals.replace(judge="embedding")
    pipeline.signals_for(cfg, tiny_dataset(), None, progress=False)
    assert seen["judge"] == "none" and seen["bb"]["backbone_embeddings"] is None


def test_bod_losses_match_their_equations():
    g = torch.Generator().manual_seed(0)
    zu, zi, zj = (torch.randn(5, 4, generator=g) for _ in range(3))
    wp, wn = torch.rand(5, generator=g), torch.rand(5, generator=g)
    want = -sum(math.log(1e-7 + 1 / (1 + math.exp(-(wp[k] * zu[k] @ zi[k] - wn[k] * zu[k] @ zj[k]))))
                for k in range(5)) / 5
    assert weighted_bpr(zu, zi, zj, wp, wn).item() == pytest.approx(float(want), rel=1e-5)
    nu, ni = F.normalize(zu, dim=1), F.normalize(zi, dim=1)
    assert weighted_alignment(zu, zi, wp).item() == pytest.approx(
        float(sum(wp[k] * ((nu[k] - ni[k]) ** 2).sum() for k in range(5)) / 5), rel=1e-5)
    pairs = [((nu[a] - nu[b]) ** 2).sum() for a in range(5) for b in range(a + 1, 5)]
    assert uniformity(zu).item() == pytest.approx(math.log(sum(math.exp(-2 * float(p)) for p in pairs) / 10),
                                                  rel=1e-5)
    a, b = torch.randn(6, 3, generator=g), torch.randn(6, 3, generator=g)
    want = sum(1 - F.cosine_similarity(a[:, c], b[:, c], dim=0) for c in range(3))
    assert gradient_mismatch([a, torch.ones(3)], [b, torch.zeros(3)]).item() == pytest.approx(float(want), rel=1e-4)
    assert gradient_mismatch([a], [a]).item() == pytest.approx(0.0, abs=1e-5)


def test_bod_updates_its_generator_once_per_epoch():
    ds = tiny_dataset(noise=10)
    tr = Trainer(cfg_for("bod"), ds)
    gen0 = [p.detach().clone() for p in tr.method.generator.parameters()]
    for s in range(tr.steps_per_epoch):
        tr.train_step(0, s)
    assert all(torch.equal(a, b) for a, b in zip(gen0, tr.method.generator.parameters()))
    tr.method.on_epoch_end(0)
    assert any(not torch.equal(a, b) for a, b in zip(gen0, tr.method.generator.parameters()))
    w = tr.method.generator(torch.randn(7, 16), torch.randn(7, 16))
    assert w.shape == (7,) and bool(((w > 0) & (w < 1)).all())


@pytest.mark.parametrize("n,d,block", [(2, 3, 256), (3, 5, 2), (37, 8, 5), (64, 16, 64), (300, 64, 128), (257, 256, 256)])
def test_bod_uniformity_matches_the_pdist_formula(n, d, block):
    """The tiled uniformity has the value and gradient of ``log mean exp(-t pdist(x~)^2)`` (the
    alignment/uniformity authors' formula, here in float64 as the oracle), on ragged tilings too,
    at least as accurately as that formula in float32, and is deterministic."""
    g = torch.Generator().manual_seed(n * 1000 + d)
    x = torch.randn(n, d, generator=g, requires_grad=True)

    def pdist_formula(a):
        return torch.pdist(F.normalize(a, dim=-1), p=2).pow(2).mul(-2.0).exp().mean().log()

    x64 = x.detach().double().requires_grad_()
    want = pdist_formula(x64)
    (g_want,) = torch.autograd.grad(want, x64)
    (g_f32,) = torch.autograd.grad(pdist_formula(x), x)
    got = uniformity(x, block=block)
    (g_got,) = torch.autograd.grad(got, x)
    assert got.item() == pytest.approx(want.item(), abs=1e-5)
    scale = float(g_want.abs().max())
    err = float((g_got.double() - g_want).abs().max())
    assert err <= 1e-5 * scale and err <= float((g_f32.double() - g_want).abs().max()) + 1e-7 * scale
    again = uniformity(x, block=block)
    assert torch.equal(again.detach(), got.detach())
    assert torch.equal(torch.autograd.grad(again, x)[0], g_got)


def test_bod_uniformity_gradcheck_and_small_batches():
    x = torch.randn(11, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: uniformity(a, 2.0, 3), (x,))
    assert uniformity(torch.randn(1, 4)).item() == 0.0
    assert uniformity(torch.randn(0, 4)).item() == 0.0
