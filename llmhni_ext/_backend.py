"""Which implementation serves each op: compiled module, JIT build, or reference twin.

Order of preference, decided once on first use:

1. ``llmhni_ext._C``, the module ``pip install .`` compiled, when it was built
   against the running torch;
2. a JIT build of ``csrc/`` with ``torch.utils.cpp_extension.load`` (ninja) into
   ``$LLMHNI_CACHE_DIR/jit`` (default ``~/.cache/llmhni/jit``), announced once;
3. the pure-PyTorch reference twins in :mod:`llmhni_ext.reference`, with one
   warning that says why.

An op also falls back to its reference twin on a device for which no kernel was
compiled (for example CUDA tensors with a CPU-only build). ``LLMHNI_BACKEND=reference``
forces the reference twins; ``LLMHNI_NO_JIT=1`` skips step 2.
:func:`backend_info` (and ``llmhni info``) reports the outcome.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import warnings
from typing import Callable, Dict, List, Optional

import torch

from ._version import __version__
from ._common import cache_root

log = logging.getLogger("llmhni")

_PKG_DIR = os.path.dirname(os.path.abspath(__file__))


class BackendWarning(UserWarning):
    """Announces, once, that compiled kernels are unavailable or being JIT-compiled."""


class _State:
    def __init__(self) -> None:
        self.loaded = False
        self.mode = "reference"  # "compiled" | "jit" | "reference"
        self.reason = ""
        self.info: Dict = {}
        self.kernels: set = set()
        self.hooks: List[Callable[[], None]] = []
        self.lock = threading.RLock()


_state = _State()


def _csrc_dir() -> Optional[str]:
    for cand in (os.path.join(_PKG_DIR, "_csrc"), os.path.join(os.path.dirname(_PKG_DIR), "csrc")):
        if os.path.isfile(os.path.join(cand, "sources.txt")):
            return cand
    return None


def cache_dir() -> str:
    root = cache_root()
    return root


def _try_compiled() -> Optional[str]:
    """Import llmhni_ext._C; returns None on success, else the reason it is unusable."""
    built_with = os.path.join(_PKG_DIR, "_built_with.json")
    if os.path.isfile(built_with):
        with open(built_with, encoding="utf-8") as f:
            facts = json.load(f)
        if facts.get("torch") != torch.__version__:
            return (f"llmhni_ext._C was built against torch {facts.get('torch')}, "
                    f"but torch {torch.__version__} is running")
    try:
        from . import _C  # noqa: F401  (registers the ops)
    except ImportError as e:
        return f"llmhni_ext._C could not be imported ({e})"
    info = json.loads(torch.ops.llmhni.build_info())
    if info.get("torch") != torch.__version__:
        return (f"llmhni_ext._C was built against torch {info.get('torch')}, "
                f"but torch {torch.__version__} is running")
    _state.info = info
    return None


def _jit_build_dir(csrc: str, with_cuda: bool) -> str:
    """One build folder per (sources location, torch, CUDA); ninja rebuilds only what changed."""
    key = hashlib.sha256(f"{os.path.realpath(csrc)}|{torch.__version__}|{with_cuda}".encode()).hexdigest()[:12]
    return os.path.join(cache_dir(), "jit", f"torch{torch.__version__}-{'cuda' if with_cuda else 'cpu'}-{key}")


def _try_jit() -> Optional[str]:
    if os.environ.get("LLMHNI_NO_JIT", "0") in ("1", "true", "yes"):
        return "the JIT fallback is disabled (LLMHNI_NO_JIT=1)"
    csrc = _csrc_dir()
    if csrc is None:
        return "no csrc/ sources were found for a JIT build"
    try:
        from ._build_flags import DEFAULT_CUDA_ARCHS, cuda_include_dirs, default_cuda_home, flags
        default_cuda_home()
        from torch.utils.cpp_extension import CUDA_HOME, is_ninja_available, load
        if not is_ninja_available():
            return "the JIT fallback needs ninja, which is not installed (pip install ninja, or llmhni[jit])"

        from ._sources import read_sources

        src = read_sources(csrc)
        with_cuda = bool(torch.cuda.is_available() and CUDA_HOME is not None)
        if with_cuda:
            os.environ.setdefault("TORCH_CUDA_ARCH_LIST", DEFAULT_CUDA_ARCHS)
        sources = src["cpu"] + (src["cuda"] if with_cuda else [])
        build_dir = _jit_build_dir(csrc, with_cuda)
        os.makedirs(build_dir, exist_ok=True)
        _announce(f"llmhni: llmhni_ext._C is unusable, so the kernels are JIT-compiled into {build_dir} "
                  "(ninja; later runs reuse what is built)")
        f = flags(__version__, with_cuda)
        load(name="llmhni_jit", sources=sources, extra_include_paths=[csrc] + (cuda_include_dirs() if with_cuda else []),
             extra_cflags=f["cxx"], extra_cuda_cflags=f["nvcc"], extra_ldflags=f["ldflags"],
             build_directory=build_dir, with_cuda=with_cuda, is_python_module=False, verbose=False)
        _state.info = json.loads(torch.ops.llmhni.build_info())
    except Exception as e:  # noqa: BLE001  (any build failure means: use the reference)
        return f"the JIT build failed ({type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''})"
    return None


_announced: set = set()


def _announce(msg: str) -> None:
    if msg in _announced:
        return
    _announced.add(msg)
    log.warning(msg)
    warnings.warn(msg, BackendWarning, stacklevel=3)


def load() -> str:
    """Resolves the backend once; returns "compiled", "jit" or "reference"."""
    if _state.loaded:
        return _state.mode
    with _state.lock:
        if _state.loaded:
            return _state.mode
        forced = os.environ.get("LLMHNI_BACKEND", "").strip().lower()
        if forced == "reference":
            _state.mode, _state.reason = "reference", "forced by LLMHNI_BACKEND=reference"
        elif forced not in ("", "auto", "compiled", "jit"):
            raise ValueError(f"LLMHNI_BACKEND must be 'auto' or 'reference', got {forced!r}")
        else:
            why = _try_compiled() if forced != "jit" else "LLMHNI_BACKEND=jit"
            if why is None:
                _state.mode = "compiled"
            else:
                why_jit = _try_jit()
                if why_jit is None:
                    _state.mode, _state.reason = "jit", why
                else:
                    _state.mode, _state.reason = "reference", f"{why}; {why_jit}"
                    _announce(f"llmhni: compiled kernels unavailable, every op runs its pure-PyTorch "
                              f"reference twin ({_state.reason})")
        if _state.mode != "reference":
            _state.kernels = set(_state.info.get("kernels", []))
            for hook in _state.hooks:
                hook()
        _state.loaded = True
        return _state.mode


def on_load(fn: Callable[[], None]) -> Callable[[], None]:
    """Runs ``fn`` once the compiled library is loaded (fake kernels, autograd)."""
    with _state.lock:
        _state.hooks.append(fn)
        if _state.loaded and _state.mode != "reference":
            fn()
    return fn


def has_kernel(op: str, device_type: str) -> bool:
    load()
    return _state.mode != "reference" and f"{op}:{device_type}" in _state.kernels


def backend_for(op: str, device_type: str) -> str:
    """"compiled", "jit" or "reference": what serves ``op`` on ``device_type``."""
    return _state.mode if has_kernel(op, device_type) else "reference"


_DISPATCHED: Dict[tuple, Callable] = {}


def dispatch(op: str, device: torch.device) -> Callable:
    """The callable for ``op`` on ``device``: ``torch.ops.llmhni.<op>`` or its reference twin.
    Resolved once per (op, device type) and process: the backend never changes once loaded."""
    key = (op, device.type)
    fn = _DISPATCHED.get(key)
    if fn is None:
        if has_kernel(op, device.type):
            fn = getattr(torch.ops.llmhni, op).default
        else:
            from . import reference
            fn = getattr(reference, op)
        _DISPATCHED[key] = fn
    return fn


def backend_info() -> Dict:
    """Build and backend facts: mode, why, build info and the backend of each op per device."""
    from . import reference
    load()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() or _state.info.get("with_cuda") else [])
    ops = {name: {d: backend_for(name, d) for d in devices} for name in reference.OPS}
    return {
        "llmhni": __version__,
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "mode": _state.mode,
        "reason": _state.reason,
        "build": _state.info,
        "threads": torch.get_num_threads(),
        "ops": ops,
    }
