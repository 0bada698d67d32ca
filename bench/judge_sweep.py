"""What a judge of a given quality is worth: LLMHNI with the analysis-only oracle judge at
accuracies 0.5 .. 1.0 against llmhni-wo-denoise and DNS (which no judge affects), 3 seeds,
and the gain in test Recall@20 plotted against the judge's accuracy, with the bundled judge's
measured accuracy (from `llmhni identify`) marked.

    PYTHONPATH=. python bench/judge_sweep.py ml100k [--seeds 0,1,2] [--accuracies 0.5,0.6,0.7,0.8,0.9,1.0]
        [--bundled runs/identify-ml-100k-noise0.2/identify.json] [--out runs/judge-sweep]
    PYTHONPATH=. python bench/judge_sweep.py synthetic ...
    PYTHONPATH=. python bench/judge_sweep.py ml100k --coverages 0.35,0.5,0.6,0.7,0.8,1.0 [--coverage-accuracy 0.8]

With ``--coverages``, the sweep is over ``signals.cand_pos_frac`` (the share of each user's
positives that is judged) at one oracle accuracy instead: coverage.md / coverage.json.

Every run is an `llmhni compare` run (finished runs are reused); extra `--set key=value`
arguments go to every run. Writes sweep.json, sweep.md and gain_vs_accuracy.png.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from llmhni_ext import cli  # noqa: E402
from llmhni_ext.compare import _mean_std  # noqa: E402

SUITES = {"ml100k": ["--dataset", "ml-100k", "--noise", "0.2"],
          "synthetic": ["--dataset", "synthetic", "--noise", "0"]}


def _runs(out: str, methods: str, seeds: str, suite: str, extra):
    args = ["compare", *SUITES[suite], "--methods", methods, "--seeds", seeds, "--out", out, "--no-progress", *extra]
    if cli.main(args) != 0:
        raise SystemExit(f"compare failed: {' '.join(args)}")
    with open(os.path.join(out, "results.json"), encoding="utf-8") as f:
        return json.load(f)


def bundled_accuracy(path: str):
    """The accuracy of the first language-model judge's combined verdict on the labelled positives."""
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    for r in doc["tables"]["noisy positives vs clean-but-hard positives"]:
        if r["rule"].startswith("(d)") and "oracle" not in r["rule"] and "proxy" not in r["rule"]:
            return r["rule"][4:].split(",")[0], r["accuracy"]
    return None, None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("suite", choices=sorted(SUITES))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--accuracies", default="0.5,0.6,0.7,0.8,0.9,1.0")
    ap.add_argument("--bundled", help="identify.json of the bundled judge (its accuracy is marked)")
    ap.add_argument("--out", default="runs/judge-sweep")
    ap.add_argument("--threads", default="1")
    ap.add_argument("--coverages", help="comma-separated signals.cand_pos_frac values: sweep coverage instead")
    ap.add_argument("--coverage-accuracy", type=float, default=0.8, help="the oracle's accuracy in the coverage sweep")
    a, extra = ap.parse_known_args(argv)
    extra = ["--threads", a.threads, *extra]
    root = os.path.join(a.out, a.suite)
    base = _runs(os.path.join(root, "base"), "dns,llmhni-wo-denoise", a.seeds, a.suite, extra)
    r20 = lambda rs, m: _mean_std([r["test"]["recall@20"] for r in rs if r["method"] == m])  # noqa: E731
    if a.coverages:
        return coverage_sweep(a, root, extra, r20(base, "llmhni-wo-denoise"), base)
    doc = {"suite": a.suite, "seeds": a.seeds, "dns": r20(base, "dns"), "wo_denoise": r20(base, "llmhni-wo-denoise"),
           "oracle": {}}
    paired = {}
    for acc in [float(x) for x in a.accuracies.split(",")]:
        rs = _runs(os.path.join(root, f"acc{acc:g}"), "llmhni", a.seeds, a.suite,
                   [*extra, "--set", "signals.judge=oracle", "--set", f"signals.oracle_accuracy={acc}"])
        doc["oracle"][f"{acc:g}"] = r20(rs, "llmhni")
        paired[f"{acc:g}"] = _paired(rs, base)
    doc["paired_gain"] = paired
    name, bacc = bundled_accuracy(a.bundled) if a.bundled else (None, None)
    doc["bundled"] = {"judge": name, "accuracy": bacc}
    lines = [f"Judge-quality sweep on {a.suite} (seeds {a.seeds}; test Recall@20, mean ± std; oracle = analysis only)",
             "", "| judge accuracy | llmhni | gain over llmhni-wo-denoise | gain / std | paired gain |",
             "|---|---|---|---|---|"]
    wo = doc["wo_denoise"]
    for acc, (m, s, n) in doc["oracle"].items():
        pm, ps, _ = paired[acc]
        lines.append(f"| {acc} | {m:.4f} ± {s:.4f} | {_gain(m, s, wo)} | {pm:+.4f} ± {ps:.4f} |")
    lines += ["", f"llmhni-wo-denoise {wo[0]:.4f} ± {wo[1]:.4f}; dns {doc['dns'][0]:.4f} ± {doc['dns'][1]:.4f}"]
    if bacc is not None:
        lines.append(f"bundled judge {name}: accuracy {bacc:.3f} on the labelled candidate positives")
    _write(root, "sweep", doc, lines)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return 0
    xs = [float(k) for k in doc["oracle"]]
    ys = [v[0] - wo[0] for v in doc["oracle"].values()]
    es = [math.sqrt(v[1] ** 2 + wo[1] ** 2) for v in doc["oracle"].values()]
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label="llmhni (oracle judge) - llmhni-wo-denoise")
    ax.axhline(0, color="grey", lw=0.8)
    ax.axhline(doc["dns"][0] - wo[0], color="tab:red", ls="--", lw=1, label="dns - llmhni-wo-denoise")
    if bacc is not None:
        ax.axvline(bacc, color="tab:green", ls=":", label=f"bundled judge ({bacc:.2f})")
    ax.set_xlabel("judge accuracy on the candidate positives")
    ax.set_ylabel("test Recall@20 gain")
    ax.set_title(f"{a.suite}: what a better judge buys")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(root, "gain_vs_accuracy.png"), dpi=110)
    print(f"written: {os.path.join(root, 'sweep.md')}, {os.path.join(root, 'gain_vs_accuracy.png')}")
    return 0


