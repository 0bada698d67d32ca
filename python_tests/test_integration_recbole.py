"""llmhni inside the real RecBole 1.2.1: its dataloaders take llmhni's sampler (no negative is
a positive or the padding id, RecBole's negative layout), RecBole's LightGCN trains with
llmhni's propagation to the same embeddings, and the example script runs.

RecBole 1.2.1 needs numpy<2, scipy<1.13, pandas<3 and setuptools<81, so `.ci/run` runs this
file in an environment of its own; it skips where RecBole is not installed."""
import os
import sys

import numpy as np
import pytest
import torch

recbole = pytest.importorskip("recbole")
os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")     # RecBole's own checkpoints

from llmhni_ext.integrations.recbole import RecBoleSampler, data_preparation, lightgcn_class  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _atomic(tmp_path, n_users=120, n_items=200, n=4000, seed=0):
    rng = np.random.default_rng(seed)
    pairs = np.unique(np.stack([rng.integers(1, n_users + 1, n), rng.integers(1, n_items + 1, n)], 1), axis=0)
    rng.shuffle(pairs)
    u, i = pairs[:, 0], pairs[:, 1]                        # distinct pairs: a split never repeats one
    d = tmp_path / "toy"
    d.mkdir()
    lines = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    lines += [f"{a}\t{b}\t{1 + (a * b) % 5}\t{k}" for k, (a, b) in enumerate(zip(u, i))]
    (d / "toy.inter").write_text("\n".join(lines) + "\n")
    return str(tmp_path)


def _config(data_path, **extra):
    from recbole.config import Config
    cfg = {"data_path": data_path, "epochs": 2, "train_batch_size": 512, "eval_batch_size": 4096,
           "embedding_size": 16, "n_layers": 2, "reg_weight": 1e-4, "learning_rate": 0.01, "seed": 0,
           "show_progress": False, "state": "ERROR", "checkpoint_dir": os.path.join(data_path, "saved"),
           "train_neg_sample_args": {"distribution": "uniform", "sample_num": 1, "dynamic": False},
           "eval_args": {"split": {"RS": [0.8, 0.1, 0.1]}, "order": "RO", "group_by": "user", "mode": "full"},
           "metrics": ["Recall", "NDCG"], "topk": [20], "valid_metric": "Recall@20", "device": "cpu",
           "use_gpu": False, "reproducibility": True, "load_col": {"inter": ["user_id", "item_id", "rating",
                                                                            "timestamp"]}}
    cfg.update(extra)
    return Config(model="LightGCN", dataset="toy", config_dict=cfg)


@pytest.fixture()
def toy(tmp_path):
    from recbole.data import create_dataset
    config = _config(_atomic(tmp_path))
    return config, create_dataset(config)


def _positives(ds):
    u = np.asarray(ds.inter_feat[ds.uid_field])
    i = np.asarray(ds.inter_feat[ds.iid_field])
    return set(zip(u.tolist(), i.tolist()))


def test_dataloader_takes_the_sampler_and_never_returns_a_positive(toy):
    config, dataset = toy
    train_data, valid_data, test_data = data_preparation(config, dataset)
    pos = _positives(train_data.dataset)
    seen = 0
    for batch in train_data:
        u = batch[train_data.uid_field].tolist()
        neg = batch[train_data.neg_item_id].tolist()
        assert all(n != 0 and (a, n) not in pos for a, n in zip(u, neg))
        seen += len(u)
    assert seen == len(train_data.dataset)


