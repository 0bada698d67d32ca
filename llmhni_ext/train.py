"""The training loop: one loop for LLMHNI and every baseline, on the project's kernels.

Per step, for a batch ``B`` of (user, positive) pairs of the graph the method trains on
(:attr:`Method.graph <llmhni_ext.methods.base.Method.graph>`: G', the denoised graph, for
LLMHNI; the observed G otherwise):

* representations ``z = f(graph; e^(0))`` of the backbone ``f``;
* negatives from :class:`llmhni_ext.sampling.NegativeSampler` in the method's mode (uniform,
  popularity, dns, or llmhni: high backbone score, low projected semantic similarity), never
  a positive of that graph;
* ``L = L_rec + sum_k lambda_k L_k + l2 * L_reg``: the method's recommendation loss, its
  auxiliary terms (for LLMHNI ``lambda_1 L_de + lambda_2 L_hal``) and LightGCN's L2 on the
  batch's ego embeddings.

Every random choice is a function of ``(seed, epoch, step)`` (:mod:`llmhni_ext.seeding`), so
a run resumed from a checkpoint, even one written mid-epoch by Ctrl-C, continues exactly as
the uninterrupted run would. Data loading, the signals stage and backbone pre-training live
in :mod:`llmhni_ext.pipeline`; what each method does lives in :mod:`llmhni_ext.methods`.
"""
from __future__ import annotations

