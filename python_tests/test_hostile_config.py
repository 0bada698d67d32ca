"""Configuration spellings, non-finite losses, atomic outputs and their temporary files."""
import json
import os
import stat
import subprocess
import sys

import pytest
import yaml

from llmhni_ext import cli
from llmhni_ext import config as C
from llmhni_ext.checkpoint import clean_stale_tmp, write_text
from llmhni_ext.signals.config import SignalsConfig

QUICK = ["--dataset", "synthetic", "--method", "bpr", "--dim", "8", "--layers", "1", "--no-progress"]


@pytest.mark.parametrize("spelled,value", [("1e-3", 1e-3), ("1E-3", 1e-3), ("1e+2", 100.0), (".5", 0.5),
                                           ("5.", 5.0), ("+2.5e-1", 0.25), ("3", 3.0)])
def test_usual_number_spellings_are_numbers(tmp_path, spelled, value):
    assert SignalsConfig.from_dict({"proj_lr": spelled}).proj_lr == pytest.approx(value)
    assert SignalsConfig.from_dict({"proj_lr": yaml.safe_load(spelled)}).proj_lr == pytest.approx(value)
    if value > 0:
        assert C.apply_overrides(C.RunConfig(), {"train.lr": spelled}).train.lr == pytest.approx(value)
        (tmp_path / "r.yaml").write_text(f"train:\n  lr: {spelled}\n")
        assert C.load_yaml(str(tmp_path / "r.yaml")).train.lr == pytest.approx(value)


@pytest.mark.parametrize("bad", [".inf", "-.inf", ".nan", "inf", "nan", "1e999"])
def test_non_finite_settings_are_refused(tmp_path, bad):
    with pytest.raises(C.ConfigError, match="train.lr: must be a (finite )?number"):
        C.apply_overrides(C.RunConfig(), {"train.lr": bad})
    with pytest.raises(ValueError, match="signals.proj_lr: must be a (finite )?number"):
        SignalsConfig.from_dict({"proj_lr": yaml.safe_load(bad) if bad.startswith(".") else bad})


def test_signals_settings_are_type_checked():
    with pytest.raises(ValueError, match="signals.proj_epochs: must be an integer"):
        SignalsConfig.from_dict({"proj_epochs": "many"})
    with pytest.raises(ValueError, match="signals.align: must be true or false"):
        SignalsConfig.from_dict({"align": "yes please"})


def test_a_run_whose_loss_becomes_nan_stops_with_an_error(tmp_path, capsys):
    out = tmp_path / "run"
    rc = cli.main(["train", *QUICK, "--epochs", "2", "--out", str(out), "--set", "train.lr=1e30"])
    err = capsys.readouterr().err
    assert rc == 1 and "the loss became nan" in err and "Lower train.lr" in err
    assert not (out / "results.json").exists()


def test_outputs_are_written_atomically_with_normal_permissions(tmp_path):
    out = tmp_path / "run"
    assert cli.main(["train", *QUICK, "--epochs", "1", "--out", str(out)]) == 0
    umask = os.umask(0)
    os.umask(umask)
    for name in ("config.yaml", "results.json", "metrics.jsonl", "checkpoint.pt", "best.pt"):
        mode = stat.S_IMODE(os.stat(out / name).st_mode)
        assert mode == 0o666 & ~umask, (name, oct(mode))
    assert not [n for n in os.listdir(out) if n.startswith(".tmp-")]


def test_temporary_files_of_killed_writers_are_cleaned(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    (tmp_path / f".tmp-{pid}-abc-checkpoint.pt").write_bytes(b"half")
    live = tmp_path / f".tmp-{os.getpid()}-abc-results.json"
    live.write_bytes(b"being written")
    old = tmp_path / ".tmp-unlabelled"
    old.write_bytes(b"x")
    os.utime(old, (0, 0))
    (tmp_path / "keep.json").write_text("{}")
    assert clean_stale_tmp(str(tmp_path)) == 2
    assert sorted(os.listdir(tmp_path)) == sorted([live.name, "keep.json"])
    # a training run cleans its output folder when it starts
    (tmp_path / f".tmp-{pid}-zzz-config.yaml").write_bytes(b"half")
    assert cli.main(["train", *QUICK, "--epochs", "1", "--out", str(tmp_path)]) == 0
    assert not (tmp_path / f".tmp-{pid}-zzz-config.yaml").exists()


def test_interrupted_atomic_write_leaves_the_old_file(tmp_path):
    p = tmp_path / "t.txt"
    write_text("old", str(p))

    class Boom(Exception):
        pass

    from llmhni_ext.checkpoint import _atomic_write

    def writer(f):
        f.write(b"new but")
        raise Boom

    with pytest.raises(Boom):
        _atomic_write(str(p), writer)
    assert p.read_text() == "old" and os.listdir(tmp_path) == ["t.txt"]


def test_thread_count_is_part_of_what_a_resume_must_match(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["train", *QUICK, "--epochs", "1", "--out", str(out), "--threads", "1"]) == 0
    rc = cli.main(["train", *QUICK, "--epochs", "2", "--out", str(out), "--threads", "2", "--resume"])
    assert rc == 1 and "train.threads" in capsys.readouterr().err
    assert cli.main(["train", *QUICK, "--epochs", "2", "--out", str(out), "--threads", "1", "--resume"]) == 0
    assert json.loads((out / "results.json").read_text())["epochs_run"] == 2
