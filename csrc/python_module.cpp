// The pybind11 module llmhni_ext._C. Importing it loads the shared library, whose
// static initialisers register the llmhni ops with the dispatcher; it also
// reports the build facts to Python.
#include <torch/extension.h>

#include "common/registry.h"

namespace llmhni {
std::string build_info();
}

PYBIND11_MODULE(_C, m) {
  m.doc() = "llmhni compiled kernels (ops are reached through torch.ops.llmhni)";
  m.def("build_info", &llmhni::build_info, "Build facts as a JSON string");
  m.def("compiled_kernels", &llmhni::compiled_kernels, "op:device pairs compiled into this build");
}
