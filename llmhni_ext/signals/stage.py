"""The signals stage: encode texts, align them (projector), propose suspicious pairs with
a pre-trained backbone, judge them from two perspectives, and turn the verdicts into the
edges G' adds and drops.

    sig = prepare_signals(ds, SignalsConfig(), backbone_embeddings=fn, cache_dir="~/.cache/llmhni")
    sig.user_sem, sig.item_sem      # [n_users, p], [n_items, p], L2-normalised (sampler's relevance space)
    sig.hard_edges, sig.noisy_edges # [2, h] (user, item) to add, [2, k] to drop
    print(sig.format_summary())

Verdicts: a candidate is *hard* when both perspectives say High (keep the positive; add
the non-interaction as an edge of G'), otherwise *noisy* (drop the positive; do not add
the non-interaction). A candidate that could not be judged (endpoint errors) is left as
it is and counted.
"""
from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .. import _log
from .config import SignalsConfig, resolve_device
from .summary import format_summary

BackboneArg = Union[Callable[..., Tuple[Tensor, Tensor]], Tuple[Tensor, Tensor], None]


@dataclass
class Signals:
    user_sem: Tensor                       #: [n_users, p] projected (or raw when not aligned), L2-normalised
    item_sem: Tensor                       #: [n_items, p]
    user_raw: Tensor                       #: [n_users, d] raw text embeddings, L2-normalised
    item_raw: Tensor                       #: [n_items, d]
    hard_edges: Tensor                     #: [2, h] int64 (user, item) non-interactions to add to G'
    noisy_edges: Tensor                    #: [2, k] int64 (user, item) training interactions to drop from G'
    summary: Dict[str, Any] = field(default_factory=dict)
    #: per judged candidate: user, item, is_positive, user label, item label, verdict
    judgments: Dict[str, Any] = field(default_factory=dict)

    def save(self, path: str) -> None:
        """Writes atomically (temporary file, then rename)."""
        from ..checkpoint import _atomic_write, clean_stale_tmp
        clean_stale_tmp(os.path.dirname(os.path.abspath(path)))
        _atomic_write(path, lambda fh: torch.save(
            {k: _plain(getattr(self, k)) for k in (f.name for f in dataclasses.fields(self))}, fh))

    @classmethod
    def load(cls, path: str) -> "Signals":
        """Tensors, numbers, strings and containers only (``weights_only=True``): a signals
        file from an untrusted cache cannot run code."""
        try:
            st = torch.load(path, map_location="cpu", weights_only=True)
            return cls(**st)
        except Exception as e:  # noqa: BLE001 - a damaged or foreign cache entry is recomputed by callers
            raise ValueError(f"signals file {path!r} could not be read ({type(e).__name__}: {e})") from None

    def format_summary(self) -> str:
        return format_summary(self.summary)


# ----------------------------------------------------------------------------- helpers

#: texts per embedding-cache shard (and per call of the encoder, which batches by encoder_batch)
_CACHE_SHARD = 256


def _plain(x: Any) -> Any:
    """Tensors, Python numbers, strings and containers only, so that the file loads with
    ``torch.load(weights_only=True)`` (NumPy arrays become tensors, NumPy scalars numbers)."""
    if isinstance(x, dict):
        return {str(k) if not isinstance(k, (int, str)) else k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_plain(v) for v in x)
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x))
    if isinstance(x, np.generic):
        return x.item()
    return x


def _inputs_hash(ds, cfg: SignalsConfig) -> str:
    """Hash of the data the signals are computed from beyond the training graph: the user
    and item texts, the data set's precomputed embeddings and the files of encoder_path."""
    h = hashlib.sha256()
    for texts in (getattr(ds, "user_text", None), getattr(ds, "item_text", None)):
        h.update(b"none" if texts is None else len(texts).to_bytes(8, "little"))
        for t in texts or ():
            b = str(t or "").encode("utf-8", "surrogatepass")
            h.update(len(b).to_bytes(8, "little") + b)
    for a in (getattr(ds, "user_text_emb", None), getattr(ds, "item_text_emb", None)):
        h.update(b"none" if a is None else np.ascontiguousarray(a).tobytes())
    if cfg.judge == "imported" and cfg.judge_import:          # the imported G' (and its base) by content
        from ..data.download import sha256_of
        from .imported import resolve_import
        for part in resolve_import(cfg.judge_import, ds):
            h.update(sha256_of(part).encode() if part is not None and os.path.isfile(part) else b"none")
        h.update(str(ds.meta.get("protocol", "validated")).encode())    # which held-out pairs it may not add
        for split in (ds.valid, ds.test):
            h.update(np.ascontiguousarray(np.sort(split.keys(ds.n_items))).tobytes())
    if cfg.encoder == "precomputed" and cfg.encoder_path:
        from ..data.download import sha256_of
        for part in cfg.encoder_path.split(","):
            part = part.strip()
            h.update(sha256_of(part).encode() if os.path.isfile(part) else b"missing")
    return h.hexdigest()[:16]


