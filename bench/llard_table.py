"""The table of runs with LLaRD's data: a real LLM's (Qwen) G' of the paper's Amazon-book and
Yelp, under the validated protocol and the paper's (test-selected) one.

    PYTHONPATH=. python bench/llard_table.py [--runs runs/ab27] [--out runs/ab27/table.md]

Each row is an ordinary run folder ``<runs>/<protocol>/<row>-s<seed>/results.json`` written by
``llmhni train --config amazon-book --threads 1 --seed S --set data.protocol=P --out ...``:

* ``--dataset llard-amazon-book`` (RLMRec's split, checked pair by pair) or ``--dataset llard-yelp``;
* ``<method>``: ``--method M`` on the data set's own graph;
* ``<method>-qwen``: ``--method M --set data.graph=imported --set signals.judge_import=llard``
  (a plain method trained on Qwen's G'); for llmhni: ``--set signals.judge=imported`` instead
  (G' from Qwen's judgments, the rest of LLMHNI unchanged);
* ``llmhni-qwen-removeonly`` / ``-addonly``: ``signals.judge_import`` set to a ``- user item`` /
  ``+ user item`` file holding only Qwen's removals / additions;
* ``llmhni-qwen-aux``: Qwen's G' in L_de and L_hal only (``method.predict_graph=original``,
  ``method.train_edges=original``).

Rows under ``paper`` are test-selected and optimistic: for comparison with published numbers only.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import re
import sys
from collections import defaultdict

import numpy as np

#: the LLMHNI paper's Amazon-book numbers (LightGCN backbone): Recall@20, NDCG@10
PAPER = {"llmhni": (0.2040, 0.1168), "llmhni-qwen": (0.2040, 0.1168), "llard": (0.2028, 0.1126),
         "llmhni-wo-denoise": (0.1772, None)}


def rows(root: str):
    groups = defaultdict(list)
    for f in sorted(glob.glob(os.path.join(root, "*", "*", "results.json"))):
        protocol, run = f.split(os.sep)[-3], f.split(os.sep)[-2]
        m = re.match(r"(.+)-s(\d+)$", run)
        if not m:
            continue
        with open(f, encoding="utf-8") as fh:
            r = json.load(fh)
        groups[(protocol, m.group(1))].append(r)
    return groups


def fmt(xs):
    if len(xs) == 1:
        return f"{xs[0]:.4f}"
    return f"{np.mean(xs):.4f} ± {np.std(xs, ddof=1):.4f}"


def table(groups) -> str:
    out = ["| data | protocol | row | seeds | Recall@20 | NDCG@10 | NDCG@20 | best epoch | paper R@20 / N@10 |",
           "|---|---|---|---|---|---|---|---|---|"]
    order = sorted(groups, key=lambda k: (k[1].startswith("yelp"), k[0] != "validated", k[1]))
    for protocol, name in order:
        rs = groups[(protocol, name)]
        data = "Yelp" if name.startswith("yelp") else "Amazon-book"
        row = name[len("yelp-"):] if name.startswith("yelp") else name
        paper = PAPER.get(row) if data == "Amazon-book" else None
        p = "" if paper is None else f"{paper[0]:.4f} / {'–' if paper[1] is None else f'{paper[1]:.4f}'}"
        label = protocol if protocol == "validated" else "paper (test-selected, optimistic)"
        out.append(f"| {data} | {label} | {row} | {len(rs)} | {fmt([r['test']['recall@20'] for r in rs])} | "
                   f"{fmt([r['test']['ndcg@10'] for r in rs])} | {fmt([r['test']['ndcg@20'] for r in rs])} | "
                   f"{','.join(str(r['best_epoch']) for r in rs)} | {p} |")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", default="runs/ab27")
    ap.add_argument("--out", default=None, help="also write the table here")
    a = ap.parse_args(argv)
    groups = rows(a.runs)
    if not groups:
        print(f"no finished runs under {a.runs}", file=sys.stderr)
        return 1
    t = table(groups)
    print(t)
    if a.out:
        with open(a.out, "w", encoding="utf-8") as f:
            f.write(t)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
