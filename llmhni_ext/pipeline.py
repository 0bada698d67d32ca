"""Everything around the training loop: the run's data, the signals stage, the backbone
pre-training that proposes the suspicious pairs, and ``llmhni train`` end to end."""
from __future__ import annotations

import copy
import os
import sys
from typing import Any, Callable, Dict, Optional, Tuple, Union

from torch import Tensor

from . import _log
from ._common import cache_root
from . import methods as _methods
from .checkpoint import clean_stale_tmp, load_checkpoint, save_checkpoint
from .config import PAPER_PROTOCOL_NOTE, RunConfig, dump_yaml, from_dict
from .data import load_dataset
from .train import Trainer


def load_run_dataset(cfg: RunConfig):
    """The data set of a run: loaded (or generated), with injected noise, optionally sliced."""
    noise = cfg.data.noise if cfg.data.noise > 0 else "none"
    ds = load_dataset(cfg.data.dataset, cfg.data.data_root, noise=noise, seed=cfg.data.noise_seed)
    if cfg.data.max_users > 0:
        ds = slice_users(ds, cfg.data.max_users)
    if cfg.data.protocol == "paper":
        ds = paper_protocol(ds)
    if cfg.data.graph == "imported":
        from .signals import SignalsConfig
        from .signals.imported import apply_to_train, imported_judgments
        # only the import settings: the encoder's and judge's do not change the imported graph
        scfg = SignalsConfig(**{k: v for k, v in cfg.signals.to_dict().items() if k.startswith("judge_import")})
        hard, noisy, _, info = imported_judgments(ds, scfg)
        ds = apply_to_train(ds, hard, noisy)
        ds.meta["graph_import"] = info
        _log.info(f"data: training on the imported G' ({info['source']}): {info['positives_noisy_dropped']:,} pairs "
                  f"dropped, {info['negatives_hard_added']:,} added")
    return ds


