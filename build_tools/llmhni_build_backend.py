"""PEP 517 backend: setuptools, plus finding the torch the extension must match.

A C++/CUDA extension only works with the exact torch it was compiled against.
PEP 517 build isolation would compile against whatever torch it downloads into
a throw-away environment, so ``pip install .`` would produce an extension that
the installed torch cannot load. This backend asks the target interpreter (the
one running pip, without pip's isolation) where its torch lives and makes that
torch importable during the build. Only when the target has no torch does it
request one for the build environment.

``pip install --no-build-isolation .`` skips all of this and is always fine.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

from setuptools import build_meta as _orig

_PROBE = (
    "import json, os, torch; "
    "print(json.dumps({'version': torch.__version__, "
    "'path': os.path.dirname(os.path.dirname(torch.__file__))}))"
)


def _clean_env():
    env = dict(os.environ)
    env.pop("PYTHONNOUSERSITE", None)
    kept = []
    for entry in env.get("PYTHONPATH", "").split(os.pathsep):
        if not entry:
            continue
        # pip's isolation puts a sitecustomize that hides site-packages here.
        if "pip-build-env" in entry or os.path.exists(os.path.join(entry, "sitecustomize.py")):
            continue
        kept.append(entry)
    if kept:
        env["PYTHONPATH"] = os.pathsep.join(kept)
    else:
        env.pop("PYTHONPATH", None)
    return env


def _target_torch():
    """(version, site dir) of the torch in the environment being installed into, or None."""
    try:
        import torch  # noqa: F401  (already importable: no isolation)
        return None
    except ImportError:
        pass
    try:
        out = subprocess.run([sys.executable, "-c", _PROBE], env=_clean_env(),
                             capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    try:
        info = json.loads(out.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None
    return info


def _needs_extension():
    return os.environ.get("LLMHNI_NO_EXTENSION", "0") not in ("1", "true", "yes")


def _expose_target_torch():
    info = _target_torch()
    if info and info["path"] not in sys.path:
        # Appended, so the isolated setuptools/wheel still win; torch and its
        # pure-Python dependencies come from the target environment.
        sys.path.append(info["path"])
        print(f"llmhni: building against the installed torch {info['version']} ({info['path']})")


def _extra_requires():
    if not _needs_extension():
        return []
    try:
        import torch  # noqa: F401
        return []
    except ImportError:
        pass
    return [] if _target_torch() else ["torch>=2.11"]


def _with_torch_or_without_extension(hook, *args):
    """Runs a setuptools hook that executes setup.py (which imports torch)."""
    extra = _extra_requires()
    if extra:  # no torch anywhere yet: discover requirements without the extension
        saved = os.environ.get("LLMHNI_NO_EXTENSION")
        os.environ["LLMHNI_NO_EXTENSION"] = "1"
        try:
            return hook(*args) + extra
        finally:
            if saved is None:
                os.environ.pop("LLMHNI_NO_EXTENSION", None)
            else:
                os.environ["LLMHNI_NO_EXTENSION"] = saved
    if _needs_extension():
        _expose_target_torch()
    return hook(*args)


def get_requires_for_build_wheel(config_settings=None):
    return _with_torch_or_without_extension(_orig.get_requires_for_build_wheel, config_settings)


def get_requires_for_build_editable(config_settings=None):
    return _with_torch_or_without_extension(_orig.get_requires_for_build_editable, config_settings)


def get_requires_for_build_sdist(config_settings=None):
    return _orig.get_requires_for_build_sdist(config_settings)


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    if _needs_extension():
        _expose_target_torch()
    return _orig.prepare_metadata_for_build_wheel(metadata_directory, config_settings)


def prepare_metadata_for_build_editable(metadata_directory, config_settings=None):
    if _needs_extension():
        _expose_target_torch()
    return _orig.prepare_metadata_for_build_editable(metadata_directory, config_settings)


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    if _needs_extension():
        _expose_target_torch()
    return _orig.build_wheel(wheel_directory, config_settings, metadata_directory)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    if _needs_extension():
        _expose_target_torch()
    return _orig.build_editable(wheel_directory, config_settings, metadata_directory)


def build_sdist(sdist_directory, config_settings=None):
    return _orig.build_sdist(sdist_directory, config_settings)
