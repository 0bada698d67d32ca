"""What every run records about where it ran, and the checks a run's data must pass."""
from __future__ import annotations

import os
import platform
from typing import Any, Dict

import numpy as np
import torch


def environment(device: torch.device) -> Dict[str, Any]:
    """Versions, backend and device facts recorded with every run."""
    from . import __version__, backend_info   # the package imports the trainer: no import circle
    try:
        backend = backend_info()
    except Exception as e:  # noqa: BLE001
        backend = {"error": f"{type(e).__name__}: {e}"}
    dev = str(device)
    if device.type == "cuda" and torch.cuda.is_available():
        dev = f"{device} ({torch.cuda.get_device_name(device)})"
    else:
        dev = f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, "\
              f"{torch.get_num_threads()} threads)"
    return {"llmhni": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version(), "platform": platform.platform(),
            "device": dev, "backend": backend}


def check_splits(ds) -> None:
    """Refuse data a run cannot learn from or report on."""
    if len(ds.train) == 0:
        raise ValueError(f"data set {ds.name!r} has no training interactions")
    if len(ds.test) == 0:
        cleanup = (getattr(ds, "meta", None) or {}).get("cleanup", {})
        lost = {k: v for k, v in cleanup.items() if k.startswith("test") and v}
        raise ValueError(f"data set {ds.name!r} has no test interactions"
                         + (f" (clean-up removed them: {lost})" if lost else "") + "; test metrics would all be 0")
