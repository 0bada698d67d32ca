"""Run configuration: typed dataclasses, loaded from YAML, overridden from the command line.

A run is described by one :class:`RunConfig` with five sections::

    data:    which data set, where it lives, how much noise to inject
    model:   backbone (mf | lightgcn | ngcf), embedding size, layers
    train:   optimiser, batches, epochs, early stopping, evaluation, seed, device
    method:  the training objective (a name of llmhni_ext.methods.REGISTRY) and the
             hyperparameters of every method (each method reads its own)
    signals: options passed through to the signals stage (llmhni_ext.signals.SignalsConfig)

Validation also applies the settings a method's name implies (the ablation switches), so
that every later reader sees one resolved configuration.

Unknown keys and values of the wrong type or out of range raise :class:`ConfigError`
naming the offending key, e.g. ``train.lr: must be > 0, got -1.0``.
"""
from __future__ import annotations

import dataclasses
import difflib
import os
from dataclasses import dataclass, field, fields
from typing import Any, Dict, List, Optional, get_type_hints

import yaml

from . import methods as _methods
from .batching import BATCHINGS
from .typed import ConfigError, coerce
from .checkpoint import write_text


@dataclass
class DataConfig:
    dataset: str = "ml-100k"          # ml-100k | ml-1m | lastfm | synthetic | a path the data loader accepts
    data_root: Optional[str] = None   # default: $LLMHNI_DATA_ROOT or the loader's default
    noise: float = 0.0                # injected noise ratio r: r * |train| random non-interactions added
    noise_seed: int = 0
    max_users: int = 0                # >0: keep only the first max_users users (quick runs, tests)
    # validated: train on train, choose the epoch on valid, report test (the default, llmhni's);
    # paper: train on train + valid, choose the epoch on TEST, report test: the protocol behind
    # published Amazon-book numbers (LLaRD's code); test-selected and optimistic, for comparison only
    protocol: str = "validated"
    # original: train on the data set's graph; imported: on the G' that signals.judge_import names
    # (any method: "does the LLM's graph help a plain method?")
    graph: str = "original"


@dataclass
class ModelConfig:
    backbone: str = "lightgcn"        # mf | lightgcn | ngcf
    dim: int = 64
    layers: int = 3
    ngcf_dropout: float = 0.1         # NGCF message dropout


@dataclass
class TrainConfig:
    epochs: int = 100
    batch_size: int = 2048
    lr: float = 1e-3
    l2: float = 1e-4                  # L2 on the batch's layer-0 (ego) embeddings, as in LightGCN
    eval_every: int = 1
    patience: int = 10                # evaluations without a better validation Recall@20
    eval_batch_size: int = 1024       # users per evaluation batch (results do not depend on it)
    eval_item_block: int = 8192       # items per top-k block (bounds evaluation memory)
    seed: int = 0
    device: str = "cpu"               # cpu | cuda | cuda:N
    threads: int = 0                  # torch.set_num_threads; 0 leaves torch's default
    progress: bool = True
    # how an epoch's batches are built: "interactions" shuffles the training interactions (each
    # once per epoch); "users" draws users uniformly, then one positive each (LightGCN's authors)
    batching: str = "interactions"
    dist_timeout_s: float = 300.0     # torch.distributed: how long a collective waits for a rank that died


