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

The propagation matrix is built once per ``edge_index`` (kept while the same tensor, with
the same version, is passed) as ``D^-1/2 A D^-1/2``, exactly ``LGConv``'s ``gcn_norm``
without self loops, so the embeddings equal PyG's up to float summation order.
"""
from __future__ import annotations

from typing import Optional

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
        self._key: Optional[tuple] = None
        self._adj: Optional[CSR] = None

    def adjacency(self, edge_index: Tensor) -> CSR:
        """The normalised propagation matrix of ``edge_index`` (cached while it is unchanged)."""
        model = self._model[0]
        if not isinstance(edge_index, Tensor):
            raise TypeError("LightGCNPropagation: edge_index must be a [2, E] tensor (SparseTensor inputs: "
                            "convert with torch_geometric.utils.to_edge_index)")
        key = (edge_index.data_ptr(), tuple(edge_index.shape), edge_index._version, edge_index.device,
               model.embedding.num_embeddings)
        if key != self._key:
            self._adj = CSR.from_edge_index(edge_index.to(model.embedding.weight.device),
                                            model.embedding.num_embeddings)
            self._key = key
        return self._adj

    def forward(self, edge_index: Tensor, edge_weight: Optional[Tensor] = None) -> Tensor:
        if edge_weight is not None:
            raise ValueError("LightGCNPropagation: edge weights are not supported (LightGCN's gcn_norm weights "
                             "are computed from the graph)")
        model = self._model[0]
        return propagate(self.adjacency(edge_index), model.embedding.weight, int(model.num_layers),
                         model.alpha.detach().cpu().tolist())


def use_llmhni_propagation(model: nn.Module) -> LightGCNPropagation:
    """Replaces ``model.get_embedding`` (and so ``model(edge_index, ...)``, ``recommend`` and
    ``link_pred_logits``) with :class:`LightGCNPropagation`; returns it."""
    prop = LightGCNPropagation(model)
    # in the instance dict (not as a submodule): it shadows the class's method and stays out
    # of the model's state_dict and module tree
    object.__setattr__(model, "get_embedding", prop)
    return prop
