"""The identification report (``llmhni identify``): how well each rule tells the noisy
positives from the clean-but-hard ones, and the false negatives from the true negatives.

On the suspicious pairs the pre-trained backbone proposes (the lowest-scored positives and
highest-scored non-interactions of each user, as the signals stage proposes them), with
labels from the synthetic world's ground truth, the injected-noise labels, or MovieLens
ratings <= 2 (natural noise); for non-interactions without ground truth, a pair that appears
in the held-out interactions counts as a false negative (analysis only: no training uses it).

Rules compared, each as a decision (precision, recall, F1) and a ranking (AUC):

(a) T-CE's loss rule: the pairs whose BCE loss under the pre-trained backbone is in the
    largest ``method.tce_max_drop`` share of all training losses;
(b) the backbone's score alone: below the user's median positive score by more than 1.5
    (positives) or above it minus 0.5 (non-interactions) standard deviations of the user's scores;
(c) each judge, from each perspective (user view, item view): noisy unless High;
(d) the judge's combined verdict: hard only when both perspectives say High.
"""
from __future__ import annotations

import copy
import math
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .config import RunConfig

_ORD = {"High": 0.0, "Mid": 1.0, "Low": 2.0}   # how strongly a label says "not relevant"


def auc(score: np.ndarray, label: np.ndarray) -> Optional[float]:
    """P(score of a random positive > score of a random negative), ties counted half."""
    pos, neg = score[label], score[~label]
    if len(pos) == 0 or len(neg) == 0:
        return None
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    allv = np.concatenate([pos, neg])[order]
    ranks = np.empty(len(allv))
    i = 0
    while i < len(allv):                      # average ranks of ties
        j = i
        while j + 1 < len(allv) and allv[j + 1] == allv[i]:
            j += 1
        ranks[i:j + 1] = (i + j) / 2 + 1
        i = j + 1
    r = np.empty(len(allv))
    r[order] = ranks
    return float((r[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def decision_metrics(flag: np.ndarray, label: np.ndarray, score: Optional[np.ndarray] = None) -> Dict[str, Any]:
    tp, fp, fn = int((flag & label).sum()), int((flag & ~label).sum()), int((~flag & label).sum())
    p = tp / (tp + fp) if tp + fp else None
    r = tp / (tp + fn) if tp + fn else None
    f1 = 2 * p * r / (p + r) if p and r else (0.0 if p is not None and r is not None else None)
    n = len(flag)
    return {"flagged": int(flag.sum()), "accuracy": (n - fp - fn) / n if n else None, "precision": p, "recall": r, "f1": f1,
            "auc": auc(score, label) if score is not None else None}


def pair_labels(ds, users: np.ndarray, items: np.ndarray, is_pos: np.ndarray) -> Tuple[np.ndarray, str]:
    """True where a positive is noisy / a non-interaction is a false negative; and the source."""
    world = getattr(ds, "truth", None)
    if world is not None:
        rel = world.relevant(users, items).numpy().astype(bool)
        return np.where(is_pos, ~rel, rel), "synthetic ground truth"
    n_items = ds.n_items
    keys = users.astype(np.int64) * n_items + items
    train_keys = ds.train.users.numpy().astype(np.int64) * n_items + ds.train.items.numpy()
    if ds.train_noise is not None and bool(ds.train_noise.any()):
        noisy = set(train_keys[ds.train_noise.numpy().astype(bool)].tolist())
        source = "injected-noise labels"
    elif ds.train.ratings is not None:
        noisy = set(train_keys[(ds.train.ratings <= 2).numpy()].tolist())
        source = "ratings <= 2 (natural noise)"
    else:
        raise ValueError(f"data set {ds.name!r} has no labels to identify against: use the synthetic world, "
                         f"inject noise (--noise), or data with ratings")
    held = set(np.concatenate([ds.valid.users.numpy().astype(np.int64) * n_items + ds.valid.items.numpy(),
                               ds.test.users.numpy().astype(np.int64) * n_items + ds.test.items.numpy()]).tolist())
    lab = np.asarray([(k in noisy) if p else (k in held) for k, p in zip(keys.tolist(), is_pos.tolist())], dtype=bool)
    return lab, source + "; held-out interactions as false negatives"


def backbone_rules(ds, user_emb: torch.Tensor, item_emb: torch.Tensor, users: np.ndarray, items: np.ndarray,
                   is_pos: np.ndarray, drop_rate: float) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    """(flag, score) of rules (a) and (b) for each pair; the score ranks "noisy" (positives)
    or "false negative" (non-interactions) highest."""
    ue, ie = user_emb.float(), item_emb.float()
    s = (ue[torch.as_tensor(users)] * ie[torch.as_tensor(items)]).sum(-1).numpy().astype(np.float64)
    tu, ti = ds.train.users, ds.train.items
    all_s = (ue[tu] * ie[ti]).sum(-1).numpy().astype(np.float64)
    # (a) T-CE: BCE of a positive -log sigma(s), of a negative -log(1 - sigma(s)); the largest drop_rate share
    pos_loss = np.logaddexp(0, -s)
    neg_loss = np.logaddexp(0, s)
    all_pos_loss = np.logaddexp(0, -all_s)
    thr = np.quantile(all_pos_loss, 1 - drop_rate) if len(all_pos_loss) else math.inf
    thr_neg = np.quantile(np.logaddexp(0, all_s), 1 - drop_rate) if len(all_s) else math.inf
    tce_score = np.where(is_pos, pos_loss, neg_loss)
    tce_flag = np.where(is_pos, pos_loss >= thr, neg_loss >= thr_neg)
    # (b) the score against the user's own positives
    med = np.zeros(ds.n_users)
    sd = np.ones(ds.n_users)
    for u, sc in _group(tu.numpy(), all_s, ds.n_users):
        if len(sc):
            med[u], sd[u] = np.median(sc), np.std(sc) + 1e-9
    z = (s - med[users]) / sd[users]
    score_b = np.where(is_pos, -z, z)
    flag_b = np.where(is_pos, z < -1.5, z >= -0.5)
    return {"(a) T-CE loss rule": (tce_flag, tce_score), "(b) backbone score": (flag_b, score_b)}


def _group(keys: np.ndarray, vals: np.ndarray, n: int):
    order = np.argsort(keys, kind="stable")
    k, v = keys[order], vals[order]
    bounds = np.searchsorted(k, np.arange(n + 1))
    for u in range(n):
        yield u, v[bounds[u]:bounds[u + 1]]


def judge_rules(judg: Dict[str, Any], index: Dict[Tuple[int, int], int], n: int, is_pos: np.ndarray,
                name: str) -> Dict[str, Tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(flag, score, judged-mask) of rules (c) and (d) for one judge's judgments."""
    user_o, item_o, judged = np.full(n, np.nan), np.full(n, np.nan), np.zeros(n, dtype=bool)
    for u, i, lu, li in zip(judg["users"].tolist(), judg["items"].tolist(), judg["label_user"], judg["label_item"]):
        k = index.get((int(u), int(i)))
        if k is None or lu not in _ORD or li not in _ORD:
            continue
        user_o[k], item_o[k], judged[k] = _ORD[lu], _ORD[li], True
    out = {}
    for view, o in (("user view", user_o), ("item view", item_o)):
        noisy = o > 0                                      # not High
        out[f"(c) {name}, {view}"] = (np.where(is_pos, noisy, ~noisy), np.where(is_pos, o, -o), judged)
    comb = np.fmax(user_o, item_o)
    noisy = comb > 0
    out[f"(d) {name}, combined verdict"] = (np.where(is_pos, noisy, ~noisy), np.where(is_pos, comb, -comb), judged)
    return out


def imported_rule(sig, users: np.ndarray, items: np.ndarray, is_pos: np.ndarray,
                  n_items: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(flag, score, judged-mask) of an imported G' on the candidates: a positive is flagged
    noisy when G' drops it, a non-interaction a false negative when G' adds it. G' says
    something of every pair, so every candidate counts as judged."""
    from .data.splitting import in_sorted
    keys = users.astype(np.int64) * n_items + items

    def key_set(e):
        e = torch.as_tensor(e).long().reshape(2, -1)
        return np.unique((e[0] * n_items + e[1]).numpy())
    flag = np.where(is_pos, in_sorted(keys, key_set(sig.noisy_edges)), in_sorted(keys, key_set(sig.hard_edges)))
    return flag, flag.astype(np.float64), np.ones(len(keys), dtype=bool)


#: what the report says of an imported G' (from the signals summary)
IMPORTED_KEYS = ("source", "sha256", "format", "base", "heldout_policy", "removed", "added", "removed_in_train",
                 "removed_outside_train", "positives_noisy_dropped", "negatives_hard_added", "added_in_test",
                 "added_in_valid_not_added", "added_in_heldout_fraction", "out_of_range_dropped",
                 "duplicates_dropped", "removed_fraction_of_train", "added_per_item")


def identification_report(ds, cfg: RunConfig, judges: Sequence[str], cache_dir: Optional[str],
                          log=print) -> Dict[str, Any]:
    """The report's document (see the module docstring); ``judges`` are signals judge names."""
    from .pipeline import pretrain_backbone, signals_for
    from .signals.candidates import propose_candidates
    cfg = copy.deepcopy(cfg).validate()      # the caller's object is never changed
    scfg = cfg.signals
    bb = pretrain_backbone(ds, seed=cfg.data.noise_seed, cache_dir=cache_dir, device=cfg.train.device,
                           progress=cfg.train.progress)
    cands = propose_candidates(bb[0], bb[1], ds.user_positives("train"), n_pos=scfg.cand_pos_per_user,
                               n_neg=scfg.cand_neg_per_user, n_context=scfg.context_items,
                               pos_frac=scfg.cand_pos_frac, neg_frac=scfg.cand_neg_frac)
    pairs = [(c.user, i, True) for c in cands for i in c.positives] + \
            [(c.user, i, False) for c in cands for i in c.negatives]
    users = np.asarray([p[0] for p in pairs], dtype=np.int64)
    items = np.asarray([p[1] for p in pairs], dtype=np.int64)
    is_pos = np.asarray([p[2] for p in pairs], dtype=bool)
    try:
        label, source = pair_labels(ds, users, items, is_pos)
    except ValueError as e:
        if "imported" not in judges:
            raise
        label, source = None, ("no noise labels for the positives; held-out interactions as false negatives "
                               "among the non-interactions")
    index = {(int(u), int(i)): k for k, (u, i) in enumerate(zip(users, items))}
    rules: Dict[str, Tuple[np.ndarray, np.ndarray, np.ndarray]] = {
        k: (f, s, np.ones(len(pairs), dtype=bool))
        for k, (f, s) in backbone_rules(ds, bb[0], bb[1], users, items, is_pos, cfg.method.tce_max_drop).items()}
    judge_info = {}
    for j in judges:
        jcfg = copy.deepcopy(cfg)
        jcfg.signals = cfg.signals.replace(judge=j)
        sig = signals_for(jcfg, ds, cache_dir, progress=cfg.train.progress)
        lg = sig.summary.get("logical", {})
        name = lg.get("judge", j) + (" (analysis only)" if lg.get("analysis_only") else "")
        if j == "imported":
            judge_info[name] = {k: lg.get(k) for k in IMPORTED_KEYS + ("note",)}
            rules[f"(d) {name} G'"] = imported_rule(sig, users, items, is_pos, ds.n_items)
            continue
        judge_info[name] = {k: lg.get(k) for k in ("users", "judged_pairs", "judgments_per_s", "coverage", "note")}
        rules.update(judge_rules(sig.judgments, index, len(pairs), is_pos, name))
    common = np.logical_and.reduce([m for _, _, m in rules.values()])
    tables: Dict[str, List[Dict[str, Any]]] = {}
    if label is None:                     # no noise labels: the non-interactions can still be scored
        from .data.splitting import in_sorted
        held = np.unique(np.concatenate([ds.valid.keys(ds.n_items), ds.test.keys(ds.n_items)]))
        label = ~is_pos & in_sorted(users * ds.n_items + items, held)
        tasks = (("false negatives vs true negatives", ~is_pos),)
    else:
        tasks = (("noisy positives vs clean-but-hard positives", is_pos), ("false negatives vs true negatives", ~is_pos))
    for task, sel in tasks:
        rows = []
        mask = sel & common
        for rule, (flag, score, _) in rules.items():
            m = decision_metrics(flag[mask].astype(bool), label[mask], np.nan_to_num(score[mask], nan=0.0))
            rows.append({"rule": rule, **m})
        tables[task] = rows
    return {"dataset": ds.name, "labels": source, "pairs": int(common.sum()),
            "positives": int((is_pos & common).sum()), "noisy_positives": int((is_pos & common & label).sum()),
            "non_interactions": int((~is_pos & common).sum()),
            "false_negatives": int((~is_pos & common & label).sum()), "judges": judge_info, "tables": tables,
            "candidates": {"pos_frac": scfg.cand_pos_frac, "neg_frac": scfg.cand_neg_frac}}


def markdown(doc: Dict[str, Any]) -> str:
    f = lambda x: "n/a" if x is None else f"{x:.3f}"  # noqa: E731
    pos = (f"{doc['noisy_positives']} of {doc['positives']} positives noisy, "
           if any(t.startswith("noisy") for t in doc["tables"]) else f"{doc['positives']} positives unlabelled, ")
    out = [f"Identification on {doc['dataset']} ({doc['labels']}): {doc['pairs']} suspicious pairs judged by every "
           f"rule ({pos}{doc['false_negatives']} of {doc['non_interactions']} non-interactions false negatives).", ""]
    imp = doc["judges"].get("imported")
    if imp:
        per = imp.get("added_per_item") or {}
        share = imp.get("added_in_heldout_fraction")
        out += [f"**What the imported G' changed** ({imp['source']}, {imp['format']}; base: {imp['base']})", "",
                "| removed | of them training pairs (dropped) | added | added to G' | added pairs in held-out data | "
                "items receiving additions | most on one item | top-10 items' share |", "|---|---|---|---|---|---|---|---|",
                f"| {imp['removed']:,} | {imp['removed_in_train']:,} | {imp['added']:,} | {imp['negatives_hard_added']:,} | "
                f"{imp['added_in_test'] + imp['added_in_valid_not_added']:,} ({f(share)}; held-out policy "
                f"{imp['heldout_policy']}) | {per.get('items', 0):,} | {per.get('max_per_item', 0)} | "
                f"{f(per.get('top10_share'))} |", "",
                f"Out-of-range rows dropped: {imp['out_of_range_dropped']}; duplicate rows: {imp['duplicates_dropped']}.", ""]
    for task, rows in doc["tables"].items():
        out += [f"**{task}**", "", "| rule | flagged | accuracy | precision | recall | F1 | AUC |",
                "|---|---|---|---|---|---|---|"]
        out += [f"| {r['rule']} | {r['flagged']} | {f(r['accuracy'])} | {f(r['precision'])} | {f(r['recall'])} | "
                f"{f(r['f1'])} | {f(r['auc'])} |" for r in rows]
        out.append("")
    return "\n".join(out)


def plot_confusion(ds, cfg: RunConfig, cache_dir: Optional[str], path: str) -> Optional[str]:
    """The hard-noisy confusion the paper is named after: the pre-trained backbone's loss and
    score of clean-but-hard positives (truly relevant, scored in the lowest share) against
    noisy positives, on data with ground truth. None without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    from .pipeline import pretrain_backbone
    world = getattr(ds, "truth", None)
    if world is None:
        raise ValueError("the confusion plot needs ground truth (the synthetic world)")
    bb = pretrain_backbone(ds, seed=cfg.data.noise_seed, cache_dir=cache_dir, device=cfg.train.device, progress=False)
    u, i = ds.train.users, ds.train.items
    s = (bb[0][u] * bb[1][i]).sum(-1).numpy()
    rel = world.relevant(u, i).numpy().astype(bool)
    low = s <= np.quantile(s, 0.3)                      # the suspicious share a denoiser looks at
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, val, what in ((axes[0], np.logaddexp(0, -s), "BCE loss -log sigma(s)"), (axes[1], s, "score s(u, i)")):
        bins = np.linspace(val.min(), val.max(), 50)
        ax.hist(val[low & rel], bins=bins, alpha=0.6, density=True, label="hard (relevant, low-scored)")
        ax.hist(val[~rel], bins=bins, alpha=0.6, density=True, label="noisy (not relevant)")
        ax.set_xlabel(what)
        ax.set_ylabel("density")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{ds.name}: hard and noisy positives under the pre-trained backbone")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