@dataclass
class MethodConfig:
    name: str = "llmhni"
    # negative sampling
    num_negatives: int = 1
    # M=8, K=2 had the best validation Recall@20 of a sweep over M in {1..32}, K in {1..8} on
    # ML-100K at 20% noise (bench/RESULTS.md); harder settings (M=32) overfit the noisy positives
    num_candidates: int = 8           # M candidates per pair (dns, llmhni)
    top_k: int = 2                    # llmhni: keep the K best-scored candidates ...
    sim_threshold: float = 0.9        # ... and never pick one more similar than this (probable false negative)
    # LLMHNI objective: L = L_rec + lambda_de * L_de + lambda_hal * L_hal
    lambda_de: float = 0.003          # 0.1 stalls BPR at ln 2 on ML-100K (validation sweep, bench/RESULTS.md)
    lambda_hal: float = 0.003
    tau_de: float = 0.2
    tau_hal: float = 0.2
    keep_prob: float = 0.8            # edge keep rate of the L_hal views (and SGL's)
    # cost of LLMHNI's auxiliary terms (the objective is unchanged in expectation):
    # (bench/epoch_time.py: with 4 / 512 an ML-1M epoch costs <= 2x plain LightGCN's; 1 / 0 = every
    # step over all of the batch's nodes, 4-6x; the two were equal or better on ML-100K validation)
    aux_every: int = 4                # compute L_de and L_hal on every n-th step, weighted n x lambda
    aux_max_nodes: int = 512          # contrast at most this many of the batch's users (and items); 0 = all
    predict_graph: str = "denoised"   # the graph L_rec and the prediction propagate on: denoised (G') | original (G)
    train_edges: str = "denoised"     # the positives L_rec trains on: denoised (G' edges) | original (G edges)
    hard_per_item: int = 0            # at most this many of G''s added (hard) edges per item; 0 = all (the paper)
    semantic_sampling: bool = True    # False: "w/o semantic sampling" (score-only hard negatives)
    objective_alignment: bool = True  # False: "w/o objective alignment" (raw text similarity)
    interaction_denoising: bool = True  # False: "w/o interaction denoising" (no G', no L_de)
    hallucination_robust: bool = True  # False: "w/o hallucination-robust learning" (no L_hal)
    # T-CE / R-CE (Wang et al., "Denoising implicit feedback for recommendation")
    tce_max_drop: float = 0.1         # 0.1 > 0.2 on ML-100K validation Recall@20 (20% noise)
    tce_warmup_epochs: int = 10
    rce_beta: float = 0.25
    # SimGCL
    ssl_lambda: float = 0.01          # 0.1 holds BPR near ln 2 on ML-100K; 0.01 > 0.003 > 0.1 on validation
    ssl_tau: float = 0.2
    simgcl_eps: float = 0.1
    # SGL-ED: contrast weight, temperature and the views' edge keep rate (1 - rho). SGL read
    # ssl_lambda / ssl_tau / keep_prob until it had its own; a stored or YAML config that names
    # sgl without these keys is read with those values (see migrate)
    sgl_lambda: float = 0.01
    sgl_tau: float = 0.2
    sgl_keep_prob: float = 0.8
    # WBPR: negatives drawn with p(j) ~ degree(j)^alpha (Gantner et al.: alpha = 1)
    wbpr_alpha: float = 1.0
    # XSimGCL (SELFRec's defaults): weight, temperature, noise, and the layer contrasted with the output
    xsimgcl_lambda: float = 0.2
    xsimgcl_tau: float = 0.15
    xsimgcl_eps: float = 0.2
    xsimgcl_layer: int = 1
    # RLMRec (the authors' Amazon-book settings)
    rlmrec_con_lambda: float = 0.01
    rlmrec_con_tau: float = 0.2
    rlmrec_gen_lambda: float = 0.1
    rlmrec_gen_tau: float = 0.5
    rlmrec_mask_ratio: float = 0.15
    # BOD (the authors' defaults): generator learning rate, loss weights, outer-level batch size
    bod_lr: float = 0.001
    bod_alpha_bpr: float = 1.0
    bod_alpha_align: float = 1.0
    bod_alpha_unif: float = 0.5
    bod_outer_batch: int = 2048


@dataclass
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    signals: Dict[str, Any] = field(default_factory=dict)
    out: Optional[str] = None

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self) -> "RunConfig":
        _validate(self)
        return self


BACKBONES = ("mf", "lightgcn", "ngcf")
PROTOCOLS = ("validated", "paper")
#: what every result made under data.protocol=paper says of itself
PAPER_PROTOCOL_NOTE = "test-selected, optimistic: for comparison with published numbers only"


