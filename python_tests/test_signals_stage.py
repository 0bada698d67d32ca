import argparse
import time

import numpy as np
import pytest
import torch

from llmhni_ext.data.synthetic import make_world
from llmhni_ext.signals import Signals, SignalsConfig, prepare_signals
from llmhni_ext.signals.candidates import propose_candidates
from llmhni_ext.signals.judges.base import Judge, JudgeInputs, UserTask


def _backbone(ds, truth, dim=16, seed=0):
    """Embeddings of a recommender that learned the observed (noisy) interactions: each user's
    row is the mean of its training items' random codes."""
    g = torch.Generator().manual_seed(seed)
    item = torch.randn(ds.n_items, dim, generator=g)
    user = torch.zeros(ds.n_users, dim).index_add_(0, ds.train.users, item[ds.train.items])
    return user, item


def test_candidates_lowest_positives_highest_negatives_and_context():
    ue = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    ie = torch.tensor([[5.0, 0.0], [4.0, 0.0], [3.0, 0.0], [2.0, 0.0], [1.0, 0.0], [0.0, 9.0]])
    pos = [np.array([0, 2, 3, 4]), np.array([], dtype=np.int64)]
    c = propose_candidates(ue, ie, pos, n_pos=2, n_neg=1, n_context=1)
    assert c[0].context == [0] and c[0].positives == [4, 3] and c[0].negatives == [1]
    assert c[1].positives == [] and c[1].negatives == [] and c[1].context == []
    c = propose_candidates(torch.tensor([[1.0, 0.0], [1.0, 1.0]]), ie, [np.array([0, 1]), np.array([5])],
                           n_pos=5, n_neg=2, n_context=3)
    assert c[0].context == [0] and c[0].positives == [1]          # context never also a candidate
    assert c[1].context == [] and c[1].positives == [5] and c[1].negatives == [0, 1]
    with pytest.raises(ValueError, match="rows"):
        propose_candidates(ue[:1], ie, pos)


def _cfg(**kw):
    base = dict(encoder="hashing", judge="embedding", proj_epochs=5, proj_dim=16, proj_hidden=64, cand_max_users=0,
                cand_pos_per_user=3, cand_neg_per_user=2, cand_pos_frac=0.0, cand_neg_frac=0.0, progress=False)
    base.update(kw)
    return SignalsConfig(**base)


def test_prepare_signals_end_to_end_on_the_synthetic_world(tmp_path):
    ds, truth = make_world(120, 240, seed=2)
    bb = _backbone(ds, truth)
    sig = prepare_signals(ds, _cfg(), backbone_embeddings=lambda d: bb, cache_dir=str(tmp_path))
    assert sig.user_sem.shape == (120, 16) and sig.item_sem.shape == (240, 16)
    assert sig.user_raw.shape[0] == 120 and sig.item_raw.shape[0] == 240
    np.testing.assert_allclose(sig.item_sem.norm(dim=1).numpy(), 1, rtol=1e-5)
    assert sig.hard_edges.shape[0] == 2 and sig.noisy_edges.shape[0] == 2
    assert sig.hard_edges.dtype == torch.long
    lg = sig.summary["logical"]
    assert lg["proxy"] is True and lg["unjudged"] == 0
    assert lg["candidate_positives"] == 360 and lg["candidate_negatives"] == 240
    assert lg["positives_noisy_dropped"] == sig.noisy_edges.shape[1]
    assert lg["negatives_hard_added"] == sig.hard_edges.shape[1]
    assert 0 <= lg["perspective_agreement"] <= 1
    # dropped edges are training interactions; added ones are not
    train = set(zip(ds.train.users.tolist(), ds.train.items.tolist()))
    assert all(e in train for e in zip(*sig.noisy_edges.tolist()))
    assert not any(e in train for e in zip(*sig.hard_edges.tolist()))
    q = lg["quality"]
    assert "noise_labels" in q and "synthetic_truth" in q
    # the judged noisy verdicts beat the base rate of noise among the candidates
    assert q["noise_labels"]["precision_noisy"] > q["noise_labels"]["base_rate_candidates"]
    text = sig.format_summary()
    assert "PROXY" in text and "precision" in text and "Recall@20" in text
    # save / load
    p = tmp_path / "sig.pt"
    sig.save(str(p))
    back = Signals.load(str(p))
    assert torch.equal(back.noisy_edges, sig.noisy_edges) and back.summary["dataset"] == "synthetic"
    # second call: served from the stage cache, identical
    again = prepare_signals(ds, _cfg(), backbone_embeddings=bb, cache_dir=str(tmp_path))
    assert again.summary.get("from_cache") and torch.equal(again.hard_edges, sig.hard_edges)


