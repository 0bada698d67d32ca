"""Compiler flags shared by setup.py and the JIT fallback (CMake mirrors them)."""
from __future__ import annotations

import glob
import os
import site
import sys
from typing import Dict, List

DEFAULT_CUDA_ARCHS = "8.0;9.0+PTX"


def _openmp() -> bool:
    import torch
    return "OpenMP" in torch.__config__.parallel_info()


def flags(version: str, with_cuda: bool, debug: bool = False) -> Dict[str, List[str]]:
    import torch
    opt = ["-O0", "-g"] if debug else ["-O3"]
    defines = [
        f"-DLLMHNI_VERSION={version}",
        f"-DLLMHNI_BUILT_TORCH={torch.__version__}",
        f"-DLLMHNI_BUILT_CUDA={torch.version.cuda or ''}",
    ]
    if with_cuda:
        defines.append("-DLLMHNI_WITH_CUDA")
    omp = ["-fopenmp"] if _openmp() else []
    # No -std: torch.utils.cpp_extension picks the standard its headers need.
    cxx = [*opt, *omp, *defines]
    nvcc = [*opt, "--expt-relaxed-constexpr", "-lineinfo", *defines]
    return {"cxx": cxx, "nvcc": nvcc, "ldflags": omp}


def default_cuda_home() -> None:
    """Prefers /usr/local/cuda over a bare `nvcc` wrapper on PATH (which makes torch guess /usr/local)."""
    if not os.environ.get("CUDA_HOME") and not os.environ.get("CUDA_PATH") \
            and os.path.isfile("/usr/local/cuda/bin/nvcc"):
        os.environ["CUDA_HOME"] = "/usr/local/cuda"


def cuda_include_dirs() -> List[str]:
    """Header folders of the nvidia-* wheels (cusparse.h, cublas_v2.h, ...) that ATen's CUDA
    headers include, for toolkits that ship without them. Empty when none are needed."""
    from torch.utils.cpp_extension import CUDA_HOME
    needed = ("cusparse.h", "cublas_v2.h")
    if CUDA_HOME and all(os.path.isfile(os.path.join(CUDA_HOME, "include", h)) for h in needed):
        return []
    roots = list(site.getsitepackages()) + [p for p in sys.path if p.endswith("site-packages")]
    found: List[str] = []
    for root in dict.fromkeys(roots):
        for inc in sorted(glob.glob(os.path.join(root, "nvidia", "*", "include"))):
            if any(os.path.isfile(os.path.join(inc, h)) for h in needed) and inc not in found:
                found.append(inc)
    return found
