"""Reference pages generated from the code, so that they cannot drift from it.

* :func:`cli_markdown`: every ``llmhni`` command and option, read from the argparse parser;
* :func:`config_markdown`: every configuration section and setting (type, default, the
  comment or help next to its declaration) and every bundled preset;
* :func:`ops_markdown`: every ``torch.ops.llmhni`` schema beside its reference twin.

``docs/scripts/gen_pages.py`` writes them into the site at build time; the tests call them too.
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import io
import re
import textwrap
import tokenize
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple, get_type_hints

REPO = Path(__file__).resolve().parents[2]


def _cell(text: str) -> str:
    """Text fit for one cell of a Markdown table."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _code(text: str) -> str:
    return f"`{text}`" if text else ""


# --------------------------------------------------------------------------- the CLI

def _subcommands(parser: argparse.ArgumentParser) -> Dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _help_of(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    if not action.help or action.help == argparse.SUPPRESS:
        return ""
    return parser._get_formatter()._expand_help(action)


def _option_rows(parser: argparse.ArgumentParser) -> List[str]:
    rows = []
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)) or action.help == argparse.SUPPRESS:
            continue
        if action.option_strings:
            names = ", ".join(action.option_strings)
            if action.nargs != 0:
                metavar = action.metavar or (action.dest.upper() if not action.choices else "{" + ",".join(map(str, action.choices)) + "}")
                names += f" {metavar if isinstance(metavar, str) else ' '.join(metavar)}"
        else:
            names = str(action.metavar or action.dest)
        rows.append(f"| {_code(_cell(names))} | {_cell(_help_of(parser, action))} |")
    return rows


def cli_markdown(parser: Optional[argparse.ArgumentParser] = None) -> str:
    """The command-line reference, one section per subcommand."""
    if parser is None:
        from llmhni_ext.cli import build_parser
        parser = build_parser()
    out = ["# Command-line reference", "",
           "Generated from `llmhni`'s argument parser at documentation build time; "
           "`llmhni COMMAND --help` prints the same.", "",
           "```text", parser.format_usage().strip(), "```", ""]
    if parser.description:
        out += [textwrap.dedent(parser.description).strip(), ""]
    subs = _subcommands(parser)
    for name, sub in subs.items():
        out += [f"## llmhni {name}", ""]
        if sub.description:
            out += [textwrap.dedent(sub.description).strip(), ""]
        out += ["```text", sub.format_usage().strip(), "```", "",
                "| option | what it does |", "|---|---|"] + _option_rows(sub) + [""]
    return "\n".join(out)


# --------------------------------------------------------------------------- configuration

def _field_comments(cls: type) -> Dict[str, str]:
    """The comments next to a dataclass's fields: ``#:`` or ``#`` lines just above a field
    and a comment at the end of its line (section rulers ``# --- x ---`` excluded)."""
    try:
        src = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    comments: Dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(src).readline):
        if tok.type == tokenize.COMMENT:
            text = tok.string.lstrip("#").lstrip(":").strip()
            if not re.match(r"^-{2,}", text):
                comments[tok.start[0]] = text
    lines = src.splitlines()
    out: Dict[str, str] = {}
    body = ast.parse(src).body[0]
    for node in body.body:  # type: ignore[attr-defined]
        if not isinstance(node, ast.AnnAssign) or not isinstance(node.target, ast.Name):
            continue
        above: List[str] = []
        ln = node.lineno - 1
        while ln >= 1 and ln in comments and lines[ln - 1].lstrip().startswith("#"):
            above.insert(0, comments[ln])
            ln -= 1
        trailing = [comments[i] for i in range(node.lineno, node.end_lineno + 1)
                    if i in comments and not lines[i - 1].lstrip().startswith("#")]
        out[node.target.id] = " ".join(above + trailing)
    return out


def _type_name(tp: object) -> str:
    if getattr(tp, "__args__", None):          # Optional[str], Tuple[int, ...]
        return str(tp).replace("typing.", "").replace("NoneType", "None")
    return str(getattr(tp, "__name__", None) or tp).replace("typing.", "")


