"""Training on several processes with torch.distributed: data-parallel steps, partitioned
propagation, sharded evaluation.

Launch with ``torchrun --nproc-per-node N -m llmhni_ext.cli train ...`` (or ``llmhni train
--nproc N``, which starts the same on one machine). gloo on the CPU, NCCL on GPUs.

* **Data parallel.** Each step's global batch (``train.batch_size`` pairs, the same pairs and
  negatives as one process draws) is split into contiguous shards, one per rank, for the terms
  that are means over rows (BPR, the L2 term): each rank's loss is its shard's share of the
  mean. Terms that couple the batch's rows (the InfoNCE terms over the batch's nodes, T-CE's
  top-k, BOD's uniformity) are computed over the whole batch on every rank with weight
  1/world. The gradients are summed with one ``all_reduce`` before the optimiser step, so
  every rank holds the same parameters, those of one process up to the order of the sums.
* **Partitioned propagation.** Each rank keeps only a contiguous block of rows of the
  normalised adjacency (graph memory 1/N). A layer multiplies the block and assembles the
  layer's output with ``all_gather``; the backward sums the ranks' output gradients over the
  block's rows and multiplies by the block's transpose (the adjacency is symmetric). The
  edge-dropped views (SGL, LLMHNI's L_hal) are built block by block and equal the rows of the
  whole graph's views bit for bit. LightGCN's and NGCF's propagations are partitioned (MF has none).
* **Evaluation.** The ranked users are sharded; each rank ranks its shard and the top-k lists
  are gathered, so metrics equal one process's exactly.
* **Faults.** Every collective runs under ``train.dist_timeout_s``; a rank that dies makes the
  others fail with a message naming the step instead of hanging.

The embedding tables, their gradients and Adam's two moments are replicated on every rank: 16
bytes per node and dimension, at d = 64 about 1 GB per million users and items.
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Tuple

import torch
from torch import Tensor

from .graph import CSR, spmm


@dataclass
class Dist:
    """This process's place among ``world`` ranks (``world == 1``: not distributed)."""
    rank: int = 0
    world: int = 1

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def block(self, n: int, rank: Optional[int] = None) -> Tuple[int, int]:
        """The contiguous share [lo, hi) of ``n`` rows that ``rank`` (default: this one) owns."""
        r = self.rank if rank is None else rank
        return n * r // self.world, n * (r + 1) // self.world

    # -- collectives ------------------------------------------------------------------
    def all_reduce_(self, t: Tensor) -> Tensor:
        if self.active:
            torch.distributed.all_reduce(t)
        return t

    def all_reduce_grads(self, params: Iterable[torch.nn.Parameter]) -> None:
        """Sum the gradients over the ranks (one flat buffer, one collective)."""
        if not self.active:
            return
        ps = [p for p in params if p.grad is not None]
        if not ps:
            return
        flat = torch.cat([p.grad.reshape(-1) for p in ps])
        torch.distributed.all_reduce(flat)
        off = 0
        for p in ps:
            n = p.grad.numel()
            p.grad.copy_(flat[off:off + n].view_as(p.grad))
            off += n

    def gather_rows(self, local: Tensor, n: int, bounds: Optional[List[int]] = None) -> Tensor:
        """The [n, ...] tensor whose rank-r block is rank r's ``local``: rows
        ``bounds[r]:bounds[r + 1]`` (default :meth:`block`), padded to one size for the collective."""
        if not self.active:
            return local
        bounds = bounds or [self.block(n, r)[0] for r in range(self.world)] + [n]
        sizes = [bounds[r + 1] - bounds[r] for r in range(self.world)]
        pad = local.new_zeros((max(sizes),) + tuple(local.shape[1:]))
        pad[: local.shape[0]] = local
        parts = [torch.empty_like(pad) for _ in range(self.world)]
        torch.distributed.all_gather(parts, pad.contiguous())
        return torch.cat([parts[r][: sizes[r]] for r in range(self.world)])