def test_without_alignment_and_without_backbone():
    ds, truth = make_world(60, 120, seed=3)
    sig = prepare_signals(ds, _cfg(align=False), backbone_embeddings=None, cache_dir=None, log=lambda m: None)
    torch.testing.assert_close(sig.user_sem, sig.user_raw)
    assert sig.hard_edges.shape == (2, 0) and sig.noisy_edges.shape == (2, 0)
    assert "skipped" in sig.summary["logical"]
    sig = prepare_signals(ds, _cfg(judge="none"), backbone_embeddings=_backbone(ds, truth), cache_dir=None)
    assert "skipped" in sig.summary["logical"] and sig.summary["alignment"]["aligned"]


def test_bad_inputs_raise_clear_errors():
    ds, truth = make_world(40, 80, seed=4)
    with pytest.raises(ValueError, match="backbone embeddings have"):
        prepare_signals(ds, _cfg(), backbone_embeddings=(torch.zeros(3, 4), torch.zeros(80, 4)))
    with pytest.raises(ValueError, match="no precomputed"):
        prepare_signals(ds, _cfg(encoder="precomputed"), backbone_embeddings=None)
    notext = ds.replace(user_text=None)
    with pytest.raises(ValueError, match="no user/item text"):
        prepare_signals(notext, _cfg(), backbone_embeddings=None)


def test_precomputed_embeddings_from_files(tmp_path):
    ds, truth = make_world(40, 80, seed=5)
    rng = np.random.default_rng(0)
    np.save(tmp_path / "u.npy", rng.standard_normal((40, 24)).astype(np.float32))
    np.save(tmp_path / "i.npy", rng.standard_normal((80, 24)).astype(np.float32))
    sig = prepare_signals(ds, _cfg(encoder="precomputed", encoder_path=f"{tmp_path}/u.npy,{tmp_path}/i.npy"),
                          backbone_embeddings=None, log=lambda m: None)
    assert sig.user_raw.shape == (40, 24) and sig.summary["encoder"]["dim"] == 24
    ds2 = ds.replace(user_text_emb=np.ones((40, 1536), np.float32), item_text_emb=np.ones((80, 1536), np.float32))
    sig = prepare_signals(ds2, _cfg(encoder="precomputed", align=False), backbone_embeddings=None, log=lambda m: None)
    assert sig.user_raw.shape == (40, 1536)


def test_cli_main_on_the_synthetic_world(tmp_path, capsys):
    from llmhni_ext.signals import cli
    p = argparse.ArgumentParser()
    cli.add_arguments(p)
    out = tmp_path / "s.pt"
    args = p.parse_args(["--dataset", "synthetic", "--encoder", "hashing", "--judge", "embedding", "--no-progress",
                         "--cache-dir", str(tmp_path), "--out", str(out), "--set", "proj_epochs=3", "--cand-pos", "1"])
    calls = []

    def fn(ds):
        calls.append(ds.name)
        return _backbone(ds, None)
    assert cli.main(args, fn) == 0
    assert calls == ["synthetic"] and out.exists()
    txt = capsys.readouterr().out
    assert "signals for synthetic" in txt and "judge: embedding-proxy" in txt
    bad = p.parse_args(["--set", "nonsense_key=1"])
    assert cli.main(bad, fn) == 2


