"""Throughput of the signals stage's default local judge on MovieLens-100K.

Compares, in one run on the same users, the likelihood judge with the per-user context
run once and its key/value cache shared by the batched candidates (ours) against the
straightforward way (each candidate's full context + name recomputed, still batched),
and reports wall and CPU seconds, judgments/s and the ratio. Also times the default text
encoder on the data set's texts.

    PYTHONPATH=. python bench/signals_throughput.py --users 40 [--cache-dir /tmp/llmhni-bench]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import torch


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=40)
    ap.add_argument("--cand-pos", type=int, default=2)
    ap.add_argument("--cand-neg", type=int, default=1)
    ap.add_argument("--data-root", default=os.environ.get("LLMHNI_DATA_ROOT", "../shared/data"))
    ap.add_argument("--cache-dir", default="/tmp/llmhni-bench-signals")
    ap.add_argument("--encode", action="store_true", help="also time the MiniLM encoder on all texts")
    a = ap.parse_args()
    from llmhni_ext.data import load_dataset
    from llmhni_ext.signals.candidates import propose_candidates
    from llmhni_ext.signals.judges.base import UserTask
    from llmhni_ext.signals.judges.local_lm import LocalLMJudge, load_causal_lm
    from llmhni_ext.signals.judgment_cache import JudgmentCache
    from llmhni_ext.signals.judges.base import JudgeInputs
    from llmhni_ext.signals.logical import judge_texts

    ds = load_dataset("ml-100k", a.data_root)
    print(f"torch threads {torch.get_num_threads()}; load average {os.getloadavg()}", flush=True)
    if a.encode:
        from llmhni_ext.signals.encoders import MiniLMEncoder
        enc = MiniLMEncoder()
        texts = list(ds.user_text) + list(ds.item_text)
        t, c = time.perf_counter(), time.process_time()
        enc.encode(texts)
        w, cp = time.perf_counter() - t, time.process_time() - c
        print(f"MiniLM encode {len(texts)} texts: {w:.1f} s wall, {cp:.1f} s CPU ({len(texts) / w:.1f} texts/s)", flush=True)
    t = time.perf_counter()
    model, tok, mid = load_causal_lm(None, cache_dir=a.cache_dir)
    print(f"judge model {mid} loaded in {time.perf_counter() - t:.1f} s, dtype {next(model.parameters()).dtype}", flush=True)
    g = torch.Generator().manual_seed(0)
    ue, ie = torch.randn(ds.n_users, 32, generator=g), torch.randn(ds.n_items, 32, generator=g)
    cands = propose_candidates(ue, ie, ds.user_positives("train"), n_pos=a.cand_pos, n_neg=a.cand_neg, n_context=3)
    tasks = [UserTask(c.user, c.positives + c.negatives, c.context) for c in cands[:a.users]]
    prof, itext, iname = judge_texts(ds)
    inp = JudgeInputs("bench", "movie", prof, itext, iname)
    res = {}
    for reuse in (True, False):
        j = LocalLMJudge(model, tok, mid, reuse_prefix=reuse)
        c = JudgmentCache(None)
        t, cp = time.perf_counter(), time.process_time()
        st = j.run(tasks, inp, c)
        w, cpu = time.perf_counter() - t, time.process_time() - cp
        n = sum(1 for r in c.records() if r["role"] == "cand")
        res[reuse] = w
        print(f"{'shared context (ours)' if reuse else 'full recompute (peer)':24s}: {len(tasks)} users, "
              f"{n} candidate judgments, {int(st['judged'])} scores in {w:.1f} s wall / {cpu:.1f} s CPU "
              f"= {n / w:.2f} candidate judgments/s, {st['tokens'] / w:.0f} tokens/s", flush=True)
    print(f"ratio (peer / ours): {res[False] / res[True]:.2f}x; load average {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
