"""The human-readable summary of a signals run (``llmhni signals`` prints it)."""
from __future__ import annotations

from typing import Any, Dict


def format_summary(s: Dict[str, Any]) -> str:
    def f(x, nd=3):
        return "n/a" if x is None else (f"{x:.{nd}f}" if isinstance(x, float) else str(x))
    lines = [f"signals for {s.get('dataset')} ({s.get('n_users')} users, {s.get('n_items')} items) on {s.get('device')}"]
    if s.get("from_cache"):
        lines.append(f"  (loaded from cache {s['from_cache']})")
    e = s.get("encoder") or {}
    lines.append(f"  encoder: {e.get('model_id')} ({e.get('dim')}-d, {f(e.get('seconds'), 1)} s)")
    a = s.get("alignment") or {}
    lines.append(f"  alignment: {'projector' if a.get('aligned') else 'off (raw text similarity)'}; "
                 f"valid Recall@20 by similarity: raw {f(a.get('valid_recall20_raw'), 4)}, "
                 f"used {f(a.get('valid_recall20_sem'), 4)}"
                 + (f" ({int(a.get('pseudo_pairs', 0))} pseudo-positive pairs)" if a.get("aligned") else ""))
    lg = s.get("logical") or {}
    if lg.get("skipped"):
        lines.append(f"  logical relevance: skipped ({lg['skipped']})")
    elif lg:
        tag = ("  [ORACLE: answers from the labels, ANALYSIS ONLY]" if lg.get("analysis_only") else
               "  [PROXY: embedding similarity, not a language model]" if lg.get("proxy") else "")
        lines.append(f"  judge: {lg.get('judge')}{tag}")
        lines.append(f"  candidates: {lg.get('users')} of {lg.get('users_with_candidates', lg.get('users'))} users "
                     f"({lg.get('coverage', lg.get('budget', 'n/a'))}), {lg.get('candidate_positives')} low-scored positives "
                     f"({f(lg.get('judged_fraction_of_train'))} of the training edges), "
                     f"{lg.get('candidate_negatives')} high-scored non-interactions")
        st = lg.get("judge_stats") or {}
        lines.append(f"  judged {int(st.get('judged', 0))} new in {f(lg.get('judge_seconds'), 1)} s "
                     f"({f(lg.get('judgments_per_s'), 2)} judgments/s"
                     + (f", {f(lg.get('tokens_per_s'), 0)} tokens/s" if lg.get("tokens_per_s") else "")
                     + f"); {lg.get('cached_before')} cached before")
        lines.append(f"  labels user view {lg.get('labels_user')}, item view {lg.get('labels_item')}")
        lines.append(f"  perspectives agree on {f(lg.get('perspective_agreement'))} (kappa {f(lg.get('perspective_kappa'))})")
        lines.append(f"  positives: {lg.get('positives_hard_kept')} hard (kept), {lg.get('positives_noisy_dropped')} noisy (dropped); "
                     f"non-interactions: {lg.get('negatives_hard_added')} hard (added), {lg.get('negatives_noisy_rejected')} rejected; "
                     f"{lg.get('unjudged')} unjudged")
        q = lg.get("quality") or {}
        if "noise_labels" in q:
            n = q["noise_labels"]
            lines.append(f"  noisy verdicts vs noise labels: precision {f(n['precision_noisy'])} "
                         f"(base rate among candidates {f(n['base_rate_candidates'])}), recall among candidates "
                         f"{f(n['recall_noisy_candidates'])}, of all noisy training rows {f(n['recall_noisy_train'])}")
        if "synthetic_truth" in q:
            t = q["synthetic_truth"]
            lines.append(f"  vs synthetic truth: noisy precision {f(t['precision_noisy'])}, recall {f(t['recall_noisy'])}; "
                         f"added non-interactions relevant {f(t['precision_added_relevant'])} "
                         f"(base rate {f(t['negatives_relevant_base_rate'])})")
    lines.append(f"  total {f(s.get('seconds'), 1)} s wall, {f(s.get('cpu_seconds'), 1)} s CPU")
    return "\n".join(lines)