def test_user_limit_judges_the_most_suspicious_users():
    ds, truth = make_world(80, 160, seed=6)
    bb = _backbone(ds, truth)
    a = prepare_signals(ds, _cfg(cand_max_users=20), backbone_embeddings=bb)
    b = prepare_signals(ds, _cfg(cand_max_users=20), backbone_embeddings=bb)
    assert a.summary["logical"]["users"] == 20 and a.summary["logical"]["candidate_positives"] == 60
    assert a.judgments["users"].tolist() == b.judgments["users"].tolist()
    judged = set(a.judgments["users"].tolist())
    assert len(judged) == 20
    from llmhni_ext.signals.candidates import propose_candidates
    c = propose_candidates(bb[0], bb[1], ds.user_positives("train"), n_pos=3, n_neg=2, n_context=3)
    top = sorted(c, key=lambda x: (-x.suspicion, x.user))[:20]
    assert judged == {x.user for x in top}


def test_candidates_cover_a_fraction_of_each_users_positives():
    ue = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    ie = torch.randn(50, 4, generator=torch.Generator().manual_seed(1))
    pos = [np.arange(0, 40), np.arange(0, 5), np.arange(10, 12)]
    c = propose_candidates(ue, ie, pos, n_pos=1, n_neg=0, n_context=3, pos_frac=0.25, neg_frac=0.1)
    assert [len(x.positives) for x in c] == [10, 2, 1]          # ceil(0.25 |P_u|), at least 1
    assert [len(x.negatives) for x in c] == [4, 1, 1]           # ceil(0.1 |P_u|)
    sc = ue[0] @ ie.T
    assert set(c[0].positives) == set(np.arange(40)[np.argsort(sc[:40].numpy())[:10]].tolist())


class _SlowJudge(Judge):
    """A judge that takes 0.05 s a user not yet in the cache and calls every candidate High."""
    name, version = "slow", "v1"

    def __init__(self):
        self.calls = 0

    def run(self, tasks, inputs, cache, progress=False):
        todo = [t for t in tasks if any(self.key(inputs, t.user, i, "user") not in cache for i in t.items)]
        self.calls += len(todo)
        time.sleep(0.05 * len(todo))
        for t in todo:
            for i in t.items:
                for p in ("user", "item"):
                    cache.put(self.record(inputs, t.user, i, p, "cand", label="High"))
        return {"judged": float(len(todo))}


def _slow_setup(**kw):
    tasks = [UserTask(u, [u + 100], []) for u in range(40)]
    inputs = JudgeInputs("d", "item", [""] * 40, [""] * 200, [""] * 200)
    cfg = SignalsConfig(judge="local-lm", lm_users_per_batch=4, judge_concurrency=1, progress=False, **kw)
    return tasks, inputs, cfg


def test_what_is_judged_never_follows_the_clock(tmp_path):
    """Every user (or the N most suspicious) is judged however slow the judge is: the same users
    on every machine. cand_max_users=-1 (the old clock-bound auto) reads as every user."""
    from llmhni_ext.signals import logical
    from llmhni_ext.signals.judgment_cache import JudgmentCache
    for limit, want in ((0, 40), (-1, 40), (7, 7)):
        tasks, inputs, cfg = _slow_setup(cand_max_users=limit)
        said = []
        with JudgmentCache(str(tmp_path / f"j{limit}.jsonl")) as cache:
            chosen, _, info = logical.run_judge(_SlowJudge(), tasks, inputs, cache, cfg, time.perf_counter() - 1e6,
                                                said.append)
        assert [t.user for t in chosen] == list(range(want))
        assert ("every user" if want == 40 else "most suspicious") in info["coverage"] and "40" in said[-1]


