"""PyTorch Geometric's LightGCN, trained with llmhni's sampler and propagation.

The model is PyG's own ``torch_geometric.nn.models.LightGCN`` and its BPR loss; llmhni
supplies the negatives (never a training positive, unlike ``torch.randint`` over all
items) and, with ``--propagation llmhni``, the fused propagation in place of PyG's
``LGConv`` layers (identical embeddings up to float summation order):

    pip install torch_geometric
    python examples/pyg_lightgcn.py --dataset ml-100k --epochs 20
    python examples/pyg_lightgcn.py --dataset ml-100k --epochs 20 --propagation pyg --negatives randint
"""
from __future__ import annotations

import argparse
import time

import torch


def edge_index_of(users: torch.Tensor, items: torch.Tensor, n_users: int) -> torch.Tensor:
    """PyG's bipartite layout: users are nodes 0..n_users-1, item j is node n_users + j,
    both directions stored."""
    src, dst = users.long(), items.long() + n_users
    return torch.cat([torch.stack([src, dst]), torch.stack([dst, src])], 1)


def train(ds, *, epochs: int = 20, dim: int = 64, layers: int = 3, batch_size: int = 2048, lr: float = 5e-3,
          lambda_reg: float = 1e-4, seed: int = 0, propagation: str = "llmhni", negatives: str = "llmhni",
          log=print):
    """Trains PyG's LightGCN on ``ds`` (an llmhni Dataset); returns (model, per-epoch losses)."""
    from torch_geometric.nn.models import LightGCN

    from llmhni_ext.integrations.pyg import NegativeSampler, use_llmhni_propagation
    torch.manual_seed(seed)
    nu, ni = ds.n_users, ds.n_items
    users, items = ds.train.users.long(), ds.train.items.long()
    edge_index = edge_index_of(users, items, nu)
    model = LightGCN(nu + ni, embedding_dim=dim, num_layers=layers)
    if propagation == "llmhni":
        use_llmhni_propagation(model)
    sampler = NegativeSampler.from_edge_index(edge_index, nu, ni, seed=seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for epoch in range(epochs):
        t0, total, steps = time.perf_counter(), 0.0, 0
        for idx in torch.randperm(len(users)).split(batch_size):
            u, pos = users[idx], items[idx] + nu
            neg = sampler.sample(u) if negatives == "llmhni" else torch.randint(nu, nu + ni, u.shape)
            label = torch.stack([torch.cat([u, u]), torch.cat([pos, neg])])
            rank = model(edge_index, label)
            pos_rank, neg_rank = rank.chunk(2)
            loss = model.recommendation_loss(pos_rank, neg_rank, node_id=label.unique(), lambda_reg=lambda_reg)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total, steps = total + float(loss.detach()), steps + 1
        losses.append(total / max(steps, 1))
        log(f"epoch {epoch + 1:3d}  loss {losses[-1]:.4f}  {time.perf_counter() - t0:.2f}s")
    return model, losses


def evaluate(model, ds, k: int = 20):
    """Test Recall@k and NDCG@k by llmhni's full-ranking evaluation (training items masked)."""
    from llmhni_ext.evaluate import full_ranking, interactions_csr
    nu, ni = ds.n_users, ds.n_items
    edge_index = edge_index_of(ds.train.users, ds.train.items, nu)
    with torch.no_grad():
        emb = model.get_embedding(edge_index)
    train = interactions_csr(ds.train.users, ds.train.items, nu, ni)
    test = interactions_csr(ds.test.users, ds.test.items, nu, ni)
    res = full_ranking(emb[:nu], emb[nu:], test, train, (k,), 1024, 4096)
    return res[f"recall@{k}"], res[f"ndcg@{k}"]


def main(argv=None) -> int:
    from llmhni_ext.data import load_dataset
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="ml-100k")
    p.add_argument("--data-root", default=None)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--propagation", choices=["llmhni", "pyg"], default="llmhni")
    p.add_argument("--negatives", choices=["llmhni", "randint"], default="llmhni")
    args = p.parse_args(argv)
    ds = load_dataset(args.dataset, args.data_root)
    model, _ = train(ds, epochs=args.epochs, dim=args.dim, layers=args.layers, seed=args.seed,
                     propagation=args.propagation, negatives=args.negatives)
    r, n = evaluate(model, ds)
    print(f"test Recall@20 {r:.4f}  NDCG@20 {n:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
