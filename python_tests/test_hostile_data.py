"""Broken data files get a clear error (file and line), never a huge allocation, a bare
numpy exception or a silent half-load; empty splits are refused or announced."""
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from llmhni_ext.data import load_dataset
from llmhni_ext.data import download as dl
from llmhni_ext.data.dataset import DataError
from llmhni_ext.data.lightgcn_format import load_lightgcn_dir
from llmhni_ext.data.recbole import load_recbole_inter
from llmhni_ext.data.tabular import load_table

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def _lightgcn(tmp_path, train, test="0 3\n1 0\n", valid=None):
    d = tmp_path / "lg"
    d.mkdir(exist_ok=True)
    (d / "train.txt").write_text(train, encoding="utf-8")
    (d / "test.txt").write_text(test)
    if valid is not None:
        (d / "valid.txt").write_text(valid)
    return d


@pytest.mark.parametrize("train,msg,line", [
    ("0 1 2\n1 2000000000\n", r"item id 2000000000 is far beyond the 5 distinct item ids", 2),
    ("0 1 2\n2000000000 1\n", r"user id 2000000000 is far beyond", 2),
    ("0 1 2\n1 9999999999999999999999\n", r"id 9999999999999999999999 is too large", 2),
    ("0 1 2\n1 4294967296\n", r"id 4294967296 is too large", 2),
    ("0 1 \u0661\n1 2\n", r"ids must be integers written with the digits 0-9, found '\u0661'", 1),
    ("0 1 2\n1 2.5\n", r"ids must be integers", 2),
])
def test_lightgcn_ids_that_would_blow_up_are_refused(tmp_path, train, msg, line):
    d = _lightgcn(tmp_path, train)
    with pytest.raises(DataError, match=msg) as e:
        load_lightgcn_dir(d)
    assert e.value.line == line and "train.txt" in str(e.value)


def test_lightgcn_without_valid_carves_one(tmp_path):
    rng = np.random.default_rng(0)
    lines = [" ".join(map(str, [u, *sorted(rng.choice(50, 20, replace=False))])) for u in range(30)]
    d = _lightgcn(tmp_path, "\n".join(lines) + "\n", test="\n".join(f"{u} {u % 50}" for u in range(30)) + "\n")
    ds = load_lightgcn_dir(d)
    assert len(ds.valid) > 0 and ds.meta["valid_ratio"] == 0.1
    assert len(ds.train) + len(ds.valid) == 30 * 20 - sum(1 for u in range(30) if (u % 50) in [])  # nothing lost
    d2 = _lightgcn(tmp_path, "\n".join(lines) + "\n", valid="0 49\n")
    assert load_lightgcn_dir(d2).meta["valid_ratio"] == 0.0


def test_training_without_validation_never_selects_on_an_empty_split(tmp_path):
    from llmhni_ext.config import RunConfig
    from llmhni_ext.train import Trainer
    rng = np.random.default_rng(0)
    lines = [" ".join(map(str, [u, *sorted(rng.choice(40, 12, replace=False))])) for u in range(20)]
    d = _lightgcn(tmp_path, "\n".join(lines) + "\n", test="\n".join(f"{u} {(u * 7) % 40}" for u in range(20)) + "\n")
    ds = load_lightgcn_dir(d, valid_ratio=0)
    assert len(ds.valid) == 0
    cfg = RunConfig()
    cfg.method.name = "bpr"
    cfg.model.dim, cfg.model.layers = 8, 1
    cfg.train.epochs, cfg.train.progress, cfg.train.batch_size, cfg.train.patience = 3, False, 64, 1
    with pytest.warns(UserWarning, match="no validation interactions: early stopping is off"):
        tr = Trainer(cfg.validate(), ds)
    res = tr.fit()
    assert res["best_epoch"] == 3 and res["epochs_run"] == 3 and not res["stopped_early"]


def test_empty_test_split_is_refused(tmp_path):
    from llmhni_ext.config import RunConfig
    from llmhni_ext.train import Trainer
    d = _lightgcn(tmp_path, "0 1 2 3\n1 0 2\n2 1 3\n", test="0 1\n", valid="0 4\n")   # test row is in train
    ds = load_lightgcn_dir(d)
    assert len(ds.test) == 0
    with pytest.raises(ValueError, match="has no test interactions.*test_rows_in_train_or_valid_dropped"):
        cfg = RunConfig()
        cfg.method.name = "bpr"
        Trainer(cfg.validate(), ds)


