"""How much the evaluation protocol alone moves Amazon-book numbers: the same runs under
three protocols, to size one candidate explanation of the gap to published numbers.

    PYTHONPATH=. python bench/protocol.py [--methods bpr,dns] [--seeds 0] [--out runs/protocol]
        [--threads 1] [--valid-from runs/ab-table] [--set key=value ...]

* ``valid``      (llmhni's, the paper's stated one): train on train, keep the epoch of best
  validation Recall@20, report its test metrics;
* ``test-select``: train on train, keep the epoch of best *test* Recall@20 (the validation
  split unused: what a loop that evaluates and early-stops on test reports);
* ``train+valid``: train on train and valid together, keep the best test epoch.

Every kept model is then ranked on test twice: with the training and validation items masked
(llmhni's test ranking) and with only the training items masked (a loop that knows no
validation split); under ``train+valid`` the two are the same.

Each run is an ordinary ``llmhni`` run on a re-split data set (resumable; finished runs are
reused); the preset is ``--config amazon-book``. Writes protocol.json and protocol.md.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from llmhni_ext import cli  # noqa: E402
from llmhni_ext._common import cache_root  # noqa: E402
from llmhni_ext.compare import _mean_std  # noqa: E402
from llmhni_ext.checkpoint import load_checkpoint  # noqa: E402
from llmhni_ext.config import apply_overrides, from_dict, load_with_overrides, parse_set  # noqa: E402
from llmhni_ext.typed import ConfigError  # noqa: E402
from llmhni_ext.evaluate import DEFAULT_KS, full_ranking, interactions_csr, merge_csr  # noqa: E402
from llmhni_ext.pipeline import load_run_dataset, needs_signals, paper_protocol, run_training, signals_for  # noqa: E402
from llmhni_ext.train import Trainer  # noqa: E402

PROTOCOLS = ("valid", "test-select", "train+valid")


def resplit(ds, protocol: str):
    """The data set as ``protocol`` sees it: the split the loop selects the epoch on becomes
    ``valid``; the reported one stays ``test``."""
    if protocol == "valid":
        return ds
    if protocol == "test-select":
        return ds.replace(valid=ds.test)
    if protocol == "train+valid":      # llmhni's data.protocol=paper, under its own name (its own caches)
        return paper_protocol(ds).replace(name=ds.name + "+valid")
    raise ValueError(f"unknown protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}")


def test_under_masks(best_pt: str, view, ds) -> dict:
    """Test Recall/NDCG of a saved model, ranked with train+valid masked and with train only."""
    st = load_checkpoint(best_pt)
    cfg = from_dict(st["config"])
    sig = signals_for(cfg, view, cache_root(), progress=False) if needs_signals(cfg) else None
    tr = Trainer(cfg, view, signals=sig)
    tr.model.load_state_dict(st["model"])
    u, i = tr.representations()
    valid = interactions_csr(ds.valid.users, ds.valid.items, ds.n_users, ds.n_items)
    return {"train+valid masked": full_ranking(u, i, tr.test_csr, merge_csr([tr.train_csr, valid]), DEFAULT_KS),
            "train masked": full_ranking(u, i, tr.test_csr, tr.train_csr, DEFAULT_KS)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--methods", default="bpr,dns")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--protocols", default=",".join(PROTOCOLS))
    ap.add_argument("--out", default="runs/protocol")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--valid-from", metavar="DIR",
                    help="take the `valid` protocol's runs from an `llmhni compare --config amazon-book "
                         "--noise 0` folder (DIR/METHOD-noise0-seedS) instead of training them again")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)            # before the data and the signals stage, as `llmhni` does
    try:
        over = {"train.threads": a.threads, "train.progress": False, **parse_set(a.set)}
    except ConfigError as e:
        ap.error(str(e))
    base = load_with_overrides(cli._resolve_config_path("amazon-book"), over)
    ds = load_run_dataset(base)
    rows = []
    for protocol in a.protocols.split(","):
        view = resplit(ds, protocol)
        for method in a.methods.split(","):
            res = []
            for seed in (int(s) for s in a.seeds.split(",")):
                cfg = apply_overrides(base, {"method.name": method, "train.seed": seed})
                out = os.path.join(a.out, protocol, f"{method}-seed{seed}")
                done = os.path.join(out, "results.json")
                if protocol == "valid" and a.valid_from:
                    done = os.path.join(a.valid_from, f"{method}-noise0-seed{seed}", "results.json")
                if os.path.isfile(done):
                    with open(done, encoding="utf-8") as f:
                        r = json.load(f)
                else:
                    print(f"protocol {protocol}: {method} seed {seed}", flush=True)
                    r = run_training(cfg, out_dir=out, resume="auto", dataset=view,
                                     cache_dir=cache_root())
                res.append((r, test_under_masks(os.path.join(os.path.dirname(done), "best.pt"), view, ds)))
            for mask in ("train+valid masked", "train masked"):
                rec = [m[mask]["recall@20"] for _, m in res]
                ndcg = [m[mask]["ndcg@10"] for _, m in res]
                rows.append({"protocol": protocol, "mask": mask, "method": method, "seeds": len(res),
                             "recall@20": _mean_std(rec)[:2], "ndcg@10": _mean_std(ndcg)[:2],
                             "best_epoch": [r["best_epoch"] for r, _ in res]})
    ref = {r["method"]: r["recall@20"][0] for r in rows
           if r["protocol"] == "valid" and r["mask"] == "train+valid masked"}
    lines = ["| protocol | test ranking | method | seeds | test Recall@20 | test NDCG@10 | vs llmhni's | best epoch |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        rel = (f"{r['recall@20'][0] / ref[r['method']] - 1:+.1%}" if r["method"] in ref else "")
        sd = f" ± {r['recall@20'][1]:.4f}" if r["seeds"] > 1 else ""
        lines.append(f"| {r['protocol']} | {r['mask']} | {r['method']} | {r['seeds']} | {r['recall@20'][0]:.4f}{sd} | "
                     f"{r['ndcg@10'][0]:.4f} | {rel} | {','.join(map(str, r['best_epoch']))} |")
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "protocol.json"), "w", encoding="utf-8") as f:
        json.dump(rows, f, indent=1)
    with open(os.path.join(a.out, "protocol.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
