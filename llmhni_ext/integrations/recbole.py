"""llmhni inside RecBole (tested with RecBole 1.2.1): its sampler and its propagation.

RecBole stays optional: it is imported only by the functions that need it. RecBole ids start
at 1 (0 is padding in every table); llmhni keeps them as they are and never returns 0.

RecBole's one-line entry point, with llmhni inside (same arguments and result as
``recbole.quick_start.run_recbole``)::

    from llmhni_ext.integrations.recbole import run_recbole
    run_recbole(model="LightGCN", dataset="ml-100k", config_dict={"worker": 2})

RecBole's own ``run_recbole`` cannot take llmhni: it looks the model up by name among
RecBole's classes and builds RecBole's samplers. ``Config(model=lightgcn_class(), ...)``
works (the class is named ``LightGCN``, so RecBole reads LightGCN's defaults). Step by step::

    from recbole.config import Config
    from recbole.data import create_dataset
    from llmhni_ext.integrations.recbole import data_preparation, lightgcn_class

    config = Config(model="LightGCN", dataset="ml-100k")
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)        # llmhni negatives
    model = lightgcn_class()(config, train_data.dataset).to(config["device"])    # fused propagation
    # dns / llmhni modes score candidates with the model: data_preparation(..., mode="dns"),
    # then train_data.sampler_of_llmhni.attach_model(model)
    # then RecBole's Trainer as usual

:func:`data_preparation` is RecBole's own (``recbole.data.data_preparation``) with one
change: the training dataloader gets a :class:`RecBoleSampler`, passed to the dataloader's
public constructor; validation and test keep RecBole's samplers. RecBole offers no public
setter for the sampler of an existing dataloader (it lives in the private ``_sampler``), so
this builds the dataloaders instead of patching them.
"""
from __future__ import annotations

import copy
from typing import Any, Dict, Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from ..graph import CSR, propagate
from ..sampling import NegativeSampler, SamplerSpec

__all__ = ["RecBoleSampler", "data_preparation", "lightgcn_class", "csr_from_torch_sparse", "run_recbole"]