def _load_array(path: str) -> np.ndarray:
    if path.endswith(".npy"):
        return np.load(path, allow_pickle=False)
    if path.endswith(".pkl") or path.endswith(".pickle"):
        from ..data.rlmrec import load_pickle    # the exact allow-list, never plain pickle.load
        a = load_pickle(path)
        if not isinstance(a, (np.ndarray, list, tuple)):
            raise ValueError(f"{path}: expected an array of embeddings, found {type(a).__name__}")
        return np.asarray(a, dtype=np.float32)
    raise ValueError(f"precomputed embeddings must be .npy or .pkl, got {path}")


def interaction_embeddings(ds, dim: int = 64, seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """Text-free stand-in embeddings for data sets without text: the rank-``dim`` truncated
    SVD of the symmetrically normalised training matrix, ``D_u^-1/2 R D_i^-1/2 = U S V^T``,
    users ``U S^1/2`` and items ``V S^1/2`` (float32)."""
    import scipy.sparse as sp
    from scipy.sparse.linalg import svds
    u, i = ds.train.users.numpy(), ds.train.items.numpy()
    r = sp.csr_matrix((np.ones(len(u), np.float64), (u, i)), shape=(ds.n_users, ds.n_items))
    r.data[:] = 1.0                                   # duplicates count once
    du = np.asarray(r.sum(1)).ravel()
    di = np.asarray(r.sum(0)).ravel()
    su = sp.diags(1.0 / np.sqrt(np.maximum(du, 1.0)))
    si = sp.diags(1.0 / np.sqrt(np.maximum(di, 1.0)))
    k = max(1, min(dim, min(ds.n_users, ds.n_items) - 1))
    v0 = np.random.default_rng(seed).standard_normal(min(ds.n_users, ds.n_items))
    uu, s, vt = svds((su @ r @ si).astype(np.float64), k=k, v0=v0)
    w = np.sqrt(np.maximum(s, 0.0))
    return (uu * w).astype(np.float32), (vt.T * w).astype(np.float32)


def text_embeddings(ds, cfg: SignalsConfig, cache_dir: Optional[str], device: str,
                    log: Callable[[str], None] = _log.info) -> Tuple[np.ndarray, np.ndarray, str]:
    """Raw user and item text embeddings (float32) and the encoder's model id."""
    if cfg.encoder == "interactions":
        ue, ie = interaction_embeddings(ds, dim=cfg.proj_dim, seed=cfg.seed)
        log(f"signals: encoder 'interactions' is a TEXT-FREE stand-in (rank-{ue.shape[1]} SVD of the "
            "training matrix), not a language model")
        return ue, ie, f"interactions-svd{ue.shape[1]}"
    if cfg.encoder == "precomputed":
        if cfg.encoder_path:
            parts = [p.strip() for p in cfg.encoder_path.split(",")]
            if len(parts) != 2:
                raise ValueError("encoder_path for precomputed embeddings must be 'users_file,items_file'")
            ue, ie = _load_array(parts[0]), _load_array(parts[1])
            mid = f"precomputed:{os.path.abspath(parts[0])}"
        else:
            ue, ie = getattr(ds, "user_text_emb", None), getattr(ds, "item_text_emb", None)
            if ue is None or ie is None:
                raise ValueError(f"data set {ds.name!r} ships no precomputed text embeddings; set encoder_path "
                                 "'users.npy,items.npy' or use a text encoder")
            mid = f"precomputed:{ds.name}"
        ue, ie = np.asarray(ue, np.float32), np.asarray(ie, np.float32)
        if ue.shape[0] != ds.n_users or ie.shape[0] != ds.n_items or ue.ndim != 2 or ie.ndim != 2:
            raise ValueError(f"precomputed embeddings have shapes {ue.shape} / {ie.shape}, expected "
                             f"({ds.n_users}, d) / ({ds.n_items}, d)")
        return ue, ie, mid
    if ds.user_text is None or ds.item_text is None:
        raise ValueError(f"data set {ds.name!r} has no user/item text; use encoder 'precomputed' with arrays, "
                         "or the text-free stand-in encoder 'interactions' (signals.encoder=interactions)")
    from .embed_cache import EmbeddingCache
    from .encoders import make_encoder
    enc = make_encoder(cfg, device=device)
    cache = EmbeddingCache(cache_dir, enc.model_id)
    clip = cfg.encoder_max_chars
    texts = [(t or "")[:clip] for t in ds.user_text] + [(t or "")[:clip] for t in ds.item_text]
    bar = None
    if cfg.progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(set(texts)), desc=f"encode ({enc.model_id.split('@')[0]})", unit="text", leave=False)
    # texts go to the cache in shards of _CACHE_SHARD; the encoder runs its model on
    # cfg.encoder_batch texts at a time within each (make_encoder passes it on)
    emb = cache.encode(texts, enc.encode, batch=_CACHE_SHARD, progress=bar.update if bar else None)
    if bar is not None:
        bar.close()
    return emb[:ds.n_users], emb[ds.n_users:], enc.model_id