def _check(cond: bool, key: str, msg: str, value: Any) -> None:
    if not cond:
        raise ConfigError(f"{key}: {msg}, got {value!r}")


def _validate(cfg: RunConfig) -> None:
    d, m, t, me = cfg.data, cfg.model, cfg.train, cfg.method
    _check(0.0 <= d.noise < 10.0, "data.noise", "must be in [0, 10)", d.noise)
    _check(d.max_users >= 0, "data.max_users", "must be >= 0", d.max_users)
    _check(d.protocol in PROTOCOLS, "data.protocol", f"must be one of {', '.join(PROTOCOLS)}", d.protocol)
    _check(d.graph in ("original", "imported"), "data.graph", "must be original or imported", d.graph)
    _check(d.graph != "imported" or bool((cfg.signals or {}).get("judge_import")), "data.graph",
           "imported needs signals.judge_import (a G' file, or llard for a llard-* data set)", d.graph)
    _check(m.backbone in BACKBONES, "model.backbone", f"must be one of {', '.join(BACKBONES)}", m.backbone)
    _check(m.dim > 0, "model.dim", "must be > 0", m.dim)
    _check(m.layers >= 0, "model.layers", "must be >= 0", m.layers)
    _check(0.0 <= m.ngcf_dropout < 1.0, "model.ngcf_dropout", "must be in [0, 1)", m.ngcf_dropout)
    _check(t.epochs >= 0, "train.epochs", "must be >= 0", t.epochs)
    _check(t.batch_size > 0, "train.batch_size", "must be > 0", t.batch_size)
    _check(t.lr > 0, "train.lr", "must be > 0", t.lr)
    _check(t.l2 >= 0, "train.l2", "must be >= 0", t.l2)
    _check(t.eval_every > 0, "train.eval_every", "must be > 0", t.eval_every)
    _check(t.patience > 0, "train.patience", "must be > 0", t.patience)
    _check(t.eval_batch_size > 0, "train.eval_batch_size", "must be > 0", t.eval_batch_size)
    _check(t.eval_item_block > 0, "train.eval_item_block", "must be > 0", t.eval_item_block)
    _check(t.threads >= 0, "train.threads", "must be >= 0", t.threads)
    _check(t.dist_timeout_s > 0, "train.dist_timeout_s", "must be > 0", t.dist_timeout_s)
    _check(t.batching in BATCHINGS, "train.batching", f"must be one of {', '.join(BATCHINGS)}", t.batching)
    _check(t.device == "cpu" or t.device == "cuda" or t.device.startswith("cuda:"), "train.device",
           "must be cpu, cuda or cuda:N", t.device)
    _check(me.name in _methods.REGISTRY, "method.name", f"must be one of {', '.join(_methods.REGISTRY)}", me.name)
    method = _methods.get(me.name)
    for k, v in method.implies.items():   # the ablation switches its name fixes
        setattr(me, k, v)
    _check(method.backbones is None or m.backbone in method.backbones, "model.backbone",
           f"method {me.name!r} is defined for {', '.join(method.backbones or ())} only", m.backbone)
    _check(me.num_negatives >= 1, "method.num_negatives", "must be >= 1", me.num_negatives)
    _check(me.num_candidates >= 1, "method.num_candidates", "must be >= 1", me.num_candidates)
    _check(1 <= me.top_k <= me.num_candidates, "method.top_k", "must be in [1, num_candidates]", me.top_k)
    _check(-1.0 <= me.sim_threshold <= 1.0, "method.sim_threshold", "must be in [-1, 1]", me.sim_threshold)
    for k in ("lambda_de", "lambda_hal", "ssl_lambda", "sgl_lambda", "tce_max_drop", "rce_beta", "simgcl_eps", "wbpr_alpha",
              "xsimgcl_lambda", "xsimgcl_eps", "rlmrec_con_lambda", "rlmrec_gen_lambda", "bod_alpha_bpr", "bod_alpha_align",
              "bod_alpha_unif"):
        _check(getattr(me, k) >= 0, f"method.{k}", "must be >= 0", getattr(me, k))
    _check(me.bod_lr > 0, "method.bod_lr", "must be > 0", me.bod_lr)
    _check(me.bod_outer_batch >= 2, "method.bod_outer_batch", "must be >= 2", me.bod_outer_batch)
    _check(me.xsimgcl_layer >= 1, "method.xsimgcl_layer", "must be >= 1", me.xsimgcl_layer)
    _check("xsimgcl_layer" not in method.reads or me.xsimgcl_layer <= m.layers, "method.xsimgcl_layer",
           f"must be at most model.layers ({m.layers})", me.xsimgcl_layer)
    _check(0.0 < me.rlmrec_mask_ratio < 1.0, "method.rlmrec_mask_ratio", "must be in (0, 1)", me.rlmrec_mask_ratio)
    for k in ("tau_de", "tau_hal", "ssl_tau", "sgl_tau", "xsimgcl_tau", "rlmrec_con_tau", "rlmrec_gen_tau"):
        _check(getattr(me, k) > 0, f"method.{k}", "must be > 0", getattr(me, k))
    _check(me.aux_every >= 1, "method.aux_every", "must be >= 1", me.aux_every)
    _check(me.aux_max_nodes == 0 or me.aux_max_nodes >= 2, "method.aux_max_nodes",
           "must be 0 (all of the batch's nodes) or >= 2", me.aux_max_nodes)
    for k in ("keep_prob", "sgl_keep_prob"):
        _check(0.0 < getattr(me, k) <= 1.0, f"method.{k}", "must be in (0, 1]", getattr(me, k))
    _check(me.tce_max_drop < 1.0, "method.tce_max_drop", "must be < 1", me.tce_max_drop)
    _check(me.tce_warmup_epochs >= 1, "method.tce_warmup_epochs", "must be >= 1", me.tce_warmup_epochs)
    _check(me.hard_per_item >= 0, "method.hard_per_item", "must be >= 0 (0: no cap)", me.hard_per_item)
    for k in ("predict_graph", "train_edges"):
        _check(getattr(me, k) in ("denoised", "original"), f"method.{k}", "must be 'denoised' or 'original'",
               getattr(me, k))
    if cfg.signals:          # names, types and ranges of the signals options, checked now rather than mid-run
        from .signals.config import SignalsConfig
        try:
            SignalsConfig.from_dict(cfg.signals)
        except ValueError as e:
            raise ConfigError(str(e).replace("SignalsConfig: ", "signals: ")) from None


