import math
import time

import numpy as np
import pytest
import torch

from _signals_fakes import CharTokenizer, FakeOpenAI, dead_url
from llmhni_ext.signals.judges.base import JudgeInputs, UserTask, calibrated_labels
from llmhni_ext.signals.judges.embedding import EmbeddingJudge
from llmhni_ext.signals.judges.openai_chat import EndpointError, OpenAIChatJudge
from llmhni_ext.signals.judgment_cache import JudgmentCache
from llmhni_ext.signals.prompts import item_centric_prompt, parse_label, user_centric_prompt


# ----------------------------------------------------------------------------- parsing

@pytest.mark.parametrize("text,label", [
    ("High", "High"), ("high", "High"), (" Low.", "Low"), ("**Mid**", "Mid"), ('"High"', "High"),
    ("Answer: Low", "Low"), ("label = mid", "Mid"), ("`HIGH`\n", "High"),
])
def test_parse_label_accepts_the_bare_label(text, label):
    assert parse_label(text) == label


@pytest.mark.parametrize("text", [
    "", None, "Medium", "Very high", "High or Mid", "I think High", "High, because the user likes it",
    "Low-ish", "5", "HighMid", "yes",
])
def test_parse_label_is_strict(text):
    assert parse_label(text) is None


def test_prompts_carry_the_two_perspectives():
    u = user_centric_prompt("Loves space films.", "Star Wars (1977)", "movie")
    i = item_centric_prompt(["Alien (1979)", "Aliens (1986)"], "Star Wars (1977)", "movie")
    assert "Loves space films." in u and "Star Wars" in u and "High, Mid or Low" in u
    assert "- Alien (1979)" in i and "Star Wars" in i and "profile" not in i.lower()


# ----------------------------------------------------------------------------- fixtures

def _inputs(n_users=3, n_items=6):
    return JudgeInputs(dataset="toy", noun="movie",
                       user_profile=[f"user {u} loves space films" if u % 2 == 0 else f"user {u} loves romance"
                                     for u in range(n_users)],
                       item_text=[f"A space movie {i}" if i % 2 == 0 else f"A romance {i}" for i in range(n_items)],
                       item_name=[f"Film {i}" for i in range(n_items)],
                       user_vec=torch.randn(n_users, 8), item_vec=torch.randn(n_items, 8))


def _tasks():
    return [UserTask(0, [1, 2], [3, 4, 5]), UserTask(1, [0], [2, 3])]


@pytest.fixture(scope="module")
def server():
    s = FakeOpenAI(slow_s=1.5)
    yield s
    s.close()


# ----------------------------------------------------------------------------- chat judge

def test_chat_judge_good_answers(server, tmp_path):
    j = OpenAIChatJudge(server.url("good"), "m", concurrency=3, timeout_s=5, retries=1, backoff_s=0.01)
    inp = _inputs()
    with JudgmentCache(str(tmp_path / "c.jsonl")) as c:
        st = j.run(_tasks(), inp, c)
        assert st["judged"] == 6 and st["unknown"] == 0 and st["errors"] == 0
        # user 0's profile mentions space: user view High; item 1 text is romance, item 2 space
        assert c.get(j.key(inp, 0, 1, "user"))["label"] == "High"
        assert c.get(j.key(inp, 0, 1, "item"))["label"] == "Low"
        assert c.get(j.key(inp, 0, 2, "item"))["label"] == "High"
        calls = server.calls
        assert j.run(_tasks(), inp, c)["judged"] == 0          # all cached: no request
        assert server.calls == calls


def test_chat_judge_nonsense_is_asked_again_once_then_unknown(server):
    j = OpenAIChatJudge(server.url("bad"), "m", concurrency=2, timeout_s=5, retries=2, backoff_s=0.01)
    c = JudgmentCache(None)
    before = server.calls
    st = j.run([UserTask(0, [1], [2])], _inputs(), c)
    assert st["unknown"] == 2 and st["judged"] == 2
    assert server.calls - before == 2 * 2                          # answer_tries=2 per prompt, not retries+1
    assert {r["label"] for r in c.records()} == {"unknown"}


def test_chat_judge_stops_reasking_an_endpoint_that_only_answers_garbage(server):
    """After `garbage_after` unparseable answers in a row, each question is asked once."""
    j = OpenAIChatJudge(server.url("bad"), "m", concurrency=1, retries=0, backoff_s=0.01, garbage_after=4)
    c = JudgmentCache(None)
    before = server.calls
    with pytest.warns(UserWarning, match="none of the first"):
        st = j.run([UserTask(0, [1, 2, 3, 4, 5], [2])], _inputs(), c)
    assert st["unknown"] == 10 and st["answers_garbage"] == 1.0
    assert server.calls - before == 4 + 8                          # 2 questions x 2 tries, then 8 x 1


