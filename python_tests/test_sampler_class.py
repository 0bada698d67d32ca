"""NegativeSampler: the drop-in class, on MovieLens-100K and on synthetic graphs."""
from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch

from llmhni_ext.graph import csr_from_coo
from llmhni_ext.sampling import NegativeSampler, SampleInfo, SamplerSpec

ML100K = "/work/shared/data/ml-100k/u.data"


def small_graph(seed=0, n_users=60, n_items=80, n=1500):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, n_users, (n,), generator=g), torch.randint(0, n_items, (n,), generator=g), n_users, n_items


def dense_mask(users, items, n_users, n_items):
    m = torch.zeros(n_users, n_items, dtype=torch.bool)
    m[users.long(), items.long()] = True
    return m


@pytest.mark.skipif(not os.path.exists(ML100K), reason="MovieLens-100K not present")
@pytest.mark.parametrize("max_redraws", [64, 2, 0])
def test_no_positive_on_movielens_100k(max_redraws):
    data = np.loadtxt(ML100K, dtype=np.int64, usecols=(0, 1))
    u, i = torch.from_numpy(data[:, 0] - 1), torch.from_numpy(data[:, 1] - 1)
    n_users, n_items = 943, 1682
    # plus a user with every item but three, and one with every item but one
    heavy = torch.arange(n_items)
    heavy_a = heavy[~torch.isin(heavy, torch.tensor([5, 900, 1681]))]
    heavy_b = heavy[heavy != 17]
    u = torch.cat([u, torch.full_like(heavy_a, n_users), torch.full_like(heavy_b, n_users + 1)])
    i = torch.cat([i, heavy_a, heavy_b])
    n_users += 2
    mask = dense_mask(u, i, n_users, n_items)
    assert int(mask.sum(1).max()) == n_items - 1
    sampler = NegativeSampler(u.int(), i.int(), n_users, n_items, seed=1, max_redraws=max_redraws)
    users = torch.arange(n_users).repeat(8)
    g = torch.Generator().manual_seed(0)
    emb = dict(user_emb=torch.randn(n_users, 16, generator=g), item_emb=torch.randn(n_items, 16, generator=g))
    sem = dict(user_sem=torch.randn(n_users, 8, generator=g), item_sem=torch.randn(n_items, 8, generator=g))
    for mode in ("uniform", "popularity", "dns", "llmhni"):
        spec = SamplerSpec(mode, num_negatives=4, num_candidates=16, top_k=4, **sem)
        neg = sampler.sample(users, spec=spec, **emb)
        assert neg.shape == (users.numel(), 4)
        assert not bool(mask[users.unsqueeze(1).expand_as(neg), neg].any()), mode
    assert set(sampler.sample(torch.full((200,), n_users - 1)).tolist()) == {17}
    assert set(sampler.sample(torch.full((300,), n_users - 2)).tolist()) == {5, 900, 1681}


@pytest.mark.parametrize("max_redraws", [64, 0])
def test_uniform_passes_chi_square(max_redraws):
    scipy_stats = pytest.importorskip("scipy.stats")
    n_items = 200
    g = torch.Generator().manual_seed(5)
    pos = torch.randperm(n_items, generator=g)[:120]  # user 0 has 60% of the items
    sampler = NegativeSampler(torch.zeros_like(pos), pos, 2, n_items, seed=2, max_redraws=max_redraws)
    neg = sampler.sample(torch.zeros(40_000, dtype=torch.long), spec=SamplerSpec(num_negatives=2)).flatten()
    counts = torch.bincount(neg, minlength=n_items)
    assert int(counts[pos].sum()) == 0
    comp = counts[~torch.isin(torch.arange(n_items), pos)].double().numpy()
    p = scipy_stats.chisquare(comp).pvalue
    assert p > 1e-4, p


def test_popularity_follows_degree_power():
    scipy_stats = pytest.importorskip("scipy.stats")
    n_users, n_items = 400, 50
    g = torch.Generator().manual_seed(7)
    deg = torch.randint(1, 30, (n_items,), generator=g)
    items = torch.repeat_interleave(torch.arange(n_items), deg)
    users = torch.cat([torch.randperm(n_users, generator=g)[:d] for d in deg.tolist()])
    sampler = NegativeSampler(users, items, n_users, n_items, seed=3)
    u0 = int(users[0])
    pos0 = set(items[users == u0].tolist())
    for redraws in (64, 0):
        sampler.max_redraws = redraws
        neg = sampler.sample(torch.full((60_000,), u0), spec=SamplerSpec(mode="popularity", alpha=0.5))
        counts = torch.bincount(neg, minlength=n_items).double()
        keep = torch.tensor([j not in pos0 for j in range(n_items)])
        w = deg.double().pow(0.5) * keep
        expected = w / w.sum() * counts.sum()
        assert int(counts[~keep].sum()) == 0
        assert scipy_stats.chisquare(counts[keep].numpy(), expected[keep].numpy()).pvalue > 1e-4


