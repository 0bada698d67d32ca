"""Comparison tables (Markdown, mean ± std over seeds) and plots (PNG, matplotlib)."""
from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from .config import PAPER_PROTOCOL_NOTE

METRICS = ("recall@20", "ndcg@20", "recall@10", "ndcg@10")


def _mean_std(xs: Sequence[float]) -> Tuple[float, float, int]:
    """(mean, sample std, count); the std of a single value is 0 and is not printed."""
    n = len(xs)
    if n == 0:
        return math.nan, math.nan, 0
    m = sum(xs) / n
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (n - 1)) if n > 1 else 0.0
    return m, sd, n


def method_label(r: Dict[str, Any]) -> str:
    """The method's name, marked with the judge when its signals came from the analysis-only
    oracle (so that no table passes an oracle result off as a language-model one), with an
    imported G' (its file), with a training graph imported by ``data.graph``, and with the
    paper's test-selected protocol (so that no optimistic row passes for a validated one)."""
    lg = ((r.get("signals") or {}).get("logical") or {})
    label = f"{r['method']} [{lg.get('judge')}, analysis only]" if lg.get("analysis_only") else r["method"]
    if lg.get("judge") == "imported":
        label += f" [G' imported: {os.path.basename(str(lg.get('source')))}]"
    gi = r.get("graph_import") or {}
    if gi:
        label += f" [trained on imported G': {os.path.basename(str(gi.get('source')))}]"
    if r.get("protocol") == "paper":
        label += f" [paper protocol: {r.get('protocol_note', PAPER_PROTOCOL_NOTE)}]"
    return label


