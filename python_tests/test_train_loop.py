"""End-to-end training runs (seconds, CPU): every method and backbone, the synthetic world,
a slice of MovieLens-100K, exact resume after an interruption mid-epoch."""
import json
import os

import pytest
import torch

from llmhni_ext.config import RunConfig
from llmhni_ext.methods import METHODS
from llmhni_ext.methods import Step
from llmhni_ext.methods.llmhni import cap_per_item, denoised_edges
from llmhni_ext.pipeline import load_run_dataset, run_training
from llmhni_ext.train import Interrupted, Trainer

from test_train_support import tiny_dataset, tiny_signals

ML100K = "/work/shared/data"


def small_cfg(method="bpr", backbone="lightgcn", epochs=2, **train):
    cfg = RunConfig()
    cfg.method.name, cfg.model.backbone = method, backbone
    cfg.model.dim, cfg.model.layers = 16, 2
    cfg.method.num_candidates, cfg.method.top_k = 8, 4
    cfg.train.epochs, cfg.train.batch_size, cfg.train.progress, cfg.train.lr = epochs, 64, False, 0.01
    for k, v in train.items():
        setattr(cfg.train, k, v)
    return cfg.validate()


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_trains(method):
    ds = tiny_dataset(noise=15)
    sig = tiny_signals(ds)
    res = Trainer(small_cfg(method), ds, signals=sig).fit()
    assert res["best_epoch"] >= 1
    for k in ("recall@10", "recall@20", "ndcg@10", "ndcg@20"):
        assert 0.0 <= res["test"][k] <= 1.0
    assert res["test"]["users"] == 40
    assert res["environment"]["torch"] == torch.__version__ and "backend" in res["environment"]


@pytest.mark.parametrize("backbone", ["mf", "lightgcn", "ngcf"])
def test_backbones_learn(backbone):
    ds = tiny_dataset()
    cfg = small_cfg("bpr", backbone, epochs=15)
    tr = Trainer(cfg, ds)
    before = tr.evaluate("valid")["recall@20"]
    res = tr.fit()
    # two taste clusters: a trained model must rank the user's cluster first
    assert res["valid"]["recall@20"] > before and res["valid"]["recall@20"] > 0.45


def test_denoised_graph_and_quality():
    ds = tiny_dataset(noise=15)
    sig = tiny_signals(ds)
    tr = Trainer(small_cfg("llmhni"), ds, signals=sig)
    q = tr.quality
    assert q["removed"] == 15 and q["added"] == 5
    assert q["removed_vs_noise"]["precision"] == 1.0 and q["removed_vs_noise"]["recall"] == 1.0
    assert tr.method.graph is tr.method.Gp and tr.method.Gp.adj.nnz == 2 * (len(ds.train) - 15 + 5)
    u, i = denoised_edges(torch.tensor([0, 0, 1]), torch.tensor([1, 2, 0]), 3,
                          torch.tensor([[1], [2]]), torch.tensor([[0], [2]]))
    assert list(zip(u.tolist(), i.tolist())) == [(0, 1), (1, 0), (1, 2)]
    cfg = small_cfg("llmhni")
    cfg.method.predict_graph = "original"
    assert Trainer(cfg, ds, signals=sig).method.graph is not None
    assert Trainer(small_cfg("llmhni-wo-denoise"), ds, signals=sig).method.Gp is None


def test_hard_edges_capped_per_item_keep_the_first_of_each_item():
    """method.hard_per_item=c: at most c added edges per item, the first ones in the signals'
    order (most suspicious users first); 0 adds them all; the other edges are untouched."""
    hard = torch.tensor([[5, 6, 7, 8, 9, 4], [2, 3, 2, 2, 3, 1]])
    assert cap_per_item(hard, 0).tolist() == hard.tolist()
    assert cap_per_item(hard, 1).tolist() == [[5, 6, 4], [2, 3, 1]]
    assert cap_per_item(hard, 2).tolist() == [[5, 6, 7, 9, 4], [2, 3, 2, 3, 1]]
    assert cap_per_item(torch.zeros(2, 0, dtype=torch.long), 1).shape == (2, 0)
    g = torch.Generator().manual_seed(0)
    for _ in range(20):                       # against a plain loop on random lists
        e = torch.randint(0, 6, (2, int(torch.randint(0, 40, (1,), generator=g))), generator=g)
        c = int(torch.randint(1, 4, (1,), generator=g))
        seen, want = {}, []
        for j in range(e.shape[1]):
            it = int(e[1, j]); seen[it] = seen.get(it, 0) + 1
            if seen[it] <= c:
                want.append(j)
        assert cap_per_item(e, c).tolist() == e[:, want].tolist()
    u, i = denoised_edges(torch.tensor([0]), torch.tensor([0]), 4, torch.tensor([[1, 2, 3], [2, 2, 1]]),
                          torch.zeros(2, 0, dtype=torch.long), hard_per_item=1)
    assert list(zip(u.tolist(), i.tolist())) == [(0, 0), (1, 2), (3, 1)]
    ds = tiny_dataset(noise=15)
    cfg = small_cfg("llmhni")
    cfg.method.hard_per_item = 1
    q = Trainer(cfg, ds, signals=tiny_signals(ds)).quality
    assert q["removed"] == 15 and 1 <= q["added"] <= 5