#: settings a method once shared with others and now has of its own: {method: {own key: old key}}
SPLIT_KEYS: Dict[str, Dict[str, str]] = {
    "sgl": {"sgl_lambda": "ssl_lambda", "sgl_tau": "ssl_tau", "sgl_keep_prob": "keep_prob"},
}


def migrate(raw: Any) -> Any:
    """A config mapping as it is read now, when it was written before its method had settings
    of its own: an SGL run whose method section has none of the ``sgl_*`` keys trained with
    the shared ``ssl_lambda`` / ``ssl_tau`` / ``keep_prob`` (or their defaults), so those
    become its ``sgl_*`` values. Anything else is returned unchanged."""
    me = raw.get("method") if isinstance(raw, dict) else None
    split = SPLIT_KEYS.get(me.get("name")) if isinstance(me, dict) else None
    if not split or any(k in me for k in split):
        return raw
    return {**raw, "method": {**me, **{new: me[old] for new, old in split.items() if old in me}}}


def trajectory_settings(cfg: Dict[str, Any]) -> Dict[str, Any]:
    """The flat ``section.key`` settings of a config mapping that change a run's trajectory
    (not progress bars, paths or epoch limits): two runs with equal ones train identically.

    A setting missing from ``cfg`` (written before it existed) counts as its default, so
    adding a setting does not invalidate earlier runs that trained as its default does."""
    cfg = migrate(cfg)
    flat: Dict[str, Any] = {}
    for sec, vals in RunConfig().to_dict().items():
        given = cfg.get(sec) if isinstance(cfg.get(sec), dict) else {}
        if isinstance(vals, dict):
            for k, v in {**vals, **given}.items():
                flat[f"{sec}.{k}"] = v
    # train.threads stays: OpenMP reductions make 1 and 2 threads differ in the last bits
    for k in ("train.progress", "train.epochs", "train.eval_batch_size",
              "train.eval_item_block", "data.data_root", "train.dist_timeout_s"):
        flat.pop(k, None)
    name = flat.get("method.name")
    if name not in _methods.REGISTRY:
        return flat
    method = _methods.get(name)
    # what the name implies (the ablation switches), as validation applies it
    flat.update({f"method.{k}": v for k, v in method.implies.items()})
    # only the method settings (and signals) the method reads
    keep = set(_methods.relevant_method_keys(name))
    for k in [k for k in flat if k.startswith("method.") and k[len("method."):] not in keep]:
        del flat[k]
    if method.needs_signals is None:
        for k in [k for k in flat if k.startswith("signals.")]:
            del flat[k]
    elif method.needs_signals == "texts":     # no judge runs for it: the judge's settings change nothing
        from .signals.config import JUDGE_KEYS
        for k in [k for k in flat if k.startswith("signals.") and k[len("signals."):].startswith(JUDGE_KEYS)]:
            del flat[k]
    return flat


# ---------------------------------------------------------------- loading

def _build(cls: type, raw: Any, prefix: str) -> Any:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{prefix or 'config'}: must be a mapping, got {raw!r}")
    hints = get_type_hints(cls)
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ConfigError(f"{prefix + '.' if prefix else ''}{unknown[0]}: unknown key "
                          f"(known: {', '.join(sorted(names))})")
    kwargs = {}
    for name, value in raw.items():
        key = f"{prefix}.{name}" if prefix else name
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            kwargs[name] = _build(tp, value, key)
        else:
            kwargs[name] = coerce(value, tp, key)
    return cls(**kwargs)


def from_dict(raw: Dict[str, Any]) -> RunConfig:
    """A validated :class:`RunConfig` from a nested mapping (as in the YAML file)."""
    return _build(RunConfig, migrate(raw), "").validate()


def load_yaml(path: str, backbone: Optional[str] = None) -> RunConfig:
    """Read a YAML run file; a missing file, bad YAML or a bad key is a :class:`ConfigError`.

    A top-level ``backbones:`` mapping (``backbones: {ngcf: {method: {lambda_de: 0.001}}}``) holds
    settings for one backbone: that of ``backbone`` when given (``--backbone``), else the file's
    ``model.backbone``. Every block is checked, used or not."""
    if not os.path.isfile(path):
        raise ConfigError(f"config file {path!r} does not exist")
    with open(path, encoding="utf-8") as f:
        try:
            raw = yaml.safe_load(f)
        except yaml.YAMLError as e:
            raise ConfigError(f"config file {path!r} is not valid YAML: {e}") from None
    if raw is None:
        raw = {}
    try:
        return from_dict(_for_backbone(raw, backbone))
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def _merge(base: Dict[str, Any], top: Dict[str, Any]) -> Dict[str, Any]:
    out = dict(base)
    for k, v in top.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _for_backbone(raw: Any, backbone: Optional[str]) -> Any:
    """``raw`` without its ``backbones:`` block, with the block of the run's backbone merged in."""
    if not isinstance(raw, dict) or "backbones" not in raw:
        return raw
    raw = dict(raw)
    blocks = raw.pop("backbones")
    if not isinstance(blocks, dict):
        raise ConfigError(f"backbones: must be a mapping of backbone -> settings, got {blocks!r}")
    for name, block in blocks.items():
        _check(name in BACKBONES, f"backbones.{name}", f"not a backbone (known: {', '.join(BACKBONES)})", name)
        _check(isinstance(block, dict), f"backbones.{name}", "must be a mapping of sections", block)
        model = block.get("model")
        _check(not (isinstance(model, dict) and "backbone" in model), f"backbones.{name}.model.backbone",
               "cannot be set inside a backbone's own block", block)
        try:
            from_dict(_merge(raw, _merge(block, {"model": {"backbone": name}})))
        except ConfigError as e:
            raise ConfigError(f"backbones.{name}: {e}") from None
    chosen = backbone or (raw.get("model") or {}).get("backbone") or ModelConfig().backbone
    return _merge(raw, blocks.get(chosen) or {})


