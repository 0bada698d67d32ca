"""Drop-in correctness: fresh negatives under DataLoader workers, seeds that follow torch, and
a sampler that reads PyG's node orders; the PyG propagation never serves a stale graph."""
import pytest
import torch

from llmhni_ext.sampling import NegativeSampler


class _Batches(torch.utils.data.Dataset):
    def __init__(self, sampler, n=8):
        self.sampler, self.n = sampler, n

    def __len__(self):
        return self.n

    def __getitem__(self, k):
        return self.sampler.sample(torch.zeros(32, dtype=torch.long))


def _epochs(loader, n=3):
    return [[tuple(b.tolist()) for b in loader] for _ in range(n)]


@pytest.mark.parametrize("persistent", [False, True])
def test_workers_draw_fresh_negatives_every_epoch_and_reproducibly(persistent):
    def run(torch_seed):
        torch.manual_seed(torch_seed)
        s = NegativeSampler(torch.tensor([0]), torch.tensor([0]), 1, 100_000, seed=3)
        loader = torch.utils.data.DataLoader(_Batches(s), batch_size=None, num_workers=2,
                                             persistent_workers=persistent)
        return _epochs(loader)
    a = run(0)
    flat = [b for ep in a for b in ep]
    assert len(set(flat)) == len(flat)            # no batch repeats, across workers or epochs
    assert run(0) == a                            # torch.manual_seed fixes them
    assert run(1) != a


def test_loader_generator_fixes_worker_negatives():
    s = NegativeSampler(torch.tensor([0]), torch.tensor([0]), 1, 100_000, seed=3)

    def run():
        g = torch.Generator().manual_seed(7)
        return _epochs(torch.utils.data.DataLoader(_Batches(s), batch_size=None, num_workers=2, generator=g), 2)
    assert run() == run()


def test_no_workers_keeps_the_sampler_stream():
    s = NegativeSampler(torch.tensor([0]), torch.tensor([0]), 1, 100_000, seed=3)
    ref = NegativeSampler(torch.tensor([0]), torch.tensor([0]), 1, 100_000, seed=3)
    got = _epochs(torch.utils.data.DataLoader(_Batches(s, 2), batch_size=None), 2)
    want = [[tuple(ref.sample(torch.zeros(32, dtype=torch.long)).tolist()) for _ in range(2)] for _ in range(2)]
    assert got == want                            # the main process: offsets as before, nothing mixed in


def test_seed_follows_torch_manual_seed_unless_given():
    u, i = torch.tensor([0, 1]), torch.tensor([0, 1])

    def draw(seed=None):
        return NegativeSampler(u, i, 2, 1000, seed=seed).sample(torch.zeros(16, dtype=torch.long))
    torch.manual_seed(0)
    a = draw()
    torch.manual_seed(0)
    assert torch.equal(draw(), a)
    torch.manual_seed(1)
    assert not torch.equal(draw(), a)
    torch.manual_seed(0)
    b = draw(seed=5)
    torch.manual_seed(1)
    assert torch.equal(draw(seed=5), b)           # an explicit seed ignores torch's


def _bipartite(nu=5, ni=7, items_first=False):
    u = torch.tensor([0, 1, 2, 3, 4, 0])
    i = torch.tensor([0, 1, 2, 3, 4, 5])
    if items_first:
        src, dst = i, u + ni
    else:
        src, dst = u, i + nu
    return torch.cat([torch.stack([src, dst]), torch.stack([dst, src])], 1), nu, ni


def test_from_edge_index_warns_when_the_item_count_is_guessed():
    ei, nu, ni = _bipartite()                     # item 6 has no edge: a guess finds 6 items, not 7
    with pytest.warns(UserWarning, match="guessed 6"):
        s = NegativeSampler.from_edge_index(ei, nu)
    assert s.n_items == 6
    assert NegativeSampler.from_edge_index(ei, nu, ni).n_items == 7


def test_from_edge_index_detects_the_node_order():
    ei, nu, ni = _bipartite(items_first=True)     # PyG's MovieLens100K.to_homogeneous(): movies first
    with pytest.raises(ValueError, match="items_first=True"):
        NegativeSampler.from_edge_index(ei, nu, ni)
    s = NegativeSampler.from_edge_index(ei, nu, ni, items_first=True, seed=0)
    users = torch.arange(nu).repeat(50) + ni      # user node ids
    neg = s.sample(users)
    assert int(neg.min()) >= 0 and int(neg.max()) < ni        # item node ids
    pos = {(int(a), int(b)) for a, b in ei.t().tolist() if a >= ni}
    assert not any((int(u), int(v)) in pos for u, v in zip(users, neg))
    social = torch.cat([_bipartite()[0], torch.tensor([[0], [1]])], 1)       # one user-user edge
    with pytest.raises(ValueError, match="join two users or two items"):
        NegativeSampler.from_edge_index(social, nu, ni)
    assert NegativeSampler.from_edge_index(social, nu, ni, non_bipartite="ignore").csr.nnz == 6
    with pytest.raises(ValueError, match="node ids must lie"):
        NegativeSampler.from_edge_index(ei, nu, 3, items_first=True)