def test_aux_terms_every_nth_step_weighted_and_capped(monkeypatch):
    """method.aux_every=n: L_de and L_hal only on every n-th step, weighted n * lambda;
    method.aux_max_nodes: at most that many users (and items) contrasted, seeded per step."""
    ds = tiny_dataset(noise=15)
    sig = tiny_signals(ds)
    cfg = small_cfg("llmhni", batch_size=32)
    cfg.method.lambda_de, cfg.method.lambda_hal = 0.05, 0.02
    cfg.method.aux_every, cfg.method.aux_max_nodes = 3, 5
    tr = Trainer(cfg.validate(), ds, signals=sig)
    seen = []
    import llmhni_ext.losses as L
    orig = L.infonce
    monkeypatch.setattr(L, "infonce", lambda a, b, tau: (seen.append(a.shape[0]), orig(a, b, tau))[1])
    aux_steps = []
    for s in range(tr.steps_per_epoch):
        out = tr.train_step(0, s)
        if "de" in out:
            aux_steps.append(s)
            assert "hal" in out
    assert aux_steps == [s for s in range(tr.steps_per_epoch) if s % 3 == 0]
    assert seen and max(seen) <= 5          # users and items each capped at 5 nodes
    # reproducible: the node subset is a function of (seed, epoch, step)
    step = Step(1, 2, 0, torch.arange(40), torch.arange(50), torch.Generator())
    a = Trainer(cfg, ds, signals=sig).method._aux_nodes(step)
    b = Trainer(cfg, ds, signals=sig).method._aux_nodes(step)
    assert all(torch.equal(x, y) for x, y in zip(a, b)) and a[0].numel() == 5 and a[1].numel() == 5
    assert len(set(a[0].tolist())) == 5


def test_aux_weight_is_n_lambda():
    ds = tiny_dataset(noise=15)
    sig = tiny_signals(ds)
    vals = {}
    for n in (1, 4):
        cfg = small_cfg("llmhni", batch_size=32)
        cfg.method.aux_every = n
        tr = Trainer(cfg.validate(), ds, signals=sig)
        vals[n] = tr.train_step(0, 0)       # step 0 is an aux step for every n; same init and batch
    assert vals[4]["de"] == pytest.approx(4 * vals[1]["de"], rel=1e-5)
    assert vals[4]["hal"] == pytest.approx(4 * vals[1]["hal"], rel=1e-5)
    assert vals[4]["rec"] == pytest.approx(vals[1]["rec"], rel=1e-6)


def test_llmhni_needs_signals():
    with pytest.raises(ValueError, match="needs the signals"):
        Trainer(small_cfg("llmhni"), tiny_dataset())


def _params(tr):
    return {k: v.clone() for k, v in tr.model.state_dict().items()}


