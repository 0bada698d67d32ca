"""llmhni inside the real PyTorch Geometric LightGCN: same embeddings and gradients, a sampler
built from an edge_index, the example script, and no import of PyG by llmhni itself."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

pyg = pytest.importorskip("torch_geometric")
from torch_geometric.nn.models import LightGCN  # noqa: E402

from llmhni_ext.graph import CSR  # noqa: E402
from llmhni_ext.integrations.pyg import NegativeSampler, use_llmhni_propagation  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _graph(nu=60, ni=80, e=900, seed=0):
    g = torch.Generator().manual_seed(seed)
    u = torch.randint(0, nu, (e,), generator=g)
    i = torch.randint(0, ni, (e,), generator=g) + nu
    ei = torch.unique(torch.stack([u, i]), dim=1)
    return torch.cat([ei, ei.flip(0)], 1), nu, ni


@pytest.mark.parametrize("layers,alpha", [(3, None), (2, torch.tensor([0.5, 0.3, 0.2])), (0, None)])
def test_propagation_matches_pyg_get_embedding_and_gradients(layers, alpha):
    ei, nu, ni = _graph()
    torch.manual_seed(0)
    model = LightGCN(nu + ni, 16, layers, alpha=alpha)
    ref = model.get_embedding(ei)
    g_ref = torch.autograd.grad(ref.pow(2).sum(), model.embedding.weight)[0]
    prop = use_llmhni_propagation(model)
    assert model.get_embedding is prop and "get_embedding" not in dict(model.named_modules())
    got = model.get_embedding(ei)
    g_got = torch.autograd.grad(got.pow(2).sum(), model.embedding.weight)[0]
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(g_got, g_ref, rtol=1e-5, atol=1e-6)
    label = ei[:, :7]
    torch.testing.assert_close(model(ei, label), (ref[label[0]] * ref[label[1]]).sum(-1), rtol=1e-5, atol=1e-6)
    assert prop.adjacency(ei) is prop.adjacency(ei)             # built once per edge_index


def test_csr_from_edge_index_is_lgconv_normalisation():
    from torch_geometric.nn.conv.gcn_conv import gcn_norm
    ei, nu, ni = _graph(10, 12, 60)
    n = nu + ni
    idx, w = gcn_norm(ei, None, n, add_self_loops=False)
    dense = torch.zeros(n, n).index_put_((idx[1], idx[0]), w, accumulate=True)
    adj = CSR.from_edge_index(ei, n)
    assert adj.symmetric
    torch.testing.assert_close(adj.to_dense().float(), dense)
    one_way = CSR.from_edge_index(ei[:, : ei.shape[1] // 2], n, normalize=False)
    assert not one_way.symmetric and one_way.value is None
    with pytest.raises(ValueError, match=r"\[2, E\]"):
        CSR.from_edge_index(ei[0], n)


def test_csr_from_scipy():
    import scipy.sparse as sp
    m = sp.random(7, 9, density=0.3, random_state=0, format="coo")
    c = CSR.from_scipy(m)
    np.testing.assert_allclose(c.to_dense().numpy(), m.toarray(), rtol=1e-6)
    assert (c.n_rows, c.n_cols) == (7, 9)


def test_sampler_from_edge_index_returns_node_or_item_ids():
    ei, nu, ni = _graph()
    pos = {(int(a), int(b)) for a, b in ei.t().tolist() if a < nu}
    s = NegativeSampler.from_edge_index(ei, nu)
    users = torch.arange(nu).repeat(20)
    neg = s.sample(users, pos_items=torch.tensor([b for _, b in sorted(pos)][:1] * len(users)))
    assert int(neg.min()) >= nu and int(neg.max()) < nu + ni
    assert not any((int(u), int(v)) in pos for u, v in zip(users, neg))
    items = NegativeSampler.from_edge_index(ei, nu, ni, node_ids=False).sample(users)
    assert int(items.min()) >= 0 and int(items.max()) < ni
    one_way = NegativeSampler.from_edge_index(ei[:, : ei.shape[1] // 2].flip(0), nu, ni)   # item -> user only
    assert one_way.csr.nnz == s.csr.nnz


def test_pyg_example_trains_and_evaluates():
    import importlib.util

    from llmhni_ext.data import make_world
    spec = importlib.util.spec_from_file_location("pyg_lightgcn", os.path.join(ROOT, "examples", "pyg_lightgcn.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    ds, _ = make_world(n_users=80, n_items=120, seed=0)
    model, losses = mod.train(ds, epochs=3, dim=16, layers=2, batch_size=256, log=lambda m: None)
    assert len(losses) == 3 and losses[-1] < losses[0]
    r, n = mod.evaluate(model, ds)
    assert 0 <= r <= 1 and 0 <= n <= 1


def test_importing_llmhni_does_not_import_pyg():
    code = ("import sys, llmhni_ext, llmhni_ext.integrations.pyg, llmhni_ext.sampling, llmhni_ext.graph; "
            "assert 'torch_geometric' not in sys.modules, 'torch_geometric was imported'")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr
