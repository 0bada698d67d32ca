"""``llmhni signals``: prepare the signals for one data set and print the summary.

The main command line wires this in: ``add_arguments(parser)`` adds the options and
``main(args, backbone_fn)`` runs the stage, ``backbone_fn(dataset) -> (user_emb,
item_emb)`` being the backbone pre-training the caller supplies.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Callable, Optional

import yaml

from .._common import cache_root

from .config import ENCODERS, JUDGES, SignalsConfig


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--dataset", default="ml-100k", help="ml-100k | ml-1m | lastfm | synthetic | a path (default ml-100k)")
    g.add_argument("--data-root", default=None, help="data folder (default: $LLMHNI_DATA_ROOT or the loader's)")
    g.add_argument("--noise", default="none", help="none | natural | an injected ratio such as 0.2 (default none)")
    g.add_argument("--seed", type=int, default=0, help="seed of the data set, the projector and the user sample (default 0)")
    s = p.add_argument_group("signals")
    s.add_argument("--config", metavar="FILE", help="YAML with the signals options (top level or under 'signals:')")
    s.add_argument("--encoder", choices=ENCODERS, help="text encoder (default minilm: bundled all-MiniLM-L6-v2)")
    s.add_argument("--judge", choices=JUDGES, help="judge (default local-lm: bundled Gemma-3-270M by likelihood; "
                                                   "'embedding' is a fast proxy; 'oracle' answers from the labels, for analysis only)")
    s.add_argument("--judge-url", help="OpenAI-compatible base URL for --judge openai-chat, e.g. http://127.0.0.1:8000/v1")
    s.add_argument("--judge-model", help="chat model name, or a local transformers path / .gguf file")
    s.add_argument("--no-align", action="store_true", help="without objective alignment (raw text similarity)")
    s.add_argument("--cand-pos", type=int, help="at least this many lowest-scored training positives judged per user "
                   "(beside the share --set cand_pos_frac=...)")
    s.add_argument("--cand-neg", type=int, help="at least this many highest-scored non-interactions judged per user "
                   "(beside the share --set cand_neg_frac=...)")
    s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any SignalsConfig option, e.g. --set lm_batch=64 (repeatable)")
    o = p.add_argument_group("run")
    o.add_argument("--device", help="auto | cpu | cuda | cuda:N (default auto)")
    o.add_argument("--cache-dir", default=None, help="cache folder (default $LLMHNI_CACHE_DIR or ~/.cache/llmhni)")
    o.add_argument("--out", help="also save the signals here (.pt)")
    o.add_argument("--json", action="store_true", help="print the summary as JSON")
    o.add_argument("--no-progress", action="store_true", help="no progress bars")


def config_from_args(args: argparse.Namespace) -> SignalsConfig:
    d = {}
    if getattr(args, "config", None):
        d.update(SignalsConfig.from_yaml(args.config).to_dict())
    for flag, key in (("encoder", "encoder"), ("judge", "judge"), ("judge_url", "judge_url"),
                      ("judge_model", "judge_model"), ("cand_pos", "cand_pos_per_user"),
                      ("cand_neg", "cand_neg_per_user"), ("device", "device")):
        v = getattr(args, flag, None)
        if v is not None:
            d[key] = v
    if getattr(args, "no_align", False):
        d["align"] = False
    if getattr(args, "no_progress", False):
        d["progress"] = False
    if getattr(args, "seed", None) is not None:
        d["seed"] = args.seed
    for kv in getattr(args, "set", []) or []:
        if "=" not in kv:
            raise ValueError(f"--set expects KEY=VALUE, got {kv!r}")
        k, v = kv.split("=", 1)
        d[k.strip()] = yaml.safe_load(v)
    return SignalsConfig.from_dict(d)


def _noise(v):
    if v is None:
        return "none"
    try:
        return float(v)
    except (TypeError, ValueError):
        return str(v)


def main(args: argparse.Namespace, backbone_fn: Optional[Callable] = None) -> int:
    from ..data import load_dataset
    from .stage import prepare_signals
    try:
        cfg = config_from_args(args)
    except (ValueError, OSError) as e:
        print(f"llmhni signals: {e}", file=sys.stderr)
        return 2
    cache = args.cache_dir or cache_root()
    ds = load_dataset(args.dataset, args.data_root, noise=_noise(args.noise), seed=args.seed)
    print(ds.summary(), flush=True)
    try:
        sig = prepare_signals(ds, cfg, backbone_embeddings=backbone_fn, cache_dir=cache)
    except KeyboardInterrupt:
        print("\nllmhni signals: interrupted; finished embeddings and judgments are cached, run again to resume",
              file=sys.stderr)
        return 130
    if args.out:
        sig.save(args.out)
    if args.json:
        print(json.dumps(sig.summary, indent=1, default=str))
    else:
        print(sig.format_summary())
    return 0
