"""Run configuration: typed dataclasses, loaded from YAML, overridden from the command line.

A run is described by one :class:`RunConfig` with five sections::

    data:    which data set, where it lives, how much noise to inject
    model:   backbone (mf | lightgcn | ngcf), embedding size, layers
    train:   optimiser, batches, epochs, early stopping, evaluation, seed, device
    method:  the training objective (a name of llmhni_ext.methods.REGISTRY) and the
             settings of every method (each declares and reads its own; flat keys)
    signals: the signals stage (llmhni_ext.signals.SignalsConfig)

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
from .methods.settings import check_bounds
from .sections import DataConfig, ModelConfig, TrainConfig
from .signals.config import JUDGE_KEYS, SignalsConfig
from .typed import ConfigError, coerce
from .checkpoint import write_text


#: the ``method`` section: ``name`` and every method's own settings, declared next to its code
#: (``llmhni_ext/methods/<name>.py``, :mod:`llmhni_ext.methods.settings`), with flat keys
MethodConfig = _methods.MethodConfig


@dataclass
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    method: MethodConfig = field(default_factory=MethodConfig)   # type: ignore[valid-type]
    signals: SignalsConfig = field(default_factory=SignalsConfig)
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
    if isinstance(cfg.signals, dict):    # cfg.signals = {"judge": ...} as older code wrote it
        cfg.signals = _build(SignalsConfig, cfg.signals, "signals")
    try:
        cfg.signals.validate()
    except ValueError as e:
        raise ConfigError(str(e).replace("SignalsConfig: ", "signals: ")) from None
    _check(d.graph != "imported" or bool(cfg.signals.judge_import), "data.graph",
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
    for settings in dict.fromkeys(x.Settings for x in _methods.REGISTRY.values()):
        check_bounds(settings, me)           # every value in range, read or not
    method.Settings.of(me).check(m)          # the rules across the chosen method's settings


def migrate(raw: Any) -> Any:
    """A config mapping as it is read now, when it was written before its method had settings
    of its own (``Settings.legacy_keys``): an SGL run whose method section has none of the
    ``sgl_*`` keys trained with the shared ``ssl_lambda`` / ``ssl_tau`` / ``keep_prob`` (or their
    defaults), so those become its ``sgl_*`` values. Anything else is returned unchanged."""
    me = raw.get("method") if isinstance(raw, dict) else None
    cls = _methods.REGISTRY.get(me.get("name")) if isinstance(me, dict) and isinstance(me.get("name"), str) else None
    split = cls.Settings.legacy_keys if cls is not None else {}
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
    for k in ("train.progress", "train.epochs", "train.eval_batch_size", "train.eval_item_block",
              "data.data_root", "train.dist_timeout_s", "signals.progress", "signals.signals_budget_s"):
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
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except ValueError as e:              # a section's own validation (SignalsConfig's)
        raise ConfigError(str(e).replace(f"{cls.__name__}: ", f"{prefix}: " if prefix else "")) from None


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
        if not isinstance(node, dict) or parts[-1] not in node:
            raise ConfigError(_unknown_key(dotted))
        if isinstance(value, str):
            try:
                value = yaml.safe_load(value) if value != "" else value
            except yaml.YAMLError:
                pass
        node[parts[-1]] = value
    return from_dict(raw)


def known_keys() -> List[str]:
    """Every dotted setting name (``train.lr``, ``signals.judge``, ...)."""
    return sorted(f"{sec}.{k}" for sec, vals in RunConfig().to_dict().items() if isinstance(vals, dict) for k in vals)


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
