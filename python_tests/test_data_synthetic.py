"""The synthetic world: determinism, consistent ground truth, and text that carries signal."""
import math
import re
from collections import Counter

import numpy as np
import pytest
import torch

from llmhni_ext.data import load_dataset
from llmhni_ext.data.synthetic import (EASY_NEG, FALSE_NEG, HARD_NEG, KIND_NAMES, POS_CLEAN, POS_HARD, POS_NOISY,
                                       make_world)


@pytest.fixture(scope="module")
def world():
    return make_world(200, 400, seed=11, hard_ratio=0.2, noise_ratio=0.25)


def test_deterministic_by_seed():
    a, ta = make_world(50, 100, seed=5)
    b, tb = make_world(50, 100, seed=5)
    c, _ = make_world(50, 100, seed=6)
    assert torch.equal(a.train.items, b.train.items) and a.user_text == b.user_text and a.item_text == b.item_text
    assert np.array_equal(ta.user_pref, tb.user_pref)
    assert not torch.equal(a.train.items, c.train.items)


def test_kinds_and_ratios(world):
    ds, truth = world
    kinds = truth.train_kind
    assert torch.equal(truth.kind(ds.train.users, ds.train.items), kinds)
    n = len(ds.train)
    assert abs((kinds == POS_NOISY).float().mean().item() - 0.25) < 0.03
    assert abs((kinds == POS_HARD).float().mean().item() - 0.2) < 0.03
    assert torch.equal(ds.train_noise, kinds == POS_NOISY)
    rel = truth.relevant(ds.train.users, ds.train.items)
    assert rel[kinds != POS_NOISY].all() and not rel[kinds == POS_NOISY].any()
    # hard positives are less popular than clean ones
    pop = truth.item_popularity
    assert pop[ds.train.items[kinds == POS_HARD]].mean() < 0.5 * pop[ds.train.items[kinds == POS_CLEAN]].mean()
    # noisy positives concentrate on the decoy theme
    noisy = kinds == POS_NOISY
    on_decoy = truth.item_topic[ds.train.items[noisy]] == truth.user_decoy[ds.train.users[noisy]]
    assert on_decoy.mean() > 0.5
    # a user whose pools are too small for the drawn count gets fewer rows (counted)
    assert ds.meta["world"]["shortfall"] < 0.01 * n and n > 200 * 10


def test_held_out_are_relevant_false_negatives(world):
    ds, truth = world
    for it in (ds.valid, ds.test):
        assert truth.relevant(it.users, it.items).all()
        assert (truth.kind(it.users, it.items) == FALSE_NEG).all()
    keys = set((ds.train.users * ds.n_items + ds.train.items).tolist())
    assert not keys & set((ds.test.users * ds.n_items + ds.test.items).tolist())


def test_random_pairs_cover_all_negative_kinds(world):
    ds, truth = world
    g = torch.Generator().manual_seed(0)
    u = torch.randint(0, ds.n_users, (20000,), generator=g)
    i = torch.randint(0, ds.n_items, (20000,), generator=g)
    k = truth.kind(u, i)
    counts = torch.bincount(k, minlength=6)
    assert all(counts[c] > 0 for c in (FALSE_NEG, HARD_NEG, EASY_NEG))
    hard = k == HARD_NEG
    assert (truth.affinity(u[hard], i[hard]) <= 0).all()
    assert truth.kind_names([0], [0])[0] in KIND_NAMES


def test_score_verdicts(world):
    ds, truth = world
    perfect = truth.score_verdicts(ds.train.users, ds.train.items, ~ds.train_noise)
    assert perfect["accuracy"] == 1.0 and perfect["noisy_f1"] == 1.0
    all_hard = truth.score_verdicts(ds.train.users, ds.train.items, torch.ones(len(ds.train), dtype=torch.bool))
    assert all_hard["noisy_recall"] == 0.0 and all_hard["n_truly_noisy"] == int(ds.train_noise.sum())
    with pytest.raises(ValueError, match="shape"):
        truth.score_verdicts([0, 1], [0, 1], [True])


