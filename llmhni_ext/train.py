"""The training loop: one loop for LLMHNI and every baseline, on the project's kernels.

Per step, for a batch ``B`` of (user, positive) pairs of the training graph:

* ``z = f(G_pred; e^(0))`` with the backbone ``f`` and the prediction graph (G' for LLMHNI
  by default, G otherwise);
* negatives from :class:`llmhni_ext.sampling.NegativeSampler` (uniform, dns, or llmhni:
  high backbone score, low projected semantic similarity);
* the method's loss (:mod:`llmhni_ext.losses`), plus ``l2 * L_reg`` on the batch's ego
  embeddings; for LLMHNI ``L = L_rec + lambda_1 L_de + lambda_2 L_hal``.

Every random choice is a function of ``(seed, epoch, step)`` (batch order, sampler
offset, edge-drop views, dropout and SimGCL noise), so a run resumed from a checkpoint,
even one written mid-epoch by Ctrl-C, continues exactly as the uninterrupted run would.
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import platform
import signal
import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import Union, Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from . import losses
from . import _log
from .checkpoint import clean_stale_tmp, load_checkpoint, save_checkpoint, write_json, write_text
from .config import RunConfig
from .evaluate import DEFAULT_KS, edge_set_quality, full_ranking, interactions_csr, merge_csr
from .graph import CSR, normalized_bipartite_adj
from .methods import implied_settings, is_llmhni
from .models import Backbone, build_backbone

_MIX = 0x9E3779B97F4A7C15


def derive_seed(*parts: int) -> int:
    """A 63-bit seed from integers (splitmix-style), for per-epoch / per-step streams."""
    h = 0
    for p in parts:
        h = (h ^ (int(p) + _MIX + ((h << 6) & (2**64 - 1)) + (h >> 2))) & (2**64 - 1)
        h = (h * 0xBF58476D1CE4E5B9) & (2**64 - 1)
        h ^= h >> 31
    return h & (2**63 - 1)


# ----------------------------------------------------------------------------- data

def load_run_dataset(cfg: RunConfig):
    """The data set of a run: loaded (or generated), with injected noise, optionally sliced."""
    from .data import load_dataset
    noise = cfg.data.noise if cfg.data.noise > 0 else "none"
    ds = load_dataset(cfg.data.dataset, cfg.data.data_root, noise=noise, seed=cfg.data.noise_seed)
    if cfg.data.max_users > 0:
        ds = slice_users(ds, cfg.data.max_users)
    return ds


def slice_users(ds, max_users: int):
    """The first ``max_users`` users of a data set (items kept), for quick runs."""
    if max_users >= ds.n_users:
        return ds
    keep = lambda it: it.select(it.users < max_users)  # noqa: E731
    noise = None if ds.train_noise is None else ds.train_noise[ds.train.users < max_users]
    return type(ds)(**{**{f: getattr(ds, f) for f in ds.__dataclass_fields__},
                       "n_users": max_users, "train": keep(ds.train), "valid": keep(ds.valid),
                       "test": keep(ds.test), "train_noise": noise,
                       "user_text": None if ds.user_text is None else ds.user_text[:max_users],
                       "user_raw_ids": list(ds.user_raw_ids)[:max_users],
                       "user_fields": None if ds.user_fields is None else
                       {k: v[:max_users] for k, v in ds.user_fields.items()},
                       "user_text_emb": None if ds.user_text_emb is None else ds.user_text_emb[:max_users],
                       "truth": None})


def _edges(e: Any) -> Tuple[Tensor, Tensor]:
    """(users, items) of an edge list given as [2, E] (preferred), [E, 2] or a (users, items) pair."""
    if e is None:
        z = torch.zeros(0, dtype=torch.long)
        return z, z
    if isinstance(e, (tuple, list)) and len(e) == 2:
        return torch.as_tensor(e[0]).long().flatten(), torch.as_tensor(e[1]).long().flatten()
    t = torch.as_tensor(e).long()
    if t.numel() == 0:
        z = torch.zeros(0, dtype=torch.long)
        return z, z
    if t.dim() == 2 and t.shape[0] == 2:   # the signals stage's [2, E]
        return t[0], t[1]
    if t.dim() == 2 and t.shape[1] == 2:
        return t[:, 0], t[:, 1]
    raise ValueError(f"edge list must be [E, 2], [2, E] or (users, items), got shape {tuple(t.shape)}")


def denoised_edges(users: Tensor, items: Tensor, n_items: int, hard: Any, noisy: Any) -> Tuple[Tensor, Tensor]:
    """G' = (G ∪ hard edges) \\ noisy edges, as a sorted, duplicate-free (users, items) list."""
    hu, hi = _edges(hard)
    nu, ni = _edges(noisy)
    keys = torch.unique(torch.cat([users.long() * n_items + items.long(), hu * n_items + hi]))
    drop = torch.unique(nu * n_items + ni)
    keys = keys[~torch.isin(keys, drop)]
    return keys // n_items, keys % n_items


