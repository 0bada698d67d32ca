#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "common/checks.h"
#include "common/philox.h"
#include "common/registry.h"

namespace llmhni {
namespace {

at::Tensor philox_random_cpu(int64_t seed, int64_t offset, const at::Tensor& index, int64_t sub) {
  TORCH_CHECK(index.scalar_type() == at::kLong && index.dim() == 1,
              "philox_random: index must be a 1-D int64 tensor, got ", index.scalar_type(), " ",
              index.sizes());
  auto idx = index.contiguous();
  auto out = at::empty({idx.numel(), 4}, idx.options());
  const int64_t* ip = idx.data_ptr<int64_t>();
  int64_t* op = out.data_ptr<int64_t>();
  at::parallel_for(0, idx.numel(), 4096, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const Random4 r = random4(static_cast<uint64_t>(seed), static_cast<uint64_t>(offset),
                                static_cast<uint64_t>(ip[i]), static_cast<uint32_t>(sub));
      for (int j = 0; j < 4; ++j) op[4 * i + j] = static_cast<int64_t>(r.x[j]);
    }
  });
  return out;
}

}  // namespace
}  // namespace llmhni

LLMHNI_REGISTER_KERNEL("philox_random", "cpu");

TORCH_LIBRARY_IMPL(llmhni, CPU, m) { m.impl("philox_random", &llmhni::philox_random_cpu); }
