// CPU registration of the batched InfoNCE (implementation in infonce_impl.h): row
// blocks of at most 2^18 scores (1 MB in fp32): few enough blocks that the per-op
// overhead stays small, far below the 64 MB of a B = 4096 score matrix.
#include <ATen/ATen.h>
#include <torch/library.h>

#include "common/registry.h"
#include "contrastive/contrastive_checks.h"
#include "contrastive/infonce_impl.h"

namespace llmhni {
namespace contrastive {
namespace {

constexpr int64_t kCpuTileElems = int64_t(1) << 18;

std::tuple<at::Tensor, at::Tensor> infonce_cpu(const at::Tensor& a, const at::Tensor& b, double temperature) {
  check_infonce_args(a, b, temperature, "infonce", c10::DeviceType::CPU);
  return infonce_forward_impl(a, b, temperature, kCpuTileElems, /*parallel_blocks=*/true);
}

std::tuple<at::Tensor, at::Tensor> infonce_backward_cpu(const at::Tensor& grad_loss, const at::Tensor& a,
                                                        const at::Tensor& b, const at::Tensor& lse,
                                                        double temperature) {
  check_infonce_backward_args(grad_loss, a, b, lse, temperature, "infonce_backward", c10::DeviceType::CPU);
  return infonce_backward_impl(grad_loss, a, b, lse, temperature, kCpuTileElems, /*parallel_blocks=*/true);
}

}  // namespace
}  // namespace contrastive
}  // namespace llmhni

LLMHNI_REGISTER_KERNEL("infonce", "cpu");
LLMHNI_REGISTER_KERNEL("infonce_backward", "cpu");

TORCH_LIBRARY_IMPL(llmhni, CPU, m) {
  m.impl("infonce", &llmhni::contrastive::infonce_cpu);
  m.impl("infonce_backward", &llmhni::contrastive::infonce_backward_cpu);
}
