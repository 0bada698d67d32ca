"""Logical relevance: propose the suspicious pairs, judge them from the user's and the item's
perspective, and turn the verdicts into the edges G' adds and drops.

Coverage: per user, a fraction of the training positives (the lowest-scored) and of
non-interactions (the highest-scored) are candidates (``cand_pos_frac``, ``cand_neg_frac``);
``cand_max_users`` = N judges the N most suspicious users, 0 every user. What is judged is a
function of the configuration and the data: never of the machine's speed or load.
Budget: ``signals_budget_s`` > 0 stops a judge that has run too long; the answers so far are
cached and :class:`SignalsBudgetExceeded` is raised, so the same call continues where it stopped
and no G' is ever made from part of the users.
"""
from __future__ import annotations

import os
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .candidates import propose_candidates
from .config import SignalsConfig
from .judges.base import JudgeInputs, UserTask
from .judgment_cache import JudgmentCache
from .prompts import guess_noun

class SignalsBudgetExceeded(RuntimeError):
    """The judge ran past ``signals_budget_s``; what it judged is cached, and the same call continues."""

    def __init__(self, done: int, total: int, budget_s: float) -> None:
        self.done, self.total, self.budget_s = done, total, budget_s
        super().__init__(
            f"the judge reached {done:,} of {total:,} users in the signals stage's budget of {budget_s:g} s "
            f"(signals.signals_budget_s); their answers are cached, so the same command continues where it stopped. "
            f"No G' was made from part of the users: set signals.signals_budget_s=0 for no limit, or "
            f"signals.cand_max_users={done} to judge only the {done:,} most suspicious users (a smaller, different G')")


def _add_stats(a: Dict[str, float], b: Dict[str, float]) -> Dict[str, float]:
    return {k: a.get(k, 0.0) + b.get(k, 0.0) for k in set(a) | set(b)}


def run_judge(judge, tasks: Sequence[UserTask], inputs: JudgeInputs, cache, cfg: SignalsConfig, t_start: float,
              log) -> Tuple[List[UserTask], Dict[str, float], Dict[str, Any]]:
    """Judge the ``cfg.cand_max_users`` most suspicious of ``tasks`` (0: all), in chunks, each
    chunk's answers cached as they come; returns the judged tasks, the judge's counters and the
    coverage. Raises :class:`SignalsBudgetExceeded` when ``cfg.signals_budget_s`` (counted from
    ``t_start``) runs out first."""
    n = len(tasks) if cfg.cand_max_users <= 0 else min(cfg.cand_max_users, len(tasks))
    chosen = list(tasks[:n])
    chunk = max(cfg.lm_users_per_batch, 4 * cfg.judge_concurrency)
    bar = None
    if cfg.progress and n:
        from tqdm.auto import tqdm
        bar = tqdm(total=n, unit="user", leave=False, desc=f"judge ({judge.name}, most suspicious first)")
    stats: Dict[str, float] = {}
    done = 0
    try:
        while done < n:
            if cfg.signals_budget_s > 0 and time.perf_counter() - t_start > cfg.signals_budget_s:
                raise SignalsBudgetExceeded(done, n, cfg.signals_budget_s)
            part = chosen[done:done + chunk]
            stats = _add_stats(stats, judge.run(part, inputs, cache, progress=False))
            done += len(part)
            if bar is not None:
                bar.update(len(part))
    finally:
        if bar is not None:
            bar.close()
    limit = "every user" if n == len(tasks) else f"the {n:,} most suspicious (signals.cand_max_users)"
    log(f"[signals] judged {n:,} of {len(tasks):,} users with candidates: {limit}")
    return chosen, stats, {"user_limit": cfg.cand_max_users, "coverage": limit}


def make_judge(cfg: SignalsConfig, device: str, cache_dir: Optional[str], log=print, ds=None):
    """The judge ``cfg.judge`` names (``ds``: the data set, which the analysis-only oracle reads)."""
    if cfg.judge == "oracle":
        from .judges.oracle import OracleJudge, labels_fingerprint, truth_from_dataset
        if ds is None:
            raise ValueError("the oracle judge needs the data set (its labels)")
        return OracleJudge(truth_from_dataset(ds), cfg.oracle_accuracy, seed=cfg.seed, fingerprint=labels_fingerprint(ds))
    if cfg.judge == "embedding":
        from .judges.embedding import EmbeddingJudge
        return EmbeddingJudge("projected" if cfg.align else "raw")
    if cfg.judge == "openai-chat":
        from .judges.openai_chat import OpenAIChatJudge
        return OpenAIChatJudge(cfg.judge_url, cfg.judge_model, api_key_env=cfg.judge_api_key_env,
                               concurrency=cfg.judge_concurrency, timeout_s=cfg.judge_timeout_s,
                               retries=cfg.judge_retries, backoff_s=cfg.judge_backoff_s,
                               answer_tries=cfg.judge_answer_tries)
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