class RecBoleSampler:
    """A drop-in for ``recbole.sampler.Sampler`` backed by :class:`NegativeSampler`.

    Like RecBole's, a phase's negatives avoid the positives of that phase and of every
    earlier one (train; train + valid; train + valid + test), and the padding item 0.
    ``sample_by_user_ids(user_ids, item_ids, num)`` returns RecBole's layout: entry
    ``k * len(user_ids) + b`` is the k-th negative of ``user_ids[b]``. ``mode``: ``uniform``
    or ``popularity`` (RecBole's ``distribution``), ``dns`` or ``llmhni`` (candidates scored
    by the model given to :meth:`attach_model`; llmhni also needs :meth:`set_semantics`).
    """

    def __init__(self, phases: Sequence[str], datasets: Sequence[Any], distribution: str = "uniform",
                 alpha: float = 1.0, *, mode: Optional[str] = None, seed: int = 0, num_candidates: int = 8,
                 top_k: int = 2) -> None:
        phases, datasets = list(phases), list(datasets)
        if len(phases) != len(datasets) or not phases:
            raise ValueError(f"RecBoleSampler: phases {phases} and datasets must have the same, non-zero length")
        self.phases, self.datasets = phases, datasets
        self.uid_field, self.iid_field = datasets[0].uid_field, datasets[0].iid_field
        self.user_num, self.item_num = int(datasets[0].user_num), int(datasets[0].item_num)
        self.mode = mode or ("popularity" if distribution == "popularity" else "uniform")
        if self.mode not in ("uniform", "popularity", "dns", "llmhni"):
            raise ValueError(f"RecBoleSampler: mode must be uniform, popularity, dns or llmhni, got {self.mode!r}")
        self.alpha, self.seed = float(alpha), int(seed)
        self.num_candidates, self.top_k = int(num_candidates), int(top_k)
        self.phase: Optional[str] = None
        self._samplers: Dict[str, NegativeSampler] = {}
        self._model = None
        self._sem: Optional[tuple] = None

    # -- RecBole's interface -------------------------------------------------------------
    def set_phase(self, phase: str) -> "RecBoleSampler":
        """A copy bound to ``phase`` (RecBole calls this once per dataloader)."""
        if phase not in self.phases:
            raise ValueError(f"RecBoleSampler: phase [{phase}] not exist (phases: {self.phases})")
        view = copy.copy(self)
        view.phase = phase
        return view

    def sample_by_user_ids(self, user_ids, item_ids, num: int) -> Tensor:
        if self.phase is None:
            raise ValueError("RecBoleSampler: call set_phase() first (RecBole's dataloaders get a phase's sampler)")
        users = torch.as_tensor(np.asarray(user_ids), dtype=torch.long)
        if users.numel() and (int(users.min()) < 0 or int(users.max()) >= self.user_num):
            raise ValueError(f"RecBoleSampler: user ids must lie in [0, {self.user_num})")
        kw: Dict[str, Any] = {}
        if self.mode in ("dns", "llmhni"):
            if self._model is None:
                raise ValueError(f"RecBoleSampler: mode {self.mode!r} needs a model (attach_model(model))")
            ue, ie = self._embeddings()
            kw.update(user_emb=ue, item_emb=ie)
            spec = SamplerSpec(self.mode, int(num), self.num_candidates)
            if self.mode == "llmhni":
                if self._sem is None:
                    raise ValueError("RecBoleSampler: mode 'llmhni' needs set_semantics(user_sem, item_sem)")
                spec = spec.replace(user_sem=self._sem[0], item_sem=self._sem[1], top_k=self.top_k)
        else:
            spec = SamplerSpec(self.mode, int(num), alpha=self.alpha)
        neg = self._sampler().sample(users, spec=spec, **kw)
        neg = neg.reshape(users.numel(), int(num))
        return neg.t().reshape(-1).cpu()           # entry k * B + b: user b's k-th negative

    # -- llmhni's extras -----------------------------------------------------------------
    def attach_model(self, model) -> None:
        """The model whose embeddings score dns / llmhni candidates: one whose ``forward()``
        returns (all user embeddings, all item embeddings), as RecBole's LightGCN, NGCF and
        SGL do, or one with ``user_embedding`` / ``item_embedding`` tables (BPR)."""
        self._model = model

    def set_semantics(self, user_sem: Tensor, item_sem: Tensor) -> None:
        """Projected semantic embeddings [user_num, p] / [item_num, p] (RecBole id order)."""
        self._sem = (user_sem, item_sem)

    def _embeddings(self):
        model = self._model
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                out = model.forward() if _forward_takes_no_input(model) else None
                if isinstance(out, tuple) and len(out) == 2:
                    ue, ie = out
                else:
                    ue, ie = model.user_embedding.weight, model.item_embedding.weight
        finally:
            model.train(was_training)
        return ue.detach().float().cpu(), ie.detach().float().cpu()

    def _sampler(self) -> NegativeSampler:
        s = self._samplers.get(self.phase)
        if s is None:
            upto = self.phases.index(self.phase) + 1
            us, its = [], []
            for ds in self.datasets[:upto]:
                us.append(torch.as_tensor(np.asarray(ds.inter_feat[self.uid_field]), dtype=torch.long))
                its.append(torch.as_tensor(np.asarray(ds.inter_feat[self.iid_field]), dtype=torch.long))
            pad_users = torch.arange(self.user_num)
            users = torch.cat(us + [pad_users])                    # item 0 (padding) is everyone's positive
            items = torch.cat(its + [torch.zeros(self.user_num, dtype=torch.long)])
            s = NegativeSampler(users, items, self.user_num, self.item_num, seed=self.seed + upto)
            self._samplers[self.phase] = s
        return s