import copy
import json
import math
import os
import signal
import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from . import losses
from . import methods as _methods
from .batching import epoch_order
from .checkpoint import load_checkpoint, save_checkpoint, write_json, write_text
from .distributed import Dist, partition_graphs, step_strategy
from .config import RunConfig, trajectory_settings
from .evaluate import DEFAULT_KS, full_ranking, interactions_csr, merge_csr
from .methods.base import Graph, RunContext, Step
from .models import Backbone, build_backbone
from .provenance import check_splits, environment
from .sampling import NegativeSampler
from .seeding import Stream, derive_seed


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

    ``cfg`` is copied (and validated, which applies what the method's name implies); the
    caller's object is never changed. ``signals`` (from :func:`llmhni_ext.pipeline.signals_for`)
    is required by the methods that need it. ``out_dir``, when given, receives
    ``metrics.jsonl``, ``results.json`` and ``checkpoint.pt`` / ``best.pt``."""

    def __init__(self, cfg: RunConfig, dataset, signals=None, out_dir: Optional[str] = None,
                 dist: Optional[Dist] = None) -> None:
        self.cfg = cfg = copy.deepcopy(cfg).validate()
        self.dist = dist or Dist()
        self.strategy = step_strategy(self.dist)     # one process, or data parallel over the ranks
        self.ds, self.signals, self.out_dir = dataset, signals, out_dir
        self.device = dev = torch.device(cfg.train.device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"train.device is {cfg.train.device!r} but CUDA is not available")
        if cfg.train.threads > 0:
            torch.set_num_threads(cfg.train.threads)
        check_splits(dataset)
        self.has_valid = len(dataset.valid) > 0
        if not self.has_valid:
            warnings.warn(f"data set {dataset.name!r} has no validation interactions: early stopping is off and the "
                          f"last epoch's weights are reported (give the data a validation split to select the best "
                          f"epoch)", stacklevel=2)
        self.n_users, self.n_items = n_users, n_items = dataset.n_users, dataset.n_items
        tu, ti = dataset.train.users, dataset.train.items
        m = cfg.model
        self.model: Backbone = build_backbone(m.backbone, n_users, n_items, m.dim, m.layers,
                                              seed=cfg.train.seed, ngcf_dropout=m.ngcf_dropout).to(dev)
        # G, the observed (possibly noisy) training graph; the method builds whatever else it needs
        G = Graph.build(tu, ti, n_users, n_items, dev)
        self.method = _methods.get(cfg.method.name)(RunContext(cfg, dataset, signals, self.model, G, dev))
        # under torch.distributed each rank keeps a block of rows of each graph, and nothing more
        self.partition: Optional[Dict[str, Any]] = None
        if self.dist.active and m.backbone in ("lightgcn", "ngcf"):
            self.partition = partition_graphs(self.method.graphs(), self.dist)
        self.params = list(self.model.parameters()) + self.method.parameters()
        self.opt = torch.optim.Adam(self.params, lr=cfg.train.lr)
        # negatives avoid the positives of the graph L_rec trains on (an edge G' adds never
        # comes back as a negative)
        graph = self.method.graph
        self.sampler = NegativeSampler(graph.users, graph.items, n_users, n_items,
                                       seed=derive_seed(cfg.train.seed, Stream.SAMPLER))
        self.sampler_spec = self.method.sampler_spec()
        # evaluation masks: the observed training interactions (and, for test, validation)
        self.train_csr = interactions_csr(tu, ti, n_users, n_items)
        self.valid_csr = interactions_csr(dataset.valid.users, dataset.valid.items, n_users, n_items)
        self.test_csr = interactions_csr(dataset.test.users, dataset.test.items, n_users, n_items)
        # under the paper's protocol the valid split IS the test split: test masks training items only
        paper = dataset.meta.get("protocol") == "paper"
        self.test_exclude = self.train_csr if paper else merge_csr([self.train_csr, self.valid_csr])
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
        self._order: Tuple[int, Optional[Tensor]] = (-1, None)

    # ------------------------------------------------------------------ batches
    @property
    def quality(self) -> Dict[str, Any]:
        """What the method's inputs changed (for LLMHNI: the edges G' removed and added)."""
        return self.method.summary()

    @property
    def steps_per_epoch(self) -> int:
        return max(1, math.ceil(self.method.graph.users.numel() / self.cfg.train.batch_size))

    def _batch(self, epoch: int, step: int) -> Tuple[Tensor, Tensor]:
        """The step's (users, positives) of the method's graph, in ``train.batching`` order
        (:mod:`llmhni_ext.batching`)."""
        g_users, g_items = self.method.graph.users, self.method.graph.items
        bs = self.cfg.train.batch_size
        if self._order[0] != epoch:
            gen = torch.Generator().manual_seed(derive_seed(self.cfg.train.seed, Stream.BATCH_ORDER, epoch))
            order = epoch_order(g_users, self.n_users, self.cfg.train.batching, gen)
            self._order = (epoch, order.to(self.device))
        idx = self._order[1][step * bs: (step + 1) * bs]
        return g_users[idx], g_items[idx]

    def _negatives(self, step: Step, z: Tensor) -> Tensor:
        emb = self.method.scoring_embeddings(z)
        user_emb, item_emb = emb if emb is not None else (None, None)
        # the sampler's counter offset is the global step: exact resumes
        neg, info = self.sampler.sample(step.users, step.pos, self.sampler_spec, user_emb=user_emb, item_emb=item_emb,
                                        return_info=True, offset=step.global_step)
        self._sample_counts = info.counts if self._sample_counts is None else self._sample_counts + info.counts
        return neg.long()

    # ------------------------------------------------------------------ one step
    def train_step(self, epoch: int, index: int) -> Dict[str, float]:
        """One step of ``L = L_rec + sum_k lambda_k L_k + l2 * L_reg``; returns the logged parts."""
        users, pos = self._batch(epoch, index)
        step = Step(epoch, index, epoch * self.steps_per_epoch + index, users, pos,
                    torch.Generator().manual_seed(derive_seed(self.cfg.train.seed, Stream.STEP, epoch, index)))
        self.model.train()
        z = self.method.representations(step)
        neg = self._negatives(step, z)
        # the rows this process scores (all of them, or its shard under torch.distributed)
        users, pos, neg, share = self.strategy.shard(users, pos, neg, self.method.rec_couples_rows)
        b, n_u = users.numel(), self.n_users
        # one gather (and one scatter in the backward) for the batch's users, positives, negatives
        rows = torch.cat([users, n_u + pos, n_u + neg.flatten()])
        zb = z[rows]
        zu, zp, zn = zb[:b], zb[b:2 * b], zb[2 * b:].view(*neg.shape, -1)
        step.z_users, step.z_pos, step.z_neg = zu, zp, zn
        s_pos = (zu * zp).sum(-1)
        s_neg = (zu.unsqueeze(1) * zn).sum(-1) if zn.dim() == 3 else (zu * zn).sum(-1)
        l_rec = self.method.rec_loss(s_pos, s_neg, step)
        l_reg = self.cfg.train.l2 * losses.l2_reg(self.model.ego()[rows], batch_size=b)
        terms = self.method.aux_losses(step, z)                 # over the whole batch (step.users, step.pos)
        total, parts = self.strategy.objective(l_rec, l_reg, terms, share)
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        self.strategy.all_reduce_grads(self.params)
        self.opt.step()
        logged = torch.stack([p.detach() for p in parts] + [total.detach()]).double()
        vals = self.strategy.all_reduce_(logged).tolist()       # the global batch's values on every rank
        out = dict(zip(["rec", "reg", *terms.keys()], vals[:-1]))
        out["loss"] = vals[-1]
        return out

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def representations(self) -> Tuple[Tensor, Tensor]:
        self.model.eval()
        return self.model.split(self.method.eval_representations())

    def evaluate(self, split: str = "valid") -> Dict[str, float]:
        """Full-ranking Recall/NDCG@{10,20} on ``valid`` (train masked) or ``test``
        (train and valid masked)."""
        u, i = self.representations()
        t = self.cfg.train
        if split == "valid":
            return full_ranking(u, i, self.valid_csr, self.train_csr, DEFAULT_KS, t.eval_batch_size, t.eval_item_block,
                                dist=self.dist)
        if split == "test":
            return full_ranking(u, i, self.test_csr, self.test_exclude, DEFAULT_KS, t.eval_batch_size,
                                t.eval_item_block, dist=self.dist)
        raise ValueError(f"split must be 'valid' or 'test', got {split!r}")

    # ------------------------------------------------------------------ state
    def state_dict(self) -> Dict[str, Any]:
        return {"config": self.cfg.to_dict(), "model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
                "epoch": self.epoch, "step": self.step,
                "partial": None if self.partial is None else self.partial.__dict__.copy(),
                "history": self.history, "best": self.best, "best_state": self.best_state,
                "bad_evals": self.bad_evals, "stopped_early": self.stopped_early,
                "torch_rng": torch.get_rng_state(), "sample_counts": self._sample_counts,
                "method_state": self.method.state_dict()}

    def load_model_state(self, state: Dict[str, Tensor], source: str) -> None:
        """The model's weights from a checkpoint, or a clear error naming ``source`` when the
        checkpoint's tensors do not fit this configuration (other sizes, a foreign file)."""
        try:
            self.model.load_state_dict(state)
        except (RuntimeError, KeyError, TypeError, AttributeError) as e:
            lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
            detail = "; ".join(lines[1:4] if len(lines) > 1 else lines[:1])
            raise ValueError(f"{source}: its model weights do not fit this configuration ({self.cfg.model.backbone}, "
                             f"{self.n_users} users, {self.n_items} items, dim {self.cfg.model.dim}, "
                             f"{self.cfg.model.layers} layers): {detail}") from None

    def load_state_dict(self, st: Dict[str, Any], source: str = "checkpoint") -> None:
        self.load_model_state(st["model"], source)
        self.opt.load_state_dict(st["optimizer"])
        self.epoch, self.step = st["epoch"], st["step"]
        self.partial = None if st["partial"] is None else EpochStats(**st["partial"])
        self.history, self.best, self.best_state = st["history"], st["best"], st["best_state"]
        self.bad_evals, self.stopped_early = st["bad_evals"], st["stopped_early"]
        torch.set_rng_state(st["torch_rng"])
        self._sample_counts = st.get("sample_counts")
        self.method.load_state_dict(st.get("method_state") or {})

    def _path(self, name: str) -> Optional[str]:
        return None if self.out_dir is None else os.path.join(self.out_dir, name)

    def save(self) -> None:
        if self.out_dir is None or not self.dist.main:
            return
        save_checkpoint(self.state_dict(), self._path("checkpoint.pt"))
        write_text("".join(json.dumps(h) + "\n" for h in self.history), self._path("metrics.jsonl"))

    def resume(self, state: Optional[Dict[str, Any]] = None) -> bool:
        """Load ``checkpoint.pt`` from the output folder (or ``state``, that file already read);
        False when there is none."""
        p = self._path("checkpoint.pt")
        if p is None or not os.path.isfile(p):
            return False
        st = load_checkpoint(p, map_location=self.device) if state is None else state
        mine, theirs = trajectory_settings(self.cfg.to_dict()), trajectory_settings(st["config"])
        if mine != theirs:
            diff = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
            raise ValueError(f"cannot resume from {p}: it was written with a different configuration "
                             f"({', '.join(diff[:5])}); use another --out or drop --resume")
        try:
            self.load_state_dict(st, source=f"cannot resume from {p}")
        except (KeyError, TypeError) as e:
            raise ValueError(f"cannot resume from {p}: not a complete llmhni checkpoint ({type(e).__name__}: {e})") from None
        return True

    def _interrupted(self) -> bool:
        """Whether Ctrl-C was pressed (on any rank: every rank stops at the same step)."""
        if not self.dist.active:
            return self._interrupt
        return bool(self.dist.all_reduce_(torch.tensor([float(self._interrupt)])).item() > 0)

    # ------------------------------------------------------------------ the loop
    def fit(self, evaluate_test: bool = True, on_epoch: Optional[Callable[[Dict[str, Any]], None]] = None,
            handle_sigint: bool = False) -> Dict[str, Any]:
        """Train until ``train.epochs`` or early stopping; returns the results document.

        With ``handle_sigint``, Ctrl-C (SIGINT) or SIGTERM (a scheduler's stop, ``kill``)
        finishes the current step, saves the checkpoint and raises :class:`Interrupted` (a
        second signal stops at once)."""
        old_handlers = {}
        if handle_sigint:
            def _on_signal(signum, frame):  # noqa: ARG001
                if self._interrupt:
                    raise KeyboardInterrupt
                self._interrupt = True
            for sig in (signal.SIGINT, signal.SIGTERM):
                old_handlers[sig] = signal.signal(sig, _on_signal)
        try:
            self._loop(on_epoch)
        finally:
            for sig, old in old_handlers.items():
                signal.signal(sig, old)
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
            if t.progress and tqdm is not None and self.dist.main:
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
                if self._interrupted():
                    if bar is not None:
                        bar.close()
                    self.save()
                    raise Interrupted(f"interrupted in epoch {epoch + 1} at step {self.step}/{n_steps}; "
                                      f"checkpoint saved" + (f" in {self.out_dir}" if self.out_dir else ""))
            if bar is not None:
                bar.close()
            self.method.on_epoch_end(epoch)
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
            if self._interrupted():          # Ctrl-C during the epoch's evaluation
                raise Interrupted(f"interrupted after epoch {epoch + 1}; checkpoint saved"
                                  + (f" in {self.out_dir}" if self.out_dir else ""))

    def finish(self, evaluate_test: bool = True) -> Dict[str, Any]:
        """Restore the best-validation weights, compute test metrics, write results.json."""
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        res: Dict[str, Any] = {
            "method": self.cfg.method.name, "backbone": self.cfg.model.backbone,
            "dataset": self.ds.name, "protocol": self.ds.meta.get("protocol", "validated"),
            **({"protocol_note": self.ds.meta["protocol_note"]} if "protocol_note" in self.ds.meta else {}), "noise": self.cfg.data.noise, "seed": self.cfg.train.seed,
            "best_epoch": self.best["epoch"], "epochs_run": self.epoch, "stopped_early": self.stopped_early,
            "valid": self.best["valid"],
            "test": self.evaluate("test") if evaluate_test else None,
            "mean_epoch_seconds": float(np.mean([h["train_seconds"] for h in self.history])) if self.history else None,
            "denoising": self.quality,
            "distributed": None if not self.dist.active else self.partition or {"world": self.dist.world},
            "sampler": None if self._sample_counts is None else dict(zip(
                ("rejected", "exhausted", "filtered", "llmhni_fallbacks"), self._sample_counts.tolist())),
            "signals": getattr(self.signals, "summary", None),
            "graph_import": self.ds.meta.get("graph_import"),
            "data": {"n_users": self.n_users, "n_items": self.n_items, "train": len(self.ds.train),
                     "valid": len(self.ds.valid), "test": len(self.ds.test),
                     "injected_noise": int(self.ds.train_noise.sum()) if self.ds.train_noise is not None else 0},
            "config": self.cfg.to_dict(),
            "environment": environment(self.device),
        }
        if self.out_dir is not None and self.dist.main:
            write_json(res, self._path("results.json"))
            if self.best_state is not None:
                save_checkpoint({"config": self.cfg.to_dict(), "model": self.best_state,
                                 "best": self.best}, self._path("best.pt"))
        return res