# ----------------------------------------------------------------------------- signals

def signals_for(cfg: RunConfig, ds, cache_dir: Optional[str], progress: bool = True):
    """The signals stage's output for LLMHNI runs (semantic embeddings, judged edges)."""
    from . import signals as S
    scfg = S.SignalsConfig(**{**cfg.signals, "progress": bool(progress and cfg.signals.get("progress", True))})
    # The backbone that proposes the suspicious pairs is trained here, before the signals stage
    # (which then needs nothing from the trainer). Its seed is the data seed, so every
    # training seed shares one set of signals; it is cached on disk.
    bb = None
    if scfg.judge != "none":
        bb = pretrain_backbone(ds, seed=cfg.data.noise_seed, cache_dir=cache_dir, device=cfg.train.device,
                               progress=progress)
    return S.prepare_signals(ds, scfg, backbone_embeddings=bb, cache_dir=cache_dir)


def _train_hash(ds) -> str:
    h = hashlib.sha256()
    h.update(f"{ds.n_users},{ds.n_items}".encode())
    h.update(ds.train.users.numpy().tobytes())
    h.update(ds.train.items.numpy().tobytes())
    return h.hexdigest()[:16]


def pretrain_backbone(ds, *, epochs: int = 20, dim: int = 64, layers: int = 3, seed: int = 0,
                      cache_dir: Optional[str] = None, device: str = "cpu",
                      progress: bool = True) -> Tuple[Tensor, Tensor]:
    """A short LightGCN/BPR pre-training (early-stopped on validation Recall@20) whose
    embeddings propose the suspicious pairs for the judges. Cached on disk by training
    data, dimensions, epochs and seed."""
    path = None
    if cache_dir:
        key = f"{_train_hash(ds)}-d{dim}-l{layers}-e{epochs}-s{seed}"
        path = os.path.join(cache_dir, "backbone", f"lightgcn-{key}.pt")
        if os.path.isfile(path):
            try:
                st = load_checkpoint(path)
                return st["user"], st["item"]
            except (RuntimeError, KeyError):
                pass                                    # a damaged cache entry is recomputed
    cfg = RunConfig()
    cfg.model.backbone, cfg.model.dim, cfg.model.layers = "lightgcn", dim, layers
    cfg.method.name = "bpr"
    cfg.train.epochs, cfg.train.seed, cfg.train.device = epochs, seed, device
    cfg.train.progress, cfg.train.patience, cfg.train.lr = progress, 3, 0.01
    tr = Trainer(cfg.validate(), ds)
    tr.fit(evaluate_test=False)
    with torch.no_grad():
        u, i = tr.model.split(tr.model(tr.adj_pred))
    u, i = u.detach().cpu().float(), i.detach().cpu().float()
    if path:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        save_checkpoint({"user": u, "item": i}, path)
    return u, i


def _semantic(signals, aligned: bool) -> Tuple[Optional[Tensor], Optional[Tensor]]:
    """Projected (aligned) or raw text embeddings from the signals."""
    if signals is None:
        return None, None
    if aligned:
        u, i = signals.user_sem, signals.item_sem
    else:
        u = next((getattr(signals, n) for n in ("user_raw", "user_text_emb", "user_sem_raw")
                  if getattr(signals, n, None) is not None), None)
        i = next((getattr(signals, n) for n in ("item_raw", "item_text_emb", "item_sem_raw")
                  if getattr(signals, n, None) is not None), None)
        if u is None or i is None:
            raise ValueError("method 'llmhni-wo-align' needs the raw text embeddings, but the signals "
                             "carry none (expected Signals.user_raw / item_raw)")
    return (None if u is None else torch.as_tensor(u).float(),
            None if i is None else torch.as_tensor(i).float())


# ----------------------------------------------------------------------------- trainer

@dataclass
class EpochStats:
    epoch: int
    loss: float = 0.0
    parts: Dict[str, float] = field(default_factory=dict)
    steps: int = 0
    seconds: float = 0.0


