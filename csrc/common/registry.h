// Which kernels this build compiled, for llmhni::build_info and `llmhni info`.
// Each kernel file registers itself once:  LLMHNI_REGISTER_KERNEL("spmm", "cpu");
#pragma once

#include <string>
#include <vector>

namespace llmhni {

struct KernelRegistrar {
  KernelRegistrar(const char* op, const char* device);
};

std::vector<std::string> compiled_kernels();

}  // namespace llmhni

#define LLMHNI_CONCAT_INNER(a, b) a##b
#define LLMHNI_CONCAT(a, b) LLMHNI_CONCAT_INNER(a, b)
#define LLMHNI_REGISTER_KERNEL(op, device) \
  static ::llmhni::KernelRegistrar LLMHNI_CONCAT(llmhni_kernel_registrar_, __COUNTER__)(op, device)
