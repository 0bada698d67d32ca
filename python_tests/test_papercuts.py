"""What a newcomer hit first: the command line's small lies and the sampler's loose ends."""
import json

import pytest
import torch

from llmhni_ext import cli
from llmhni_ext import config as C
from llmhni_ext.sampling import NegativeSampler, SamplerSpec

QUICK = ["--dataset", "synthetic", "--method", "bpr", "--dim", "8", "--layers", "1", "--epochs", "2"]


def test_version(capsys):
    from llmhni_ext import __version__
    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"llmhni {__version__}"


def test_no_progress_prints_no_epoch_lines(tmp_path, capsys):
    assert cli.main(["train", *QUICK, "--no-progress", "--out", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert "epoch   1" not in out and "best epoch" in out
    assert cli.main(["train", *QUICK, "--out", str(tmp_path / "b")]) == 0
    assert "epoch   1" in capsys.readouterr().out


def test_a_log_file_gets_lines_not_carriage_return_frames(tmp_path):
    """With standard error not a terminal (a log file, a pipe) no bar draws frames; the epochs
    still say one line each on standard output."""
    import os
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if k not in ("TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS")}
    with open(tmp_path / "err.log", "w") as err:
        r = subprocess.run([sys.executable, "-m", "llmhni_ext.cli", "train", *QUICK, "--out", str(tmp_path / "a")],
                           stdout=subprocess.PIPE, stderr=err, text=True, env=env, timeout=600)
    assert r.returncode == 0
    log = (tmp_path / "err.log").read_text()
    assert "\r" not in log and "it/s" not in log, log[-500:]
    assert "epoch   1" in r.stdout and "epoch   2" in r.stdout and "best epoch" in r.stdout


def test_compare_does_not_talk_about_a_resume_nobody_asked_for(tmp_path, capsys):
    rc = cli.main(["compare", "--dataset", "synthetic", "--methods", "bpr", "--seeds", "0", "--dim", "8",
                   "--layers", "1", "--epochs", "1", "--no-progress", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0 and "--resume" not in out
    table = (tmp_path / "table.md").read_text()
    assert "±" not in table                         # one seed: no made-up std of 0


def test_unknown_keys_name_the_nearest_and_signals_keys_are_checked():
    with pytest.raises(C.ConfigError, match=r"train.lrr: unknown key; did you mean train.lr.*Known keys of train: "):
        C.apply_overrides(C.RunConfig(), {"train.lrr": "0.1"})
    with pytest.raises(C.ConfigError, match=r"signals.judge_ur: unknown key; did you mean signals.judge_url"):
        C.apply_overrides(C.RunConfig(), {"signals.judge_ur": "x"})
    with pytest.raises(C.ConfigError, match="signals.proj_epochs: must be an integer"):
        C.apply_overrides(C.RunConfig(), {"signals.proj_epochs": "many"})
    with pytest.raises(C.ConfigError, match="signals: judge must be one of"):
        C.apply_overrides(C.RunConfig(), {"signals.judge": "gpt"})
    assert C.apply_overrides(C.RunConfig(), {"signals.judge": "embedding"}).signals.judge == "embedding"
    assert "signals.judge_url" in C.known_keys() and "train.lr" in C.known_keys()


def test_info_has_no_empty_reason_and_no_build_info_op(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert "reason:" not in out or "reason: " in out and "reason: \n" not in out
    assert "build_info " not in out
    assert cli.main(["info", "--json"]) == 0
    json.loads(capsys.readouterr().out)


def test_sampler_rejects_unsupported_id_dtypes_up_front():
    u, i = torch.tensor([0, 1]), torch.tensor([1, 0])
    for bad in (torch.uint8, torch.bool, torch.float32):
        with pytest.raises(ValueError, match="must be an integer tensor"):
            NegativeSampler(u.to(bad), i, 2, 3)
    s = NegativeSampler(u.to(torch.int16), i.to(torch.int8), 2, 3)
    assert s.sample(torch.tensor([0, 1], dtype=torch.int16)).shape == (2,)
    with pytest.raises(ValueError, match="users must be a 1-D integer tensor"):
        s.sample(torch.tensor([0, 1], dtype=torch.uint8))


class _Batches(torch.utils.data.Dataset):
    def __init__(self, sampler):
        self.sampler = sampler

    def __len__(self):
        return 4

    def __getitem__(self, k):
        return self.sampler.sample(torch.zeros(64, dtype=torch.long))


def test_dataloader_workers_draw_different_negatives():
    s = NegativeSampler(torch.tensor([0]), torch.tensor([0]), 1, 10_000, seed=3)
    loader = torch.utils.data.DataLoader(_Batches(s), batch_size=None, num_workers=2)
    batches = [b.tolist() for b in loader]
    assert len(batches) == 4
    assert len({tuple(b) for b in batches}) == 4        # no two workers repeat each other


def test_library_messages_go_through_logging(tmp_path, capsys, caplog):
    import logging

    from llmhni_ext.config import RunConfig
    from llmhni_ext.pipeline import run_training
    cfg = RunConfig()
    cfg.data.dataset, cfg.method.name = "synthetic", "bpr"
    cfg.model.dim, cfg.model.layers, cfg.train.epochs = 8, 1, 1
    logger = logging.getLogger("llmhni")
    old = (logger.level, logger.propagate, list(logger.handlers))
    try:
        logger.handlers, logger.propagate = [], True
        with caplog.at_level(logging.INFO, logger="llmhni"):
            run_training(cfg.validate(), out_dir=str(tmp_path / "a"), resume=True)
        assert any("no checkpoint" in r.getMessage() for r in caplog.records)
        assert capsys.readouterr().out == ""                  # nothing printed behind the user's back
        caplog.clear()
        logger.setLevel(logging.WARNING)
        logger.propagate = False
        run_training(cfg.validate(), out_dir=str(tmp_path / "b"), resume=True)
        assert capsys.readouterr().out == "" and not caplog.records
    finally:
        logger.setLevel(old[0])
        logger.propagate = old[1]
        logger.handlers = old[2]


def test_sampler_takes_float64_tables_offsets_and_a_scoring_callback():
    torch.manual_seed(0)
    u, i = torch.tensor([0, 0, 1]), torch.tensor([1, 2, 0])
    s = NegativeSampler(u, i, 2, 6, seed=1)
    eu, ei = torch.randn(2, 4), torch.randn(6, 4)
    ref = s.sample(torch.tensor([0, 1]), spec=SamplerSpec(mode="dns", num_candidates=4), user_emb=eu, item_emb=ei, offset=5)
    got = s.sample(torch.tensor([0, 1]), spec=SamplerSpec(mode="dns", num_candidates=4), user_emb=eu.double(), item_emb=ei.double(), offset=5)
    assert torch.equal(ref, got)
    node = torch.cat([eu, ei]).double()                      # PyG: one table, users then items
    got = s.sample(torch.tensor([0, 1]), spec=SamplerSpec(mode="dns", num_candidates=4, user_offset=0, item_offset=2), user_emb=node, item_emb=node, offset=5)
    assert torch.equal(ref, got)
    padded = torch.cat([torch.zeros(1, 4), ei])               # RecBole: padding row 0
    got = s.sample(torch.tensor([0, 1]), spec=SamplerSpec(mode="dns", num_candidates=4, item_offset=1), user_emb=eu, item_emb=padded, offset=5)
    assert torch.equal(ref, got)
    with pytest.raises(ValueError, match="at least offset \\+ 6 = 7 rows"):
        s.sample(torch.tensor([0]), spec=SamplerSpec(mode="dns", item_offset=1), user_emb=eu, item_emb=ei)
    # a callback that prefers the largest item id: it must pick the largest non-positive candidate
    neg = s.sample(torch.tensor([0, 0, 1]), spec=SamplerSpec(mode="dns", num_candidates=64, score_fn=lambda users, items: items.float()), offset=2)
    assert neg.tolist() == [5, 5, 5]                          # 64 draws over at most 5 non-positives
    with pytest.raises(ValueError, match="score_fn must return scores of shape"):
        s.sample(torch.tensor([0]), spec=SamplerSpec(mode="dns", num_candidates=2, score_fn=lambda users, items: items[..., 0]))


def test_negatives_avoid_the_edges_the_denoised_graph_adds():
    """An edge that G' adds is a positive of the graph L_rec trains on: never a negative."""
    from types import SimpleNamespace

    import torch.nn.functional as F

    from llmhni_ext.config import RunConfig
    from llmhni_ext.data import make_world
    from llmhni_ext.train import Trainer
    ds, _ = make_world(n_users=40, n_items=60, seed=0)
    g = torch.Generator().manual_seed(0)
    train = set(zip(ds.train.users.tolist(), ds.train.items.tolist()))
    hard = [(u, i) for u in range(40) for i in range(60) if (u, i) not in train][:200:7]
    hu, hi = torch.tensor([h[0] for h in hard]), torch.tensor([h[1] for h in hard])
    sig = SimpleNamespace(user_sem=F.normalize(torch.randn(40, 8, generator=g), dim=1),
                          item_sem=F.normalize(torch.randn(60, 8, generator=g), dim=1), user_raw=None,
                          item_raw=None, noisy_edges=torch.zeros(2, 0, dtype=torch.long),
                          hard_edges=torch.stack([hu, hi]), summary={})
    cfg = RunConfig()
    cfg.method.name, cfg.model.dim, cfg.model.layers, cfg.train.progress = "llmhni", 8, 1, False
    tr = Trainer(cfg.validate(), ds, signals=sig)
    assert tr.method.graph is tr.method.Gp
    neg = tr.sampler.sample(hu.repeat(50), spec=SamplerSpec(mode="uniform"))
    assert not any((int(u), int(n)) in set(hard) for u, n in zip(hu.repeat(50), neg))


def test_no_progress_silences_third_party_bars(tmp_path):
    """--no-progress also stops transformers' 'Loading weights' bar (the bundled encoder)."""
    import subprocess
    import sys
    pytest.importorskip("sentence_transformers")
    cmd = [sys.executable, "-m", "llmhni_ext.cli", "train", "--dataset", "synthetic", "--method", "llmhni-wo-denoise",
           "--epochs", "1", "--dim", "8", "--layers", "1", "--threads", "1", "--no-progress",
           "--set", "signals.encoder=minilm", "--set", "data.max_users=40",
           "--cache-dir", str(tmp_path / "c"), "--out", str(tmp_path / "r")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Loading weights" not in r.stderr and "\r" not in r.stderr, r.stderr[-2000:]
