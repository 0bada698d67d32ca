"""Full-ranking metrics against hand-computed cases; invariance to batch and block sizes."""
import math

import pytest
import torch

from llmhni_ext.evaluate import edge_set_quality, full_ranking, interactions_csr, ranking_metrics, topk_items
from llmhni_ext.graph import csr_from_coo


def csr(pairs, n_rows, n_cols):
    if not pairs:
        z = torch.zeros(0, dtype=torch.long)
        return csr_from_coo(z, z, n_rows, n_cols)
    u, i = zip(*pairs)
    return csr_from_coo(torch.tensor(u), torch.tensor(i), n_rows, n_cols)


def test_ranking_metrics_hand_computed():
    # user 0: ranked [3, 1, 2, 0], truth {1, 0}; user 1: ranked [2, 0, 1, 3], truth {2}; user 2: no truth
    top = torch.tensor([[3, 1, 2, 0], [2, 0, 1, 3], [0, 1, 2, 3]])
    truth = csr([(0, 1), (0, 0), (1, 2)], 3, 4)
    m = ranking_metrics(top, truth, ks=(2, 4))
    d = lambda r: 1 / math.log2(r + 2)  # noqa: E731
    assert m["users"] == 2
    assert m["recall@2"] == pytest.approx((1 / 2 + 1) / 2)
    assert m["recall@4"] == pytest.approx(1.0)
    nd0_2 = d(1) / (d(0) + d(1))
    nd0_4 = (d(1) + d(3)) / (d(0) + d(1))
    assert m["ndcg@2"] == pytest.approx((nd0_2 + 1) / 2)
    assert m["ndcg@4"] == pytest.approx((nd0_4 + 1) / 2)


def test_topk_masks_excluded_and_breaks_ties_by_id():
    u = torch.tensor([[1.0, 0.0]])
    items = torch.tensor([[1.0, 0.0], [2.0, 0.0], [1.0, 0.0], [0.5, 0.0]])
    ex = csr([(0, 1)], 1, 4)
    top = topk_items(u, items, ex, 4, user_batch=1, item_block=2)
    assert top.tolist() == [[0, 2, 3, -1]]  # item 1 masked, tie 0/2 -> lower id first, one slot empty


def _random_case(seed, n_users=57, n_items=203, d=8):
    g = torch.Generator().manual_seed(seed)
    ue, ie = torch.randn(n_users, d, generator=g), torch.randn(n_items, d, generator=g)
    ie[5] = ie[9]  # exact ties
    tr = (torch.randint(0, n_users, (600,), generator=g), torch.randint(0, n_items, (600,), generator=g))
    te = (torch.randint(0, n_users, (150,), generator=g), torch.randint(0, n_items, (150,), generator=g))
    return ue, ie, interactions_csr(*tr, n_users, n_items), interactions_csr(*te, n_users, n_items)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_results_identical_for_any_batch_and_block(seed):
    ue, ie, train, test = _random_case(seed)
    ref = full_ranking(ue, ie, test, train, user_batch=1000, item_block=10000)
    for ub, ib in [(1, 7), (3, 64), (16, 203), (57, 1), (1000, 50)]:
        assert full_ranking(ue, ie, test, train, user_batch=ub, item_block=ib) == ref
    top_a = topk_items(ue, ie, train, 20, user_batch=1, item_block=11)
    top_b = topk_items(ue, ie, train, 20, user_batch=64, item_block=4096)
    assert torch.equal(top_a, top_b)


def test_topk_against_brute_force():
    ue, ie, train, _ = _random_case(3)
    s = ue.double() @ ie.double().T
    s[train.row_ids(), train.col.long()] = -math.inf
    want = torch.stack([torch.tensor(sorted(range(s.shape[1]), key=lambda j: (-s[u, j].item(), j))[:20])
                        for u in range(s.shape[0])])
    assert torch.equal(topk_items(ue, ie, train, 20, user_batch=9, item_block=31), want)


def test_excluded_items_never_returned():
    ue, ie, train, _ = _random_case(4)
    top = topk_items(ue, ie, train, 20, user_batch=5, item_block=17)
    keys = set((train.row_ids() * 203 + train.col.long()).tolist())
    for u in range(top.shape[0]):
        assert not any(u * 203 + int(j) in keys for j in top[u] if j >= 0)


def test_empty_truth_gives_zero_users():
    ue, ie, train, _ = _random_case(5)
    m = full_ranking(ue, ie, csr([], 57, 203), train)
    assert m["users"] == 0 and m["recall@20"] == 0.0


def test_bad_arguments():
    ue, ie, train, test = _random_case(6)
    with pytest.raises(ValueError, match="k must be"):
        topk_items(ue, ie, train, 0)
    with pytest.raises(ValueError, match="exclude must be"):
        topk_items(ue, ie, csr([], 3, 3), 5)
    with pytest.raises(ValueError, match="ranked lists of length"):
        ranking_metrics(torch.zeros(57, 3, dtype=torch.long), test)


def test_edge_set_quality():
    q = edge_set_quality(torch.tensor([0, 0, 1]), torch.tensor([1, 2, 0]), torch.tensor([0, 2]),
                         torch.tensor([1, 2]), n_items=3)
    assert q["precision"] == pytest.approx(1 / 3) and q["recall"] == pytest.approx(1 / 2)
