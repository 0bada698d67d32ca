"""`llmhni identify`: the rules' metrics against hand-made cases and the report end to end."""
import json

import numpy as np
import pytest

from llmhni_ext import cli
from llmhni_ext.identify import auc, decision_metrics, pair_labels

from test_train_support import tiny_dataset


def test_auc_and_decision_metrics():
    lab = np.array([True, True, False, False])
    assert auc(np.array([3.0, 2.0, 1.0, 0.0]), lab) == 1.0
    assert auc(np.array([0.0, 1.0, 2.0, 3.0]), lab) == 0.0
    assert auc(np.array([1.0, 1.0, 1.0, 1.0]), lab) == 0.5          # ties count half
    assert auc(np.array([1.0, 2.0]), np.array([True, True])) is None
    m = decision_metrics(np.array([True, False, True, False]), lab)
    assert m["precision"] == 0.5 and m["recall"] == 0.5 and m["f1"] == 0.5 and m["flagged"] == 2


def test_pair_labels_use_injected_noise_and_heldout_interactions():
    ds = tiny_dataset(noise=10)
    u, i = ds.train.users.numpy(), ds.train.items.numpy()
    lab, src = pair_labels(ds, u, i, np.ones(len(u), dtype=bool))
    assert (lab == ds.train_noise.numpy()).all() and "injected" in src
    vu, vi = ds.valid.users.numpy()[:3], ds.valid.items.numpy()[:3]
    lab, _ = pair_labels(ds, vu, vi, np.zeros(3, dtype=bool))
    assert lab.all()                                                  # held out: a false negative
    with pytest.raises(ValueError, match="no labels"):
        pair_labels(tiny_dataset(), u[:2], i[:2], np.ones(2, dtype=bool))


def test_identify_command_on_the_synthetic_world(tmp_path, capsys):
    out = tmp_path / "out"
    rc = cli.main(["identify", "--dataset", "synthetic", "--judges", "embedding,oracle", "--no-progress",
                   "--threads", "1", "--cache-dir", str(tmp_path / "cache"), "--out", str(out),
                   "--set", "signals.encoder=hashing", "--set", "signals.oracle_accuracy=1.0"])
    assert rc == 0
    doc = json.loads((out / "identify.json").read_text())
    rows = {r["rule"]: r for r in doc["tables"]["noisy positives vs clean-but-hard positives"]}
    assert {"(a) T-CE loss rule", "(b) backbone score"} <= set(rows)
    oracle = [r for k, r in rows.items() if k.startswith("(d) oracle")]
    assert oracle and oracle[0]["precision"] == 1.0 and oracle[0]["recall"] == 1.0   # a perfect judge
    assert any("analysis only" in k for k in rows)
    assert (out / "identify.md").read_text().startswith("Identification on synthetic")
    assert "written:" in capsys.readouterr().out


def test_identify_reports_an_imported_graph_on_unlabelled_data(tmp_path):
    """Without noise labels the report still says what an imported G' changed and scores its
    additions against the held-out interactions."""
    from llmhni_ext.config import RunConfig
    from llmhni_ext.identify import identification_report, markdown
    ds = tiny_dataset()
    tu, ti = ds.train.users.numpy(), ds.train.items.numpy()
    vu, vi = ds.valid.users.numpy(), ds.valid.items.numpy()
    lines = [f"- {u} {i}" for u, i in zip(tu[:5], ti[:5])] + [f"+ {u} {i}" for u, i in zip(vu[:2], vi[:2])]
    (tmp_path / "g.tsv").write_text("\n".join(lines) + "\n")
    cfg = RunConfig()
    cfg.train.progress = False
    cfg.signals = {"encoder": "interactions", "judge_import": str(tmp_path / "g.tsv")}
    doc = identification_report(ds, cfg, ["imported"], str(tmp_path / "cache"))
    imp = doc["judges"]["imported"]
    assert imp["removed"] == 5 and imp["positives_noisy_dropped"] == 5
    assert imp["added"] == 2 and imp["added_in_valid_not_added"] == 2 and imp["negatives_hard_added"] == 0
    assert list(doc["tables"]) == ["false negatives vs true negatives"]
    assert any(r["rule"] == "(d) imported G'" for r in doc["tables"]["false negatives vs true negatives"])
    assert "What the imported G' changed" in markdown(doc) and "positives unlabelled" in markdown(doc)
