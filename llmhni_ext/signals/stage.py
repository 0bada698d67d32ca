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
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .. import _log
from .config import SignalsConfig, resolve_device
from .summary import format_summary
from .prompts import guess_noun

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


def make_judge(cfg: SignalsConfig, device: str, cache_dir: Optional[str], log=print):
    if cfg.judge == "embedding":
        from .judges.embedding import EmbeddingJudge
        return EmbeddingJudge("projected" if cfg.align else "raw")
    if cfg.judge == "openai-chat":
        from .judges.openai_chat import OpenAIChatJudge
        return OpenAIChatJudge(cfg.judge_url, cfg.judge_model, api_key_env=cfg.judge_api_key_env,
                               concurrency=cfg.judge_concurrency, timeout_s=cfg.judge_timeout_s,
                               retries=cfg.judge_retries, backoff_s=cfg.judge_backoff_s)
    if cfg.judge == "local-lm":
        from .judges.local_lm import LocalLMJudge, load_causal_lm
        dtype = None if cfg.lm_dtype == "auto" else getattr(torch, cfg.lm_dtype)
        model, tok, mid = load_causal_lm(cfg.judge_model, cache_dir=cache_dir, device=device, dtype=dtype, log=log)
        return LocalLMJudge(model, tok, mid, batch=cfg.lm_batch, profile_tokens=cfg.lm_profile_tokens,
                            n_context=cfg.context_items, users_per_batch=cfg.lm_users_per_batch)
    raise ValueError(f"no judge for {cfg.judge!r}")


def collect_labels(judge, tasks, inputs, cache, cfg: SignalsConfig) -> Tuple[Dict[Tuple[int, int, str], str], Dict[str, float]]:
    """(user, item, perspective) -> High/Mid/Low/unknown for every judged candidate; each
    judge turns its own records into labels (:meth:`Judge.labels`)."""
    return judge.labels(tasks, inputs, cache, high_margin=cfg.high_margin, low_margin=cfg.low_margin)


def _kappa(a: List[str], b: List[str]) -> float:
    if not a:
        return float("nan")
    labs = sorted(set(a) | set(b))
    n = len(a)
    po = sum(x == y for x, y in zip(a, b)) / n
    pe = sum((a.count(l) / n) * (b.count(l) / n) for l in labs)
    return float((po - pe) / (1 - pe)) if pe < 1 else 1.0


def judged_user_limit(cfg: SignalsConfig, device: str) -> int:
    """How many users' candidates are judged (0 = all): ``cand_max_users``, or for -1 (auto)
    every user on a GPU or with the instant embedding judge, and a seeded sample of 300 for a
    language-model judge on a CPU (about 2 s per user there)."""
    if cfg.cand_max_users >= 0:
        return cfg.cand_max_users
    return 0 if str(device).startswith("cuda") or cfg.judge == "embedding" else 300


def _cfg_key(cfg: SignalsConfig) -> str:
    d = cfg.to_dict()
    d.pop("progress", None)
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
    if cfg.judge != "none" and backbone_embeddings is not None:
        t0 = time.perf_counter()
        bb = _call_backbone(backbone_embeddings, ds)
        summary["backbone_seconds"] = time.perf_counter() - t0
    final_path = None
    if cache_dir:
        h = hashlib.sha256(_cfg_key(cfg).encode())
        h.update(f"|judged-users={judged_user_limit(cfg, device)}".encode())   # what "auto" resolved to
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
    elif bb is None:
        summary["logical"] = {"skipped": "no backbone embeddings given"}
        log("[signals] no backbone embeddings: logical relevance skipped (no edges added or dropped)")
    else:
        hard, noisy, judg, summary["logical"] = _logical(ds, ds_id, cfg, bb, user_sem, item_sem, user_raw, item_raw,
                                                         device, cache_dir, log)
    summary["seconds"] = time.perf_counter() - t_start
    summary["cpu_seconds"] = time.process_time() - c_start
    sig = Signals(user_sem=user_sem.contiguous(), item_sem=item_sem.contiguous(), user_raw=user_raw, item_raw=item_raw,
                  hard_edges=hard, noisy_edges=noisy, summary=summary, judgments=judg)
    if final_path and summary.get("logical", {}).get("complete", True):
        sig.save(final_path)
    return sig


