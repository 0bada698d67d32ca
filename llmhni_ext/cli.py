"""The ``llmhni`` command line.

::

    llmhni train    --dataset ml-100k --backbone lightgcn --method llmhni --noise 0.2 [--config run.yaml]
    llmhni compare  --dataset ml-100k --methods bpr,llmhni --noise 0,0.2 --seeds 0,1,2
    llmhni evaluate --checkpoint runs/.../best.pt
    llmhni signals  ...            (the signals stage on its own)
    llmhni info                    (build, backend and device facts)

Settings come from the defaults, then ``--config FILE`` (YAML with the sections data,
model, train, method, signals; without it the data set's bundled preset when it has one),
then the flags, then ``--set section.key=value``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Dict, List, Optional

from . import config as C
from .methods import METHODS
from .signals.logical import SignalsBudgetExceeded

EXIT_INTERRUPTED = 130
#: the signals stage ran past signals.signals_budget_s (its answers are cached; the same command continues)
EXIT_BUDGET = 3


def _default_cache() -> str:
    from ._common import cache_root
    return cache_root()


# ----------------------------------------------------------------------------- arguments

def _add_run_options(p: argparse.ArgumentParser, multi: bool = False) -> None:
    g = p.add_argument_group("run settings (override --config)")
    g.add_argument("--config", metavar="FILE", help="YAML run file (sections data, model, train, method, signals); "
                   "bundled presets: " + ", ".join(_presets()) + " (a data set's own preset is used by default; "
                   "'defaults' for the built-in defaults)")
    g.add_argument("--dataset", help="ml-100k | ml-1m | lastfm | amazon-book | synthetic | a path the data loader accepts")
    g.add_argument("--data-root", help="folder holding the data sets (default: $LLMHNI_DATA_ROOT or the loader's)")
    g.add_argument("--backbone", choices=C.BACKBONES, help="recommender backbone")
    if not multi:
        g.add_argument("--method", choices=list(METHODS), help="training method (see `llmhni train --help`)")
        g.add_argument("--noise", type=float, help="injected noise ratio r (adds r*|train| random non-interactions)")
        g.add_argument("--seed", type=int, help="random seed of the model, batches, sampler and views")
    g.add_argument("--epochs", type=int, help="maximum epochs (early stopping on validation Recall@20)")
    g.add_argument("--patience", type=int, help="evaluations without improvement before stopping")
    g.add_argument("--batch-size", type=int)
    g.add_argument("--lr", type=float)
    g.add_argument("--dim", type=int, help="embedding size")
    g.add_argument("--layers", type=int, help="propagation layers")
    g.add_argument("--max-users", type=int, help="keep only the first N users (quick runs)")
    g.add_argument("--device", help="cpu | cuda | cuda:N")
    g.add_argument("--threads", type=int, help="torch threads (0: torch's default)")
    g.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                   help="any setting by its dotted name, e.g. --set method.lambda_de=0.2 (repeatable)")
    g.add_argument("--cache-dir", default=None, help="cache for signals and pre-trained backbones "
                   "(default: $LLMHNI_CACHE_DIR or ~/.cache/llmhni)")
    g.add_argument("--no-progress", action="store_true", help="no progress bars or per-epoch lines")


_FLAG_KEYS = {"dataset": "data.dataset", "data_root": "data.data_root", "noise": "data.noise",
              "max_users": "data.max_users", "backbone": "model.backbone", "dim": "model.dim",
              "layers": "model.layers", "method": "method.name", "seed": "train.seed", "epochs": "train.epochs",
              "patience": "train.patience", "batch_size": "train.batch_size", "lr": "train.lr",
              "device": "train.device", "threads": "train.threads"}


def _presets() -> List[str]:
    d = os.path.join(os.path.dirname(__file__), "configs")
    return sorted(f[:-5] for f in os.listdir(d) if f.endswith(".yaml")) if os.path.isdir(d) else []


def _resolve_config_path(path: str) -> str:
    if os.path.isfile(path):
        return path
    bundled = os.path.join(os.path.dirname(__file__), "configs", path if path.endswith(".yaml") else path + ".yaml")
    return bundled if os.path.isfile(bundled) else path


def _preset_for(dataset: str) -> Optional[str]:
    """The bundled preset whose data.dataset is ``dataset`` (ml-100k -> ml100k), if any."""
    for name in _presets():
        try:
            if C.load_yaml(_resolve_config_path(name)).data.dataset == dataset:
                return name
        except C.ConfigError:
            continue
    return None


def resolve_config(args: argparse.Namespace) -> C.RunConfig:
    """Defaults < --config (with its ``backbones:`` block for the backbone the run trains) < flags
    < --set. Without --config, a data set that has a bundled
    preset (ml-100k, ml-1m, lastfm, synthetic) uses it, and says so; ``--config defaults``
    takes the built-in defaults instead."""
    config = getattr(args, "config", None)
    if config is None and hasattr(args, "config"):
        dataset = getattr(args, "dataset", None) or C.RunConfig().data.dataset
        config = _preset_for(dataset)
        if config is not None:
            print(f"llmhni: {dataset} has a bundled preset, using it (--config {config}; "
                  f"--config defaults for the built-in defaults)", file=sys.stderr)
    if config == "defaults":
        config = None
    over: Dict[str, Any] = {}
    for flag, key in _FLAG_KEYS.items():
        v = getattr(args, flag, None)
        if v is not None:
            over[key] = v
    if getattr(args, "no_progress", False):
        over["train.progress"] = False
    over.update(C.parse_set(getattr(args, "set", [])))
    return C.load_with_overrides(_resolve_config_path(config) if config else None, over)


def _apply_threads(cfg: C.RunConfig) -> None:
    """Set torch's thread count before anything heavy runs (signals, pre-training, training)."""
    if cfg.train.threads > 0:
        import torch
        torch.set_num_threads(cfg.train.threads)


