"""LightGCN + BPR in plain PyTorch, with llmhni's NegativeSampler drawing the negatives.

Nothing here but torch.sparse and the sampler: drop the sampler into your own
PyG/RecBole-style loop the same way.

    python examples/plain_lightgcn_bpr.py --data /path/to/ml-100k/u1.base --mode dns
"""
from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from llmhni_ext.sampling import NegativeSampler, SamplerSpec


def normalized_adj(users, items, n_users, n_items):
    """D^-1/2 A D^-1/2 of the user-item bipartite graph as a sparse COO tensor."""
    rows = torch.cat([users, items + n_users])
    cols = torch.cat([items + n_users, users])
    n = n_users + n_items
    deg = torch.bincount(rows, minlength=n).float().clamp(min=1)
    vals = deg[rows].rsqrt() * deg[cols].rsqrt()
    return torch.sparse_coo_tensor(torch.stack([rows, cols]), vals, (n, n), check_invariants=False).coalesce()


class LightGCN(torch.nn.Module):
    def __init__(self, n_users, n_items, dim=64, layers=3):
        super().__init__()
        self.n_users, self.layers = n_users, layers
        self.emb = torch.nn.Embedding(n_users + n_items, dim)
        torch.nn.init.normal_(self.emb.weight, std=0.1)

    def forward(self, adj):
        x = self.emb.weight
        out = [x]
        for _ in range(self.layers):
            x = torch.sparse.mm(adj, x)
            out.append(x)
        z = torch.stack(out).mean(0)
        return z[: self.n_users], z[self.n_users:]


def train(users, items, n_users, n_items, epochs=10, batch_size=2048, dim=64, lr=1e-3, reg=1e-4,
          mode="uniform", seed=0, device="cpu"):
    """Returns the mean BPR loss of each epoch."""
    torch.manual_seed(seed)
    users, items = users.long().to(device), items.long().to(device)
    adj = normalized_adj(users, items, n_users, n_items).to(device)
    model = LightGCN(n_users, n_items, dim).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sampler = NegativeSampler(users, items, n_users, n_items, seed=seed)   # <- the llmhni lines
    hardest = SamplerSpec.dns(num_candidates=32)
    losses = []
    for _ in range(epochs):
        perm = torch.randperm(users.numel(), device=device)
        total = 0.0
        for idx in perm.split(batch_size):
            u, p = users[idx], items[idx]
            eu, ei = model(adj)
            if mode == "dns":  # hardest of 32 candidates under the current model
                n = sampler.sample(u, p, spec=hardest, user_emb=eu.detach(), item_emb=ei.detach())
            else:
                n = sampler.sample(u, p)
            pos, neg = (eu[u] * ei[p]).sum(1), (eu[u] * ei[n]).sum(1)
            ego = model.emb.weight
            l2 = (ego[u].square().sum() + ego[n_users + p].square().sum() + ego[n_users + n].square().sum()) / len(u)
            loss = -F.logsigmoid(pos - neg).mean() + reg * l2
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(u)
        losses.append(total / users.numel())
    return losses


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="tab-separated user item ... file (1-based ids, e.g. ml-100k u1.base)")
    ap.add_argument("--mode", default="uniform", choices=["uniform", "dns"])
    ap.add_argument("--epochs", type=int, default=10)
    args = ap.parse_args()
    if args.data:
        rows = [line.split()[:2] for line in open(args.data, encoding="latin-1")]
        u = torch.tensor([int(r[0]) - 1 for r in rows])
        i = torch.tensor([int(r[1]) - 1 for r in rows])
    else:  # a small random graph
        u, i = torch.randint(0, 500, (20_000,)), torch.randint(0, 800, (20_000,))
    for epoch, loss in enumerate(train(u, i, int(u.max()) + 1, int(i.max()) + 1, args.epochs, mode=args.mode)):
        print(f"epoch {epoch}: BPR loss {loss:.4f}")
