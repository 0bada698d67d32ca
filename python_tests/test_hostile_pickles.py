"""Crafted pickles and checkpoints never run code: every path that unpickles a file refuses
them with a clear error before anything executes (the marker file is never created)."""
import os
import pickle

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from llmhni_ext import cli
from llmhni_ext.checkpoint import load_checkpoint
from llmhni_ext.data.dataset import DataError
from llmhni_ext.data.rlmrec import load_pickle, load_rlmrec_dir

from test_data_formats import write_rlmrec


def _payloads(marker):
    """Pickles that create ``marker`` when loaded: a __reduce__ to a builtin, and NumPy
    functions that exec a string (the classic hole of 'allow every numpy.* global')."""
    code = f"open({str(marker)!r}, 'w').close()"

    class Reduce:
        def __reduce__(self):
            return (exec, (code,))

    yield "builtins.exec", pickle.dumps(Reduce(), protocol=2)
    yield "numpy runstring", (b"cnumpy.testing._private.utils\nrunstring\n(V" + code.encode()
                              + b"\n(dtR.")
    yield "numpy.f2py", b"cnumpy.f2py.diagnose\nrun_command\n(Vtouch " + str(marker).encode() + b"\ntR."
    yield "os.system", b"cos\nsystem\n(Vtouch " + str(marker).encode() + b"\ntR."
    yield "scipy non-sparse", (b"cscipy._lib._testutils\n_run_concurrent_barrier\n(I1\n(dtR.")
    yield "_codecs other codec", b"c_codecs\nencode\n(Vabc\nVrot13\ntR."
    yield "copyreg", b"ccopyreg\n_reconstructor\n(cos\n_wrap_close\ncbuiltins\nobject\nNtR."


@pytest.mark.parametrize("target", ["trn_mat.pkl", "usr_prf.pkl", "usr_emb_np.pkl"])
def test_rlmrec_files_never_run_code(tmp_path, target):
    marker = tmp_path / "pwned"
    for label, blob in _payloads(marker):
        d = tmp_path / label.replace(" ", "_")
        write_rlmrec(d, dim=8)
        (d / target).write_bytes(blob)
        with pytest.raises(DataError, match=r"cannot unpickle|refusing") as e:
            load_rlmrec_dir(d)
        assert target in str(e.value), label
        assert not marker.exists(), f"{label} ran code"


def test_safe_unpickler_reads_what_rlmrec_writes(tmp_path):
    """Every protocol and every layout the allow-list is meant for still loads."""
    arrs = {"coo": sp.coo_matrix(np.eye(3)), "csr": sp.csr_matrix(np.eye(3)), "csc": sp.csc_matrix(np.eye(3)),
            "dense": np.arange(6.0).reshape(2, 3), "prof": {0: {"profile": "p", "reasoning": "r"}},
            "scalars": [np.float64(1.5), np.int32(2)]}
    for proto in (0, 2, 4, 5):
        for k, o in arrs.items():
            p = tmp_path / f"{k}{proto}.pkl"
            p.write_bytes(pickle.dumps(o, protocol=proto))
            got = load_pickle(p)
            if sp.issparse(o):
                assert (got != o).nnz == 0
            elif isinstance(o, np.ndarray):
                np.testing.assert_array_equal(got, o)
            else:
                assert got == o


def test_tampered_sparse_matrix_is_refused(tmp_path):
    write_rlmrec(tmp_path / "a", dim=8)
    m = sp.coo_matrix(np.eye(12, 20))
    m.row = m.row.copy()
    m.row[0] = 10 ** 6                 # an entry outside the shape
    (tmp_path / "a" / "trn_mat.pkl").write_bytes(pickle.dumps(m))
    with pytest.raises(DataError, match="trn_mat.pkl.*not a well-formed sparse matrix"):
        load_rlmrec_dir(tmp_path / "a")


def test_precomputed_embeddings_pickle_never_runs_code(tmp_path):
    from llmhni_ext.signals.stage import _load_array
    marker = tmp_path / "pwned"
    for label, blob in _payloads(marker):
        p = tmp_path / "emb.pkl"
        p.write_bytes(blob)
        with pytest.raises(DataError, match="refusing|cannot unpickle"):
            _load_array(str(p))
        assert not marker.exists(), label
    p.write_bytes(pickle.dumps(np.ones((3, 4), np.float64)))
    assert _load_array(str(p)).dtype == np.float32


class _Boom:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _evil_checkpoint(path, marker):
    torch.save({"config": {}, "model": {}, "x": _Boom(str(marker))}, path)


def test_checkpoint_loader_refuses_objects(tmp_path):
    marker = tmp_path / "pwned"
    _evil_checkpoint(tmp_path / "c.pt", marker)
    with pytest.raises(RuntimeError, match="could not be read.*refusing to unpickle"):
        load_checkpoint(str(tmp_path / "c.pt"))
    assert not marker.exists()


def test_evaluate_and_resume_refuse_crafted_checkpoints(tmp_path, capsys):
    marker = tmp_path / "pwned"
    _evil_checkpoint(tmp_path / "c.pt", marker)
    assert cli.main(["evaluate", "--checkpoint", str(tmp_path / "c.pt")]) == 1
    assert "refusing to unpickle" in capsys.readouterr().err
    out = tmp_path / "run"
    out.mkdir()
    _evil_checkpoint(out / "checkpoint.pt", marker)
    # LLMHNI (the default method) prepares signals first: the checkpoint is refused before that
    # (the fast judge and encoder only make a regression of that order cheap to see)
    rc = cli.main(["train", "--dataset", "synthetic", "--dim", "8", "--layers", "1", "--epochs", "1",
                   "--no-progress", "--out", str(out), "--resume", "--cache-dir", str(tmp_path / "cache"),
                   "--set", "signals.judge=embedding", "--set", "signals.encoder=hashing"])
    cap = capsys.readouterr()
    assert rc == 1 and "refusing to unpickle" in cap.err
    assert "signals: preparing" not in cap.out and not (tmp_path / "cache").exists()
    assert not marker.exists()


def test_signals_cache_file_is_loaded_weights_only(tmp_path):
    from llmhni_ext.signals.stage import Signals
    marker = tmp_path / "pwned"
    torch.save({"user_sem": _Boom(str(marker))}, tmp_path / "s.pt")
    with pytest.raises(ValueError, match="could not be read"):
        Signals.load(str(tmp_path / "s.pt"))
    assert not marker.exists()
    z = torch.zeros(2, 3)
    s = Signals(z, z, z, z, torch.zeros(2, 0, dtype=torch.long), torch.zeros(2, 0, dtype=torch.long),
                summary={"a": np.float64(0.5), "b": {"c": np.arange(3)}}, judgments={"u": np.arange(2)})
    s.save(str(tmp_path / "ok.pt"))
    back = Signals.load(str(tmp_path / "ok.pt"))
    assert back.summary["a"] == 0.5 and back.judgments["u"].tolist() == [0, 1]
    assert os.listdir(tmp_path) == sorted(os.listdir(tmp_path)) or True
