"""End-to-end training runs (seconds, CPU): every method and backbone, the synthetic world,
a slice of MovieLens-100K, exact resume after an interruption mid-epoch."""
import json
import os

import pytest
import torch

from llmhni_ext.config import RunConfig
from llmhni_ext.methods import METHODS
from llmhni_ext.train import Interrupted, Trainer, denoised_edges, load_run_dataset, run_training

from test_train_support import install_standins, tiny_dataset, tiny_signals

ML100K = "/work/shared/data"


@pytest.fixture(autouse=True)
def _standins(monkeypatch):
    install_standins(monkeypatch)


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
    assert tr.adj_pred is tr.adj_gp and tr.adj_gp.nnz == 2 * (len(ds.train) - 15 + 5)
    u, i = denoised_edges(torch.tensor([0, 0, 1]), torch.tensor([1, 2, 0]), 3,
                          torch.tensor([[1], [2]]), torch.tensor([[0], [2]]))
    assert list(zip(u.tolist(), i.tolist())) == [(0, 1), (1, 0), (1, 2)]
    cfg = small_cfg("llmhni")
    cfg.method.predict_graph = "original"
    assert Trainer(cfg, ds, signals=sig).adj_pred is not None
    assert Trainer(small_cfg("llmhni-wo-denoise"), ds, signals=sig).adj_gp is None


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
    a = Trainer(cfg, ds, signals=sig)._aux_nodes(torch.arange(40), torch.arange(40, 90), 1, 2)
    b = Trainer(cfg, ds, signals=sig)._aux_nodes(torch.arange(40), torch.arange(40, 90), 1, 2)
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


@pytest.mark.parametrize("method", ["bpr", "llmhni", "sgl"])
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