def test_a_budget_stops_with_an_error_and_the_same_call_continues(tmp_path):
    """Past signals_budget_s the stage raises (llmhni exits 3) instead of training on part of G';
    the answers so far are cached, so the next call judges only the rest."""
    from llmhni_ext.signals import logical
    from llmhni_ext.signals.judgment_cache import JudgmentCache
    tasks, inputs, cfg = _slow_setup(signals_budget_s=0.3)
    path = str(tmp_path / "j.jsonl")
    judge = _SlowJudge()
    with JudgmentCache(path) as cache:
        with pytest.raises(logical.SignalsBudgetExceeded) as e:
            logical.run_judge(judge, tasks, inputs, cache, cfg, time.perf_counter(), lambda m: None)
    done = e.value.done
    assert 4 <= done < 40 and e.value.total == 40
    msg = str(e.value)
    assert "continues where it stopped" in msg and f"signals.cand_max_users={done}" in msg
    assert "signals_budget_s=0" in msg
    first = judge.calls
    tasks, inputs, cfg = _slow_setup(signals_budget_s=0)
    with JudgmentCache(path) as cache:
        chosen, _, _ = logical.run_judge(judge, tasks, inputs, cache, cfg, time.perf_counter(), lambda m: None)
    assert len(chosen) == 40 and judge.calls - first == 40 - done     # the cached users are not asked again


def test_the_cli_exits_3_when_the_budget_runs_out(monkeypatch, capsys):
    from llmhni_ext import cli
    from llmhni_ext.signals import logical

    def stop(args):
        raise logical.SignalsBudgetExceeded(12, 40, 60.0)
    monkeypatch.setattr(cli, "build_parser", lambda: _parser_with(stop))
    assert cli.main(["go"]) == cli.EXIT_BUDGET == 3
    assert "12 of 40 users" in capsys.readouterr().err


def _parser_with(func):
    import argparse
    p = argparse.ArgumentParser(prog="llmhni")
    sub = p.add_subparsers(dest="command")
    sub.add_parser("go").set_defaults(func=func)
    return p


def test_every_user_is_judged_by_default():
    ds, truth = make_world(320, 200, seed=2)
    sig = prepare_signals(ds, _cfg(judge="embedding", device="cpu"),
                          backbone_embeddings=_backbone(ds, truth), log=lambda m: None)
    assert sig.summary["logical"]["users"] == 320


def test_signals_feed_the_trainer(tmp_path):
    """The stage's output is what the LLMHNI trainer consumes (aligned and raw embeddings, edges)."""
    train = pytest.importorskip("llmhni_ext.train")
    from llmhni_ext.config import RunConfig
    ds, truth = make_world(60, 120, seed=7)
    sig = prepare_signals(ds, _cfg(), backbone_embeddings=_backbone(ds, truth))
    for method in ("llmhni", "llmhni-wo-align"):
        cfg = RunConfig()
        cfg.method.name, cfg.model.backbone = method, "lightgcn"
        cfg.model.dim, cfg.model.layers = 16, 2
        cfg.method.num_candidates, cfg.method.top_k = 8, 4
        cfg.train.epochs, cfg.train.batch_size, cfg.train.progress = 1, 256, False
        res = train.Trainer(cfg.validate(), ds, signals=sig).fit()
        assert res is not None


def test_auto_dtypes_are_the_same_on_every_cpu():
    """bfloat16 on CPUs with bf16 units would judge and encode differently from every other CPU."""
    from llmhni_ext.signals.config import fast_dtype, resolve_dtype
    assert fast_dtype("cpu") is torch.float32 and resolve_dtype("auto", "cpu") is torch.float32
    assert fast_dtype("cuda:0") is torch.bfloat16 and resolve_dtype("bfloat16", "cpu") is torch.bfloat16


def test_the_local_judges_cache_key_holds_its_dtype():
    from llmhni_ext.signals.judges.local_lm import LocalLMJudge

    class Tok:
        pad_token_id, eos_token_id, bos_token_id = 0, 1, 2

    class Model(torch.nn.Module):
        def __init__(self, dtype):
            super().__init__()
            self.model = torch.nn.Linear(2, 2).to(dtype)
            self.config = type("C", (), {})()
            self.head = torch.nn.Linear(2, 3, bias=False).to(dtype)
            self.emb = torch.nn.Embedding(3, 2).to(dtype)

        def get_output_embeddings(self):
            return self.head

        def get_input_embeddings(self):
            return self.emb

    names = {LocalLMJudge(Model(d), Tok(), "m").name for d in (torch.float32, torch.bfloat16)}
    assert len(names) == 2 and any(":float32:" in n for n in names) and any(":bfloat16:" in n for n in names)
