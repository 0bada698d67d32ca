"""A soak of the chat judge: 1,000 pairs (2,000 questions) against a stand-in server on
127.0.0.1 that fails 20% of its requests at random (HTTP 500, 429 with Retry-After, reset
connections, slow answers), killed with SIGKILL at a random moment and resumed. It finishes,
the cache holds every answer exactly once, nothing answered before the kill is asked again,
and the requests stay within the retry bound."""
import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from _signals_fakes import ChaosOpenAI

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N_USERS, PER_USER = 250, 4          # 1,000 pairs, two perspectives each

RUN = r"""
import json, sys
from llmhni_ext.signals.judges.base import JudgeInputs, UserTask
from llmhni_ext.signals.judges.openai_chat import EndpointError, OpenAIChatJudge
from llmhni_ext.signals.judgment_cache import JudgmentCache
url, path, n_users, per_user = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
n_items = n_users * per_user
inputs = JudgeInputs(dataset="soak", noun="book", user_profile=[f"reader {u}" for u in range(n_users)],
                     item_text=[("a space opera " if i % 3 == 0 else "a cookbook ") + str(i) for i in range(n_items)],
                     item_name=[f"book {i}" for i in range(n_items)])
tasks = [UserTask(u, [u * per_user + k for k in range(per_user)], [u * per_user]) for u in range(n_users)]
judge = OpenAIChatJudge(url, "m", concurrency=2, timeout_s=5.0, retries=3, backoff_s=0.01)
with JudgmentCache(path) as cache:
    before = len(cache)
    try:
        stats = judge.run(tasks, inputs, cache)
    except EndpointError as e:
        stats = {"failed": str(e)}
    print(json.dumps({"before": before, "after": len(cache), "torn": cache.torn_lines, **stats}), flush=True)
"""


def _lines(path):
    try:
        with open(path, "rb") as f:
            return f.read().count(b"\n")
    except OSError:
        return 0


def _run(url, path, kill_at_lines=None):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.Popen([sys.executable, "-c", RUN, url, str(path), str(N_USERS), str(PER_USER)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    if kill_at_lines is not None:           # SIGKILL once that many answers are on disk
        deadline = time.monotonic() + 300
        while p.poll() is None and _lines(path) < kill_at_lines and time.monotonic() < deadline:
            time.sleep(0.005)
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
    out, err = p.communicate(timeout=600)
    return p.returncode, (json.loads(out.strip().splitlines()[-1]) if out.strip() else None), err


@pytest.mark.slow
def test_chat_judge_soak_with_failures_and_a_kill(tmp_path):
    server = ChaosOpenAI(fail=0.2, seed=1, slow_s=0.3)
    path = tmp_path / "judgments.jsonl"
    try:
        rc, _, err = _run(server.url(), path, kill_at_lines=random.Random(7).randint(300, 1500))
        assert rc == -signal.SIGKILL, f"the run ended before the kill (rc {rc}): make it longer\n{err[-2000:]}"
        answered_at_kill = server.counts["answered"]
        lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
        runs = []
        for _ in range(4):                  # a question that failed every retry is asked again next run
            rc, res, err = _run(server.url(), path)
            assert rc == 0, err[-2000:]
            runs.append(res)
            if res["after"] == 2 * N_USERS * PER_USER:
                break
    finally:
        server.close()
    total = 2 * N_USERS * PER_USER
    assert runs[-1]["after"] == total
    assert runs[0]["before"] >= len(lines) - 1            # every whole line written before the kill was kept
    recs = []
    for ln in path.read_text().splitlines():
        try:
            recs.append(json.loads(ln))
        except ValueError:
            pass                                          # at most the line torn by the kill
    keys = [(r["user"], r["item"], r["perspective"]) for r in recs]
    assert len(keys) == len(set(keys)) == total           # every answer exactly once
    assert all(r["label"] == ("High" if r["item"] % 3 == 0 else "Low") for r in recs)
    # bounded retries: at most retries + 1 = 4 requests per question asked, and far fewer in practice
    assert server.counts["requests"] <= 4 * (total + answered_at_kill)
    assert server.counts["requests"] < 1.6 * total
    print(f"soak: {total} questions, {server.counts}, answered before the kill {answered_at_kill}, "
          f"runs after it {len(runs)}: " + "; ".join(f"{r['before']} -> {r['after']} (retries {r.get('retries')}, "
                                                      f"errors {r.get('errors')})" for r in runs))
