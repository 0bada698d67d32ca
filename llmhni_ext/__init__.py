"""llmhni: LLMHNI (hard vs. noisy samples with language models) on C++/CUDA kernels.

Importing the package never compiles anything and never fails for lack of CUDA
or of the compiled module: the backend (compiled, JIT or reference) is chosen on
first use of an op; see :func:`backend_info`.
"""
from ._backend import BackendWarning, backend_info
from ._version import __version__

__all__ = ["__version__", "backend_info", "BackendWarning"]
