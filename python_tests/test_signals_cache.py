import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from llmhni_ext.signals.embed_cache import EmbeddingCache
from llmhni_ext.signals.judgment_cache import JudgmentCache


def rec(u, i, p="user", **kw):
    r = {"dataset": "d", "user": u, "item": i, "perspective": p, "judge": "j", "version": "v1", "role": "cand"}
    r.update(kw)
    return r


def test_judgment_cache_roundtrip_and_first_write_wins(tmp_path):
    path = str(tmp_path / "j.jsonl")
    with JudgmentCache(path) as c:
        c.put(rec(0, 1, label="High"))
        c.put(rec(0, 1, label="Low"))          # same key: ignored
        c.put(rec(0, 2, "item", score=-1.5))
    with JudgmentCache(path) as c:
        assert len(c) == 2
        assert c.get(("d", 0, 1, "user", "j", "v1"))["label"] == "High"
        assert c.get(("d", 0, 2, "item", "j", "v1"))["score"] == -1.5
    assert len(open(path).read().splitlines()) == 2


def test_judgment_cache_skips_torn_last_line_and_continues_cleanly(tmp_path):
    path = str(tmp_path / "j.jsonl")
    with JudgmentCache(path) as c:
        c.put(rec(0, 1, label="High"))
    with open(path, "a") as f:
        f.write('{"dataset": "d", "user": 0, "item": 3, "persp')      # killed mid-write
    with JudgmentCache(path) as c:
        assert c.torn_lines == 1 and len(c) == 1
        c.put(rec(0, 3, label="Mid"))
    with JudgmentCache(path) as c:
        assert len(c) == 2 and c.torn_lines == 1
        assert c.get(("d", 0, 3, "user", "j", "v1"))["label"] == "Mid"


def test_in_memory_cache():
    c = JudgmentCache(None)
    c.put(rec(1, 1, label="Low"))
    assert ("d", 1, 1, "user", "j", "v1") in c


WORKER = textwrap.dedent('''
    import sys, time
    from llmhni_ext.signals.judgment_cache import JudgmentCache
    path, n = sys.argv[1], int(sys.argv[2])
    with JudgmentCache(path) as c:
        done = 0
        for i in range(n):
            key = ("d", 0, i, "user", "slow", "v1")
            if key in c:
                continue
            time.sleep(0.01)
            c.put({"dataset": "d", "user": 0, "item": i, "perspective": "user", "judge": "slow",
                   "version": "v1", "role": "cand", "label": "High", "pad": "x" * 2000})
            done += 1
            if done == 5:
                print("READY", flush=True)
    print("NEW", done, flush=True)
''')


def test_resume_after_kill(tmp_path):
    """A run killed with SIGKILL mid-way resumes without redoing or corrupting work."""
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    path = str(tmp_path / "j.jsonl")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.getcwd()] + sys.path))
    p = subprocess.Popen([sys.executable, str(script), path, "400"], stdout=subprocess.PIPE, text=True, env=env)
    assert p.stdout.readline().strip() == "READY"
    time.sleep(0.2)
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=30)
    with JudgmentCache(path) as c:
        first = len(c)
    assert 5 <= first < 400
    out = subprocess.run([sys.executable, str(script), path, "400"], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    new = int(out.stdout.strip().splitlines()[-1].split()[1])
    assert new == 400 - first                   # nothing redone
    lines = [l for l in open(path).read().splitlines() if l.strip()]
    items = []
    for l in lines:
        try:
            items.append(json.loads(l)["item"])
        except ValueError:
            pass                                # at most the one torn line of the kill
    assert sorted(items) == list(range(400))    # every item once


def test_embedding_cache_encodes_each_text_once_and_persists(tmp_path):
    calls = []

    def enc(texts):
        calls.append(list(texts))
        return np.stack([np.full(4, len(t), np.float32) for t in texts])

    c = EmbeddingCache(str(tmp_path), "fake-4")
    a = c.encode(["ab", "abc", "ab"], enc, batch=1)
    assert a.shape == (3, 4) and a.dtype == np.float32
    assert a[0, 0] == 2 and a[1, 0] == 3 and a[2, 0] == 2
    assert sum(len(x) for x in calls) == 2
    c2 = EmbeddingCache(str(tmp_path), "fake-4")
    b = c2.encode(["abc", "abcd"], enc)
    assert b[0, 0] == 3 and b[1, 0] == 4
    assert calls[-1] == ["abcd"]
    other = EmbeddingCache(str(tmp_path), "another-model")
    assert len(other) == 0
    assert not [f for f in os.listdir(c.dir) if f.startswith(".tmp")]


def test_embedding_cache_rejects_wrong_shapes(tmp_path):
    c = EmbeddingCache(str(tmp_path), "bad")
    with pytest.raises(ValueError, match="shape"):
        c.encode(["a", "b"], lambda t: np.zeros((1, 3), np.float32))