def test_layout_phases_and_padding(toy):
    _, dataset = toy
    built = dataset.build()
    s = RecBoleSampler(["train", "valid", "test"], built)
    users = np.array([1, 2, 3, 1])
    out = s.set_phase("train").sample_by_user_ids(users, None, 5)
    assert out.shape == (20,)
    per_user = out.reshape(5, 4).t()                        # entry k * B + b: user b's k-th negative
    train_pos = _positives(built[0])
    assert all((int(u), int(n)) not in train_pos and n != 0 for u, row in zip(users, per_user) for n in row)
    all_pos = train_pos | _positives(built[1]) | _positives(built[2])
    test = s.set_phase("test").sample_by_user_ids(np.repeat(np.arange(1, 50), 20), None, 2)
    assert not any((int(u), int(n)) in all_pos for u, n in zip(np.tile(np.repeat(np.arange(1, 50), 20), 2), test))
    with pytest.raises(ValueError, match="call set_phase"):
        s.sample_by_user_ids(users, None, 1)
    with pytest.raises(ValueError, match="needs a model"):
        RecBoleSampler(["train"], built[:1], mode="dns").set_phase("train").sample_by_user_ids(users, None, 1)


def test_lightgcn_with_llmhni_propagation_matches_recbole(toy):
    from recbole.model.general_recommender import LightGCN
    config, dataset = toy
    train_data, _, _ = data_preparation(config, dataset)
    torch.manual_seed(0)
    ref = LightGCN(config, train_data.dataset)
    ours = lightgcn_class()(config, train_data.dataset)
    ours.load_state_dict(ref.state_dict())
    (ru, ri), (ou, oi) = ref.forward(), ours.forward()
    torch.testing.assert_close(ou, ru, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(oi, ri, rtol=1e-5, atol=1e-6)
    g_ref = torch.autograd.grad(ru.pow(2).sum() + ri.pow(2).sum(), ref.user_embedding.weight)[0]
    g_ours = torch.autograd.grad(ou.pow(2).sum() + oi.pow(2).sum(), ours.user_embedding.weight)[0]
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-5, atol=1e-6)


def test_dns_mode_scores_with_the_attached_model(toy):
    config, dataset = toy
    train_data, _, _ = data_preparation(config, dataset, mode="dns")
    model = lightgcn_class()(config, train_data.dataset)
    train_data.sampler_of_llmhni.attach_model(model)
    pos = _positives(train_data.dataset)
    batch = next(iter(train_data))
    neg = batch[train_data.neg_item_id].tolist()
    assert all(n != 0 and (a, n) not in pos for a, n in zip(batch[train_data.uid_field].tolist(), neg))