def test_chat_judge_retry_recovers_a_parseable_answer(server):
    j = OpenAIChatJudge(server.url("flaky"), "m", retries=2, backoff_s=0.01)
    c = JudgmentCache(None)
    st = j.run([UserTask(0, [1], [2])], _inputs(), c)
    assert st["unknown"] == 0 and st["retries"] == 2
    assert {r["label"] for r in c.records()} == {"Mid"}


def test_chat_judge_timeout_is_an_error_not_a_label(server):
    j = OpenAIChatJudge(server.url("slow"), "m", timeout_s=0.2, retries=1, backoff_s=0.01)
    c = JudgmentCache(None)
    t0 = time.perf_counter()
    with pytest.raises(EndpointError, match="every request"):
        j.run([UserTask(0, [1], [2])], _inputs(), c)
    assert time.perf_counter() - t0 < 5
    assert len(c) == 0                                              # nothing recorded: a later run asks again


def test_chat_judge_server_down_and_http_errors(server):
    for url in (dead_url(), server.url("error")):
        j = OpenAIChatJudge(url, "m", timeout_s=1, retries=1, backoff_s=0.01)
        c = JudgmentCache(None)
        with pytest.raises(EndpointError):
            j.run([UserTask(0, [1], [2])], _inputs(), c)
        assert len(c) == 0


def test_openai_embedding_encoder(server):
    from llmhni_ext.signals.encoders import OpenAIEmbeddingEncoder
    e = OpenAIEmbeddingEncoder(server.url("good"), "emb", batch_size=2, retries=0)
    out = e.encode(["a", "aa", "bab"])
    assert out.shape == (3, 3) and out.dtype == np.float32
    assert out[:, 0].tolist() == [1, 2, 3] and out[:, 1].tolist() == [1, 2, 1]
    with pytest.raises(RuntimeError, match="failed"):
        OpenAIEmbeddingEncoder(dead_url(), retries=1, backoff_s=0.01).encode(["x"])


# ----------------------------------------------------------------------------- calibration, embedding judge

def test_calibrated_labels():
    calib = {(0, "user"): [1.0, 1.2, 0.8], (1, "user"): [5.0, 5.2, 4.8]}
    cand = {(0, 9, "user"): 1.0, (0, 8, "user"): 0.0, (0, 7, "user"): -5.0,
            (1, 9, "user"): 1.0, (1, 8, "user"): 5.1, (2, 9, "user"): float("nan")}
    lab, info = calibrated_labels(cand, calib, high_margin=0.5, low_margin=1.5)
    # per-user reference: the same score is High for user 0 and Low for user 1
    assert lab[(0, 9, "user")] == "High" and lab[(1, 9, "user")] == "Low" and lab[(1, 8, "user")] == "High"
    assert lab[(0, 7, "user")] == "Low" and lab[(2, 9, "user")] == "unknown"
    assert info["user_sigma"] > 0


def test_embedding_judge_scores_and_calibration():
    inp = _inputs()
    j = EmbeddingJudge()
    c = JudgmentCache(None)
    j.run(_tasks(), inp, c)
    r = c.get(j.key(inp, 0, 1, "user"))
    uv = torch.nn.functional.normalize(inp.user_vec, dim=-1)
    iv = torch.nn.functional.normalize(inp.item_vec, dim=-1)
    assert r["score"] == pytest.approx(float(uv[0] @ iv[1]), abs=1e-6)
    r = c.get(j.key(inp, 0, 2, "item"))
    assert r["score"] == pytest.approx(float((iv[[3, 4, 5]] @ iv[2]).mean()), abs=1e-6)
    roles = [x["role"] for x in c.records()]
    assert roles.count("calib") == 3 + 3 + 2 + 2


# ----------------------------------------------------------------------------- local LM judge

def _tiny_lm(seed=0):
    transformers = pytest.importorskip("transformers")
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig
    torch.manual_seed(seed)
    cfg = Gemma3TextConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=2, num_key_value_heads=1, head_dim=16, max_position_embeddings=256,
                           sliding_window=512, pad_token_id=0, bos_token_id=1, eos_token_id=2)
    return Gemma3ForCausalLM(cfg).eval()


