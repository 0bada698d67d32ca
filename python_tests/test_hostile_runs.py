"""Runs under hostile conditions: checkpoints that do not fit, two runs on one folder, nonsense
epoch and batch settings, and a full or read-only output folder (SIGTERM and --resume:
test_cli_train.py)."""
import json
import os
import signal
import subprocess
import sys

import pytest
import torch

from llmhni_ext import cli
from llmhni_ext.pipeline import OutputLock

QUICK = ["--dataset", "synthetic", "--method", "bpr", "--dim", "8", "--layers", "1", "--no-progress",
         "--batch-size", "512"]


def test_a_checkpoint_whose_tensors_do_not_fit_is_refused_clearly(tmp_path, capsys):
    out = str(tmp_path / "r")
    assert cli.main(["train", *QUICK, "--epochs", "1", "--out", out]) == 0
    for name in ("checkpoint.pt", "best.pt"):
        p = os.path.join(out, name)
        st = torch.load(p, weights_only=True)
        key = next(iter(st["model"]))
        st["model"][key] = torch.zeros(3, 5)                      # the wrong shape for its config
        torch.save(st, p)
    capsys.readouterr()
    assert cli.main(["train", *QUICK, "--epochs", "2", "--out", out, "--resume"]) == 1
    err = capsys.readouterr().err
    assert "cannot resume from" in err and "do not fit this configuration" in err and "Traceback" not in err
    assert cli.main(["evaluate", "--checkpoint", os.path.join(out, "best.pt")]) == 1
    assert "do not fit this configuration" in capsys.readouterr().err


def test_two_runs_on_one_output_folder_the_second_is_refused(tmp_path, capsys):
    out = str(tmp_path / "r")
    with OutputLock(out):
        assert cli.main(["train", *QUICK, "--epochs", "1", "--out", out]) == 1
        err = capsys.readouterr().err
        assert f"being written by another llmhni run (process {os.getpid()})" in err
        assert not os.path.exists(os.path.join(out, "results.json"))
    assert cli.main(["train", *QUICK, "--epochs", "1", "--out", out]) == 0     # released: runs


def test_a_second_process_is_refused_while_a_run_holds_the_folder(tmp_path):
    out = tmp_path / "r"
    code = ("import sys, time; from llmhni_ext.pipeline import OutputLock\n"
            f"with OutputLock({str(out)!r}):\n    print('held', flush=True); time.sleep(30)\n")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "held"
        with pytest.raises(RuntimeError, match=f"process {p.pid}"):
            with OutputLock(str(out)):
                pass
        p.send_signal(signal.SIGKILL)                              # a killed holder leaves no stale lock
        p.wait(30)
        with OutputLock(str(out)):
            pass
    finally:
        if p.poll() is None:
            p.kill()


@pytest.mark.parametrize("flags, msg", [
    (["--epochs", "-1"], "train.epochs: must be >= 0"),
    (["--batch-size", "0"], "train.batch_size: must be > 0"),
    (["--batch-size", "-5"], "train.batch_size: must be > 0"),
    (["--set", "train.epochs=-3"], "train.epochs: must be >= 0"),
])
def test_negative_epochs_and_batch_sizes_are_configuration_errors(tmp_path, capsys, flags, msg):
    assert cli.main(["train", *QUICK, *flags, "--out", str(tmp_path / "r")]) == 2
    assert msg in capsys.readouterr().err


def test_zero_epochs_reports_the_untrained_model(tmp_path):
    out = str(tmp_path / "r")
    assert cli.main(["train", *QUICK, "--epochs", "0", "--out", out]) == 0
    res = json.load(open(os.path.join(out, "results.json")))
    assert res["epochs_run"] == 0 and res["test"] is not None


def _tmpfs(path, *options):
    path.mkdir()
    rc = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs", str(path)],
                        capture_output=True).returncode
    if rc != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    return path


def _umount(path):
    subprocess.run(["umount", str(path)], capture_output=True)


@pytest.mark.skipif(sys.platform != "linux" or os.geteuid() != 0, reason="needs root on Linux (tmpfs)")
@pytest.mark.parametrize("kind", ["full", "read-only"])
def test_a_full_or_read_only_output_folder_is_a_clear_error(tmp_path, capsys, kind):
    mnt = _tmpfs(tmp_path / "mnt", "size=48k" if kind == "full" else "size=1m")
    try:
        if kind == "read-only":
            subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        out = str(mnt / "r")
        rc = cli.main(["train", *QUICK, "--epochs", "2", "--out", out])
        err = capsys.readouterr().err
        assert rc == 1 and "Traceback" not in err
        assert ("No space left" in err or "failed writing" in err) if kind == "full" else "Read-only" in err
        if os.path.isdir(out):
            assert not [f for f in os.listdir(out) if f.startswith(".tmp")]     # no half-written files left
    finally:
        _umount(mnt)


def test_an_edge_list_with_duplicate_and_self_referencing_rows(tmp_path):
    """A table's repeated (user, item) rows are kept once and counted; a row whose user and item
    carry the same raw id is an ordinary pair (users and items have separate id spaces). In a
    homogeneous PyG graph, where a self loop joins a node to itself, the sampler refuses it."""
    from llmhni_ext.data import load_dataset
    from llmhni_ext.sampling import NegativeSampler
    rows = ["user,item"] + [f"u{u},i{(u * 7 + k) % 30}" for u in range(20) for k in range(6)]
    rows += ["u1,i7", "u1,i7", "7,7"]                         # two duplicates of a pair; user '7' and item '7'
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    ds = load_dataset(str(tmp_path / "t.csv"), split=(1.0, 0.0, 0.0))
    assert ds.meta["cleanup"]["duplicates_dropped"] == 2
    assert len(ds.train) + len(ds.valid) + len(ds.test) == 20 * 6 + 1
    assert "7" in ds.user_raw_ids and "7" in ds.item_raw_ids
    ei = torch.tensor([[0, 1, 2, 2], [3, 4, 5, 2]])            # node 2 -> node 2: a self loop
    with pytest.raises(ValueError, match="join two users or two items"):
        NegativeSampler.from_edge_index(ei, 3, 3)
