"""llmhni inside PyTorch Geometric's LightGCN (``torch_geometric.nn.models.LightGCN``).

PyG stays optional: this module imports nothing from it; the objects it receives only need
PyG LightGCN's attributes (``embedding``, ``num_layers``, ``alpha``). Node ids are users
then items (item ``j`` is node ``num_users + j``), as in PyG's recommendation examples::

    from torch_geometric.nn.models import LightGCN
    from llmhni_ext.integrations.pyg import NegativeSampler, use_llmhni_propagation

    model = LightGCN(num_nodes, embedding_dim=64, num_layers=3)
    use_llmhni_propagation(model)                  # model.get_embedding by the fused op
    sampler = NegativeSampler.from_edge_index(train_edge_index, num_users)
    neg = sampler.sample(batch_users)              # node ids, never a training positive
    pos_rank = model(train_edge_index, torch.stack([batch_users, batch_pos]))
    neg_rank = model(train_edge_index, torch.stack([batch_users, neg]))

The propagation matrix is built as ``D^-1/2 A D^-1/2``, exactly ``LGConv``'s ``gcn_norm``
without self loops, so the embeddings equal PyG's up to float summation order. It is reused
only for the graph it was built from: the same tensor object unchanged since (its version),
or a tensor with equal contents; the cache holds a reference to the tensor it was built
from, so a new ``edge_index`` that lands in freed memory can never be taken for the old one.
``edge_index`` may also be a torch sparse adjacency (COO or CSR) or a PyG ``SparseTensor``,
with unit (or no) values, as ``LightGCN.forward`` accepts.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from ..graph import CSR, propagate
from ..sampling import NegativeSampler

__all__ = ["CSR", "NegativeSampler", "LightGCNPropagation", "use_llmhni_propagation"]


class LightGCNPropagation(nn.Module):
    """``sum_k alpha_k A^k E`` of a PyG LightGCN ``model``, computed by llmhni's fused
    propagation (one op for all layers, forward and backward); ``alpha`` and the number
    of layers are read from the model at every call."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        for attr in ("embedding", "num_layers", "alpha"):
            if not hasattr(model, attr):
                raise TypeError(f"LightGCNPropagation: expected a torch_geometric LightGCN (with .{attr}), "
                                f"got {type(model).__name__}")
        self._model = [model]            # not a submodule: the model owns its parameters
        self._src: Optional[object] = None       # the input the cached matrix was built from (kept alive)
        self._seen: Optional[tuple] = None       # (its version, node count) when it was built
        self._edges: Optional[Tensor] = None     # its [2, E] edges
        self._adj: Optional[CSR] = None
        self.builds = 0                          #: how many times the matrix was built (for tests)

    def adjacency(self, edge_index) -> CSR:
        """The normalised propagation matrix of ``edge_index`` (see the module docstring for
        when it is reused)."""
        model = self._model[0]
        n = model.embedding.num_embeddings
        if edge_index is self._src and _version(edge_index) is not None and self._seen == (_version(edge_index), n):
            return self._adj
        edges = edge_index_of_input(edge_index)
        if not (self._edges is not None and self._seen[1] == n and edges.shape == self._edges.shape
                and edges.device == self._edges.device and torch.equal(edges, self._edges)):
            self._adj = CSR.from_edge_index(edges.to(model.embedding.weight.device), n)
            self.builds += 1
        self._src, self._seen, self._edges = edge_index, (_version(edge_index), n), edges
        return self._adj

    def forward(self, edge_index, edge_weight: Optional[Tensor] = None) -> Tensor:
        if edge_weight is not None:
            raise ValueError("LightGCNPropagation: edge weights are not supported (LightGCN's gcn_norm weights "
                             "are computed from the graph)")
        model = self._model[0]
        return propagate(self.adjacency(edge_index), model.embedding.weight, int(model.num_layers),
                         model.alpha.detach().cpu().tolist())


def _version(x) -> Optional[int]:
    """A dense tensor's version counter (bumped by every in-place change); None for sparse
    inputs, whose contents are compared every call."""
    return int(x._version) if isinstance(x, Tensor) and x.layout == torch.strided else None


def edge_index_of_input(edge_index) -> Tensor:
    """A [2, E] int64 edge list of what PyG's LightGCN accepts as ``edge_index``: a [2, E]
    tensor, a torch sparse adjacency, or a ``torch_sparse.SparseTensor`` (structure only; its
    values, if any, must be ones: LightGCN computes its own normalisation)."""
    if isinstance(edge_index, Tensor) and edge_index.layout == torch.strided:
        if edge_index.dim() != 2 or edge_index.shape[0] != 2 or edge_index.is_floating_point():
            raise ValueError(f"LightGCNPropagation: edge_index must be an integer [2, E] tensor, got "
                             f"{edge_index.dtype} of shape {tuple(edge_index.shape)}")
        return edge_index
    if isinstance(edge_index, Tensor):                         # torch sparse (COO, CSR, ...)
        coo = edge_index.to_sparse_coo().coalesce()
        row_col, val = coo.indices(), coo.values()
    elif type(edge_index).__name__ == "SparseTensor" and hasattr(edge_index, "coo"):
        row, col, val = edge_index.coo()
        row_col = torch.stack([row, col])
    else:
        raise TypeError(f"LightGCNPropagation: edge_index must be a [2, E] tensor, a torch sparse tensor or a "
                        f"SparseTensor, got {type(edge_index).__name__}")
    if val is not None and val.numel() and not bool((val == 1).all()):
        raise ValueError("LightGCNPropagation: a weighted sparse adjacency is not supported (LightGCN normalises "
                         "the graph itself); pass the structure with unit values")
    # PyG's adj_t convention for sparse inputs: row = target, col = source
    return torch.stack([row_col[1], row_col[0]]).long()


def use_llmhni_propagation(model: nn.Module) -> LightGCNPropagation:
    """Replaces ``model.get_embedding`` (and so ``model(edge_index, ...)``, ``recommend`` and
    ``link_pred_logits``) with :class:`LightGCNPropagation`; returns it."""
    prop = LightGCNPropagation(model)
    # in the instance dict (not as a submodule): it shadows the class's method and stays out
    # of the model's state_dict and module tree
    object.__setattr__(model, "get_embedding", prop)
    return prop
