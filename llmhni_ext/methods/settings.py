"""The settings a method reads, declared next to its code.

Each method module declares a dataclass of its own settings, derived from
:class:`MethodSettings`, and names it as the method's ``Settings``::

    @dataclass
    class SGLSettings(MethodSettings):
        sgl_lambda: float = setting(0.01, "weight of the contrastive term", ge=0)

    class SGL(Method):
        Settings = SGLSettings

The run configuration's ``method:`` section is the union of every registered method's
settings (:func:`merged_config_class`), so the YAML keys stay flat and readable
(``method: {name: sgl, sgl_lambda: 0.02}``), old files and stored runs load unchanged, and a
method reads its own typed settings as ``self.cfg``. Bounds given to :func:`setting` are
checked when the configuration is validated; cross-setting rules go in
:meth:`MethodSettings.check`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import MISSING, dataclass, field, fields, make_dataclass
from typing import Any, ClassVar, Dict, Iterable, List, Optional, Sequence, Tuple, Type, get_type_hints

from ..typed import ConfigError


def setting(default: Any, help: str, *, gt: Optional[float] = None, ge: Optional[float] = None,
            lt: Optional[float] = None, le: Optional[float] = None, choices: Optional[Sequence[str]] = None) -> Any:
    """A settings field: its default, one line of help (the docs' configuration reference
    prints it) and the bounds validation enforces (``gt`` / ``ge`` below, ``lt`` / ``le`` above,
    or a tuple of ``choices``)."""
    meta = {"help": help, "gt": gt, "ge": ge, "lt": lt, "le": le, "choices": tuple(choices) if choices else None}
    return field(default=default, metadata=meta)


def bounds_text(meta: Dict[str, Any]) -> Optional[str]:
    """What a field's bounds require, as the error message says it ("must be in (0, 1]")."""
    if meta.get("choices"):
        c = meta["choices"]
        return f"must be {' or '.join(repr(x) for x in c)}" if len(c) <= 2 else f"must be one of {', '.join(c)}"
    low = ("(", meta["gt"]) if meta.get("gt") is not None else ("[", meta["ge"]) if meta.get("ge") is not None else None
    high = (")", meta["lt"]) if meta.get("lt") is not None else ("]", meta["le"]) if meta.get("le") is not None else None
    if low and high:
        return f"must be in {low[0]}{low[1]:g}, {high[1]:g}{high[0]}"
    if low:
        return f"must be {'>' if low[0] == '(' else '>='} {low[1]:g}"
    if high:
        return f"must be {'<' if high[0] == ')' else '<='} {high[1]:g}"
    return None


def _within(value: Any, meta: Dict[str, Any]) -> bool:
    if meta.get("choices"):
        return value in meta["choices"]
    return not ((meta.get("gt") is not None and not value > meta["gt"])
                or (meta.get("ge") is not None and not value >= meta["ge"])
                or (meta.get("lt") is not None and not value < meta["lt"])
                or (meta.get("le") is not None and not value <= meta["le"]))


def require(cond: bool, key: str, msg: str, value: Any) -> None:
    """Raise :class:`ConfigError` ``"method.<key>: <msg>, got <value>"`` unless ``cond``."""
    if not cond:
        raise ConfigError(f"method.{key}: {msg}, got {value!r}")


@dataclass
class MethodSettings:
    """The settings every method reads."""
    num_negatives: int = setting(1, "negatives per positive (BPR terms per pair)", ge=1)

    #: keys this method once shared with others and now has of its own: {own key: old key}. A
    #: stored or YAML config naming the method without any own key is read with the old keys'
    #: values (:func:`llmhni_ext.config.migrate`)
    legacy_keys: ClassVar[Dict[str, str]] = {}

    def check(self, model: Any) -> None:
        """Rules across settings (and against ``model``, the run's ModelConfig); raise
        :class:`ConfigError` via :func:`require`. Bounds declared with :func:`setting` are
        checked before."""

    @classmethod
    def keys(cls) -> Tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def of(cls, cfg: Any) -> "MethodSettings":
        """This method's settings, read from the run's merged ``method`` section."""
        return cls(**{k: getattr(cfg, k) for k in cls.keys()})


def check_bounds(cls: Type[MethodSettings], cfg: Any) -> None:
    """Every bound ``cls`` declares, checked on the merged ``method`` section ``cfg``."""
    for f in fields(cls):
        value = getattr(cfg, f.name)
        if not _within(value, f.metadata):
            raise ConfigError(f"method.{f.name}: {bounds_text(f.metadata)}, got {value!r}")


def merged_config_class(settings: Iterable[Type[MethodSettings]], default_name: str) -> type:
    """The run configuration's ``method`` section: ``name`` and the union of the settings
    classes' fields, in their order. A key two methods declare must agree on type, default
    and bounds (then they read one value)."""
    seen: Dict[str, Tuple[Any, dataclasses.Field]] = {}
    for cls in settings:
        hints = get_type_hints(cls)
        for f in fields(cls):
            if f.name in seen:
                tp, other = seen[f.name]
                if (tp, other.default, dict(other.metadata)) != (hints[f.name], f.default, dict(f.metadata)):
                    raise TypeError(f"method setting {f.name!r} is declared twice, differently "
                                    f"({cls.__qualname__} and an earlier method): give it one definition")
                continue
            if f.default is MISSING:
                raise TypeError(f"method setting {cls.__qualname__}.{f.name} needs a default")
            seen[f.name] = (hints[f.name], f)
    spec: List[Tuple[str, Any, Any]] = [("name", str, field(default=default_name,
                                                             metadata={"help": "the method (llmhni methods)"}))]
    spec += [(k, tp, field(default=f.default, metadata=f.metadata)) for k, (tp, f) in seen.items()]
    cls = make_dataclass("MethodConfig", spec)
    cls.__module__ = __name__
    cls.__doc__ = ("The run's ``method`` section: the method's name and every registered method's settings "
                   "(each method reads its own, :mod:`llmhni_ext.methods.settings`).")
    return cls