def load_with_overrides(path: Optional[str], overrides: Dict[str, Any]) -> RunConfig:
    """``path`` (or the defaults when None) with dotted ``overrides`` on top; the file's
    ``backbones:`` block is the one of the backbone the overrides choose, if they choose one."""
    cfg = load_yaml(path, overrides.get("model.backbone")) if path else RunConfig()
    return apply_overrides(cfg, overrides)


def dump_yaml(cfg: RunConfig, path: str) -> None:
    """Writes atomically (the old file or the complete new one, never half)."""
    write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False), path)


def apply_overrides(cfg: RunConfig, overrides: Dict[str, Any]) -> RunConfig:
    """Set dotted keys (``{"train.lr": 0.01}``), type-checked; returns a new validated config.

    String values (from ``--set key=value``) are parsed as YAML scalars first."""
    raw = cfg.to_dict()
    for dotted, value in overrides.items():
        parts = dotted.split(".")
        node = raw
        for p in parts[:-1]:
            if not isinstance(node, dict) or p not in node:
                raise ConfigError(_unknown_key(dotted))
            node = node[p]
        if not isinstance(node, dict) or parts[-1] not in node and not (parts[0] == "signals" and len(parts) == 2
                                                                         and parts[1] in _signals_keys()):
            raise ConfigError(_unknown_key(dotted))
        if isinstance(value, str):
            try:
                value = yaml.safe_load(value) if value != "" else value
            except yaml.YAMLError:
                pass
        node[parts[-1]] = value
    return from_dict(raw)


def _signals_keys() -> List[str]:
    from .signals.config import SignalsConfig
    return [f.name for f in fields(SignalsConfig)]


def known_keys() -> List[str]:
    """Every dotted setting name (``train.lr``, ``signals.judge``, ...)."""
    keys = [f"{sec}.{k}" for sec, vals in RunConfig().to_dict().items() if isinstance(vals, dict) for k in vals
            if sec != "signals"]
    return sorted(keys + [f"signals.{k}" for k in _signals_keys()])


def _unknown_key(dotted: str) -> str:
    keys = known_keys()
    near = difflib.get_close_matches(dotted, keys, n=3, cutoff=0.6)
    section = dotted.split(".")[0]
    same = [k for k in keys if k.startswith(section + ".")]
    hint = f"; did you mean {' or '.join(near)}?" if near else ""
    listing = f" Known keys of {section}: {', '.join(same)}" if same else " Known sections: " + \
        ", ".join(sorted({k.split('.')[0] for k in keys}))
    return f"{dotted}: unknown key{hint}{listing}"


def parse_set(items: Optional[List[str]]) -> Dict[str, Any]:
    """``["train.lr=0.01", ...]`` -> ``{"train.lr": "0.01"}`` (values parsed later)."""
    out: Dict[str, Any] = {}
    for it in items or []:
        if "=" not in it:
            raise ConfigError(f"--set {it!r}: expected key=value, e.g. train.lr=0.001")
        k, v = it.split("=", 1)
        out[k.strip()] = v.strip()
    return out
