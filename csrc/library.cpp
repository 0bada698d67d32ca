// The llmhni operator library. Every op's schema is declared once: the ones that
// belong to this file here, each op family in its own *_schema.cpp with
// TORCH_LIBRARY_FRAGMENT. Device kernels are registered per backend with
// TORCH_LIBRARY_IMPL in their own files (cpu/*.cpp, cuda/*.cu). Fake kernels and
// autograd are registered from Python (llmhni_ext/ops/).
#include <torch/library.h>

#include <algorithm>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "common/registry.h"

#define LLMHNI_STR_INNER(x) #x
#define LLMHNI_STR(x) LLMHNI_STR_INNER(x)

#ifndef LLMHNI_VERSION
#define LLMHNI_VERSION unknown
#endif
#ifndef LLMHNI_BUILT_TORCH
#define LLMHNI_BUILT_TORCH unknown
#endif
#ifndef LLMHNI_BUILT_CUDA
#define LLMHNI_BUILT_CUDA
#endif

namespace llmhni {
namespace {
std::vector<std::string>& kernel_list() {
  static std::vector<std::string> list;
  return list;
}
std::mutex& kernel_mutex() {
  static std::mutex m;
  return m;
}
}  // namespace

KernelRegistrar::KernelRegistrar(const char* op, const char* device) {
  std::lock_guard<std::mutex> lock(kernel_mutex());
  kernel_list().push_back(std::string(op) + ":" + device);
}

std::vector<std::string> compiled_kernels() {
  std::lock_guard<std::mutex> lock(kernel_mutex());
  auto out = kernel_list();
  std::sort(out.begin(), out.end());
  return out;
}

// Build facts as a small JSON object (parsed by llmhni_ext._backend).
std::string build_info() {
  std::ostringstream s;
  s << "{\"version\": \"" << LLMHNI_STR(LLMHNI_VERSION) << "\", \"torch\": \""
    << LLMHNI_STR(LLMHNI_BUILT_TORCH) << "\", \"cuda\": \"" << LLMHNI_STR(LLMHNI_BUILT_CUDA)
    << "\", \"with_cuda\": "
#ifdef LLMHNI_WITH_CUDA
    << "true"
#else
    << "false"
#endif
    << ", \"kernels\": [";
  const auto kernels = compiled_kernels();
  for (size_t i = 0; i < kernels.size(); ++i) s << (i ? ", " : "") << "\"" << kernels[i] << "\"";
  s << "]}";
  return s.str();
}

}  // namespace llmhni

TORCH_LIBRARY(llmhni, m) {
  m.def("build_info() -> str", &llmhni::build_info);
  // Raw Philox4x32-10 words for `index` (int64, 1-D): an [n, 4] int64 tensor of
  // uint32 values. Exposed so tests can hold every kernel's random stream to the
  // reference (llmhni_ext.reference.philox4x32).
  m.def("philox_random(int seed, int offset, Tensor index, int sub) -> Tensor");
}