class NonFiniteLoss(RuntimeError):
    """Training stopped because the loss became NaN or infinite."""


class Interrupted(Exception):
    """Raised by :meth:`Trainer.fit` after Ctrl-C, once the checkpoint is saved."""


class Trainer:
    """Trains one backbone with one method on one data set; see the module docstring.

    ``signals`` (from :func:`signals_for`) is required by the LLMHNI methods. ``out_dir``,
    when given, receives ``config.yaml``, ``metrics.jsonl``, ``results.json`` and
    ``checkpoint.pt`` / ``best.pt``."""

    def __init__(self, cfg: RunConfig, dataset, signals=None, out_dir: Optional[str] = None) -> None:
        self.cfg = cfg
        for k, v in implied_settings(cfg.method.name).items():
            setattr(cfg.method, k, v)
        self.ds = dataset
        self.out_dir = out_dir
        self.device = torch.device(cfg.train.device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"train.device is {cfg.train.device!r} but CUDA is not available")
        if cfg.train.threads > 0:
            torch.set_num_threads(cfg.train.threads)
        m, me = cfg.model, cfg.method
        self.llmhni = is_llmhni(me.name)
        if self.llmhni and signals is None:
            raise ValueError(f"method {me.name!r} needs the signals stage's output (signals=...)")
        if len(dataset.train) == 0:
            raise ValueError(f"data set {dataset.name!r} has no training interactions")
        cleanup = (getattr(dataset, "meta", None) or {}).get("cleanup", {})
        if len(dataset.test) == 0:
            lost = {k: v for k, v in cleanup.items() if k.startswith("test") and v}
            raise ValueError(f"data set {dataset.name!r} has no test interactions"
                             + (f" (clean-up removed them: {lost})" if lost else "")
                             + "; test metrics would all be 0")
        self.has_valid = len(dataset.valid) > 0
        if not self.has_valid:
            msg = (f"data set {dataset.name!r} has no validation interactions: early stopping is off and the last "
                   f"epoch's weights are reported (give the data a validation split to select the best epoch)")
            warnings.warn(msg, stacklevel=2)
        n_users, n_items = dataset.n_users, dataset.n_items
        self.n_users, self.n_items = n_users, n_items
        dev = self.device
        tu, ti = dataset.train.users, dataset.train.items
        # G: the observed (possibly noisy) training graph
        self.adj_g = normalized_bipartite_adj(tu.to(dev), ti.to(dev), n_users, n_items)
        self.signals = signals
        self.quality: Dict[str, Any] = {}
        self.adj_gp: Optional[CSR] = None
        if self.llmhni and me.interaction_denoising:
            gu, gi = denoised_edges(tu, ti, n_items, signals.hard_edges, signals.noisy_edges)
            self.adj_gp = normalized_bipartite_adj(gu.to(dev), gi.to(dev), n_users, n_items)
            self.quality = self._denoise_quality(gu, gi)
        use_gp = self.adj_gp is not None and me.predict_graph == "denoised"
        self.adj_pred = self.adj_gp if use_gp else self.adj_g
        self.pos_users, self.pos_items = (gu, gi) if use_gp else (tu, ti)
        self.pos_users, self.pos_items = self.pos_users.to(dev), self.pos_items.to(dev)
        self.user_sem, self.item_sem = _semantic(signals, me.objective_alignment) if self.llmhni else (None, None)
        if self.user_sem is not None:
            self.user_sem, self.item_sem = self.user_sem.to(dev), self.item_sem.to(dev)
        # evaluation masks: the observed training interactions (and, for test, validation)
        self.train_csr = interactions_csr(tu, ti, n_users, n_items)
        self.valid_csr = interactions_csr(dataset.valid.users, dataset.valid.items, n_users, n_items)
        self.test_csr = interactions_csr(dataset.test.users, dataset.test.items, n_users, n_items)
        self.test_exclude = merge_csr([self.train_csr, self.valid_csr])
        self.model: Backbone = build_backbone(m.backbone, n_users, n_items, m.dim, m.layers,
                                              seed=cfg.train.seed, ngcf_dropout=m.ngcf_dropout).to(dev)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.train.lr)
        from .sampling import NegativeSampler
        # negatives avoid the positives of the graph L_rec trains on (G' when it predicts on G':
        # an edge G' adds must never come back as a negative)
        self.sampler = NegativeSampler(self.pos_users, self.pos_items, n_users, n_items,
                                       seed=derive_seed(cfg.train.seed, 1))
        self._sample_counts: Optional[Tensor] = None  # rejected, exhausted, filtered, fallbacks
        # progress of the run (all in the checkpoint)
        self.epoch = 0          # next epoch to run
        self.step = 0           # next step within that epoch
        self.partial: Optional[EpochStats] = None
        self.history: List[Dict[str, Any]] = []
        self.best: Dict[str, Any] = {"epoch": -1, "valid": None, "score": -1.0}
        self.best_state: Optional[Dict[str, Tensor]] = None
        self.bad_evals = 0
        self.stopped_early = False
        self._interrupt = False
        self._views: Dict[str, Any] = {"epoch": -1}
        self._perm: Tuple[int, Optional[Tensor]] = (-1, None)

    # ------------------------------------------------------------------ helpers
    @property
    def steps_per_epoch(self) -> int:
        return max(1, math.ceil(self.pos_users.numel() / self.cfg.train.batch_size))

    def _denoise_quality(self, gu: Tensor, gi: Tensor) -> Dict[str, Any]:
        """Precision/recall of the edges G' removed (vs noise labels) and added."""
        ds, n_items = self.ds, self.n_items
        q: Dict[str, Any] = {}
        obs = ds.train.users * n_items + ds.train.items
        gp = gu * n_items + gi
        removed = ~torch.isin(obs, gp)
        added_keys = gp[~torch.isin(gp, obs)]
        q["removed"] = int(removed.sum())
        q["added"] = int(added_keys.numel())
        if ds.train_noise is not None and bool(ds.train_noise.any()):
            noisy = ds.train_noise
            q["removed_vs_noise"] = edge_set_quality(ds.train.users[removed], ds.train.items[removed],
                                                     ds.train.users[noisy], ds.train.items[noisy], n_items)
        held = torch.cat([ds.valid.users * n_items + ds.valid.items, ds.test.users * n_items + ds.test.items])
        if added_keys.numel():
            # an added edge is "right" when the user really interacts with the item later
            q["added_in_heldout_fraction"] = float(torch.isin(added_keys, held).float().mean())
        return q

    def _batch(self, epoch: int, step: int) -> Tuple[Tensor, Tensor]:
        n, bs = self.pos_users.numel(), self.cfg.train.batch_size
        if self._perm[0] != epoch:
            g = torch.Generator().manual_seed(derive_seed(self.cfg.train.seed, 2, epoch))
            self._perm = (epoch, torch.randperm(n, generator=g).to(self.device))
        idx = self._perm[1][step * bs: (step + 1) * bs]
        return self.pos_users[idx], self.pos_items[idx]

    def _sample(self, users: Tensor, pos: Tensor, mode: str, epoch: int, step: int, z: Tensor) -> Tensor:
        me = self.cfg.method
        kw: Dict[str, Any] = dict(mode=mode, num_negatives=me.num_negatives)
        if mode in ("dns", "llmhni"):
            zu, zi = self.model.split(z.detach())
            kw.update(num_candidates=me.num_candidates, user_emb=zu, item_emb=zi)
        if mode == "llmhni":
            kw.update(user_sem=self.user_sem, item_sem=self.item_sem, top_k=me.top_k,
                      sim_threshold=me.sim_threshold)
        # the sampler's counter offset is a function of (epoch, step): exact resumes
        kw["offset"] = epoch * self.steps_per_epoch + step
        neg, info = self.sampler.sample(users, pos, return_info=True, **kw)
        self._sample_counts = info.counts if self._sample_counts is None else self._sample_counts + info.counts
        return neg.long()

    def _epoch_views(self, epoch: int) -> None:
        """Fresh edge-dropped views every epoch (L_hal, SGL)."""
        if self._views["epoch"] == epoch:
            return
        from .contrastive import edge_drop_views
        me, seed = self.cfg.method, derive_seed(self.cfg.train.seed, 3)
        views: Dict[str, Any] = {"epoch": epoch}
        if me.name == "sgl":
            views["a"], views["b"] = edge_drop_views(self.adj_g, me.keep_prob, num_views=2, seed=seed,
                                                     offset=2 * epoch)
        elif self.llmhni and me.hallucination_robust:
            if self.adj_gp is not None:
                views["a"] = edge_drop_views(self.adj_g, me.keep_prob, num_views=1, seed=seed, offset=2 * epoch)[0]
                views["b"] = edge_drop_views(self.adj_gp, me.keep_prob, num_views=1, seed=seed,
                                             offset=2 * epoch + 1)[0]
            else:  # without G': two dropped views of G
                views["a"], views["b"] = edge_drop_views(self.adj_g, me.keep_prob, num_views=2, seed=seed,
                                                         offset=2 * epoch)
        self._views = views

    def _is_aux_step(self, epoch: int, step: int) -> bool:
        """Whether LLMHNI's auxiliary terms are computed at this step (``method.aux_every``)."""
        return (epoch * self.steps_per_epoch + step) % self.cfg.method.aux_every == 0

    def _aux_nodes(self, bu: Tensor, bi: Tensor, epoch: int, step: int) -> Tuple[Tensor, Tensor]:
        """At most ``method.aux_max_nodes`` of the batch's users and of its items, drawn
        uniformly (a function of seed, epoch and step) for the InfoNCE terms, whose cost is
        quadratic in the number of nodes contrasted."""
        cap = self.cfg.method.aux_max_nodes
        if cap <= 0:
            return bu, bi
        g = torch.Generator().manual_seed(derive_seed(self.cfg.train.seed, 5, epoch, step))
        pick = lambda t: t if t.numel() <= cap else t[torch.randperm(t.numel(), generator=g)[:cap].to(t.device)]  # noqa: E731
        return pick(bu), pick(bi)

    # ------------------------------------------------------------------ one step
    def train_step(self, epoch: int, step: int) -> Dict[str, float]:
        cfg, me = self.cfg, self.cfg.method
        name = me.name
        users, pos = self._batch(epoch, step)
        gen = torch.Generator().manual_seed(derive_seed(cfg.train.seed, 4, epoch, step))
        self.model.train()
        z = self.model(self.adj_pred, generator=gen)
        if name == "dns":
            mode = "dns"
        elif self.llmhni:
            mode = "llmhni" if me.semantic_sampling else "dns"
        else:
            mode = "uniform"
        neg = self._sample(users, pos, mode, epoch, step, z)
        n_u, b = self.n_users, users.numel()
        # one gather (and one scatter in the backward) for the batch's users, positives, negatives
        rows = torch.cat([users, n_u + pos, n_u + neg.flatten()])
        zb = z[rows]
        zu, zp, zn = zb[:b], zb[b:2 * b], zb[2 * b:].view(*neg.shape, -1)
        s_pos = (zu * zp).sum(-1)
        s_neg = (zu.unsqueeze(1) * zn).sum(-1) if zn.dim() == 3 else (zu * zn).sum(-1)
        parts: Dict[str, Tensor] = {}
        if name == "tce":
            rate = losses.tce_drop_rate(epoch, me.tce_max_drop, me.tce_warmup_epochs)
            parts["rec"] = losses.tce_loss(s_pos, s_neg, rate)
        elif name == "rce":
            parts["rec"] = losses.rce_loss(s_pos, s_neg, me.rce_beta)
        else:
            parts["rec"] = losses.bpr_loss(s_pos, s_neg)
        parts["reg"] = cfg.train.l2 * losses.l2_reg(self.model.ego()[rows], batch_size=b)
        objective = parts["rec"]
        bu = torch.unique(users)
        bi = torch.unique(pos) + n_u
        if name == "sgl":
            self._epoch_views(epoch)
            za, zb = self.model(self._views["a"], generator=gen), self.model(self._views["b"], generator=gen)
            parts["ssl"] = me.ssl_lambda * losses.ssl_loss(za, zb, bu, bi, me.ssl_tau)
        elif name == "simgcl":
            za = self.model(self.adj_pred, noise_eps=me.simgcl_eps, generator=gen)
            zb = self.model(self.adj_pred, noise_eps=me.simgcl_eps, generator=gen)
            parts["ssl"] = me.ssl_lambda * losses.ssl_loss(za, zb, bu, bi, me.ssl_tau)
        elif self.llmhni and self._is_aux_step(epoch, step):
            # L_de and L_hal on every n-th step with weight n * lambda: the same objective in
            # expectation, at 1/n of the cost of the three extra propagations and the InfoNCEs
            n = me.aux_every
            bu, bi = self._aux_nodes(bu, bi, epoch, step)
            l_de = l_hal = None
            if self.adj_gp is not None and me.lambda_de > 0:
                other = self.adj_g if self.adj_pred is self.adj_gp else self.adj_gp
                z_other = self.model(other, generator=gen)
                z_g, z_gp = (z_other, z) if self.adj_pred is self.adj_gp else (z, z_other)
                l_de = losses.de_loss(z_g, z_gp, bu, bi, me.tau_de)
                parts["de"] = n * me.lambda_de * l_de.detach()
            if me.hallucination_robust and me.lambda_hal > 0:
                self._epoch_views(epoch)
                za, zb = self.model(self._views["a"], generator=gen), self.model(self._views["b"], generator=gen)
                l_hal = losses.hal_loss(za, zb, bu, bi, me.tau_hal)
                parts["hal"] = n * me.lambda_hal * l_hal.detach()
            objective = losses.llmhni_objective(parts["rec"], l_de, l_hal, n * me.lambda_de, n * me.lambda_hal)
        # the logged parts are detached; "de"/"hal" enter the total through the objective
        total = objective + sum(v for k, v in parts.items() if k not in ("rec", "de", "hal"))
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        self.opt.step()
        out = {k: float(v.detach()) for k, v in parts.items()}
        out["loss"] = float(total.detach())
        return out

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def representations(self) -> Tuple[Tensor, Tensor]:
        self.model.eval()
        return self.model.split(self.model(self.adj_pred))

    def evaluate(self, split: str = "valid") -> Dict[str, float]:
        """Full-ranking Recall/NDCG@{10,20} on ``valid`` (train masked) or ``test``
        (train and valid masked)."""
        u, i = self.representations()
        t = self.cfg.train
        if split == "valid":
            return full_ranking(u, i, self.valid_csr, self.train_csr, DEFAULT_KS, t.eval_batch_size, t.eval_item_block)
        if split == "test":
            return full_ranking(u, i, self.test_csr, self.test_exclude, DEFAULT_KS, t.eval_batch_size,
                                t.eval_item_block)
        raise ValueError(f"split must be 'valid' or 'test', got {split!r}")

    # ------------------------------------------------------------------ state
    def state_dict(self) -> Dict[str, Any]:
        return {"config": self.cfg.to_dict(), "model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
                "epoch": self.epoch, "step": self.step,
                "partial": None if self.partial is None else self.partial.__dict__.copy(),
                "history": self.history, "best": self.best, "best_state": self.best_state,
                "bad_evals": self.bad_evals, "stopped_early": self.stopped_early,
                "torch_rng": torch.get_rng_state(), "sample_counts": self._sample_counts}

    def load_state_dict(self, st: Dict[str, Any]) -> None:
        self.model.load_state_dict(st["model"])
        self.opt.load_state_dict(st["optimizer"])
        self.epoch, self.step = st["epoch"], st["step"]
        self.partial = None if st["partial"] is None else EpochStats(**st["partial"])
        self.history, self.best, self.best_state = st["history"], st["best"], st["best_state"]
        self.bad_evals, self.stopped_early = st["bad_evals"], st["stopped_early"]
        torch.set_rng_state(st["torch_rng"])
        self._sample_counts = st.get("sample_counts")

    def _path(self, name: str) -> Optional[str]:
        return None if self.out_dir is None else os.path.join(self.out_dir, name)

    def save(self) -> None:
        if self.out_dir is None:
            return
        save_checkpoint(self.state_dict(), self._path("checkpoint.pt"))
        write_text("".join(json.dumps(h) + "\n" for h in self.history), self._path("metrics.jsonl"))

    def resume(self) -> bool:
        """Load ``checkpoint.pt`` from the output folder; False when there is none."""
        p = self._path("checkpoint.pt")
        if p is None or not os.path.isfile(p):
            return False
        st = load_checkpoint(p, map_location=self.device)
        mine, theirs = _train_relevant(self.cfg.to_dict()), _train_relevant(st["config"])
        if mine != theirs:
            diff = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
            raise ValueError(f"cannot resume from {p}: it was written with a different configuration "
                             f"({', '.join(diff[:5])}); use another --out or drop --resume")
        self.load_state_dict(st)
        return True

    # ------------------------------------------------------------------ the loop
    def fit(self, evaluate_test: bool = True, on_epoch: Optional[Callable[[Dict[str, Any]], None]] = None,
            handle_sigint: bool = False) -> Dict[str, Any]:
        """Train until ``train.epochs`` or early stopping; returns the results document.

        With ``handle_sigint``, Ctrl-C finishes the current step, saves the checkpoint and
        raises :class:`Interrupted` (a second Ctrl-C stops at once)."""
        t = self.cfg.train
        old_handler = None
        if handle_sigint:
            def _on_sigint(signum, frame):  # noqa: ARG001
                if self._interrupt:
                    raise KeyboardInterrupt
                self._interrupt = True
            old_handler = signal.signal(signal.SIGINT, _on_sigint)
        try:
            self._loop(on_epoch)
        finally:
            if handle_sigint:
                signal.signal(signal.SIGINT, old_handler)
        return self.finish(evaluate_test)

    def _loop(self, on_epoch) -> None:
        t = self.cfg.train
        try:
            from tqdm.auto import tqdm
        except ImportError:  # pragma: no cover
            tqdm = None
        while self.epoch < t.epochs and not self.stopped_early:
            epoch = self.epoch
            if self.partial is None:
                self.partial = EpochStats(epoch)
            st = self.partial
            n_steps = self.steps_per_epoch
            bar = None
            if t.progress and tqdm is not None:
                bar = tqdm(total=n_steps, initial=self.step, desc=f"epoch {epoch + 1}/{t.epochs}",
                           leave=False, dynamic_ncols=True, file=sys.stderr)
            while self.step < n_steps:
                t0 = time.perf_counter()
                out = self.train_step(epoch, self.step)
                if not math.isfinite(out["loss"]):
                    if bar is not None:
                        bar.close()
                    parts = ", ".join(f"{k} {v:.4g}" for k, v in out.items() if k != "loss")
                    raise NonFiniteLoss(f"the loss became {out['loss']} at epoch {epoch + 1}, step {self.step + 1}"
                                        + (f" ({parts})" if parts else "") + "; nothing of this epoch was saved. "
                                        "Lower train.lr, check the data, or resume from the last checkpoint")
                st.seconds += time.perf_counter() - t0
                st.loss += out["loss"]
                for k, v in out.items():
                    if k != "loss":
                        st.parts[k] = st.parts.get(k, 0.0) + v
                st.steps += 1
                self.step += 1
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{st.loss / st.steps:.4f}")
                if self._interrupt:
                    if bar is not None:
                        bar.close()
                    self.save()
                    raise Interrupted(f"interrupted in epoch {epoch + 1} at step {self.step}/{n_steps}; "
                                      f"checkpoint saved" + (f" in {self.out_dir}" if self.out_dir else ""))
            if bar is not None:
                bar.close()
            rec: Dict[str, Any] = {"epoch": epoch + 1, "loss": st.loss / max(st.steps, 1),
                                   **{k: v / max(st.steps, 1) for k, v in st.parts.items()},
                                   "train_seconds": st.seconds}
            if not self.has_valid:       # nothing to select on: the last epoch is the result
                self.best = {"epoch": epoch + 1, "valid": None, "score": float("nan")}
            elif (epoch + 1) % t.eval_every == 0 or epoch + 1 == t.epochs:
                t0 = time.perf_counter()
                val = self.evaluate("valid")
                rec["eval_seconds"] = time.perf_counter() - t0
                rec.update({f"valid_{k}": v for k, v in val.items() if k != "users"})
                score = val["recall@20"]
                if score > self.best["score"]:
                    self.best = {"epoch": epoch + 1, "valid": val, "score": score}
                    self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
                    self.bad_evals = 0
                else:
                    self.bad_evals += 1
                    if self.bad_evals >= t.patience:
                        self.stopped_early = True
            self.history.append(rec)
            self.epoch += 1
            self.step = 0
            self.partial = None
            self.save()
            if on_epoch is not None:
                on_epoch(rec)
            if self._interrupt:          # Ctrl-C during the epoch's evaluation
                raise Interrupted(f"interrupted after epoch {epoch + 1}; checkpoint saved"
                                  + (f" in {self.out_dir}" if self.out_dir else ""))

    def finish(self, evaluate_test: bool = True) -> Dict[str, Any]:
        """Restore the best-validation weights, compute test metrics, write results.json."""
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        res: Dict[str, Any] = {
            "method": self.cfg.method.name, "backbone": self.cfg.model.backbone,
            "dataset": self.ds.name, "noise": self.cfg.data.noise, "seed": self.cfg.train.seed,
            "best_epoch": self.best["epoch"], "epochs_run": self.epoch, "stopped_early": self.stopped_early,
            "valid": self.best["valid"],
            "test": self.evaluate("test") if evaluate_test else None,
            "mean_epoch_seconds": float(np.mean([h["train_seconds"] for h in self.history])) if self.history else None,
            "denoising": self.quality,
            "sampler": None if self._sample_counts is None else dict(zip(
                ("rejected", "exhausted", "filtered", "llmhni_fallbacks"), self._sample_counts.tolist())),
            "signals": getattr(self.signals, "summary", None),
            "data": {"n_users": self.n_users, "n_items": self.n_items, "train": len(self.ds.train),
                     "valid": len(self.ds.valid), "test": len(self.ds.test),
                     "injected_noise": int(self.ds.train_noise.sum()) if self.ds.train_noise is not None else 0},
            "config": self.cfg.to_dict(),
            "environment": environment(self.device),
        }
        if self.out_dir is not None:
            write_json(res, self._path("results.json"))
            if self.best_state is not None:
                save_checkpoint({"config": self.cfg.to_dict(), "model": self.best_state,
                                 "best": self.best}, self._path("best.pt"))
        return res


