"""Compile-checks one csrc/ file with the flags of the real build (developer tool).

    python build_tools/compile_one.py csrc/graph/cpu/spmm_cpu.cpp
    python build_tools/compile_one.py csrc/graph/cuda/spmm_cuda.cu   # needs a CUDA torch

C++ files get -fsyntax-only; .cu files are compiled for sm_80 to a throw-away object.
"""
import os
import subprocess
import sys
import sysconfig
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "llmhni_ext"))

import _build_flags  # noqa: E402

_build_flags.default_cuda_home()
import torch  # noqa: E402
from torch.utils.cpp_extension import CUDA_HOME, include_paths  # noqa: E402


def main(path):
    is_cu = path.endswith(".cu")
    f = _build_flags.flags("dev", with_cuda=is_cu)
    abi = f"-D_GLIBCXX_USE_CXX11_ABI={int(torch._C._GLIBCXX_USE_CXX11_ABI)}"
    inc = [f"-I{p}" for p in include_paths("cuda" if is_cu else "cpu")]
    inc += [f"-I{os.path.join(ROOT, 'csrc')}", f"-I{sysconfig.get_paths()['include']}"]
    if is_cu:
        inc += [f"-I{p}" for p in _build_flags.cuda_include_dirs()]
    common = ["-DTORCH_EXTENSION_NAME=_C", "-DTORCH_API_INCLUDE_EXTENSION_H", abi]
    if is_cu:
        if CUDA_HOME is None:
            sys.exit("no CUDA toolkit found (use the CUDA venv)")
        out = os.path.join(tempfile.gettempdir(), "llmhni_compile_one.o")
        cmd = [os.path.join(CUDA_HOME, "bin", "nvcc"), "-std=c++20", "-c", path, "-o", out, *inc, *common,
               *f["nvcc"], "-gencode=arch=compute_80,code=sm_80", "--compiler-options", "-fPIC",
               "-D__CUDA_NO_HALF_OPERATORS__", "-D__CUDA_NO_HALF_CONVERSIONS__",
               "-D__CUDA_NO_BFLOAT16_CONVERSIONS__", "-D__CUDA_NO_HALF2_OPERATORS__"]
    else:
        cmd = ["c++", "-std=c++20", "-fsyntax-only", "-fPIC", path, *inc, *common, *f["cxx"]]
    print(" ".join(cmd[:3]), "...")
    sys.exit(subprocess.call(cmd))


if __name__ == "__main__":
    main(sys.argv[1])