def judge_texts(ds) -> Tuple[List[str], List[str], List[str]]:
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


def judge_candidates(ds, ds_id, cfg, bb, user_sem, item_sem, user_raw, item_raw, device, cache_dir, log,
                     t_start: Optional[float] = None):
    """Propose the suspicious pairs, judge them, and turn the
    verdicts into the edges G' adds (``hard``, [2, h]) and drops (``noisy``, [2, k]).
    Returns (hard, noisy, per-candidate judgments, summary)."""
    t_start = time.perf_counter() if t_start is None else t_start
    train_pos = ds.user_positives("train")
    cands = propose_candidates(bb[0], bb[1], train_pos, n_pos=cfg.cand_pos_per_user, n_neg=cfg.cand_neg_per_user,
                               n_context=cfg.context_items, pos_frac=cfg.cand_pos_frac, neg_frac=cfg.cand_neg_frac)
    cands = [c for c in cands if c.positives or c.negatives]
    # the most suspicious users first (ties: lower user id), so that cand_max_users = N judges those
    cands.sort(key=lambda c: (-c.suspicion, c.user))
    all_tasks = [UserTask(c.user, list(c.positives) + list(c.negatives), list(c.context)) for c in cands]
    noun = guess_noun(ds.name) if cfg.item_noun == "auto" else cfg.item_noun
    profile, item_text, item_name = judge_texts(ds)
    inputs = JudgeInputs(dataset=ds_id, noun=noun, user_profile=profile, item_text=item_text, item_name=item_name,
                         user_vec=user_sem if cfg.align else user_raw, item_vec=item_sem if cfg.align else item_raw)
    t0 = time.perf_counter()
    judge = make_judge(cfg, device, cache_dir, log, ds=ds)
    load_s = time.perf_counter() - t0
    path = os.path.join(cache_dir, "judgments", f"{ds.name}-{ds.train_fingerprint()}.jsonl") if cache_dir else None
    info: Dict[str, Any] = {"judge": judge.name, "proxy": bool(judge.proxy), "cache": path, "judge_load_seconds": load_s,
                            "users_with_candidates": len(all_tasks)}
    if getattr(judge, "analysis_only", False):
        info["analysis_only"] = True
        info["note"] = "ORACLE judge (answers from the labels, for analysis only): not a language-model result"
    elif judge.proxy:
        info["note"] = "embedding-similarity judge: a fast PROXY for the language-model judges"
    with JudgmentCache(path) as cache:
        info["cached_before"] = len(cache)
        info["torn_lines_skipped"] = cache.torn_lines
        t0, c0 = time.perf_counter(), time.process_time()
        tasks, stats, coverage = run_judge(judge, all_tasks, inputs, cache, cfg, t_start, log)
        info.update(coverage)
        secs = time.perf_counter() - t0
        info["judge_cpu_seconds"] = time.process_time() - c0
        info["judge_seconds"] = secs
        info["judge_stats"] = stats
        info["judgments_per_s"] = stats.get("judged", 0.0) / secs if secs > 0 and stats.get("judged") else None
        if stats.get("tokens"):
            info["tokens_per_s"] = stats["tokens"] / secs
        labels, thr = collect_labels(judge, tasks, inputs, cache, cfg)
    info["thresholds"] = thr
    judged = {t.user for t in tasks}
    cands = [c for c in cands if c.user in judged]
    is_pos = {(c.user, i): True for c in cands for i in c.positives}
    is_pos.update({(c.user, i): False for c in cands for i in c.negatives})
    info["users"] = len(tasks)
    info["candidate_positives"] = sum(len(c.positives) for c in cands)
    info["candidate_negatives"] = sum(len(c.negatives) for c in cands)
    info["judged_pairs"] = len(is_pos)
    info["judged_fraction_of_train"] = info["candidate_positives"] / max(1, len(ds.train))
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