@pytest.mark.parametrize("method", ["bpr", "llmhni", "sgl", "xsimgcl", "rlmrec-gen", "bod"])
def test_resume_mid_epoch_equals_uninterrupted(tmp_path, method):
    ds = tiny_dataset(noise=10)
    sig = tiny_signals(ds)
    cfg = small_cfg(method, epochs=3, batch_size=32)
    full = Trainer(cfg, ds, signals=sig, out_dir=str(tmp_path / "a"))
    res_a = full.fit()

    cfg_b = small_cfg(method, epochs=3, batch_size=32)
    tr = Trainer(cfg_b, ds, signals=sig, out_dir=str(tmp_path / "b"))
    calls = {"n": 0}
    orig = tr.train_step

    def step(epoch, s):
        out = orig(epoch, s)
        calls["n"] += 1
        if calls["n"] == tr.steps_per_epoch + 2:   # Ctrl-C in the middle of epoch 2
            tr._interrupt = True
        return out
    tr.train_step = step
    with pytest.raises(Interrupted):
        tr.fit()
    assert os.path.isfile(tmp_path / "b" / "checkpoint.pt")
    tr2 = Trainer(small_cfg(method, epochs=3, batch_size=32), ds, signals=sig, out_dir=str(tmp_path / "b"))
    assert tr2.resume() and tr2.epoch == 1 and tr2.step == 2
    res_b = tr2.fit()
    assert res_b["test"] == res_a["test"] and res_b["valid"] == res_a["valid"]
    pa, pb = _params(full), _params(tr2)
    assert all(torch.equal(pa[k], pb[k]) for k in pa)
    ha = [json.loads(x) for x in open(tmp_path / "a" / "metrics.jsonl")]
    hb = [json.loads(x) for x in open(tmp_path / "b" / "metrics.jsonl")]
    strip = lambda h: {k: v for k, v in h.items() if not k.endswith("seconds")}  # noqa: E731
    assert [strip(h) for h in ha] == [strip(h) for h in hb]


def test_resume_refuses_other_config(tmp_path):
    ds = tiny_dataset()
    Trainer(small_cfg("bpr", epochs=1), ds, out_dir=str(tmp_path)).fit()
    cfg = small_cfg("bpr", epochs=1)
    cfg.train.lr = 0.5
    with pytest.raises(ValueError, match="different configuration"):
        Trainer(cfg, ds, out_dir=str(tmp_path)).resume()


def test_checkpoint_from_before_the_method_plugins_resumes(tmp_path):
    """A checkpoint without the settings and state added since (train.batching, method_state)
    resumes: a missing setting counts as its default."""
    from llmhni_ext.checkpoint import load_checkpoint, save_checkpoint
    ds = tiny_dataset()
    Trainer(small_cfg("bpr", epochs=1), ds, out_dir=str(tmp_path)).fit()
    path = str(tmp_path / "checkpoint.pt")
    st = load_checkpoint(path)
    del st["config"]["train"]["batching"]
    del st["method_state"]
    save_checkpoint(st, path)
    tr = Trainer(small_cfg("bpr", epochs=2), ds, out_dir=str(tmp_path))
    assert tr.resume() and tr.epoch == 1
    assert tr.fit()["epochs_run"] == 2


def test_trainer_never_changes_the_callers_config():
    ds = tiny_dataset(noise=10)
    cfg = small_cfg("bpr")
    cfg.method.name = "llmhni-wo-sem"            # set after validation: the name implies semantic_sampling off
    before = cfg.to_dict()
    tr = Trainer(cfg, ds, signals=tiny_signals(ds))
    assert cfg.to_dict() == before and cfg.method.semantic_sampling
    assert not tr.cfg.method.semantic_sampling and tr.method.sampler_mode == "dns"


def test_user_batching_draws_users_uniformly():
    """train.batching=users: users drawn uniformly, then one of their positives (LightGCN's
    reference code); as many pairs per epoch as there are interactions, all of them positives."""
    ds = tiny_dataset()
    tr = Trainer(small_cfg("bpr", batching="users", batch_size=10_000), ds)
    users, pos = tr._batch(0, 0)
    assert users.numel() == len(ds.train)
    train = set(zip(ds.train.users.tolist(), ds.train.items.tolist()))
    assert all(p in train for p in zip(users.tolist(), pos.tolist()))
    counts = torch.bincount(users, minlength=ds.n_users).float()
    assert counts.min() > 0 and counts.std() / counts.mean() < 0.5
    u2, p2 = tr._batch(0, 0)
    assert torch.equal(users, u2) and torch.equal(pos, p2)
    assert not torch.equal(tr._batch(1, 0)[0], users)
    res = Trainer(small_cfg("bpr", batching="users", epochs=3), ds).fit()
    assert res["test"]["recall@20"] > 0


def test_early_stopping_and_outputs(tmp_path):
    ds = tiny_dataset()
    cfg = small_cfg("bpr", epochs=50, patience=2, lr=0.2)
    res = run_training(cfg, out_dir=str(tmp_path), dataset=ds, log=lambda s: None)
    assert res["stopped_early"] and res["epochs_run"] < 50
    hist = [json.loads(x) for x in open(tmp_path / "metrics.jsonl")]
    best = max(h["valid_recall@20"] for h in hist)
    assert res["best_epoch"] == next(h["epoch"] for h in hist if h["valid_recall@20"] == best)
    assert res["valid"]["recall@20"] == best
    for f in ("config.yaml", "metrics.jsonl", "results.json", "checkpoint.pt", "best.pt"):
        assert os.path.isfile(tmp_path / f), f