def paper_protocol(ds):
    """The data set as the paper's protocol sees it: train = train + valid, and the split the
    epoch is chosen on is the test split (``meta["protocol"] = "paper"``; test ranking then
    masks the training items only)."""
    import numpy as np
    from .data.dataset import Interactions
    if ds.meta.get("protocol") == "paper":
        return ds
    keys = np.union1d(ds.train.keys(ds.n_items), ds.valid.keys(ds.n_items))     # sorted, no duplicates
    noise = None
    if ds.train_noise is not None:       # injected-noise labels follow the training rows; valid rows are clean
        import torch
        from .data.splitting import in_sorted
        noisy = np.unique(ds.train.keys(ds.n_items)[ds.train_noise.numpy().astype(bool)])
        noise = torch.from_numpy(in_sorted(keys, noisy))
    meta = dict(ds.meta, protocol="paper", protocol_note=PAPER_PROTOCOL_NOTE)
    return ds.replace(train=Interactions(keys // ds.n_items, keys % ds.n_items), valid=ds.test, train_noise=noise,
                      meta=meta)


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


def needs_signals(cfg: RunConfig) -> bool:
    """Whether the run's method needs the signals stage's output."""
    return _methods.get(cfg.method.name).needs_signals is not None


def signals_for(cfg: RunConfig, ds, cache_dir: Optional[str], progress: bool = True):
    """The signals stage's output for a method that needs it (semantic embeddings, judged
    edges). A method that needs only the profile embeddings ("texts") skips the judge."""
    from . import signals as S  # the signals stage pulls in the text encoders
    cfg = copy.deepcopy(cfg).validate()      # also reads a cfg.signals that was set as a mapping
    scfg = cfg.signals.replace(progress=bool(progress and cfg.signals.progress))
    if _methods.get(cfg.method.name).needs_signals == "texts":
        scfg = scfg.replace(judge="none")
    # The backbone that proposes the suspicious pairs is trained first, and its embeddings are
    # handed to the stage. Its seed is the data seed, so every training seed shares one set of
    # signals; it is cached on disk.
    bb = None
    if scfg.judge not in ("none", "imported"):       # an imported G' needs no candidates
        bb = pretrain_backbone(ds, seed=cfg.data.noise_seed, cache_dir=cache_dir, device=cfg.train.device,
                               progress=progress)
    return S.prepare_signals(ds, scfg, backbone_embeddings=bb, cache_dir=cache_dir)


def pretrain_backbone(ds, *, epochs: int = 20, dim: int = 64, layers: int = 3, seed: int = 0,
                      cache_dir: Optional[str] = None, device: str = "cpu",
                      progress: bool = True) -> Tuple[Tensor, Tensor]:
    """A short LightGCN/BPR pre-training (early-stopped on validation Recall@20) whose
    embeddings propose the suspicious pairs for the judges. Cached on disk by training
    data, dimensions, epochs and seed."""
    path = None
    if cache_dir:
        key = f"{ds.train_fingerprint()}-d{dim}-l{layers}-e{epochs}-s{seed}"
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
    u, i = (t.detach().cpu().float() for t in tr.representations())
    if path:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        save_checkpoint({"user": u, "item": i}, path)
    return u, i


def run_training(cfg: RunConfig, out_dir: Optional[str] = None, resume: Union[bool, str] = False,
                 cache_dir: Optional[str] = None, dataset=None, signals=None,
                 handle_sigint: bool = False, log: Callable[[str], None] = _log.info, dist=None) -> Dict[str, Any]:
    """Everything ``llmhni train`` does: data, signals (when the method needs them), training,
    results. ``cfg`` is not changed.

    ``resume``: True continues from ``out_dir``'s checkpoint and says so when there is none;
    ``"auto"`` (what ``compare`` does) continues silently when there is one. Per-epoch lines
    are logged only with ``train.progress``."""
    cfg = copy.deepcopy(cfg).validate()
    main = dist is None or dist.main
    with OutputLock(out_dir if main else None):        # before anything slow: a second run fails at once
        state = None
        ckpt = os.path.join(out_dir, "checkpoint.pt") if out_dir is not None else None
        if resume and ckpt and os.path.isfile(ckpt):
            state = load_checkpoint(ckpt)               # a crafted or damaged checkpoint stops the run here,
        ds = dataset if dataset is not None else load_run_dataset(cfg)   # before the data and the signals
        if needs_signals(cfg) and signals is None:
            log(f"signals: preparing for {ds.name} (cached in {cache_dir or 'no cache'})")
            signals = signals_for(cfg, ds, cache_dir, progress=cfg.train.progress)
        if out_dir is not None and main:            # one writer under torch.distributed: rank 0
            clean_stale_tmp(out_dir)                # left by a run killed while writing
            dump_yaml(cfg, os.path.join(out_dir, "config.yaml"))
        return _train(cfg, ds, signals, out_dir, resume, handle_sigint, log, dist, main, state)


def _train(cfg, ds, signals, out_dir, resume, handle_sigint, log, dist, main, state=None) -> Dict[str, Any]:
    tr = Trainer(cfg, ds, signals=signals, out_dir=out_dir, dist=dist)
    if resume:
        if tr.resume(state):
            log(f"resumed from {out_dir}/checkpoint.pt at epoch {tr.epoch + 1}, step {tr.step}")
        elif resume != "auto":
            log(f"--resume: no checkpoint in {out_dir}, starting from scratch")

    def on_epoch(rec: Dict[str, Any]) -> None:
        if not cfg.train.progress or not main:
            return
        msg = f"epoch {rec['epoch']:3d}  loss {rec['loss']:.4f}  {rec['train_seconds']:.1f}s"
        if "valid_recall@20" in rec:
            msg += f"  valid R@20 {rec['valid_recall@20']:.4f}  N@20 {rec['valid_ndcg@20']:.4f}"
        log(msg)
        sys.stdout.flush()
    return tr.fit(on_epoch=on_epoch, handle_sigint=handle_sigint)


class OutputLock:
    """Holds ``<out>/.llmhni.lock`` (an exclusive ``flock``) while a run writes ``out``: a second
    run on the same folder is refused at once, naming the first one's process id. The lock goes
    with the process (also when it is killed), so a stale lock file never blocks a later run."""

    def __init__(self, out_dir: Optional[str]) -> None:
        self.out_dir, self._fh = out_dir, None

    def __enter__(self) -> "OutputLock":
        if self.out_dir is None:
            return self
        os.makedirs(self.out_dir, exist_ok=True)
        path = os.path.join(self.out_dir, ".llmhni.lock")
        self._fh = open(path, "a+", encoding="utf-8")
        try:
            import fcntl
        except ImportError:           # not POSIX: no lock (documented)
            return self
        try:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._fh.seek(0)
            who = self._fh.read().strip() or "unknown"
            self._fh.close()
            self._fh = None
            raise RuntimeError(f"{self.out_dir} is being written by another llmhni run (process {who}); wait for "
                               f"it, or give this run another --out") from None
        self._fh.seek(0)
        self._fh.truncate()
        self._fh.write(str(os.getpid()))
        self._fh.flush()
        return self

    def __exit__(self, *exc) -> None:
        if self._fh is not None:
            self._fh.close()          # closing releases the flock
            self._fh = None


def evaluate_checkpoint(path: str, splits=("valid", "test"), data_root: Optional[str] = None,
                        device: Optional[str] = None, cache_dir: Optional[str] = None) -> Dict[str, Dict[str, float]]:
    """The metrics of a saved model (``best.pt`` or ``checkpoint.pt``) on each split, with
    the data, graphs and signals its configuration names (``llmhni evaluate``); the signals
    come from ``cache_dir`` (default: the cache root), as the run that saved the model left them."""
    st = load_checkpoint(path)
    if "config" not in st or "model" not in st:
        raise ValueError(f"{path} is not an llmhni checkpoint (no config/model inside)")
    cfg = from_dict(st["config"])
    if data_root:
        cfg.data.data_root = data_root
    if device:
        cfg.train.device = device
    cfg.train.progress = False
    ds = load_run_dataset(cfg)
    cache = cache_dir or cache_root()
    signals = signals_for(cfg, ds, cache, progress=False) if needs_signals(cfg) else None
    tr = Trainer(cfg, ds, signals=signals)
    tr.load_model_state(st["model"], path)
    return {s: tr.evaluate(s) for s in splits}