def test_likelihood_scorer_prefix_reuse_matches_full_recompute():
    from llmhni_ext.signals.judges.local_lm import LikelihoodScorer
    m = _tiny_lm()
    tok = CharTokenizer()
    prefix = [1] + tok.encode("User profile: loves space. A movie:")
    sufs = [tok.encode(" Star Wars\n"), tok.encode(" Up\n"), tok.encode(" The Long Title Of A Film\n"), []]
    spans = [(3, 8), (10, 12)]
    a, sa = LikelihoodScorer(m, batch=2, reuse_prefix=True).score(prefix, sufs, spans)
    b, sb = LikelihoodScorer(m, batch=3, reuse_prefix=False).score(prefix, sufs, spans)
    assert math.isnan(a[3]) and math.isnan(b[3])
    np.testing.assert_allclose(a[:3], b[:3], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(sa, sb, rtol=1e-5, atol=1e-5)
    # against a plain forward pass with full logits
    full = torch.tensor([prefix + sufs[1]])
    with torch.no_grad():
        lp = torch.log_softmax(m(full).logits[0].float(), -1)
    ref = sum(float(lp[len(prefix) - 1 + k, t]) for k, t in enumerate(sufs[1]))
    assert a[1] == pytest.approx(ref, abs=1e-4)
    assert all(x < 0 for x in a[:3])


def test_local_lm_judge_end_to_end_and_resume(tmp_path):
    from llmhni_ext.signals.judges.local_lm import LocalLMJudge
    from llmhni_ext.signals.logical import collect_labels
    from llmhni_ext.signals.config import SignalsConfig
    m = _tiny_lm()
    inp = _inputs(4, 8)
    tasks = [UserTask(0, [1, 2], [3, 4, 5]), UserTask(2, [6], [0, 7, 5])]
    path = str(tmp_path / "lm.jsonl")
    j = LocalLMJudge(m, CharTokenizer(), "tiny", batch=2, profile_tokens=16)
    with JudgmentCache(path) as c:
        st = j.run(tasks[:1], inp, c)
        n1 = len(c)
    # candidates 2x2, user-view calibration 3, item-view calibration 2, baselines 2 x 5 items
    assert n1 == 4 + 3 + 2 + 10
    with JudgmentCache(path) as c:
        st = j.run(tasks, inp, c)                                   # only user 2's work is new
        assert st["judged"] == len(c) - n1
        labels, info = collect_labels(j, tasks, inp, c, SignalsConfig(judge="embedding", encoder="hashing"))
    assert set(labels) == {(0, 1, "user"), (0, 1, "item"), (0, 2, "user"), (0, 2, "item"), (2, 6, "user"), (2, 6, "item")}
    assert set(labels.values()) <= {"High", "Mid", "Low"}
    recs = [r for r in JudgmentCache(path).records() if r["role"] == "base"]
    assert all(r["user"] == -1 for r in recs)


def test_cross_user_batching_matches_one_prefix_at_a_time():
    from llmhni_ext.signals.judges.local_lm import LikelihoodScorer
    m = _tiny_lm(1)
    tok = CharTokenizer()
    prefixes = [[1] + tok.encode("Profile: space!"), [1] + tok.encode("A much longer profile: romance, drama."),
                [1] + tok.encode("x")]
    sufs = [[tok.encode(" Alien\n"), tok.encode(" Up\n")], [tok.encode(" Titanic Two\n")], []]
    spans = [[(2, 5)], [], [(1, 2)]]
    one = LikelihoodScorer(m, batch=4)
    ref = [one.score(p, s, sp) for p, s, sp in zip(prefixes, sufs, spans)]
    many, many_sp = LikelihoodScorer(m, batch=2).score_many(prefixes, sufs, spans)
    for r in range(3):
        np.testing.assert_allclose(many[r], ref[r][0], rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(many_sp[r], ref[r][1], rtol=1e-4, atol=1e-4)
    assert LikelihoodScorer(m).score_many([], []) == ([], [])


# ----------------------------------------------------------------------------- cache keys cover their inputs

def test_embedding_judge_key_covers_the_vectors(tmp_path):
    """A second run with other vectors (other projector settings) never reuses the first
    run's verdicts; the same vectors hit the cache."""
    path = str(tmp_path / "c.jsonl")
    a = _inputs()
    b = _inputs()                                   # same texts, other random vectors
    j = EmbeddingJudge()
    with JudgmentCache(path) as c:
        assert j.run(_tasks(), a, c)["judged"] == 6
    with JudgmentCache(path) as c:
        assert EmbeddingJudge().run(_tasks(), a, c)["judged"] == 0
        assert EmbeddingJudge().run(_tasks(), b, c)["judged"] == 6
        ub = torch.nn.functional.normalize(b.user_vec, dim=-1)
        ib = torch.nn.functional.normalize(b.item_vec, dim=-1)
        assert c.get(j.key(b, 0, 1, "user"))["score"] == pytest.approx(float(ub[0] @ ib[1]), abs=1e-6)


def test_chat_judge_key_covers_prompt_and_texts(monkeypatch):
    from llmhni_ext.signals import prompts
    j = OpenAIChatJudge("http://127.0.0.1:9/v1", "m")
    inp = _inputs()
    k = j.key(inp, 0, 1, "user")
    other = _inputs()
    other.user_profile[2] = "a different profile"
    assert j.key(other, 0, 1, "user") != k                          # texts changed
    assert OpenAIChatJudge("http://127.0.0.1:9/v1", "m").key(_inputs(), 0, 1, "user") == k
    monkeypatch.setattr(prompts, "SYSTEM", prompts.SYSTEM + " Be strict.")
    assert OpenAIChatJudge("http://127.0.0.1:9/v1", "m").key(_inputs(), 0, 1, "user") != k   # prompt changed


def test_local_lm_judge_key_covers_its_prompt_texts(monkeypatch):
    from llmhni_ext.signals.judges.local_lm import LocalLMJudge
    j = LocalLMJudge.__new__(LocalLMJudge)
    j.name, j.version, j.profile_tokens = "local-lm:x", "pmi-v1", 48
    inp = _inputs()
    k = j.key(inp, 0, 1, "user")
    j2 = LocalLMJudge.__new__(LocalLMJudge)
    j2.name, j2.version, j2.profile_tokens = "local-lm:x", "pmi-v1", 48
    monkeypatch.setattr(LocalLMJudge, "USER_ASK", "\nA {noun} this user would love:")
    assert j2.key(_inputs(), 0, 1, "user") != k


# ----------------------------------------------------------------------------- hostile endpoints

def _post(url, **kw):
    from llmhni_ext.signals.endpoint import post_json
    args = dict(api_key="sk-secret-123", timeout_s=2.0, retries=2, backoff_s=0.01)
    args.update(kw)
    return post_json(url + "/chat/completions", {"messages": [{"role": "user", "content": "space"}]},
                     lambda d: d["choices"][0]["message"]["content"], **args)


def test_endpoint_never_follows_a_redirect_with_the_key(server):
    from llmhni_ext.signals.endpoint import EndpointFailure
    other = FakeOpenAI()
    try:
        before = len(server.auth)
        with pytest.raises(EndpointFailure, match="redirect to http://localhost") as e:
            _post(server.url(f"redirect-{other.port}"))
        assert e.value.permanent and "sk-secret-123" not in str(e.value)
        assert other.calls == 0 and len(server.auth) == before + 1      # one try, nothing sent elsewhere
    finally:
        other.close()


def test_endpoint_does_not_retry_client_errors(server):
    from llmhni_ext.signals.endpoint import EndpointFailure
    for mode, msg in (("unauthorized", "HTTP 401.*check the API key"), ("notfound", "HTTP 404")):
        calls = server.calls
        with pytest.raises(EndpointFailure, match=msg) as e:
            _post(server.url(mode))
        assert server.calls == calls + 1 and "sk-secret-123" not in str(e.value)
    calls = server.calls
    with pytest.raises(EndpointFailure):
        _post(server.url("error"))                                       # 500 is transient: retried
    assert server.calls == calls + 3


def test_endpoint_bounds_the_whole_request_and_the_answer_size(server):
    import time as _time

    from llmhni_ext.signals.endpoint import EndpointFailure
    t0 = _time.monotonic()
    with pytest.raises(EndpointFailure, match="time limit|timed out"):
        _post(server.url("drip"), timeout_s=1.0, retries=0)               # each read is fast, the whole is not
    assert _time.monotonic() - t0 < 5
    with pytest.raises(EndpointFailure, match="exceeds the limit of 1048576 bytes") as e:
        _post(server.url("huge"), max_bytes=1 << 20)
    assert e.value.permanent


def test_embedding_endpoint_with_nan_is_refused(server):
    from llmhni_ext.signals.encoders import OpenAIEmbeddingEncoder
    enc = OpenAIEmbeddingEncoder(server.url("nan"), "e", timeout_s=2, retries=2, backoff_s=0.01)
    calls = server.calls
    with pytest.raises(RuntimeError, match="NaN or infinite"):
        enc.encode(["a", "b"])
    assert server.calls == calls + 1                                    # a deterministic answer: no retry


def test_oracle_judge_answers_from_the_labels_at_its_accuracy():
    """The analysis-only oracle: right on a share `accuracy` of the labelled candidates,
    never adds a non-interaction without ground truth, and says what it is everywhere."""
    from llmhni_ext.data.synthetic import make_world
    from llmhni_ext.signals import SignalsConfig, prepare_signals
    from llmhni_ext.signals.judges.oracle import OracleJudge, truth_from_dataset
    from test_train_support import tiny_dataset
    ds = tiny_dataset(noise=40)
    truth = truth_from_dataset(ds)
    u, i = ds.train.users.numpy(), ds.train.items.numpy()
    rel, known = truth(u, i)
    assert known.all() and (~rel).sum() == 40
    rel_neg, known_neg = truth(np.array([0]), np.array([1]))       # user 0 never saw item 1 in train
    assert not known_neg.any()
    tasks = [UserTask(int(a), [int(b)], []) for a, b in zip(u, i)] + [UserTask(0, [1], [])]
    for acc in (1.0, 0.7, 0.0):
        j = OracleJudge(truth, acc, seed=3)
        j.run(tasks, None, None)
        lab, _ = j.labels(tasks, None, None)
        right = np.array([(lab[(int(a), int(b), "user")] == "High") == r for a, b, r in zip(u, i, rel)])
        assert abs(right.mean() - acc) < 0.08
        assert lab[(0, 1, "user")] == "Low"                        # unknown non-interaction: never added
    with pytest.raises(ValueError, match="needs labels"):
        truth_from_dataset(tiny_dataset())
    ds, world = make_world(60, 120, seed=1)
    bb = (torch.randn(60, 8, generator=torch.Generator().manual_seed(0)),
          torch.randn(120, 8, generator=torch.Generator().manual_seed(1)))
    sig = prepare_signals(ds, SignalsConfig(encoder="hashing", judge="oracle", oracle_accuracy=1.0, proj_epochs=1,
                                            proj_dim=8, proj_hidden=16, progress=False), backbone_embeddings=bb,
                          log=lambda m: None)
    lg = sig.summary["logical"]
    assert lg["analysis_only"] and "ORACLE" in lg["note"] and "ORACLE" in sig.format_summary()
    assert lg["quality"]["synthetic_truth"]["precision_noisy"] == 1.0
    rel_added = world.relevant(sig.hard_edges[0], sig.hard_edges[1])
    assert bool(rel_added.all())


def test_embedding_endpoint_per_token_vectors_are_mean_pooled_and_ragged_widths_refused(server):
    from llmhni_ext.signals.encoders import OpenAIEmbeddingEncoder
    e = OpenAIEmbeddingEncoder(server.url("tokens"), "emb", retries=0)
    out = e.encode(["a b c", "d e"])
    np.testing.assert_allclose(out, [[5.0, 1.0, 1.0], [3.0, 0.5, 1.0]])
    with pytest.raises(RuntimeError, match="differ in width"):
        OpenAIEmbeddingEncoder(server.url("ragged"), "emb", retries=0).encode(["x", "y"])


def test_endpoint_malformed_json_is_a_clear_permanent_failure(server):
    from llmhni_ext.signals.endpoint import EndpointFailure
    calls = server.calls
    with pytest.raises(EndpointFailure, match="malformed answer") as e:
        _post(server.url("notjson"))
    assert e.value.permanent and server.calls == calls + 1


def test_endpoint_honours_retry_after_within_a_bound(server, monkeypatch):
    import time as _time

    from llmhni_ext.signals import endpoint
    t0 = _time.monotonic()
    assert _post(server.url("ratelimit-0.4"), retries=1, backoff_s=0.01) == "High"
    assert _time.monotonic() - t0 >= 0.4                               # waited as the server asked
    monkeypatch.setattr(endpoint, "MAX_RETRY_AFTER_S", 0.2)
    t0 = _time.monotonic()
    assert _post(server.url("ratelimit-86400"), retries=1, backoff_s=0.01) == "High"
    assert _time.monotonic() - t0 < 5                                  # a day's Retry-After is capped


@pytest.mark.parametrize("value, secs", [("3", 3.0), ("0.5", 0.5), ("-4", 0.0), ("nan", 0.0), ("soon", 0.0),
                                         (None, 0.0), ("99999999", 60.0), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0)])
def test_retry_after_values(value, secs):
    from llmhni_ext.signals.endpoint import retry_after_s
    assert retry_after_s(value) == secs