def test_synthetic_world_end_to_end():
    cfg = small_cfg("bpr", epochs=2)
    cfg.data.dataset = "synthetic"
    ds = load_run_dataset(cfg)
    res = Trainer(cfg, ds).fit()
    assert res["test"]["users"] > 0
    sig = tiny_signals(ds)
    sig.noisy_edges = torch.stack([ds.train.users[ds.train_noise], ds.train.items[ds.train_noise]])
    res = Trainer(small_cfg("llmhni", epochs=1), ds, signals=sig).fit()
    assert res["denoising"]["removed_vs_noise"]["precision"] == 1.0


@pytest.mark.skipif(not os.path.isdir(os.path.join(ML100K, "ml-100k")), reason="MovieLens-100K not present")
def test_ml100k_slice_end_to_end():
    cfg = small_cfg("bpr", epochs=2, batch_size=512)
    cfg.data.dataset, cfg.data.data_root, cfg.data.max_users, cfg.data.noise = "ml-100k", ML100K, 80, 0.2
    ds = load_run_dataset(cfg)
    assert ds.n_users == 80 and int(ds.train.users.max()) < 80 and int(ds.train_noise.sum()) > 0
    res = Trainer(cfg, ds).fit()
    assert res["test"]["users"] > 0 and res["data"]["injected_noise"] == int(ds.train_noise.sum())
    res = Trainer(small_cfg("llmhni", epochs=1, batch_size=512), ds, signals=tiny_signals(ds)).fit()
    assert res["test"]["users"] > 0


def test_resume_a_finished_run_with_more_epochs_equals_the_longer_run(tmp_path):
    ds = tiny_dataset()
    full = Trainer(small_cfg("bpr", epochs=4, patience=100), ds, out_dir=str(tmp_path / "a")).fit()
    Trainer(small_cfg("bpr", epochs=2, patience=100), ds, out_dir=str(tmp_path / "b")).fit()
    tr = Trainer(small_cfg("bpr", epochs=4, patience=100), ds, out_dir=str(tmp_path / "b"))
    assert tr.resume() and tr.epoch == 2
    res = tr.fit()
    assert res["epochs_run"] == 4 and res["test"] == full["test"] and res["valid"] == full["valid"]


def test_epoch_order_modes():
    """batching.epoch_order: a permutation for 'interactions'; for 'users', indices of edges
    whose users were drawn uniformly (a user without positives is never drawn); an unknown
    mode is refused by name; an empty graph gives an empty order."""
    from llmhni_ext.batching import epoch_order
    users = torch.tensor([0, 0, 0, 0, 0, 0, 2, 3, 3])          # user 1 has no positives
    g = lambda: torch.Generator().manual_seed(7)              # noqa: E731
    perm = epoch_order(users, 4, "interactions", g())
    assert sorted(perm.tolist()) == list(range(9))
    order = epoch_order(users, 4, "users", g())
    assert order.numel() == 9 and torch.equal(order, epoch_order(users, 4, "users", g()))
    assert 1 not in users[order].tolist()
    draws = torch.cat([epoch_order(users, 4, "users", torch.Generator().manual_seed(s)) for s in range(300)])
    share = torch.bincount(users[draws], minlength=4).float() / draws.numel()
    assert abs(share[0] - 1 / 3) < 0.03 and abs(share[2] - 1 / 3) < 0.03     # not 6/9 for the heavy user
    with pytest.raises(ValueError, match="batching must be one of interactions, users"):
        epoch_order(users, 4, "pairs", g())
    assert epoch_order(torch.zeros(0, dtype=torch.long), 4, "interactions", g()).numel() == 0
    assert epoch_order(torch.zeros(0, dtype=torch.long), 4, "users", g()).numel() == 0


def test_sgl_views_use_its_own_keep_rate():
    ds = tiny_dataset(noise=5)
    cfg = small_cfg("sgl")
    cfg.method.sgl_keep_prob, cfg.method.keep_prob = 0.9, 0.3
    tr = Trainer(cfg.validate(), ds)
    assert tr.method.view_keep_prob == 0.9
    a, b = tr.method.edge_dropped_views(0, tr.method.graph)
    full = tr.method.graph.adj
    for v in (a, b):
        kept = float((v.value != 0).sum()) / full.col.numel()    # dropped edges: removed or zeroed
        assert 0.8 < kept <= 1.0
