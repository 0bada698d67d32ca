"""Builds ``llmhni_ext._C``: the CPU kernels always, the CUDA kernels when possible.

Environment:
  LLMHNI_NO_EXTENSION=1   install the pure-Python package (reference ops, JIT on first use)
  FORCE_CUDA=1            compile the CUDA kernels even without a visible GPU
  TORCH_CUDA_ARCH_LIST    CUDA architectures (default "8.0;9.0+PTX")
  MAX_JOBS                parallel compile jobs (read by torch's ninja build)
  LLMHNI_DEBUG=1          -O0 -g builds
"""
import importlib.util
import os
import shutil

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

ROOT = os.path.dirname(os.path.abspath(__file__))
CSRC = os.path.join(ROOT, "csrc")


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


VERSION = _load("_v", os.path.join(ROOT, "llmhni_ext", "_version.py")).__version__
read_sources = _load("_s", os.path.join(ROOT, "llmhni_ext", "_sources.py")).read_sources
build_flags = _load("_f", os.path.join(ROOT, "llmhni_ext", "_build_flags.py"))


class BuildPyWithSources(build_py):
    """Ships csrc/ inside the package so the JIT fallback can rebuild it after install."""

    def run(self):
        super().run()
        dst = os.path.join(self.build_lib, "llmhni_ext", "_csrc")
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(CSRC, dst, ignore=shutil.ignore_patterns("*.o", "__pycache__"))
        if ext_modules:
            # Lets the loader refuse a module built for another torch before importing it.
            import json

            import torch
            with open(os.path.join(self.build_lib, "llmhni_ext", "_built_with.json"), "w") as f:
                json.dump({"torch": torch.__version__, "llmhni": VERSION}, f)


def extensions():
    if os.environ.get("LLMHNI_NO_EXTENSION", "0") in ("1", "true", "yes"):
        print("llmhni: LLMHNI_NO_EXTENSION set, installing without compiled kernels")
        return [], {}
    build_flags.default_cuda_home()
    import torch
    from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension

    with_cuda = os.environ.get("FORCE_CUDA", "0") == "1" or (
        torch.version.cuda is not None and CUDA_HOME is not None
        and shutil.which(os.path.join(CUDA_HOME, "bin", "nvcc")) is not None)
    if with_cuda:
        os.environ.setdefault("TORCH_CUDA_ARCH_LIST", build_flags.DEFAULT_CUDA_ARCHS)
    src = read_sources(CSRC)
    sources = src["cpu"] + src["python"] + (src["cuda"] if with_cuda else [])
    sources = [os.path.relpath(s, ROOT) for s in sources]
    flags = build_flags.flags(VERSION, with_cuda, debug=os.environ.get("LLMHNI_DEBUG") == "1")
    kind = CUDAExtension if with_cuda else CppExtension
    print(f"llmhni: building {'CPU+CUDA' if with_cuda else 'CPU'} kernels against torch {torch.__version__}"
          + (f" (CUDA {torch.version.cuda}, archs {os.environ['TORCH_CUDA_ARCH_LIST']})" if with_cuda else ""))
    ext = kind(
        name="llmhni_ext._C",
        sources=sources,
        include_dirs=[CSRC] + (build_flags.cuda_include_dirs() if with_cuda else []),
        extra_compile_args={"cxx": flags["cxx"], "nvcc": flags["nvcc"]},
        extra_link_args=flags["ldflags"],
    )
    return [ext], {"build_ext": BuildExtension.with_options(use_ninja=True)}


ext_modules, cmdclass = extensions()
cmdclass["build_py"] = BuildPyWithSources

setup(
    version=VERSION,
    packages=find_packages(include=["llmhni_ext", "llmhni_ext.*"]),
    package_data={"llmhni_ext": ["configs/*.yaml"]},
    ext_modules=ext_modules,
    cmdclass=cmdclass,
    zip_safe=False,
)