def _train_relevant(cfg: Dict[str, Any]) -> Dict[str, Any]:
    """Config entries that change the trajectory (not progress bars, paths, epoch limits)."""
    flat: Dict[str, Any] = {}
    for sec, vals in cfg.items():
        if isinstance(vals, dict):
            for k, v in vals.items():
                flat[f"{sec}.{k}"] = v
    # train.threads stays: OpenMP reductions make 1 and 2 threads differ in the last bits
    for k in ("train.progress", "train.epochs", "train.eval_batch_size",
              "train.eval_item_block", "data.data_root"):
        flat.pop(k, None)
    # only the method settings (and signals) the method reads
    from .methods import METHODS, NEEDS_SIGNALS, implied_settings, relevant_method_keys
    name = flat.get("method.name")
    if name in METHODS:     # what the name implies (the ablation switches), as the Trainer applies it
        flat.update({f"method.{k}": v for k, v in implied_settings(name).items()})
    keep = set(relevant_method_keys(name))
    for k in [k for k in flat if k.startswith("method.") and k[len("method."):] not in keep]:
        del flat[k]
    if name not in NEEDS_SIGNALS:
        for k in [k for k in flat if k.startswith("signals.")]:
            del flat[k]
    return flat


def environment(device: torch.device) -> Dict[str, Any]:
    """Versions, backend and device facts recorded with every run."""
    from . import __version__, backend_info
    try:
        backend = backend_info()
    except Exception as e:  # noqa: BLE001
        backend = {"error": f"{type(e).__name__}: {e}"}
    dev = str(device)
    if device.type == "cuda" and torch.cuda.is_available():
        dev = f"{device} ({torch.cuda.get_device_name(device)})"
    else:
        dev = f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, "\
              f"{torch.get_num_threads()} threads)"
    return {"llmhni": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version(), "platform": platform.platform(),
            "device": dev, "backend": backend}


