"""Compiler flags shared by setup.py and the JIT fallback (CMake mirrors them)."""
from __future__ import annotations

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