def _names(ds) -> Tuple[List[str], List[str], List[str]]:
    n_u, n_i = ds.n_users, ds.n_items
    uf, itf = ds.user_fields or {}, ds.item_fields or {}
    item_text = list(ds.item_text) if ds.item_text is not None else [f"item {r}" for r in ds.item_raw_ids]
    titles = itf.get("title")
    item_name = [t if t else item_text[k][:80] for k, t in enumerate(titles)] if titles else [t[:80] for t in item_text]
    prof = uf.get("profile")
    user_text = list(ds.user_text) if ds.user_text is not None else [f"user {r}" for r in ds.user_raw_ids]
    user_profile = [p if p else user_text[k] for k, p in enumerate(prof)] if prof else user_text
    assert len(item_name) == n_i and len(user_profile) == n_u
    return user_profile, [t or "" for t in item_text], [str(x) for x in item_name]


def _logical(ds, ds_id, cfg, bb, user_sem, item_sem, user_raw, item_raw, device, cache_dir, log):
    from .candidates import propose_candidates
    from .judges.base import JudgeInputs, UserTask
    from .judgment_cache import JudgmentCache
    train_pos = ds.user_positives("train")
    cands = propose_candidates(bb[0], bb[1], train_pos, n_pos=cfg.cand_pos_per_user, n_neg=cfg.cand_neg_per_user,
                               n_context=cfg.context_items)
    cands = [c for c in cands if c.positives or c.negatives]
    limit = judged_user_limit(cfg, device)
    if 0 < limit < len(cands):
        rng = np.random.default_rng(np.random.SeedSequence([int(cfg.seed), 0x6A756467]))
        keep = np.sort(rng.choice(len(cands), size=limit, replace=False))
        cands = [cands[k] for k in keep]
    tasks = [UserTask(c.user, list(c.positives) + list(c.negatives), list(c.context)) for c in cands]
    is_pos = {(c.user, i): True for c in cands for i in c.positives}
    is_pos.update({(c.user, i): False for c in cands for i in c.negatives})
    noun = guess_noun(ds.name) if cfg.item_noun == "auto" else cfg.item_noun
    profile, item_text, item_name = _names(ds)
    inputs = JudgeInputs(dataset=ds_id, noun=noun, user_profile=profile, item_text=item_text, item_name=item_name,
                         user_vec=user_sem if cfg.align else user_raw, item_vec=item_sem if cfg.align else item_raw)
    t0 = time.perf_counter()
    judge = make_judge(cfg, device, cache_dir, log)
    load_s = time.perf_counter() - t0
    path = os.path.join(cache_dir, "judgments", f"{ds.name}-{ds.train_fingerprint()}.jsonl") if cache_dir else None
    info: Dict[str, Any] = {"judge": judge.name, "proxy": bool(judge.proxy), "cache": path, "judge_load_seconds": load_s,
                            "users": len(tasks), "user_limit": limit, "candidate_positives": sum(len(c.positives) for c in cands),
                            "candidate_negatives": sum(len(c.negatives) for c in cands)}
    if judge.proxy:
        info["note"] = "embedding-similarity judge: a fast PROXY for the language-model judges"
    with JudgmentCache(path) as cache:
        info["cached_before"] = len(cache)
        info["torn_lines_skipped"] = cache.torn_lines
        t0, c0 = time.perf_counter(), time.process_time()
        stats = judge.run(tasks, inputs, cache, progress=cfg.progress)
        secs = time.perf_counter() - t0
        info["judge_cpu_seconds"] = time.process_time() - c0
        info["judge_seconds"] = secs
        info["judge_stats"] = stats
        info["judgments_per_s"] = stats.get("judged", 0.0) / secs if secs > 0 and stats.get("judged") else None
        if stats.get("tokens"):
            info["tokens_per_s"] = stats["tokens"] / secs
        labels, thr = collect_labels(judge, tasks, inputs, cache, cfg)
    info["thresholds"] = thr
    us, its, pos, lu, li, verdict = [], [], [], [], [], []
    for (u, i), p in is_pos.items():
        a, b = labels.get((u, i, "user")), labels.get((u, i, "item"))
        us.append(u); its.append(i); pos.append(p); lu.append(a or "missing"); li.append(b or "missing")
        verdict.append("unjudged" if a is None or b is None else ("hard" if a == b == "High" else "noisy"))
    us_t, it_t = torch.tensor(us, dtype=torch.long), torch.tensor(its, dtype=torch.long)
    pos_t = torch.tensor(pos, dtype=torch.bool)
    v = np.asarray(verdict)
    hard_m = torch.from_numpy(v == "hard") & ~pos_t
    noisy_m = torch.from_numpy(v == "noisy") & pos_t
    hard = torch.stack([us_t[hard_m], it_t[hard_m]]) if len(us) else torch.zeros(2, 0, dtype=torch.long)
    noisy = torch.stack([us_t[noisy_m], it_t[noisy_m]]) if len(us) else torch.zeros(2, 0, dtype=torch.long)
    both = [(a, b) for a, b in zip(lu, li) if a != "missing" and b != "missing"]
    info.update({
        "labels_user": {k: lu.count(k) for k in ("High", "Mid", "Low", "unknown", "missing")},
        "labels_item": {k: li.count(k) for k in ("High", "Mid", "Low", "unknown", "missing")},
        "perspective_agreement": (sum(a == b for a, b in both) / len(both)) if both else None,
        "perspective_kappa": _kappa([a for a, _ in both], [b for _, b in both]) if both else None,
        "positives_hard_kept": int((torch.from_numpy(v == "hard") & pos_t).sum()),
        "positives_noisy_dropped": int(noisy_m.sum()),
        "negatives_hard_added": int(hard_m.sum()),
        "negatives_noisy_rejected": int((torch.from_numpy(v == "noisy") & ~pos_t).sum()),
        "unjudged": int((v == "unjudged").sum()),
        "complete": bool((v != "unjudged").all()),
    })
    info["quality"] = _quality(ds, us_t, it_t, pos_t, v)
    judg = {"users": us_t, "items": it_t, "is_positive": pos_t, "label_user": lu, "label_item": li, "verdict": verdict}
    return hard, noisy, judg, info