class SingleProcess:
    """How a training step spreads over processes: here, one. The loop asks its strategy for the
    rows this process computes ``L_rec`` and ``L_reg`` on (:meth:`shard`), for the objective
    (:meth:`objective`), and to sum gradients and logged values over the ranks; it never asks
    whether it is distributed."""

    def __init__(self, dist: Optional[Dist] = None) -> None:
        self.dist = dist or Dist()

    def shard(self, users: Tensor, pos: Tensor, neg: Tensor, couples_rows: bool) -> Tuple[Tensor, Tensor, Tensor, float]:
        """The batch rows this process scores and their share of the batch mean."""
        return users, pos, neg, 1.0

    def objective(self, l_rec: Tensor, l_reg: Tensor, terms: Dict[str, Tuple[float, Tensor]],
                  share: float) -> Tuple[Tensor, List[Tensor]]:
        """``L = L_rec + sum_k lambda_k L_k + L_reg`` and its logged parts ``[L_rec, L_reg, lambda_k L_k...]``."""
        from .losses import objective
        return objective(l_rec, terms) + l_reg, [l_rec, l_reg, *[w * t for w, t in terms.values()]]

    def all_reduce_grads(self, params: Iterable[torch.nn.Parameter]) -> None:
        """Nothing to sum in one process."""

    def all_reduce_(self, t: Tensor) -> Tensor:
        return t


class DataParallel(SingleProcess):
    """Data parallel over ``dist.world`` ranks (the module docstring): a rank scores its
    contiguous shard of the batch for the terms that are means over rows, and the whole batch,
    weighted 1/world, for what couples the batch's rows; gradients are summed over the ranks
    before the optimiser step, so they are one process's up to the order of the sums."""

    def shard(self, users: Tensor, pos: Tensor, neg: Tensor, couples_rows: bool) -> Tuple[Tensor, Tensor, Tensor, float]:
        if couples_rows:
            return users, pos, neg, 1.0 / self.dist.world
        batch = users.numel()
        lo, hi = self.dist.block(batch)
        return users[lo:hi], pos[lo:hi], neg[lo:hi], (hi - lo) / max(batch, 1)

    def objective(self, l_rec: Tensor, l_reg: Tensor, terms: Dict[str, Tuple[float, Tensor]],
                  share: float) -> Tuple[Tensor, List[Tensor]]:
        world = self.dist.world
        parts = [share * l_rec, share * l_reg, *[(w / world) * t for w, t in terms.values()]]
        return sum(parts[1:], parts[0]), parts

    def all_reduce_grads(self, params: Iterable[torch.nn.Parameter]) -> None:
        self.dist.all_reduce_grads(params)

    def all_reduce_(self, t: Tensor) -> Tensor:
        return self.dist.all_reduce_(t)


def step_strategy(dist: Dist) -> SingleProcess:
    """The training step's strategy for this process group."""
    return DataParallel(dist) if dist.active else SingleProcess(dist)