def test_shapes_offsets_and_resume():
    u, i, nu, ni = small_graph()
    s = NegativeSampler(u, i, nu, ni, seed=4)
    batch = torch.randint(0, nu, (100,))
    a = s.sample(batch)
    assert a.shape == (100,) and a.dtype == torch.int64
    state = s.state_dict()
    b = s.sample(batch, spec=SamplerSpec(num_negatives=3))
    assert b.shape == (100, 3)
    assert s.state_dict()["offset"] == state["offset"] + 1
    assert not torch.equal(s.sample(batch), a)  # the offset advanced
    s.load_state_dict(state)
    assert torch.equal(s.sample(batch, spec=SamplerSpec(num_negatives=3)), b)  # resumed
    fixed = s.sample(batch, offset=0)
    assert torch.equal(fixed, a) and s.state_dict()["offset"] == state["offset"] + 1
    assert s.sample(torch.zeros(0, dtype=torch.long)).shape == (0,)


def test_from_csr_and_pickling_match_the_constructor():
    u, i, nu, ni = small_graph(1)
    a = NegativeSampler(u, i, nu, ni, seed=8)
    b = NegativeSampler.from_csr(csr_from_coo(u, i, nu, ni), seed=8)
    c = pickle.loads(pickle.dumps(a))  # what DataLoader workers receive
    batch = torch.randint(0, nu, (64,))
    kw = dict(spec=SamplerSpec.popularity(num_negatives=2), offset=3)
    assert torch.equal(a.sample(batch, **kw), b.sample(batch, **kw))
    assert torch.equal(b.sample(batch, **kw), c.sample(batch, **kw))


def test_return_info_and_modes():
    u, i, nu, ni = small_graph(2)
    s = NegativeSampler(u, i, nu, ni)
    g = torch.Generator().manual_seed(0)
    eu, ei = torch.randn(nu, 8, generator=g), torch.randn(ni, 8, generator=g)
    su, si = torch.randn(nu, 8, generator=g), torch.randn(ni, 8, generator=g)
    batch = torch.randint(0, nu, (50,))
    pos = i[:50]
    neg, info = s.sample(batch, pos, spec=SamplerSpec(mode="llmhni", user_sem=su, item_sem=si, num_candidates=32, top_k=4, sim_threshold=0.0), user_emb=eu, item_emb=ei, return_info=True)
    assert isinstance(info, SampleInfo) and info.scores.shape == (50,)
    torch.testing.assert_close(info.scores, (eu[batch] * ei[neg]).sum(1), rtol=1e-5, atol=1e-5)
    assert info.rejected > 0 and info.filtered > 0 and info.exhausted == 0
    neg_dns = s.sample(batch, spec=SamplerSpec(mode="dns", num_candidates=ni), user_emb=eu, item_emb=ei)
    # with candidates covering the catalogue, dns is close to the best non-positive item
    assert float((eu[batch] * ei[neg_dns]).sum(1).mean()) > float((eu[batch] * ei[neg]).sum(1).mean())
    cands = torch.randint(0, ni, (50, 6))
    got = s.sample(batch, spec=SamplerSpec(mode="dns"), user_emb=eu, item_emb=ei, candidates=cands)
    assert all(int(n) in row for n, row in zip(got, cands.tolist()))
    _, info = s.sample(batch, return_info=True)
    assert info.scores is None


def test_bad_arguments():
    u, i, nu, ni = small_graph(3)
    with pytest.raises(ValueError, match="items has ids in"):
        NegativeSampler(u, i + ni, nu, ni)
    with pytest.raises(ValueError, match="1-D of one length"):
        NegativeSampler(u, i[:-1], nu, ni)
    with pytest.raises(ValueError, match="integer"):
        NegativeSampler(u.float(), i, nu, ni)
    s = NegativeSampler(u, i, nu, ni)
    batch = torch.randint(0, nu, (10,))
    with pytest.raises(ValueError, match="mode must be one of"):
        s.sample(batch, spec=SamplerSpec(mode="hardest"))
    with pytest.raises(ValueError, match="pos_items must be integer of shape"):
        s.sample(batch, torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="pos_items must lie in"):
        s.sample(batch, torch.full((10,), ni))
    with pytest.raises(RuntimeError, match="users has values in"):
        s.sample(batch + nu)
    with pytest.raises(RuntimeError, match="mode 'dns' needs user_emb"):
        s.sample(batch, spec=SamplerSpec(mode="dns"))
    with pytest.raises(RuntimeError, match="item_emb must have shape"):
        s.sample(batch, spec=SamplerSpec(mode="dns"), user_emb=torch.randn(nu, 4), item_emb=torch.randn(ni + 1, 4))


def test_plain_lightgcn_example_trains():
    import importlib.util
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples",
                        "plain_lightgcn_bpr.py")
    spec = importlib.util.spec_from_file_location("plain_lightgcn_bpr", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    u, i, nu, ni = small_graph(4, 120, 150, 3000)
    losses = mod.train(u, i, nu, ni, epochs=3, batch_size=512, dim=16, mode="dns", seed=0)
    assert len(losses) == 3 and all(np.isfinite(losses)) and losses[-1] < losses[0]
