"""Where the data files live.

Order: the ``data_root`` argument (the command line's ``--data-root``), else the
environment variable ``LLMHNI_DATA_ROOT``, else ``../shared/data`` beside the
current directory or beside the repository checkout when that folder exists, else
``~/.cache/llmhni/data`` (where downloads go).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

from .._common import cache_root

ENV_VAR = "LLMHNI_DATA_ROOT"
_REPO = Path(__file__).resolve().parents[2]


def default_cache_root() -> Path:
    """``<cache root>/data`` (``$LLMHNI_CACHE_DIR``, else ``~/.cache/llmhni``): where downloads go."""
    return Path(cache_root()) / "data"


def resolve_data_root(data_root: Optional[Union[str, os.PathLike]] = None) -> Path:
    """The data root folder (not created here)."""
    if data_root is not None and str(data_root) != "":
        return Path(os.path.expanduser(str(data_root))).resolve()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(os.path.expanduser(env)).resolve()
    for base in (Path.cwd(), _REPO):
        cand = (base.parent / "shared" / "data")
        if cand.is_dir():
            return cand.resolve()
    return default_cache_root()