def _default_out(cfg: C.RunConfig) -> str:
    ds = os.path.basename(cfg.data.dataset.rstrip("/"))
    return os.path.join("runs", f"{ds}-{cfg.model.backbone}-{cfg.method.name}-noise{cfg.data.noise:g}-seed{cfg.train.seed}")


# ----------------------------------------------------------------------------- commands

def _launch(nproc: int, argv: List[str]) -> int:
    """``llmhni train --nproc N``: the same command as N processes on this machine, via torchrun."""
    import subprocess
    rest, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            rest.append(a)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "llmhni_ext.cli", *rest]
    return subprocess.call(cmd)


def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from .distributed import from_env
    from .pipeline import run_training
    from .train import Interrupted
    if args.nproc > 1 and int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return _launch(args.nproc, args._argv)
    cfg = resolve_config(args)
    _apply_threads(cfg)
    out = args.out or cfg.out or _default_out(cfg)
    cfg.out = out
    dist = from_env(torch.device(cfg.train.device), cfg.train.dist_timeout_s)
    say = print if dist.main else (lambda *a, **k: None)
    say(f"llmhni train: {cfg.method.name} on {cfg.model.backbone}, {cfg.data.dataset}, noise {cfg.data.noise:g}, "
        f"seed {cfg.train.seed} -> {out}" + (f" ({dist.world} processes)" if dist.active else ""), flush=True)
    try:
        res = run_training(cfg, out_dir=out, resume=args.resume, cache_dir=args.cache_dir or _default_cache(),
                           handle_sigint=True, dist=dist, log=_log_info if dist.main else (lambda m: None))
    except Interrupted as e:
        if dist.main:
            print(f"\n{e}. Continue with the same command and --resume.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except RuntimeError as e:
        if dist.active:
            raise RuntimeError(f"rank {dist.rank} of {dist.world}: {e} (another rank stopped or died? the run "
                               f"resumes from its last checkpoint with --resume)") from None
        raise
    if not dist.main:
        return 0
    _print_result(res)
    print(f"results: {os.path.join(out, 'results.json')}")
    return 0


def _log_info(msg: str) -> None:
    from . import _log
    _log.info(msg)


def _print_result(res: Dict[str, Any]) -> None:
    v, t = res.get("valid") or {}, res.get("test") or {}
    print(f"best epoch {res['best_epoch']} (of {res['epochs_run']})  "
          f"valid R@20 {v.get('recall@20', float('nan')):.4f}  "
          f"test R@10 {t.get('recall@10', float('nan')):.4f}  R@20 {t.get('recall@20', float('nan')):.4f}  "
          f"N@10 {t.get('ndcg@10', float('nan')):.4f}  N@20 {t.get('ndcg@20', float('nan')):.4f}")
    q = res.get("denoising") or {}
    if "removed_vs_noise" in q:
        r = q["removed_vs_noise"]
        print(f"G': removed {q['removed']} edges (precision {r['precision']:.3f}, recall {r['recall']:.3f} "
              f"against the noise labels), added {q['added']}")


def _csv(s: str, conv=str) -> List[Any]:
    return [conv(x.strip()) for x in s.split(",") if x.strip()]


def cmd_compare(args: argparse.Namespace) -> int:
    from .compare import markdown_table, plot_curves, plot_noise, run_grid, summarize
    from .train import Interrupted
    base = resolve_config(args)
    _apply_threads(base)
    methods = _csv(args.methods)
    for m in methods:
        if m not in METHODS:
            raise C.ConfigError(f"--methods: unknown method {m!r} (known: {', '.join(METHODS)})")
    noises, seeds = _csv(args.noise_levels, float), _csv(args.seeds, int)
    out = args.out or os.path.join("runs", f"compare-{os.path.basename(base.data.dataset)}-{base.model.backbone}")
    os.makedirs(out, exist_ok=True)
    cache = args.cache_dir or _default_cache()
    try:
        results, curves = run_grid(base, methods, noises, seeds, out, cache, force=args.force)
    except Interrupted as e:
        print(f"\n{e}. Run the same compare command again to continue.", file=sys.stderr)
        return EXIT_INTERRUPTED
    rows = summarize(results)
    table = markdown_table(rows)
    from .checkpoint import write_text
    write_text(table, os.path.join(out, "table.md"))
    write_text(json.dumps(results, indent=1, default=str), os.path.join(out, "results.json"))
    plots = [p for p in (plot_noise(rows, os.path.join(out, "recall20_vs_noise.png")),
                         plot_curves(curves, os.path.join(out, "curves.png"))) if p]
    print()
    print(table)
    print(f"written: {os.path.join(out, 'table.md')}" + (f", {', '.join(plots)}" if plots else
                                                          " (no plots: matplotlib is not installed)"))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .pipeline import evaluate_checkpoint
    out = evaluate_checkpoint(args.checkpoint, args.split, data_root=args.data_root, device=args.device,
                              cache_dir=args.cache_dir)
    print(json.dumps(out, indent=2))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    import platform

    import torch

    from . import __version__, backend_info
    info = backend_info()
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    print(f"llmhni {__version__}  torch {torch.__version__}  python {platform.python_version()}")
    print(f"CUDA available: {torch.cuda.is_available()}"
          + (f" ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else ""))
    for k, v in info.items():
        if v is None or v == "":
            continue                                   # e.g. no reason when the compiled module serves
        if isinstance(v, dict):
            print(f"{k}:")
            for k2, v2 in v.items():
                if k == "ops" and k2 == "build_info":
                    continue                           # a query, not a kernel
                if isinstance(v2, dict):
                    v2 = ", ".join(f"{dev}={how}" for dev, how in v2.items())
                elif isinstance(v2, list):
                    v2 = ", ".join(map(str, v2)) if v2 else "(none)"
                print(f"  {k2:20s} {v2}")
        elif isinstance(v, list):
            print(f"{k}: {', '.join(map(str, v)) if v else '(none)'}")
        else:
            print(f"{k}: {v}")
    return 0


def cmd_identify(args: argparse.Namespace) -> int:
    from .identify import identification_report, markdown, plot_confusion
    from .pipeline import load_run_dataset
    cfg = resolve_config(args)
    _apply_threads(cfg)
    ds = load_run_dataset(cfg)
    cache = args.cache_dir or _default_cache()
    out = args.out or os.path.join("runs", f"identify-{os.path.basename(cfg.data.dataset)}-noise{cfg.data.noise:g}")
    os.makedirs(out, exist_ok=True)
    doc = identification_report(ds, cfg, _csv(args.judges), cache)
    from .checkpoint import write_text
    table = markdown(doc)
    write_text(json.dumps(doc, indent=1, default=str), os.path.join(out, "identify.json"))
    write_text(table, os.path.join(out, "identify.md"))
    print(table)
    if getattr(ds, "truth", None) is not None:
        png = plot_confusion(ds, cfg, cache, os.path.join(out, "hard_vs_noisy.png"))
        print(f"plot: {png}" if png else "(no plot: matplotlib is not installed)")
    print(f"written: {os.path.join(out, 'identify.md')}, {os.path.join(out, 'identify.json')}")
    return 0


def _signals_parser(sub) -> Optional[argparse.ArgumentParser]:
    try:
        from .signals import cli as scli
    except ImportError:
        scli = None
    p = sub.add_parser("signals", help="prepare the language-model signals (semantic embeddings, judged edges)",
                       description="Prepare LLMHNI's signals: text embeddings, the projector, the suspicious pairs "
                                   "proposed by a short LightGCN pre-training, and the judges' verdicts. Cached.")
    if scli is not None:
        scli.add_arguments(p)
    p.set_defaults(func=cmd_signals, _scli=scli)
    return p


def cmd_signals(args: argparse.Namespace) -> int:
    scli = args._scli
    if scli is None:
        print("llmhni signals: the signals stage (llmhni_ext.signals) is not available in this installation",
              file=sys.stderr)
        return 2
    from .pipeline import pretrain_backbone
    cache = getattr(args, "cache_dir", None) or _default_cache()
    seed = getattr(args, "seed", 0) or 0
    rc = scli.main(args, lambda ds: pretrain_backbone(ds, seed=seed, cache_dir=cache,
                                                      progress=not getattr(args, "no_progress", False)))
    return int(rc or 0)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="llmhni", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="LLMHNI: tell hard samples from noisy ones in recommender training with language models.",
        epilog="Settings: defaults (or the data set's bundled preset) < --config FILE < flags < --set key=value;\n"
               "a FILE's backbones: block (e.g. backbones: {ngcf: {method: {lambda_de: 0.01}}}) applies to that backbone.\n"
               "Methods:\n" + "\n".join(f"  {k:18s} {v[0]}" for k, v in METHODS.items()))
    from . import __version__
    p.add_argument("--version", action="version", version=f"llmhni {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    t = sub.add_parser("train", help="train one model with one method",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Train a backbone with a method; early stopping on validation Recall@20, test "
                                   "metrics at the best validation epoch. Ctrl-C saves a checkpoint; the same "
                                   "command with --resume continues exactly where it stopped.\n\nOutputs in --out: "
                                   "config.yaml (resolved settings), metrics.jsonl (one line per epoch), "
                                   "results.json (final metrics, config, versions, backend, device), "
                                   "checkpoint.pt (latest), best.pt (best validation weights).",
                       epilog="Methods:\n" + "\n".join(f"  {k:18s} {v[0]}" for k, v in METHODS.items()))
    _add_run_options(t)
    t.add_argument("--out", help="output folder (default runs/<dataset>-<backbone>-<method>-noise<r>-seed<s>)")
    t.add_argument("--resume", action="store_true", help="continue from --out's checkpoint.pt")
    t.add_argument("--nproc", type=int, default=1, help="train as N processes on this machine (torch.distributed: "
                   "gloo on the CPU, NCCL on GPUs); under torchrun the process group comes from the environment")
    t.set_defaults(func=cmd_train)

    c = sub.add_parser("compare", help="run several methods, noise levels and seeds; Markdown table and plots",
                       description="Runs every (noise, seed, method); finished runs are reused, an interrupted run "
                                   "resumes. Writes table.md (mean ± std over seeds), results.json, "
                                   "recall20_vs_noise.png and curves.png into --out and prints the table.")
    _add_run_options(c, multi=True)
    c.add_argument("--methods", default="bpr,llmhni", help="comma-separated methods (default bpr,llmhni)")
    c.add_argument("--noise", dest="noise_levels", default="0,0.2", help="comma-separated noise ratios (default 0,0.2)")
    c.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    c.add_argument("--out", help="output folder (default runs/compare-<dataset>-<backbone>)")
    c.add_argument("--force", action="store_true", help="re-run runs that already have results")
    c.set_defaults(func=cmd_compare)

    e = sub.add_parser("evaluate", help="full-ranking metrics of a saved checkpoint",
                       description="Loads best.pt or checkpoint.pt with the data set and settings it was trained "
                                   "with and prints Recall/NDCG@{10,20}.")
    e.add_argument("--checkpoint", required=True, help="path to best.pt or checkpoint.pt")
    e.add_argument("--split", nargs="+", default=["valid", "test"], choices=["valid", "test"])
    e.add_argument("--data-root")
    e.add_argument("--device")
    e.add_argument("--cache-dir")
    e.set_defaults(func=cmd_evaluate)

    i = sub.add_parser("info", help="build, backend and device facts",
                       description="Which backend (compiled, JIT or reference) serves each op on each device, "
                                   "and the versions it was built with.")
    i.add_argument("--json", action="store_true", help="machine-readable output")
    i.set_defaults(func=cmd_info)

    d = sub.add_parser("identify", help="how well each rule and judge tells noisy from hard samples",
                       description="On labelled data (the synthetic world, injected noise, ratings <= 2): precision, "
                                   "recall, F1 and AUC of T-CE's loss rule, the backbone's score, each judge's two "
                                   "perspectives and its combined verdict, at telling noisy positives from "
                                   "clean-but-hard ones and false negatives from true negatives. Writes identify.md, "
                                   "identify.json (and hard_vs_noisy.png with ground truth) into --out.")
    _add_run_options(d)
    d.add_argument("--judges", default="embedding", help="comma-separated signals judges (default embedding; "
                   "imported reports what the G' of signals.judge_import changed, also on data without labels; "
                   "local-lm is the bundled language model, oracle the analysis-only labels judge)")
    d.add_argument("--out", help="output folder (default runs/identify-<dataset>-noise<r>)")
    d.set_defaults(func=cmd_identify)

    _signals_parser(sub)
    return p


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):        # replaced or closed streams
        return False


def main(argv: Optional[List[str]] = None) -> int:
    from . import _log
    _log.to_stdout()
    parser = build_parser()
    args = parser.parse_args(argv)
    args._argv = list(sys.argv[1:] if argv is None else argv)
    if getattr(args, "no_progress", False):
        # third-party bars too (transformers' "Loading weights", the GGUF conversion, downloads)
        _log.turn_bars_off()
    elif not _is_terminal(sys.stderr):
        # a log file or a pipe: no carriage-return frames; the stages and epochs still say one
        # line each on standard output (TQDM_DISABLE=0 in the environment brings the bars back)
        _log.turn_bars_off(force=False)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except C.ConfigError as e:
        print(f"llmhni {args.command}: configuration error: {e}", file=sys.stderr)
        return 2
    except SignalsBudgetExceeded as e:
        print(f"llmhni {args.command}: stopped: {e}", file=sys.stderr)
        return EXIT_BUDGET
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        print(f"llmhni {args.command}: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:          # a full or read-only output folder, a vanished file system
        where = f" ({e.filename})" if getattr(e, "filename", None) else ""
        print(f"llmhni {args.command}: cannot read or write{where}: {e.strerror or e}; outputs written "
              f"before are intact (every file is replaced atomically)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