def _quality(ds, us, its, pos, v) -> Dict[str, Any]:
    """Precision/recall of the noisy verdicts where labels exist (train_noise; synthetic truth)."""
    q: Dict[str, Any] = {}
    if ds.train_noise is not None and len(us):
        keys = ds.train.users.numpy().astype(np.int64) * ds.n_items + ds.train.items.numpy()
        noise = ds.train_noise.numpy().astype(bool)
        lookup = dict(zip(keys.tolist(), noise.tolist()))
        pm = pos.numpy()
        cu, ci = us.numpy()[pm], its.numpy()[pm]
        truth = np.asarray([lookup.get(int(a) * ds.n_items + int(b), False) for a, b in zip(cu, ci)], dtype=bool)
        pred = (v[pm] == "noisy")
        tp = int((pred & truth).sum())
        q["noise_labels"] = {
            "candidate_positives": int(len(cu)), "truly_noisy_among_candidates": int(truth.sum()),
            "base_rate_candidates": float(truth.mean()) if len(truth) else None,
            "base_rate_train": float(noise.mean()) if len(noise) else None,
            "dropped": int(pred.sum()), "dropped_truly_noisy": tp,
            "precision_noisy": tp / int(pred.sum()) if pred.sum() else None,
            "recall_noisy_candidates": tp / int(truth.sum()) if truth.sum() else None,
            "recall_noisy_train": tp / int(noise.sum()) if noise.sum() else None,
        }
    truth_obj = getattr(ds, "truth", None)
    if truth_obj is not None and len(us):
        rel = truth_obj.relevant(us, its).numpy().astype(bool)
        pm = pos.numpy()
        hard_pred = v == "hard"
        neg_added = hard_pred & ~pm
        q["synthetic_truth"] = {
            "positives_truly_noisy": int((~rel & pm).sum()),
            "precision_noisy": (float((~rel & pm & (v == "noisy")).sum() / max(1, (pm & (v == "noisy")).sum()))),
            "recall_noisy": (float((~rel & pm & (v == "noisy")).sum() / max(1, (~rel & pm).sum()))),
            "negatives_added": int(neg_added.sum()),
            "precision_added_relevant": float((rel & neg_added).sum() / max(1, neg_added.sum())) if neg_added.any() else None,
            "negatives_relevant_base_rate": float(rel[~pm].mean()) if (~pm).any() else None,
        }
    return q
