#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "common/philox.h"
#include "common/registry.h"

namespace llmhni {
namespace {

__global__ void philox_random_kernel(uint64_t seed, uint64_t offset, const int64_t* __restrict__ index,
                                     uint32_t sub, int64_t n, int64_t* __restrict__ out) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const Random4 r = random4(seed, offset, static_cast<uint64_t>(index[i]), sub);
  for (int j = 0; j < 4; ++j) out[4 * i + j] = static_cast<int64_t>(r.x[j]);
}

at::Tensor philox_random_cuda(int64_t seed, int64_t offset, const at::Tensor& index, int64_t sub) {
  TORCH_CHECK(index.scalar_type() == at::kLong && index.dim() == 1,
              "philox_random: index must be a 1-D int64 tensor, got ", index.scalar_type(), " ",
              index.sizes());
  const c10::cuda::CUDAGuard guard(index.device());
  auto idx = index.contiguous();
  auto out = at::empty({idx.numel(), 4}, idx.options());
  const int64_t n = idx.numel();
  if (n == 0) return out;
  constexpr int threads = 256;
  const int64_t blocks = (n + threads - 1) / threads;
  philox_random_kernel<<<blocks, threads, 0, at::cuda::getCurrentCUDAStream()>>>(
      static_cast<uint64_t>(seed), static_cast<uint64_t>(offset), idx.data_ptr<int64_t>(),
      static_cast<uint32_t>(sub), n, out.data_ptr<int64_t>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

}  // namespace
}  // namespace llmhni

LLMHNI_REGISTER_KERNEL("philox_random", "cuda");

TORCH_LIBRARY_IMPL(llmhni, CUDA, m) { m.impl("philox_random", &llmhni::philox_random_cuda); }