def test_recbole_example_runs(tmp_path):
    import importlib.util
    spec = importlib.util.spec_from_file_location("recbole_lightgcn", os.path.join(ROOT, "examples",
                                                                                   "recbole_lightgcn.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    res = mod.run(_config(_atomic(tmp_path)))
    assert 0 <= res["test_result"]["recall@20"] <= 1
    stock = mod.run(_config(str(tmp_path)), stock=True)          # RecBole alone, the peer arm
    assert 0 <= stock["test_result"]["recall@20"] <= 1
    assert sys.modules.get("torch_geometric") is None or True


def test_llmhni_evaluation_agrees_with_recboles(toy):
    """llmhni's full-ranking Recall/NDCG against RecBole's evaluator on the same trained model
    and split (training items masked; for test also validation items)."""
    from recbole.trainer import Trainer

    from llmhni_ext.evaluate import full_ranking, interactions_csr, merge_csr
    config, dataset = toy
    train_data, valid_data, test_data = data_preparation(config, dataset)
    model = lightgcn_class()(config, train_data.dataset)
    trainer = Trainer(config, model)
    trainer.fit(train_data, valid_data, saved=False, show_progress=False)
    theirs = trainer.evaluate(test_data, load_best_model=False, show_progress=False)

    def pairs(ds):
        return (torch.as_tensor(np.asarray(ds.inter_feat[ds.uid_field])),
                torch.as_tensor(np.asarray(ds.inter_feat[ds.iid_field])))
    nu, ni = int(dataset.user_num), int(dataset.item_num)
    tr, va, te = (interactions_csr(*pairs(d.dataset), nu, ni) for d in (train_data, valid_data, test_data))
    pad = interactions_csr(torch.arange(nu), torch.zeros(nu, dtype=torch.long), nu, ni)  # padding item 0
    model.eval()
    with torch.no_grad():
        ue, ie = model.forward()
    ours = full_ranking(ue, ie, te, merge_csr([tr, va, pad]), (20,), 1024, 4096)
    assert ours["recall@20"] == pytest.approx(theirs["recall@20"], abs=1e-4)
    assert ours["ndcg@20"] == pytest.approx(theirs["ndcg@20"], abs=1e-4)


def test_llmhni_mode_uses_the_model_and_the_semantic_tables(toy):
    config, dataset = toy
    train_data, _, _ = data_preparation(config, dataset, mode="llmhni")
    model = lightgcn_class()(config, train_data.dataset)
    s = train_data.sampler_of_llmhni
    s.attach_model(model)
    users = np.arange(1, 40)
    with pytest.raises(ValueError, match="needs set_semantics"):
        s.sample_by_user_ids(users, None, 2)
    g = torch.Generator().manual_seed(0)
    s.set_semantics(torch.randn(s.user_num, 8, generator=g), torch.randn(s.item_num, 8, generator=g))
    neg = s.sample_by_user_ids(users, None, 2)
    pos = _positives(train_data.dataset)
    assert neg.shape == (2 * len(users),)
    assert all(int(n) != 0 and (int(u), int(n)) not in pos for u, n in zip(np.tile(users, 2), neg))
    batch = next(iter(train_data))                           # RecBole's dataloader drives it as well
    assert len(batch[train_data.neg_item_id]) == len(batch[train_data.uid_field])


def _negatives_by_epoch(train_data, epochs=2):
    out = []
    for _ in range(epochs):
        out.append(torch.cat([b[train_data.neg_item_id] for b in train_data]).tolist())
    return out


@pytest.mark.parametrize("worker", [0, 2])
def test_fresh_negatives_every_epoch_with_recbole_workers(tmp_path, worker):
    """RecBole's ``worker: 2`` re-creates its DataLoader workers each epoch; the negatives must
    still change from epoch to epoch (as RecBole's own sampler's do), and repeat for the seed."""
    from recbole.data import create_dataset
    from recbole.utils import init_seed

    def run():
        sub = tmp_path / f"r{len(list(tmp_path.iterdir()))}"
        sub.mkdir()
        config = _config(_atomic(sub), worker=worker)
        init_seed(config["seed"], True)
        train_data, _, _ = data_preparation(config, create_dataset(config))
        return _negatives_by_epoch(train_data)
    a = run()
    same = np.mean(np.asarray(a[0]) == np.asarray(a[1]))
    assert same < 0.05, f"{same:.1%} of epoch 1's negatives repeat epoch 0's"
    assert run() == a


def test_run_recbole_and_config_with_the_llmhni_class(tmp_path):
    from recbole.config import Config

    from llmhni_ext.integrations.recbole import run_recbole
    data_path = _atomic(tmp_path)
    cls = lightgcn_class()
    assert cls is lightgcn_class() and cls.__qualname__.endswith("LLMHNILightGCN")
    config = Config(model=cls, dataset="toy", config_dict={"data_path": data_path, "use_gpu": False})
    assert config["n_layers"] == 2 and config["reg_weight"] == 1e-05 and config["embedding_size"] == 64  # LightGCN.yaml
    extra = _config(data_path).final_config_dict
    keep = {"data_path": data_path, **{k: extra[k] for k in ("epochs", "train_batch_size", "embedding_size", "n_layers", "seed",
                                  "show_progress", "state", "checkpoint_dir", "train_neg_sample_args", "eval_args",
                                  "metrics", "topk", "valid_metric", "use_gpu", "device", "load_col")}}
    res = run_recbole(model="LightGCN", dataset="toy", config_dict=keep, saved=False)
    assert 0 <= res["test_result"]["recall@20"] <= 1