@pytest.mark.skipif(not (SHARED / "ml-100k" / "u1.base").is_file(), reason="needs ../shared/data")
def test_truncated_known_file_is_refused_on_load(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMHNI_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "root"
    shutil.copytree(SHARED / "ml-100k", root / "ml-100k")
    (root / "ml-100k-llm-profiles").symlink_to(SHARED / "ml-100k-llm-profiles")
    ds = load_dataset("ml-100k", str(root), download=False)          # verified once, then cached
    assert len(ds.train) > 0
    assert (tmp_path / "cache" / "verified-data.json").is_file()
    data = (root / "ml-100k" / "u1.base").read_bytes()
    (root / "ml-100k" / "u1.base").write_bytes(data[: data.rindex(b"\n", 0, len(data) // 2) + 1])  # parses fine
    with pytest.raises(DataError, match=r"u1.base.*does not match the published.*truncated or altered"):
        load_dataset("ml-100k", str(root), download=False)
    dl.verify_known(SHARED / "ml-100k", ["u1.base"], dl.ML100K_SHA256)   # the original passes


def _both_refuse(tmp_path, inter: str, csv: str, inter_msg: str, csv_msg: str) -> None:
    """The RecBole and the CSV loader refuse the same defect."""
    for name, body, load, msg in (("x.inter", inter, load_recbole_inter, inter_msg), ("t.csv", csv, load_table, csv_msg)):
        (tmp_path / name).write_text(body)
        with pytest.raises(DataError, match=msg):
            load(tmp_path / name)


def test_header_only_and_empty_files(tmp_path):
    _both_refuse(tmp_path, "user_id:token\titem_id:token\n", "userId,movieId,rating\n",
                 "header row and no data rows", "header row and no data rows")


@pytest.mark.parametrize("rows,msg", [
    (["1\t2\tnan"], "rating is not a finite number: nan"),
    (["1\t2\tinf"], "rating is not a finite number: inf"),
    (["\t2\t3"], "empty user or item id"),
])
def test_recbole_rejects_what_the_csv_loader_rejects(tmp_path, rows, msg):
    p = tmp_path / "x.inter"
    p.write_text("user_id:token\titem_id:token\trating:float\n" + "\n".join(["1\t1\t4", *rows]) + "\n")
    with pytest.raises(DataError, match=msg) as e:
        load_recbole_inter(p)
    assert e.value.line == 3


def test_nan_timestamps_are_refused(tmp_path):
    _both_refuse(tmp_path, "user_id:token\titem_id:token\ttimestamp:float\n1\t1\t10\n1\t2\tnan\n",
                 "user,item,rating,timestamp\n1,1,4,10\n1,2,3,1e300\n",
                 "timestamp is not a finite number", "timestamp 1.*out of range")


def test_bom_does_not_break_header_detection(tmp_path):
    c = tmp_path / "t.csv"
    body = "userId,movieId,rating\n" + "".join(f"{u},{i},4\n" for u in range(6) for i in range(5))
    c.write_bytes(b"\xef\xbb\xbf" + body.encode())
    ds = load_table(c)
    assert len(ds.train) + len(ds.valid) + len(ds.test) == 30
    p = tmp_path / "x.inter"
    p.write_bytes(b"\xef\xbb\xbfuser_id:token\titem_id:token\n" + b"".join(f"{u}\t{i}\n".encode()
                                                                         for u in range(6) for i in range(5)))
    assert load_recbole_inter(p).n_users == 6


def test_missing_path_is_reported_as_missing(tmp_path):
    for name in (str(tmp_path / "nope"), "data/x.inter", "ratings.csv"):
        with pytest.raises(FileNotFoundError, match="not found"):
            load_dataset(name)
    with pytest.raises(ValueError, match="unknown data set 'ml-7m'"):
        load_dataset("ml-7m")


def test_no_warning_for_data_with_validation(tmp_path):
    d = _lightgcn(tmp_path, "0 1 2 3\n1 0 2\n", valid="0 4\n", test="1 3\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_lightgcn_dir(d)


def test_ctrl_c_during_the_last_evaluation_is_not_ignored(tmp_path):
    import os
    import signal

    from llmhni_ext.config import RunConfig
    from llmhni_ext.train import Interrupted, Trainer
    ds = load_dataset("synthetic", n_users=40, n_items=60)
    cfg = RunConfig()
    cfg.method.name = "bpr"
    cfg.model.dim, cfg.model.layers = 8, 1
    cfg.train.epochs, cfg.train.progress = 2, False
    tr = Trainer(cfg.validate(), ds, out_dir=str(tmp_path / "run"))
    real = tr.evaluate

    def evaluate(split):
        if split == "valid" and tr.epoch == 1:
            os.kill(os.getpid(), signal.SIGINT)          # Ctrl-C while the last epoch is evaluated
        return real(split)

    tr.evaluate = evaluate
    with pytest.raises(Interrupted, match="interrupted after epoch 2; checkpoint saved"):
        tr.fit(handle_sigint=True)
    assert not (tmp_path / "run" / "results.json").exists()
    assert (tmp_path / "run" / "checkpoint.pt").exists()