def coverage_sweep(a, root: str, extra, wo, base) -> int:
    """LLMHNI with the oracle at one accuracy, for each judged share of the positives; the gain
    over llmhni-wo-denoise as mean ± std (root-sum-square of the two stds) and paired by seed."""
    acc = a.coverage_accuracy
    lines = [f"Coverage sweep on {a.suite} (oracle accuracy {acc:g}, analysis only; seeds {a.seeds}; test Recall@20)",
             "", "| cand_pos_frac | llmhni | gain over llmhni-wo-denoise | gain / std | paired gain |",
             "|---|---|---|---|---|"]
    doc = {"suite": a.suite, "seeds": a.seeds, "accuracy": acc, "wo_denoise": wo, "coverage": {}}
    for frac in [float(x) for x in a.coverages.split(",")]:
        rs = _runs(os.path.join(root, f"acc{acc:g}-cov{frac:g}"), "llmhni", a.seeds, a.suite,
                   [*extra, "--set", "signals.judge=oracle", "--set", f"signals.oracle_accuracy={acc}",
                    "--set", f"signals.cand_pos_frac={frac}"])
        m, s, n = _mean_std([r["test"]["recall@20"] for r in rs])
        pm, ps, k = _paired(rs, base)
        doc["coverage"][f"{frac:g}"] = {"llmhni": [m, s, n], "paired_gain": [pm, ps, k]}
        lines.append(f"| {frac:g} | {m:.4f} ± {s:.4f} | {_gain(m, s, wo)} | {pm:+.4f} ± {ps:.4f} |")
    lines += ["", f"llmhni-wo-denoise {wo[0]:.4f} ± {wo[1]:.4f}"]
    _write(root, "coverage", doc, lines)
    return 0


def _paired(rs, base):
    """(mean, std, count) of the per-seed differences llmhni - llmhni-wo-denoise."""
    by_seed = {r["seed"]: r["test"]["recall@20"] for r in base if r["method"] == "llmhni-wo-denoise"}
    return _mean_std([r["test"]["recall@20"] - by_seed[r["seed"]] for r in rs if r["seed"] in by_seed])


def _gain(m: float, s: float, wo) -> str:
    """``| gain | gain / std |`` cells: the gain over llmhni-wo-denoise and its ratio to the
    root-sum-square of the two standard deviations."""
    sd = math.sqrt(s ** 2 + wo[1] ** 2)
    return f"{m - wo[0]:+.4f} | {(m - wo[0]) / sd if sd else float('nan'):+.1f}"


def _write(root: str, stem: str, doc, lines) -> None:
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, f"{stem}.json"), "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1)
    with open(os.path.join(root, f"{stem}.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