def _tfidf(texts):
    docs = [Counter(re.findall(r"[a-z]+", t.lower())) for t in texts]
    df = Counter(w for d in docs for w in d)
    n = len(docs)
    vecs = []
    for d in docs:
        v = {w: c * math.log(n / df[w]) for w, c in d.items()}
        norm = math.sqrt(sum(x * x for x in v.values())) or 1.0
        vecs.append({w: x / norm for w, x in v.items()})
    return vecs


def test_text_carries_the_latent_signal(world):
    """Plain bag-of-words similarity between user and item texts separates the user's true
    positives from noisy ones (AUC well above chance), but not perfectly (text_noise)."""
    ds, truth = world
    vecs = _tfidf(ds.user_text + ds.item_text)
    uv, iv = vecs[:ds.n_users], vecs[ds.n_users:]
    # (the "Dislikes ..." sentence adds confusing words for bag-of-words; the judges can read it)
    sims = np.array([sum(x * iv[i].get(w, 0.0) for w, x in uv[u].items())
                     for u, i in zip(ds.train.users.tolist(), ds.train.items.tolist())])
    noisy = ds.train_noise.numpy()
    pos, neg = sims[~noisy], sims[noisy]
    auc = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
    assert 0.7 < auc < 0.999
    ds2, _ = make_world(30, 100, seed=1, mention_dislikes=False)
    assert not any("Dislikes" in t for t in ds2.user_text)
    assert all(t.strip() for t in ds.item_text) and len(ds.item_fields["title"]) == ds.n_items


def test_load_dataset_synthetic_and_bad_arguments():
    ds = load_dataset("synthetic", seed=2, n_users=40, n_items=80, noise=0.1)
    assert ds.truth is not None and ds.name == "synthetic"
    assert int(ds.train_noise.sum()) > int(ds.truth.train_kind.eq(POS_NOISY).sum())
    with pytest.raises(ValueError, match="n_topics"):
        make_world(10, 100, n_topics=50)
    with pytest.raises(ValueError, match="sum < 1"):
        make_world(10, 100, hard_ratio=0.6, noise_ratio=0.5)


def test_hard_negatives_are_scored_high_by_collaborative_filtering(world):
    """Item-based co-occurrence scores rank the world's hard negatives above its easy ones
    (the decoy clicks make them look relevant), and false negatives higher still."""
    ds, truth = world
    m = ds.train_csr().toarray()
    co = m.T @ m
    np.fill_diagonal(co, 0)
    score = m @ co
    pct = np.argsort(np.argsort(score, axis=1), axis=1) / ds.n_items
    g = np.random.default_rng(0)
    u, i = g.integers(0, ds.n_users, 30000), g.integers(0, ds.n_items, 30000)
    k = truth.kind(u, i).numpy()
    mean = {c: pct[u[k == c], i[k == c]].mean() for c in (FALSE_NEG, HARD_NEG, EASY_NEG)}
    assert mean[FALSE_NEG] > mean[HARD_NEG] + 0.05 and mean[HARD_NEG] > mean[EASY_NEG] + 0.1


def test_dataset_helpers_and_pickling(world):
    import pickle
    ds, truth = world
    pos = ds.user_positives("train")
    assert len(pos) == ds.n_users and sum(len(p) for p in pos) == len(ds.train)
    assert all((np.diff(p) > 0).all() for p in pos)
    m = ds.train_csr()
    assert m.shape == (ds.n_users, ds.n_items) and m.nnz == len(ds.train)
    ds2 = pickle.loads(pickle.dumps(ds))
    assert torch.equal(ds2.train.items, ds.train.items)
    assert torch.equal(ds2.truth.kind(ds.test.users, ds.test.items), truth.kind(ds.test.users, ds.test.items))
    s = ds.summary()
    assert "synthetic" in s and "noisy train rows" in s
    with pytest.raises(ValueError, match="unknown split"):
        ds.split("dev")