def _forward_takes_no_input(model) -> bool:
    import inspect
    try:
        params = [p for p in inspect.signature(model.forward).parameters.values()
                  if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        return False
    return not params


def data_preparation(config, dataset, *, mode: Optional[str] = None, seed: Optional[int] = None):
    """RecBole's ``data_preparation`` with a :class:`RecBoleSampler` in the training
    dataloader (reachable as ``train_data.sampler_of_llmhni``); returns (train, valid, test)."""
    from recbole.data.utils import create_samplers, get_dataloader
    built = dataset.build()
    train_ds, valid_ds, test_ds = built
    _, valid_sampler, test_sampler = create_samplers(config, dataset, built)
    args = config["train_neg_sample_args"]
    ours = RecBoleSampler(["train", "valid", "test"], built, args.get("distribution", "uniform"),
                          args.get("alpha", 1.0) if args.get("alpha") is not None else 1.0, mode=mode,
                          seed=config["seed"] if seed is None else seed)
    train_sampler = ours.set_phase("train")
    train_data = get_dataloader(config, "train")(config, train_ds, train_sampler, shuffle=config["shuffle"])
    train_data.sampler_of_llmhni = train_sampler
    valid_data = get_dataloader(config, "valid")(config, valid_ds, valid_sampler, shuffle=False)
    test_data = get_dataloader(config, "test")(config, test_ds, test_sampler, shuffle=False)
    return train_data, valid_data, test_data


def csr_from_torch_sparse(m: Tensor) -> CSR:
    """A llmhni CSR of a torch sparse COO matrix (duplicates summed, values kept)."""
    if m.layout != torch.sparse_coo:
        raise ValueError(f"csr_from_torch_sparse: expected a sparse COO tensor, got layout {m.layout}")
    import scipy.sparse as sp
    m = m.coalesce().cpu()
    rows, cols = m.indices().numpy()
    return CSR.from_scipy(sp.coo_matrix((m.values().numpy(), (rows, cols)), shape=tuple(m.shape)))


_LIGHTGCN = None


def lightgcn_class():
    """A subclass of RecBole's ``LightGCN`` whose ``forward`` is llmhni's fused propagation
    over the model's own ``norm_adj_matrix`` (the same operator, so the same embeddings up
    to float summation order); everything else is RecBole's. Its ``__name__`` is
    ``LightGCN``, so ``Config(model=lightgcn_class())`` reads LightGCN's default settings
    (its ``__qualname__`` says ``LLMHNILightGCN``). The same class on every call."""
    global _LIGHTGCN
    if _LIGHTGCN is not None:
        return _LIGHTGCN
    from recbole.model.general_recommender import LightGCN

    class LLMHNILightGCN(LightGCN):
        def forward(self):
            adj = getattr(self, "_llmhni_adj", None)
            if adj is None or adj.device != self.user_embedding.weight.device:
                from dataclasses import replace
                adj = replace(csr_from_torch_sparse(self.norm_adj_matrix.cpu()), symmetric=True)  # D^-1/2 A D^-1/2
                adj = self._llmhni_adj = adj.to(self.user_embedding.weight.device)
            out = propagate(adj, self.get_ego_embeddings(), int(self.n_layers))
            return torch.split(out, [self.n_users, self.n_items])

    LLMHNILightGCN.__name__ = "LightGCN"        # RecBole's Config finds the model's defaults by this name
    _LIGHTGCN = LLMHNILightGCN
    return LLMHNILightGCN


def run_recbole(model="LightGCN", dataset=None, config_file_list=None, config_dict=None, saved: bool = True,
                *, mode: Optional[str] = None) -> Dict[str, Any]:
    """``recbole.quick_start.run_recbole`` with llmhni inside: llmhni's sampler in the training
    dataloader (``mode``: uniform/popularity as the config says, or dns / llmhni scored by the
    model) and, for ``model="LightGCN"`` (or :func:`lightgcn_class`), the fused propagation;
    any other RecBole model name keeps RecBole's model. Returns RecBole's result dict."""
    from recbole.config import Config
    from recbole.data import create_dataset
    from recbole.utils import get_model, get_trainer, init_logger, init_seed
    cls = model
    if isinstance(model, str):
        cls = lightgcn_class() if model == "LightGCN" else get_model(model)
    config = Config(model=cls, dataset=dataset, config_file_list=config_file_list, config_dict=config_dict)
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    data = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, data, mode=mode)
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    net = cls(config, train_data._dataset).to(config["device"])
    if train_data.sampler_of_llmhni.mode in ("dns", "llmhni"):
        train_data.sampler_of_llmhni.attach_model(net)
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, net)
    best_score, best_result = trainer.fit(train_data, valid_data, saved=saved, show_progress=config["show_progress"])
    test_result = trainer.evaluate(test_data, load_best_model=saved, show_progress=config["show_progress"])
    return {"best_valid_score": best_score, "valid_score_bigger": config["valid_metric_bigger"],
            "best_valid_result": best_result, "test_result": test_result}