def run_training(cfg: RunConfig, out_dir: Optional[str] = None, resume: Union[bool, str] = False,
                 cache_dir: Optional[str] = None, dataset=None, signals=None,
                 handle_sigint: bool = False, log: Callable[[str], None] = _log.info) -> Dict[str, Any]:
    """Everything ``llmhni train`` does: data, signals (LLMHNI), training, results.

    ``resume``: True continues from ``out_dir``'s checkpoint and says so when there is none;
    ``"auto"`` (what ``compare`` does) continues silently when there is one. Per-epoch lines
    are logged only with ``train.progress``."""
    cfg.validate()
    ds = dataset if dataset is not None else load_run_dataset(cfg)
    if is_llmhni(cfg.method.name) and signals is None:
        log(f"signals: preparing for {ds.name} (cached in {cache_dir or 'no cache'})")
        signals = signals_for(cfg, ds, cache_dir, progress=cfg.train.progress)
    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)
        clean_stale_tmp(out_dir)                # left by a run killed while writing
        from .config import dump_yaml
        dump_yaml(cfg, os.path.join(out_dir, "config.yaml"))
    tr = Trainer(cfg, ds, signals=signals, out_dir=out_dir)
    if resume:
        if tr.resume():
            log(f"resumed from {out_dir}/checkpoint.pt at epoch {tr.epoch + 1}, step {tr.step}")
        elif resume != "auto":
            log(f"--resume: no checkpoint in {out_dir}, starting from scratch")

    def on_epoch(rec: Dict[str, Any]) -> None:
        if not cfg.train.progress:
            return
        msg = f"epoch {rec['epoch']:3d}  loss {rec['loss']:.4f}  {rec['train_seconds']:.1f}s"
        if "valid_recall@20" in rec:
            msg += f"  valid R@20 {rec['valid_recall@20']:.4f}  N@20 {rec['valid_ndcg@20']:.4f}"
        log(msg)
        sys.stdout.flush()
    return tr.fit(on_epoch=on_epoch, handle_sigint=handle_sigint)
