"""The `llmhni` command line: help, info, train (with Ctrl-C and --resume), compare, errors."""
import json
import os
import signal

import pytest

from llmhni_ext import cli
from llmhni_ext.methods import METHODS
from llmhni_ext.train import Trainer

QUICK = ["--dataset", "synthetic", "--backbone", "lightgcn", "--dim", "16", "--layers", "2",
         "--batch-size", "256", "--no-progress", "--lr", "0.01"]


def test_help_documents_commands_and_methods(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for word in ("train", "compare", "evaluate", "info", "signals", *METHODS):
        assert word in out
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    out = capsys.readouterr().out
    for flag in ("--config", "--dataset", "--backbone", "--method", "--noise", "--resume", "--out", "--set"):
        assert flag in out


def test_no_command_prints_help(capsys):
    assert cli.main([]) == 2
    assert "usage" in capsys.readouterr().out


def test_info(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert "llmhni" in out and "torch" in out
    assert cli.main(["info", "--json"]) == 0
    json.loads(capsys.readouterr().out)


def test_train_writes_outputs_and_evaluate_reads_them(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert cli.main(["train", *QUICK, "--method", "bpr", "--epochs", "2", "--out", out]) == 0
    for f in ("config.yaml", "metrics.jsonl", "results.json", "checkpoint.pt", "best.pt"):
        assert os.path.isfile(os.path.join(out, f))
    res = json.load(open(os.path.join(out, "results.json")))
    assert res["method"] == "bpr" and res["config"]["model"]["dim"] == 16
    capsys.readouterr()
    assert cli.main(["evaluate", "--checkpoint", os.path.join(out, "best.pt")]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert ev["test"]["recall@20"] == pytest.approx(res["test"]["recall@20"])


def test_config_file_and_flag_precedence(tmp_path):
    cfgf = tmp_path / "run.yaml"
    cfgf.write_text("train:\n  epochs: 1\n  lr: 0.5\nmethod:\n  name: dns\n")
    out = str(tmp_path / "run")
    assert cli.main(["train", *QUICK, "--config", str(cfgf), "--set", "method.num_candidates=4",
                     "--set", "method.top_k=2", "--out", out]) == 0
    res = json.load(open(os.path.join(out, "results.json")))
    assert res["method"] == "dns" and res["config"]["train"]["lr"] == 0.01  # flag beats file
    assert res["config"]["train"]["epochs"] == 1 and res["config"]["method"]["num_candidates"] == 4


def test_bad_config_is_a_clear_error(tmp_path, capsys):
    cfgf = tmp_path / "bad.yaml"
    cfgf.write_text("train:\n  learning_rate: 0.1\n")
    assert cli.main(["train", "--config", str(cfgf)]) == 2
    assert "train.learning_rate: unknown key" in capsys.readouterr().err
    assert cli.main(["train", *QUICK, "--set", "train.lr=-1"]) == 2
    assert "train.lr: must be > 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["train", "--method", "nonsense"])


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])      # Ctrl-C; a scheduler's stop
def test_ctrl_c_saves_and_resume_matches(tmp_path, monkeypatch, signum):
    args = [*QUICK, "--method", "bpr", "--epochs", "3", "--batch-size", "512"]
    a = str(tmp_path / "a")
    assert cli.main(["train", *args, "--out", a]) == 0
    b = str(tmp_path / "b")
    orig = Trainer.train_step
    calls = {"n": 0}

    def step(self, epoch, s):
        out = orig(self, epoch, s)
        calls["n"] += 1
        if calls["n"] == 5:
            os.kill(os.getpid(), signum)          # a real signal, mid-epoch
        return out
    monkeypatch.setattr(Trainer, "train_step", step)
    assert cli.main(["train", *args, "--out", b]) == cli.EXIT_INTERRUPTED
    assert os.path.isfile(os.path.join(b, "checkpoint.pt")) and not os.path.isfile(os.path.join(b, "results.json"))
    monkeypatch.setattr(Trainer, "train_step", orig)
    assert cli.main(["train", *args, "--out", b, "--resume"]) == 0
    ra, rb = (json.load(open(os.path.join(d, "results.json"))) for d in (a, b))
    assert ra["test"] == rb["test"] and ra["best_epoch"] == rb["best_epoch"]


def test_compare_table_and_plots(tmp_path, capsys):
    out = str(tmp_path / "cmp")
    rc = cli.main(["compare", *QUICK, "--methods", "bpr,dns", "--noise", "0,0.1", "--seeds", "0,1",
                   "--epochs", "1", "--set", "method.num_candidates=4", "--set", "method.top_k=2", "--out", out])
    assert rc == 0
    table = open(os.path.join(out, "table.md")).read()
    assert table.count("\n") == 2 + 4 and "±" in table and "| bpr |" in table
    assert "±" in capsys.readouterr().out
    pytest.importorskip("matplotlib")
    for png in ("recall20_vs_noise.png", "curves.png"):
        p = os.path.join(out, png)
        assert os.path.getsize(p) > 1000 and open(p, "rb").read(4) == b"\x89PNG"
    # finished runs are reused, not retrained
    assert cli.main(["compare", *QUICK, "--methods", "bpr", "--noise", "0", "--seeds", "0",
                     "--epochs", "1", "--out", out]) == 0
    assert "already done" in capsys.readouterr().out


def test_compare_rejects_unknown_method(capsys):
    assert cli.main(["compare", "--methods", "bpr,magic"]) == 2
    assert "unknown method 'magic'" in capsys.readouterr().err


def test_compare_reruns_runs_made_with_other_settings(tmp_path, capsys):
    """A finished run is reused only when the settings its method reads are unchanged."""
    import json as _json
    from llmhni_ext.compare import reusable_result as _reusable_result
    from llmhni_ext.config import RunConfig
    run = tmp_path / "dns-noise0-seed0"
    run.mkdir()
    cfg = RunConfig()
    cfg.method.name = "dns"
    (run / "results.json").write_text(_json.dumps({"config": cfg.to_dict(), "test": {}}))
    same = RunConfig()
    same.method.name = "dns"
    same.method.top_k = 1                      # dns does not read top_k: still reusable
    same.method.lambda_de = 0.5
    assert _reusable_result(str(run / "results.json"), same) is not None
    other = RunConfig()
    other.method.name = "dns"
    other.method.num_candidates = 3            # dns reads it: the old run is moved aside
    assert _reusable_result(str(run / "results.json"), other) is None
    assert not run.exists() and (tmp_path / "dns-noise0-seed0.stale-1" / "results.json").is_file()
    assert "num_candidates" in capsys.readouterr().out


def test_compare_resumes_a_run_asked_for_more_epochs(tmp_path, capsys):
    import json as _json
    from llmhni_ext.compare import reusable_result as _reusable_result
    from llmhni_ext.config import RunConfig
    run = tmp_path / "bpr-noise0-seed0"
    run.mkdir()
    cfg = RunConfig()
    cfg.method.name, cfg.train.epochs = "bpr", 3
    res = {"config": cfg.to_dict(), "epochs_run": 3, "stopped_early": False}
    (run / "results.json").write_text(_json.dumps(res))
    assert _reusable_result(str(run / "results.json"), cfg) is not None
    more = RunConfig()
    more.method.name, more.train.epochs = "bpr", 5
    assert _reusable_result(str(run / "results.json"), more) is None and run.is_dir()   # kept, resumed
    res["stopped_early"] = True
    (run / "results.json").write_text(_json.dumps(res))
    assert _reusable_result(str(run / "results.json"), more) is not None                # early-stopped: done


def test_compare_checks_every_method_before_training_any(tmp_path, capsys):
    """A grid with a method the backbone does not support fails at once, not after the
    runs before it have trained."""
    out = str(tmp_path / "cmp")
    assert cli.main(["compare", *QUICK, "--backbone", "ngcf", "--epochs", "1", "--methods", "bpr,xsimgcl",
                     "--noise", "0", "--out", out]) == 2
    assert "xsimgcl' is defined for lightgcn only" in capsys.readouterr().err
    assert not os.path.exists(os.path.join(out, "bpr-noise0-seed0"))