def from_env(device: torch.device, timeout_s: float = 300.0) -> Dist:
    """The process group torchrun describes in the environment (RANK, WORLD_SIZE, MASTER_ADDR,
    MASTER_PORT); a single process when WORLD_SIZE is absent or 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    dist = torch.distributed
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
        if device.type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return Dist(dist.get_rank(), dist.get_world_size())


def row_block(adj: CSR, lo: int, hi: int) -> CSR:
    """Rows [lo, hi) of a CSR (all columns), as an (hi - lo) x n_cols CSR."""
    a, b = int(adj.rowptr[lo]), int(adj.rowptr[hi])
    rowptr = (adj.rowptr[lo:hi + 1] - adj.rowptr[lo]).contiguous()
    value = None if adj.value is None else adj.value[a:b].contiguous()
    return CSR(rowptr, adj.col[a:b].contiguous(), value, hi - lo, adj.n_cols)


class _BlockLayer(torch.autograd.Function):
    """One propagation layer y = A x with A split into row blocks over the ranks."""

    @staticmethod
    def forward(ctx, x: Tensor, pg: "PartitionedGraph") -> Tensor:  # noqa: D401
        ctx.pg = pg
        with torch.no_grad():
            return pg.dist.gather_rows(spmm(pg.block, x), x.shape[0], pg.bounds)

    @staticmethod
    def backward(ctx, g: Tensor):
        pg = ctx.pg
        total = pg.dist.all_reduce_(g.contiguous().clone())        # sum of every rank's output gradient
        # this rank's share of A^T (sum of g): its block's transpose times the block's rows;
        # the shares are summed by the gradient all_reduce before the optimiser step
        return spmm(pg.block_t, total[pg.lo:pg.hi].contiguous()), None


def balanced_bounds(rowptr: Tensor, world: int) -> List[int]:
    """Row boundaries that give each of ``world`` ranks about the same number of stored entries."""
    nnz = int(rowptr[-1])
    targets = torch.tensor([nnz * r // world for r in range(1, world)], dtype=rowptr.dtype)
    inner = torch.searchsorted(rowptr.cpu(), targets).tolist() if world > 1 else []
    return [0, *inner, rowptr.numel() - 1]


class PartitionedGraph:
    """A rank's block of rows of the normalised adjacency (balanced by stored entries), for
    :func:`propagate`; the whole graph is not kept."""

    def __init__(self, adj: CSR, dist: Dist) -> None:
        self.n, self.dist = adj.n_rows, dist
        self.bounds = balanced_bounds(adj.rowptr, dist.world)
        self.lo, self.hi = self.bounds[dist.rank], self.bounds[dist.rank + 1]
        self.block = row_block(adj, self.lo, self.hi)
        self.block_t = self.block.transpose()
        self.nnz = self.block.nnz

    @classmethod
    def with_block(cls, like: "PartitionedGraph", block: CSR) -> "PartitionedGraph":
        """Another graph over the same nodes, split at the same rows (an edge-dropped view)."""
        pg = cls.__new__(cls)
        pg.n, pg.dist, pg.bounds, pg.lo, pg.hi = like.n, like.dist, like.bounds, like.lo, like.hi
        pg.block, pg.block_t, pg.nnz = block, block.transpose(), block.nnz
        return pg

    def layer(self, x: Tensor) -> Tensor:
        return _BlockLayer.apply(x, self)


def edge_drop_views(pg: PartitionedGraph, keep_prob: float, num_views: int, seed: int, offset: int
                    ) -> List[PartitionedGraph]:
    """This rank's blocks of the edge-dropped views :func:`llmhni_ext.contrastive.edge_drop_views`
    makes of the whole graph, bit for bit: the keep decision of an undirected edge is a Philox
    draw keyed by its global endpoints, and the re-normalisation's degrees are gathered."""
    from .reference.common import inv_sqrt_degree
    from .reference.contrastive import _edge_keep
    b, n, lo = pg.block, pg.n, pg.lo
    rp = b.rowptr.long()
    # the block's rows at their global positions (the other rows empty), so the keys are global
    padded = torch.cat([rp.new_zeros(lo), rp, rp.new_full((n - pg.hi,), int(rp[-1]))])
    seed = seed - 2**64 if seed >= 2**63 else seed
    offset = offset - 2**64 if offset >= 2**63 else offset
    keep = _edge_keep(padded, b.col, float(keep_prob), num_views, seed, offset)
    rows = torch.repeat_interleave(torch.arange(pg.hi - lo, device=rp.device), rp[1:] - rp[:-1])
    views = []
    for v in range(num_views):
        k = keep[v]
        deg = torch.zeros(pg.hi - lo, dtype=torch.float64, device=rp.device).index_add_(0, rows, k.double())
        deg = pg.dist.gather_rows(deg, n, pg.bounds)                 # every node's kept degree
        dinv = torch.where(deg > 0, inv_sqrt_degree(deg), torch.zeros_like(deg))
        r, c = rows[k], b.col.long()[k]
        value = (dinv[r + lo] * dinv[c]).float()
        rowptr = torch.cat([rp.new_zeros(1), torch.cumsum(torch.bincount(r, minlength=pg.hi - lo), 0)])
        block = CSR(rowptr.to(b.rowptr.dtype), b.col[k].contiguous(), value, pg.hi - lo, n)
        views.append(PartitionedGraph.with_block(pg, block))
    return views


def propagate(pg: PartitionedGraph, x0: Tensor, layers: int) -> Tensor:
    """LightGCN's ``sum_k 1/(K+1) A^k x0`` with the partitioned adjacency."""
    x, acc = x0, x0 / (layers + 1)
    for _ in range(layers):
        x = pg.layer(x)
        acc = acc + x / (layers + 1)
    return acc


def partition_graphs(graphs, dist: Dist) -> Dict[str, Any]:
    """Give each graph (:class:`llmhni_ext.methods.base.Graph`) its rank's row block
    (``g.part``) and drop the full adjacency (``g.adj = None``); returns what the blocks hold
    (the run's ``distributed`` record: world size, stored entries per graph and per block)."""
    record: Dict[str, Any] = {"world": dist.world, "nnz": [], "block_nnz": []}
    for g in graphs:
        if g.part is None:
            g.part = PartitionedGraph(g.adj, dist)
            record["nnz"].append(g.adj.nnz)
            b = g.part.bounds
            record["block_nnz"].append([int(g.adj.rowptr[b[r + 1]] - g.adj.rowptr[b[r]]) for r in range(dist.world)])
    for g in graphs:
        g.adj = None
    return record
