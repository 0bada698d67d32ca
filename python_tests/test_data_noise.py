"""Injected and natural noise: determinism by seed and the properties the experiments rely on."""
import numpy as np
import pytest
import torch

from llmhni_ext.data import inject_noise, natural_noise
from llmhni_ext.data.noise import apply_noise
from llmhni_ext.data.synthetic import make_world


@pytest.fixture(scope="module")
def world():
    ds, _ = make_world(120, 200, seed=3)
    # start from a clean data set: no labels
    return ds.replace(train_noise=None, meta={**ds.meta, "noise": "none"})


def keyset(it, n_items):
    return set((it.users * n_items + it.items).tolist())


@pytest.mark.parametrize("ratio", [0.05, 0.1, 0.15, 0.2])
def test_inject_counts_labels_and_no_overlap(world, ratio):
    ds = inject_noise(world, ratio, seed=7)
    n0 = len(world.train)
    k = round(ratio * n0)
    assert len(ds.train) == n0 + k and int(ds.train_noise.sum()) == k
    assert ds.train_noise.dtype == torch.bool and not ds.train_noise[:n0].any() and ds.train_noise[n0:].all()
    # original rows untouched and first
    assert torch.equal(ds.train.users[:n0], world.train.users) and torch.equal(ds.train.items[:n0], world.train.items)
    added = set((ds.train.users[n0:] * ds.n_items + ds.train.items[n0:]).tolist())
    assert len(added) == k                                        # distinct
    observed = keyset(world.train, ds.n_items) | keyset(world.valid, ds.n_items) | keyset(world.test, ds.n_items)
    assert not (added & observed)                                 # never an observed pair
    # valid and test untouched
    assert torch.equal(ds.test.items, world.test.items) and torch.equal(ds.valid.users, world.valid.users)
    assert torch.isnan(ds.train.ratings[n0:]).all() and (ds.train.timestamps[n0:] == -1).all()
    assert ds.meta["injected_noise"]["added"] == k and world.train_noise is None


def test_inject_deterministic_by_seed(world):
    a, b, c = inject_noise(world, 0.2, 1), inject_noise(world, 0.2, 1), inject_noise(world, 0.2, 2)
    assert torch.equal(a.train.users, b.train.users) and torch.equal(a.train.items, b.train.items)
    assert not torch.equal(a.train.items, c.train.items)


def test_inject_spreads_over_users_and_items(world):
    ds = inject_noise(world, 0.2, 0)
    n0 = len(world.train)
    users = ds.train.users[n0:].numpy()
    # uniform over pairs: roughly uniform over users (chi-square-ish sanity)
    counts = np.bincount(users, minlength=ds.n_users)
    assert counts.max() < 6 * counts.mean() and (counts > 0).mean() > 0.8
    assert len(np.unique(ds.train.items[n0:].numpy())) > 0.5 * ds.n_items


def test_inject_zero_combine_and_errors(world):
    assert len(inject_noise(world, 0.0, 0).train) == len(world.train)
    nat = natural_noise(world)
    both = inject_noise(nat, 0.1, 0)
    n0 = len(nat.train)
    assert torch.equal(both.train_noise[:n0], nat.train_noise) and both.train_noise[n0:].all()
    assert both.meta["noise"] == "natural+0.1"
    with pytest.raises(ValueError, match="finite number"):
        inject_noise(world, -0.1, 0)
    with pytest.raises(ValueError, match="finite number"):
        inject_noise(world, float("nan"), 0)
    tiny = world.replace(n_users=world.n_users)  # a full grid cannot take more noise
    with pytest.raises(ValueError, match="only .* pairs"):
        inject_noise(tiny, 1000.0, 0)
    with pytest.raises(ValueError, match="'none', 'natural' or a ratio"):
        apply_noise(world, "lots", 0)
    assert len(apply_noise(world, "0.1", 0).train) == len(world.train) + round(0.1 * len(world.train))


def test_natural_noise_rules(world):
    ds = natural_noise(world)
    assert torch.equal(ds.train_noise, world.train.ratings <= 2)
    assert len(ds.train) == len(world.train)
    assert bool((ds.test.ratings >= 4).all()) and len(ds.test) == int((world.test.ratings >= 4).sum())
    no_ratings = world.replace(train=world.train.select(torch.arange(len(world.train))))
    no_ratings.train.ratings = None
    with pytest.raises(ValueError, match="needs ratings"):
        natural_noise(no_ratings)