# ------------------------------------------------------------------ PyG propagation cache

pyg = pytest.importorskip("torch_geometric")


def _model(n, dim=8, layers=2):
    from torch_geometric.nn.models import LightGCN
    torch.manual_seed(0)
    return LightGCN(n, dim, layers)


def test_a_new_graph_in_freed_memory_never_gets_the_old_adjacency():
    """Edge dropout each epoch: a new edge_index of the same shape often lands in the memory the
    previous one freed (same data_ptr, version 0). Every epoch must see its own graph."""
    from llmhni_ext.integrations.pyg import use_llmhni_propagation
    nu, ni = 30, 40
    g = torch.Generator().manual_seed(0)
    full = torch.unique(torch.stack([torch.randint(0, nu, (400,), generator=g),
                                     torch.randint(nu, nu + ni, (400,), generator=g)]), dim=1)
    model = _model(nu + ni)
    prop = use_llmhni_propagation(model)
    reused, last_ptr, ei = 0, None, None
    for epoch in range(30):
        keep = torch.randperm(full.shape[1], generator=g)[: full.shape[1] // 10]
        drop = torch.cat([full[:, keep], full[:, keep].flip(0)], 1)
        want = _model(nu + ni).get_embedding(drop)
        del ei                                     # the previous graph is freed first ...
        ei = drop.clone()                          # ... so this one often lands in its memory
        reused += int(ei.data_ptr() == last_ptr)
        last_ptr = ei.data_ptr()
        torch.testing.assert_close(model.get_embedding(ei), want, rtol=1e-5, atol=1e-6)
    # (a cache keyed on data_ptr, shape and version served a stale graph in this loop; one that holds
    # its tensor keeps that memory from being reused, so `reused` stays 0 here)
    assert prop.builds == 30
    same = full.clone()
    prop.adjacency(same)
    prop.adjacency(same.clone())                   # equal contents in another tensor: no rebuild
    assert prop.builds == 31
    same[0, 0] = (same[0, 0] + 1) % nu             # in place: the version changes, so it is rebuilt
    prop.adjacency(same)
    assert prop.builds == 32


def test_propagation_accepts_sparse_inputs():
    from torch_geometric.utils import to_torch_coo_tensor

    from llmhni_ext.integrations.pyg import use_llmhni_propagation
    nu, ni = 10, 12
    ei = torch.unique(torch.stack([torch.randint(0, nu, (60,)), torch.randint(nu, nu + ni, (60,))]), dim=1)
    ei = torch.cat([ei, ei.flip(0)], 1)
    model = _model(nu + ni)
    ref = model.get_embedding(ei)
    use_llmhni_propagation(model)
    adj = to_torch_coo_tensor(ei, size=nu + ni)
    torch.testing.assert_close(model.get_embedding(adj), ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(model.get_embedding(adj.to_sparse_csr()), ref, rtol=1e-5, atol=1e-6)
    try:
        from torch_sparse import SparseTensor
    except ImportError:
        SparseTensor = None
    if SparseTensor is not None:
        st = SparseTensor.from_edge_index(ei, sparse_sizes=(nu + ni, nu + ni)).t()
        torch.testing.assert_close(model.get_embedding(st), ref, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="weighted sparse adjacency"):
        model.get_embedding(to_torch_coo_tensor(ei, torch.rand(ei.shape[1]), size=nu + ni))
    with pytest.raises(TypeError, match="SparseTensor"):
        model.get_embedding([[0, 1], [1, 0]])


def test_propagation_reads_a_sparsetensor_by_its_coo():
    """torch_sparse may be absent: a stand-in with SparseTensor's name and ``coo()`` (row =
    target, col = source, as PyG's adj_t) takes the same path."""
    from llmhni_ext.integrations.pyg import edge_index_of_input

    class SparseTensor:
        def __init__(self, row, col, value=None):
            self._c = (row, col, value)

        def coo(self):
            return self._c
    ei = torch.tensor([[0, 1, 2], [3, 4, 5]])
    got = edge_index_of_input(SparseTensor(ei[1], ei[0]))
    assert torch.equal(got, ei)
    with pytest.raises(ValueError, match="weighted"):
        edge_index_of_input(SparseTensor(ei[1], ei[0], torch.tensor([1.0, 2.0, 1.0])))