def _default(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        return repr(f.default)
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return repr(f.default_factory())  # type: ignore[misc]
    return ""


def _settings_rows(cls: type, section: str, only: Optional[Iterable[str]] = None) -> List[str]:
    from llmhni_ext.methods.settings import bounds_text
    hints = get_type_hints(cls)
    notes: Dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if dataclasses.is_dataclass(klass):
            notes.update(_field_comments(klass))
    rows = []
    keep = set(only) if only is not None else None
    for f in dataclasses.fields(cls):
        if keep is not None and f.name not in keep:
            continue
        text = f.metadata.get("help") or notes.get(f.name, "")
        bound = bounds_text(f.metadata) if f.metadata else None
        if bound:
            text = f"{text} ({bound})" if text else bound
        rows.append(f"| {_code(f'{section}.{f.name}')} | {_cell(_type_name(hints.get(f.name, f.type)))} "
                    f"| {_code(_cell(_default(f)))} | {_cell(text)} |")
    return rows


_TABLE_HEAD = ["| key | type | default | what it sets |", "|---|---|---|---|"]


def config_markdown() -> str:
    """The configuration reference: the sections, every method's settings, the presets."""
    from llmhni_ext import config, methods
    from llmhni_ext.sections import DataConfig, ModelConfig, TrainConfig
    from llmhni_ext.signals.config import SignalsConfig

    out = ["# Configuration reference", "",
           "Generated from the configuration dataclasses at documentation build time. A run reads a "
           "YAML file (`--config FILE` or a preset's name) and `--set section.key=value` overrides; "
           "an unknown key or a value of the wrong type or out of range is refused with the key's name.", "",
           "```yaml", "data:    {dataset: ml-100k, noise: 0.2}", "model:   {backbone: lightgcn, dim: 64}",
           "train:   {epochs: 80, lr: 0.005}", "method:  {name: llmhni, lambda_de: 0.003}",
           "signals: {judge: local-lm}", "```", ""]
    for title, section, cls in (("data", "data", DataConfig), ("model", "model", ModelConfig),
                                ("train", "train", TrainConfig)):
        out += [f"## {title}", ""] + _TABLE_HEAD + _settings_rows(cls, section) + [""]
    out += ["## method", "",
            "`method.name` picks the objective; each method declares its own settings next to its code "
            "(`llmhni_ext/methods/<module>.py`), and the section holds all of them under flat keys. "
            "A method's name may imply settings (its ablation switches), listed with it.", ""]
    out += ["| name | what it trains | implies |", "|---|---|---|"]
    for name, (desc, implies) in methods.METHODS.items():
        imp = ", ".join(f"{k}={v!r}" for k, v in implies.items())
        out.append(f"| {_code(name)} | {_cell(desc)} | {_code(_cell(imp))} |")
    out.append("")
    seen: set = set()
    shared = [f.name for f in dataclasses.fields(methods.MethodSettings)]
    out += ["### every method", ""] + _TABLE_HEAD + _settings_rows(methods.MethodSettings, "method", shared) + [""]
    seen.update(shared)
    for cls in methods.REGISTRY.values():
        own = [k for k in cls.Settings.keys() if k not in seen]
        if not own:
            continue
        users = [n for n, c in methods.REGISTRY.items() if c.Settings is cls.Settings]
        out += [f"### {', '.join(users)}", ""] + _TABLE_HEAD + _settings_rows(cls.Settings, "method", own) + [""]
        seen.update(own)
    out += ["## signals", "",
            "The language-model stage (`llmhni signals`, and the first stage of an LLMHNI run).", ""]
    out += _TABLE_HEAD + _settings_rows(SignalsConfig, "signals") + [""]
    out += ["## Presets", "",
            "`llmhni train --config NAME` (and a data set with a preset of its name, without `--config`) "
            "reads `llmhni_ext/configs/NAME.yaml`:", ""]
    for path in sorted((REPO / "llmhni_ext" / "configs").glob("*.yaml")):
        out += [f"### {path.stem}", "", "```yaml", path.read_text().rstrip(), "```", ""]
    _ = config  # imported for its side effect: the merged MethodConfig is complete
    return "\n".join(out)


# --------------------------------------------------------------------------- ops

def op_schemas() -> List[Tuple[str, str]]:
    """``(name, schema)`` of every ``torch.ops.llmhni`` op the loaded library registers."""
    import torch
    import llmhni_ext
    from llmhni_ext import _backend
    _backend.load()
    _ = llmhni_ext
    return sorted((str(s.name).split("::", 1)[1], str(s)) for s in torch._C._jit_get_all_schemas()
                  if str(s.name).startswith("llmhni::"))


_FAMILIES = {"graph": ("csr_from_coo", "bipartite_norm_adj", "csr_transpose", "spmm", "csr_sddmm", "lightgcn_propagate"),
             "sampler": ("sample_negatives",),
             "contrastive": ("edge_drop_mask", "edge_drop_compact", "infonce", "infonce_backward"),
             "common": ("philox_random",)}


def ops_markdown() -> str:
    """``torch.ops.llmhni.*``: each schema, then its reference twin's documentation."""
    schemas = dict(op_schemas())
    out = ["# `torch.ops.llmhni`", "",
           "Generated from the schemas the compiled library registers (declared once, in `csrc/library.cpp`). "
           "Each op has a pure-PyTorch reference twin with the same signature in "
           "`llmhni_ext.reference.<family>`: the fallback where no kernel was compiled and the tests' oracle. "
           "Arguments are checked before any kernel runs; a bad one raises a `RuntimeError` naming the op "
           "and the argument. Most users call the Python wrappers (`llmhni_ext.graph`, `llmhni_ext.sampling`, "
           "`llmhni_ext.contrastive`) instead.", ""]
    listed = set()
    for family, names in _FAMILIES.items():
        module = "common" if family == "common" else family
        out += [f"## {family}", ""]
        for name in names:
            if name not in schemas:
                continue
            listed.add(name)
            out += [f"### {name}", "", "```text", _wrapped(schemas[name]), "```", ""]
            twin = f"llmhni_ext.reference.{module}.{name}"
            if _has_attr(twin):
                out += [f"::: {twin}", "    options:", "      show_root_heading: false", "      show_root_toc_entry: false",
                        "      show_source: false", ""]
    rest = sorted(set(schemas) - listed)
    if rest:
        out += ["## other", ""]
        for name in rest:
            out += [f"### {name}", "", "```text", _wrapped(schemas[name]), "```", ""]
    return "\n".join(out)


def _wrapped(schema: str) -> str:
    """A schema with one argument a line, as a reader scans it (``name(\n    Tensor a,\n) -> T``)."""
    head, paren, rest = schema.partition("(")
    body, arrow, ret = rest.rpartition(") -> ")
    if not paren or not arrow or not body.strip():
        return schema
    args, depth, start = [], 0, 0
    for k, ch in enumerate(body):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "," and depth == 0:
            args.append(body[start:k].strip())
            start = k + 1
    args.append(body[start:].strip())
    return head + "(\n" + "".join(f"    {a},\n" for a in args) + ") -> " + ret


def _has_attr(dotted: str) -> bool:
    import importlib
    mod, _, attr = dotted.rpartition(".")
    try:
        return hasattr(importlib.import_module(mod), attr)
    except ImportError:
        return False
