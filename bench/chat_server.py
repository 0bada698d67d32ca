"""Judgments per second of the chat judge against a real llama.cpp server (llama-cpp-python
[server], the bundled Gemma-3-270M GGUF, 127.0.0.1), at concurrency 1 and 4.

    LLMHNI_LLAMA_SERVER_PYTHON=~/.cache/llmhni-ci/venv-llamacpp-0.3.36/bin/python \\
        PYTHONPATH=.:python_tests python bench/chat_server.py [--pairs 24] [--threads 2]

Time nothing else while it runs. Prints one line per concurrency and what the answers were.
"""
from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python_tests"))

from _llama_server import llama_server  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=24, help="(user, item) pairs; each is asked from two perspectives")
    ap.add_argument("--threads", type=int, default=2, help="llama.cpp threads")
    a = ap.parse_args()
    from llmhni_ext.data import load_dataset
    from llmhni_ext.signals.judges.base import JudgeInputs, UserTask
    from llmhni_ext.signals.judges.openai_chat import OpenAIChatJudge
    from llmhni_ext.signals.judgment_cache import JudgmentCache
    from llmhni_ext.signals.logical import judge_texts
    ds = load_dataset("ml-100k", os.environ.get("LLMHNI_DATA_ROOT", "../shared/data"))
    prof, itext, iname = judge_texts(ds)
    inputs = JudgeInputs("bench", "movie", prof, itext, iname)
    pos = ds.user_positives("train")
    tasks = [UserTask(u, [int(pos[u][0])], [int(x) for x in pos[u][1:4]]) for u in range(a.pairs)]
    with tempfile.TemporaryDirectory() as d, llama_server(d, threads=a.threads) as url:
        for conc in (1, 4):
            j = OpenAIChatJudge(url, "gemma-3-270m", concurrency=conc, timeout_s=120, retries=1, backoff_s=0.2)
            cache = JudgmentCache(None)
            t0 = time.perf_counter()
            st = j.run(tasks, inputs, cache)
            s = time.perf_counter() - t0
            labels = collections.Counter(r["label"] for r in cache.records())
            print(f"concurrency {conc}: {st['judged']:.0f} judgments in {s:.1f} s = {st['judged'] / s:.2f} judgments/s; "
                  f"labels {dict(labels)}; re-asked {st['retries']:.0f}; garbage detector {bool(st['answers_garbage'])}",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