def summarize(results: Iterable[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """One row per (dataset, backbone, noise, method): mean and std of the test metrics,
    of the best epoch and of the epoch time over the seeds present."""
    groups: Dict[Tuple, List[Dict[str, Any]]] = defaultdict(list)
    order: List[Tuple] = []
    for r in results:
        key = (r["dataset"], r["backbone"], r["noise"], method_label(r))
        if key not in groups:
            order.append(key)
        groups[key].append(r)
    rows = []
    for key in order:
        rs = groups[key]
        row: Dict[str, Any] = dict(zip(("dataset", "backbone", "noise", "method"), key))
        row["seeds"] = sorted(r["seed"] for r in rs)
        for m in METRICS:
            row[m] = _mean_std([r["test"][m] for r in rs if r.get("test")])
        row["best_epoch"] = _mean_std([r["best_epoch"] for r in rs])
        row["epoch_s"] = _mean_std([r["mean_epoch_seconds"] for r in rs if r.get("mean_epoch_seconds") is not None])
        rows.append(row)
    return rows


def reusable_result(done: str, cfg) -> Optional[Dict[str, Any]]:
    """A finished run's results when they were produced by the same training-relevant
    configuration; a run made with other settings is moved aside (``<dir>.stale-N``) so
    that it is redone instead of silently reused."""
    from .config import trajectory_settings
    if not os.path.isfile(done):
        return None
    with open(done, encoding="utf-8") as f:
        res = json.load(f)
    theirs = res.get("config")
    mine = trajectory_settings(cfg.to_dict())
    if isinstance(theirs, dict) and trajectory_settings(theirs) == mine:
        if not res.get("stopped_early") and int(res.get("epochs_run", cfg.train.epochs)) < cfg.train.epochs:
            print(f"[compare] {os.path.dirname(done)} ran {res.get('epochs_run')} of the "
                  f"{cfg.train.epochs} epochs now asked for; resuming it", flush=True)
            return None          # same settings, more epochs: the checkpoint continues
        return res
    run_dir = os.path.dirname(done)
    n = 1
    while os.path.exists(f"{run_dir}.stale-{n}"):
        n += 1
    os.replace(run_dir, f"{run_dir}.stale-{n}")
    diff = sorted(k for k in mine if not isinstance(theirs, dict) or trajectory_settings(theirs).get(k) != mine[k])
    print(f"[compare] {run_dir} was made with other settings ({', '.join(diff[:4]) or 'no config'}); "
          f"moved to {run_dir}.stale-{n} and run again", flush=True)
    return None



def run_grid(base, methods: Sequence[str], noises: Sequence[float], seeds: Sequence[int], out: str,
             cache: Optional[str], force: bool = False) -> Tuple[List[Dict[str, Any]], Dict[str, str]]:
    """Every (noise, seed, method) run of ``llmhni compare`` into ``out/<method>-noise<r>-seed<s>``:
    finished runs with the same trajectory settings are reused, interrupted ones resume; the
    signals are prepared once per noise level (what a method needs: "all" serves "texts" too).
    Returns the results documents and, per (method, noise), the run folder of the first seed.
    Ctrl-C raises :class:`llmhni_ext.train.Interrupted` after the checkpoint is saved."""
    from . import config as C
    from .methods import REGISTRY
    from .pipeline import load_run_dataset, run_training, signals_for
    results: List[Dict[str, Any]] = []
    curves: Dict[str, str] = {}
    for m in methods:        # every run's settings are checked before the first one trains
        C.apply_overrides(base, {"method.name": m})
    for noise in noises:
        dcfg = C.apply_overrides(base, {"data.noise": noise})
        ds = load_run_dataset(dcfg)
        signals: Dict[str, Any] = {}   # by what the methods need: "all" serves "texts" too
        for seed in seeds:
            for m in methods:
                cfg = C.apply_overrides(dcfg, {"method.name": m, "train.seed": seed})
                run_dir = os.path.join(out, f"{m}-noise{noise:g}-seed{seed}")
                cfg.out = run_dir
                done = os.path.join(run_dir, "results.json")
                res = reusable_result(done, cfg) if not force else None
                if res is not None:
                    print(f"[compare] {m} noise {noise:g} seed {seed}: already done ({done})", flush=True)
                else:
                    need = REGISTRY[m].needs_signals
                    sig = signals.get("all") or signals.get(need) if need else None
                    if need and sig is None:
                        print(f"[compare] signals for {ds.name}, noise {noise:g}", flush=True)
                        sig = signals[need] = signals_for(cfg, ds, cache, progress=cfg.train.progress)
                    print(f"[compare] {m} noise {noise:g} seed {seed}", flush=True)
                    res = run_training(cfg, out_dir=run_dir, resume="auto", cache_dir=cache, dataset=ds,
                                       signals=sig, handle_sigint=True)
                results.append(res)
                if seed == seeds[0]:
                    curves[f"{m} noise {noise:g}"] = run_dir
    return results, curves


def _fmt(ms: Tuple[float, ...], digits: int = 4) -> str:
    """mean ± std over seeds; the mean alone for one seed (a std of one value is not 0)."""
    m, s = ms[0], ms[1]
    if math.isnan(m):
        return "n/a"
    if len(ms) > 2 and ms[2] < 2:
        return f"{m:.{digits}f}"
    return f"{m:.{digits}f} ± {s:.{digits}f}"


def markdown_table(rows: List[Dict[str, Any]]) -> str:
    """A Markdown table of :func:`summarize` rows; the best mean per (dataset, noise) in bold."""
    best: Dict[Tuple, Dict[str, float]] = defaultdict(dict)
    for r in rows:
        k = (r["dataset"], r["backbone"], r["noise"])
        for m in METRICS:
            if not math.isnan(r[m][0]):
                best[k][m] = max(best[k].get(m, -1.0), r[m][0])
    head = "| data | backbone | noise | method | seeds | " + " | ".join(f"test {m}" for m in METRICS) + \
        " | best epoch | s/epoch |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        k = (r["dataset"], r["backbone"], r["noise"])
        cells = []
        for m in METRICS:
            c = _fmt(r[m])
            if not math.isnan(r[m][0]) and r[m][0] == best[k].get(m):
                c = f"**{c}**"
            cells.append(c)
        lines.append(f"| {r['dataset']} | {r['backbone']} | {r['noise']:g} | {r['method']} | {len(r['seeds'])} | "
                     + " | ".join(cells) + f" | {_fmt(r['best_epoch'], 1)} | {_fmt(r['epoch_s'], 2)} |")
    return "\n".join(lines) + "\n"


def plot_noise(rows: List[Dict[str, Any]], path: str, metric: str = "recall@20") -> Optional[str]:
    """Test ``metric`` against the noise ratio, one line per method (error bars: std)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(5.5, 4))
    by_method: Dict[str, List[Tuple[float, float, float]]] = defaultdict(list)
    for r in rows:
        by_method[f"{r['method']} ({r['backbone']})"].append((r["noise"], *r[metric][:2]))
    for name, pts in by_method.items():
        pts.sort()
        ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=[p[2] for p in pts], marker="o",
                    capsize=3, label=name)
    ax.set_xlabel("injected noise ratio")
    ax.set_ylabel(f"test {metric}")
    ax.set_title(f"test {metric} vs noise ({rows[0]['dataset'] if rows else ''})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save_figure(fig, path)
    plt.close(fig)
    return path


def _save_figure(fig, path: str) -> None:
    """PNG written atomically (a killed run never leaves half a picture)."""
    import io
    from .checkpoint import write_bytes
    buf = io.BytesIO()
    fig.savefig(buf, dpi=120, format="png")
    write_bytes(buf.getvalue(), path)


def plot_curves(run_dirs: Dict[str, str], path: str, key: str = "valid_recall@20") -> Optional[str]:
    """Training curves: per run, ``key`` (validation Recall@20) and the training loss per epoch."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    for label, d in run_dirs.items():
        p = os.path.join(d, "metrics.jsonl")
        if not os.path.isfile(p):
            continue
        with open(p, encoding="utf-8") as f:
            hist = [json.loads(line) for line in f if line.strip()]
        ev = [h for h in hist if key in h]
        a1.plot([h["epoch"] for h in ev], [h[key] for h in ev], label=label)
        a2.plot([h["epoch"] for h in hist], [h["loss"] for h in hist], label=label)
    a1.set_xlabel("epoch")
    a1.set_ylabel(key)
    a2.set_xlabel("epoch")
    a2.set_ylabel("training loss")
    from matplotlib.ticker import MaxNLocator
    for a in (a1, a2):
        a.grid(alpha=0.3)
        a.xaxis.set_major_locator(MaxNLocator(integer=True))     # epochs are whole numbers
    a1.legend(fontsize=7)
    fig.tight_layout()
    _save_figure(fig, path)
    plt.close(fig)
    return path