def _call_backbone(fn: BackboneArg, ds) -> Tuple[Tensor, Tensor]:
    if isinstance(fn, (tuple, list)):
        u, i = fn
    else:
        try:
            n_args = len([p for p in inspect.signature(fn).parameters.values()
                          if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)])
        except (TypeError, ValueError):
            n_args = 1
        u, i = fn(ds) if n_args >= 1 else fn()
    u, i = torch.as_tensor(u).detach().float().cpu(), torch.as_tensor(i).detach().float().cpu()
    if u.shape[0] != ds.n_users or i.shape[0] != ds.n_items:
        raise ValueError(f"backbone embeddings have {u.shape[0]} users / {i.shape[0]} items, the data set "
                         f"{ds.n_users} / {ds.n_items}")
    return u, i


def _cfg_key(cfg: SignalsConfig) -> str:
    d = cfg.to_dict()
    # what does not change the signals: bars, and the budget (a run past it makes no signals at all)
    d.pop("progress", None)
    d.pop("signals_budget_s", None)
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:12]


# ----------------------------------------------------------------------------- the stage

def prepare_signals(dataset, cfg: Union[SignalsConfig, Dict[str, Any], None] = None, *,
                    backbone_embeddings: BackboneArg = None, cache_dir: Optional[str] = None,
                    log: Callable[[str], None] = _log.info) -> Signals:
    """Semantic embeddings (raw and aligned) and judged edges for ``dataset``.

    ``backbone_embeddings``: a pre-trained backbone's (user, item) embeddings, or a
    function returning them (called with the data set, or with nothing); None skips the
    logical-relevance part. Everything expensive is cached under ``cache_dir``
    (embeddings, the converted judge model, judgments, the final signals)."""
    ds = dataset
    cfg = cfg if isinstance(cfg, SignalsConfig) else SignalsConfig.from_dict(cfg)
    cfg.validate()
    device = resolve_device(cfg.device)
    t_start, c_start = time.perf_counter(), time.process_time()
    summary: Dict[str, Any] = {"dataset": ds.name, "n_users": ds.n_users, "n_items": ds.n_items,
                               "config": cfg.to_dict(), "device": device}
    ds_id = f"{ds.name}#{ds.train_fingerprint()}"

    # --- backbone first: its embeddings are part of the final cache key
    bb = None
    if cfg.judge not in ("none", "imported") and backbone_embeddings is not None:
        t0 = time.perf_counter()
        bb = _call_backbone(backbone_embeddings, ds)
        summary["backbone_seconds"] = time.perf_counter() - t0
    final_path = None
    if cache_dir:
        h = hashlib.sha256(_cfg_key(cfg).encode())
        h.update(_inputs_hash(ds, cfg).encode())          # the texts and precomputed arrays themselves
        if bb is not None:
            h.update(bb[0].numpy().tobytes())
            h.update(bb[1].numpy().tobytes())
        final_path = os.path.join(cache_dir, "signals", f"{ds.name}-{ds.train_fingerprint()}-{h.hexdigest()[:16]}.pt")
        if os.path.isfile(final_path):
            try:
                sig = Signals.load(final_path)
                sig.summary["from_cache"] = final_path
                return sig
            except Exception:                       # unreadable: recompute
                pass

    # --- semantic relevance: text embeddings
    t0, c0 = time.perf_counter(), time.process_time()
    ue, ie, enc_id = text_embeddings(ds, cfg, cache_dir, device, log)
    user_raw = F.normalize(torch.from_numpy(ue).float(), dim=-1)
    item_raw = F.normalize(torch.from_numpy(ie).float(), dim=-1)
    summary["encoder"] = {"model_id": enc_id, "dim": int(user_raw.shape[1]), "seconds": time.perf_counter() - t0,
                          "cpu_seconds": time.process_time() - c0}

    # --- objective alignment
    from .projector import project, recall_at_k, train_projector
    train_pos, valid_pos = ds.user_positives("train"), ds.user_positives("valid")
    r_raw = recall_at_k(user_raw, item_raw, train_pos, valid_pos, 20)
    if cfg.align:
        t0 = time.perf_counter()
        if user_raw.shape[1] != item_raw.shape[1]:
            raise ValueError("user and item text embeddings must have the same width")
        proj, st = train_projector(user_raw, item_raw, ds.train.users, ds.train.items, out_dim=cfg.proj_dim,
                                   hidden=cfg.proj_hidden, epochs=cfg.proj_epochs, batch=cfg.proj_batch,
                                   lr=cfg.proj_lr, tau=cfg.proj_tau, pseudo_frac=cfg.proj_pseudo_frac,
                                   seed=cfg.seed, device=device, progress=cfg.progress)
        user_sem, item_sem = project(proj, user_raw, device), project(proj, item_raw, device)
        st["seconds"] = time.perf_counter() - t0
    else:
        user_sem, item_sem, st = user_raw.clone(), item_raw.clone(), {"aligned": False}
    r_sem = recall_at_k(user_sem, item_sem, train_pos, valid_pos, 20)
    summary["alignment"] = dict(st, aligned=cfg.align, valid_recall20_raw=r_raw, valid_recall20_sem=r_sem)

    hard = torch.zeros(2, 0, dtype=torch.long)
    noisy = torch.zeros(2, 0, dtype=torch.long)
    judg: Dict[str, Any] = {}
    if cfg.judge == "none":
        summary["logical"] = {"skipped": "judge is 'none'"}
    elif cfg.judge == "imported":
        from .imported import imported_judgments
        hard, noisy, judg, summary["logical"] = imported_judgments(ds, cfg)
        lg = summary["logical"]
        log(f"[signals] imported G' from {lg['source']}: drops {lg['positives_noisy_dropped']:,} training pairs, "
            f"adds {lg['negatives_hard_added']:,} ({lg['added_in_test']:,} of the file's {lg['added']:,} additions "
            f"are test pairs: {'added' if cfg.judge_import_heldout == 'keep' else 'not added'})")
    elif bb is None:
        summary["logical"] = {"skipped": "no backbone embeddings given"}
        log("[signals] no backbone embeddings: logical relevance skipped (no edges added or dropped)")
    else:
        from .logical import judge_candidates
        hard, noisy, judg, summary["logical"] = judge_candidates(ds, ds_id, cfg, bb, user_sem, item_sem, user_raw,
                                                                 item_raw, device, cache_dir, log, t_start)
    summary["seconds"] = time.perf_counter() - t_start
    summary["cpu_seconds"] = time.process_time() - c_start
    sig = Signals(user_sem=user_sem.contiguous(), item_sem=item_sem.contiguous(), user_raw=user_raw, item_raw=item_raw,
                  hard_edges=hard, noisy_edges=noisy, summary=summary, judgments=judg)
    if final_path and summary.get("logical", {}).get("complete", True):
        sig.save(final_path)
    return sig
