// CUDA registration of the batched InfoNCE (implementation in infonce_impl.h: cuBLAS
// batched matmuls on row blocks, fused ATen elementwise, all on the current stream,
// no host synchronisation). Row blocks hold at most 2^22 scores (16 MB in fp32), so
// memory stays O(B*d + tile) while a B = 4096 batch of two pairs needs 8 blocks.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "common/registry.h"
#include "contrastive/contrastive_checks.h"
#include "contrastive/infonce_impl.h"

namespace llmhni {
namespace contrastive {
namespace {

constexpr int64_t kCudaTileElems = int64_t(1) << 22;

std::tuple<at::Tensor, at::Tensor> infonce_cuda(const at::Tensor& a, const at::Tensor& b, double temperature) {
  check_infonce_args(a, b, temperature, "infonce", c10::DeviceType::CUDA);
  const c10::cuda::CUDAGuard guard(a.device());
  return infonce_forward_impl(a, b, temperature, kCudaTileElems, /*parallel_blocks=*/false);
}

std::tuple<at::Tensor, at::Tensor> infonce_backward_cuda(const at::Tensor& grad_loss, const at::Tensor& a,
                                                         const at::Tensor& b, const at::Tensor& lse,
                                                         double temperature) {
  check_infonce_backward_args(grad_loss, a, b, lse, temperature, "infonce_backward", c10::DeviceType::CUDA);
  const c10::cuda::CUDAGuard guard(a.device());
  return infonce_backward_impl(grad_loss, a, b, lse, temperature, kCudaTileElems, /*parallel_blocks=*/false);
}

}  // namespace
}  // namespace contrastive
}  // namespace llmhni

LLMHNI_REGISTER_KERNEL("infonce", "cuda");
LLMHNI_REGISTER_KERNEL("infonce_backward", "cuda");

TORCH_LIBRARY_IMPL(llmhni, CUDA, m) {
  m.impl("infonce", &llmhni::contrastive::infonce_cuda);
  m.impl("infonce_backward", &llmhni::contrastive::infonce_backward_cuda);
}
