// Edge-drop views on CUDA. A warp per row: lanes stride over the row's entries, draw
// the keep decisions (the Philox word keyed by the canonical node pair, so both stored
// directions agree without a lookup) and count kept degrees with warp ballots; a
// second warp-per-row pass writes D'^-1/2 A' D'^-1/2 in place (edge_drop_mask) or
// compacted at ballot-prefix positions (edge_drop_compact). No float atomics; the
// output equals the CPU kernel's and the reference's bit for bit.
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <tuple>
#include <vector>

#include "common/dispatch.h"
#include "common/philox.h"
#include "common/registry.h"
#include "contrastive/contrastive_checks.h"

namespace llmhni {
namespace contrastive {
namespace {

constexpr int kWarpsPerBlock = 8;
constexpr int kThreads = 32 * kWarpsPerBlock;

inline int64_t row_blocks(int64_t n) { return (n + kWarpsPerBlock - 1) / kWarpsPerBlock; }

template <typename idx_t>
__global__ void draw_keep_kernel(const idx_t* __restrict__ rp, const idx_t* __restrict__ col, int64_t n,
                                 int64_t nnz, int64_t views, uint64_t seed, uint64_t offset, float p,
                                 uint8_t* __restrict__ keep, int32_t* __restrict__ deg) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (r >= n) return;  // whole warps exit together
  const int64_t k0 = rp[r], k1 = rp[r + 1];
  const uint64_t un = static_cast<uint64_t>(n), ur = static_cast<uint64_t>(r);
  for (int64_t g = 0; g < views; g += 4) {
    const int w = static_cast<int>(views - g < 4 ? views - g : 4);
    int32_t cnt[4] = {0, 0, 0, 0};
    for (int64_t base = k0; base < k1; base += 32) {
      const int64_t k = base + lane;
      const bool active = k < k1;
      Random4 x{{0u, 0u, 0u, 0u}};
      if (active) {
        const uint64_t c = static_cast<uint64_t>(col[k]);
        const uint64_t key = (ur < c ? ur : c) * un + (ur < c ? c : ur);
        x = random4(seed, offset, key, static_cast<uint32_t>(g / 4));
      }
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        if (j < w) {
          const bool kp = active && uniform_float(x.x[j]) < p;
          if (active) keep[(g + j) * nnz + k] = kp ? 1 : 0;
          cnt[j] += __popc(__ballot_sync(0xffffffffu, kp));
        }
      }
    }
    if (lane == 0) {
      for (int j = 0; j < w; ++j) deg[(g + j) * n + r] = cnt[j];
    }
  }
}

__global__ void inverse_sqrt_kernel(const int32_t* __restrict__ deg, int64_t m, double* __restrict__ dinv) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= m) return;
  const int32_t d = deg[i];
  // IEEE sqrt and division are correctly rounded in double, like the CPU's.
  dinv[i] = d > 0 ? 1.0 / sqrt(static_cast<double>(d)) : 0.0;
}

template <typename idx_t>
__global__ void mask_values_kernel(const idx_t* __restrict__ rp, const idx_t* __restrict__ col, int64_t n,
                                   int64_t nnz, int64_t views, const uint8_t* __restrict__ keep,
                                   const double* __restrict__ dinv, float* __restrict__ value) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (r >= n) return;
  const int64_t k0 = rp[r], k1 = rp[r + 1];
  for (int64_t v = 0; v < views; ++v) {
    const double* dv = dinv + v * n;
    const double dr = dv[r];
    for (int64_t k = k0 + lane; k < k1; k += 32) {
      value[v * nnz + k] = keep[v * nnz + k] ? static_cast<float>(dr * dv[col[k]]) : 0.0f;
    }
  }
}

template <typename idx_t>
__global__ void compact_view_kernel(const idx_t* __restrict__ rp, const idx_t* __restrict__ col, int64_t n,
                                    const uint8_t* __restrict__ keep, const double* __restrict__ dv,
                                    const int64_t* __restrict__ rp_out, idx_t* __restrict__ col_out,
                                    float* __restrict__ val_out) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (r >= n) return;
  const int64_t k0 = rp[r], k1 = rp[r + 1];
  const double dr = dv[r];
  int64_t pos = rp_out[r];
  const unsigned lower = (1u << lane) - 1u;
  for (int64_t base = k0; base < k1; base += 32) {
    const int64_t k = base + lane;
    const bool kp = k < k1 && keep[k];
    const unsigned ballot = __ballot_sync(0xffffffffu, kp);
    if (kp) {
      const int64_t at = pos + __popc(ballot & lower);
      const idx_t c = col[k];
      col_out[at] = c;
      val_out[at] = static_cast<float>(dr * dv[c]);
    }
    pos += __popc(ballot);
  }
}

// Content checks (rowptr starts at 0, ends at nnz, never decreases; columns in range)
// with one device-to-host copy of two flags.
struct Drawn {
  at::Tensor keep, deg, dinv;
};

template <typename idx_t>
Drawn draw(const at::Tensor& rowptr, const at::Tensor& col, double keep_prob, int64_t views, int64_t seed,
           int64_t offset) {
  const int64_t n = rowptr.numel() - 1, nnz = col.numel();
  auto stream = at::cuda::getCurrentCUDAStream();
  Drawn d;
  d.keep = at::empty({views, nnz}, col.options().dtype(at::kByte));
  d.deg = at::empty({views, n}, col.options().dtype(at::kInt));
  d.dinv = at::empty({views, n}, col.options().dtype(at::kDouble));
  if (n == 0) return d;
  draw_keep_kernel<idx_t><<<row_blocks(n), kThreads, 0, stream>>>(
      rowptr.data_ptr<idx_t>(), col.data_ptr<idx_t>(), n, nnz, views, static_cast<uint64_t>(seed),
      static_cast<uint64_t>(offset), static_cast<float>(keep_prob), d.keep.data_ptr<uint8_t>(),
      d.deg.data_ptr<int32_t>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  const int64_t m = views * n;
  inverse_sqrt_kernel<<<(m + 255) / 256, 256, 0, stream>>>(d.deg.data_ptr<int32_t>(), m, d.dinv.data_ptr<double>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return d;
}

at::Tensor edge_drop_mask_cuda(const at::Tensor& rowptr_in, const at::Tensor& col_in, double keep_prob,
                               int64_t num_views, int64_t seed, int64_t offset) {
  constexpr const char* op = "edge_drop_mask";
  const c10::cuda::CUDAGuard guard(rowptr_in.device());
  at::Tensor rowptr, col;
  std::tie(rowptr, col) = edge_drop_inputs(rowptr_in, col_in, keep_prob, num_views, op, c10::DeviceType::CUDA);
  const int64_t n = rowptr.numel() - 1, nnz = col.numel();
  auto value = at::empty({num_views, nnz}, col.options().dtype(at::kFloat));
  if (n == 0 || nnz == 0) return value;
  with_index_type(rowptr.scalar_type(), [&](auto tag) {
    using index_t = decltype(tag);
    const Drawn d = draw<index_t>(rowptr, col, keep_prob, num_views, seed, offset);
    mask_values_kernel<index_t><<<row_blocks(n), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
        rowptr.data_ptr<index_t>(), col.data_ptr<index_t>(), n, nnz, num_views, d.keep.data_ptr<uint8_t>(),
        d.dinv.data_ptr<double>(), value.data_ptr<float>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return value;
}

std::tuple<std::vector<at::Tensor>, std::vector<at::Tensor>, std::vector<at::Tensor>> edge_drop_compact_cuda(
    const at::Tensor& rowptr_in, const at::Tensor& col_in, double keep_prob, int64_t num_views, int64_t seed,
    int64_t offset) {
  constexpr const char* op = "edge_drop_compact";
  const c10::cuda::CUDAGuard guard(rowptr_in.device());
  at::Tensor rowptr, col;
  std::tie(rowptr, col) = edge_drop_inputs(rowptr_in, col_in, keep_prob, num_views, op, c10::DeviceType::CUDA);
  const int64_t n = rowptr.numel() - 1, nnz = col.numel();
  std::vector<at::Tensor> rowptrs(num_views), cols(num_views), values(num_views);
  with_index_type(rowptr.scalar_type(), [&](auto tag) {
    using index_t = decltype(tag);
    const Drawn d = draw<index_t>(rowptr, col, keep_prob, num_views, seed, offset);
    // rowptr of every view: [views, n + 1] int64, exclusive scan of the kept degrees.
    auto rp_all = at::zeros({num_views, n + 1}, col.options().dtype(at::kLong));
    if (n > 0) rp_all.narrow(1, 1, n).copy_(at::cumsum(d.deg, 1, at::kLong));
    // One device-to-host copy: the kept entry count of every view, to size the outputs.
    const auto totals = rp_all.select(1, n).cpu();
    const int64_t* tot = totals.data_ptr<int64_t>();
    for (int64_t v = 0; v < num_views; ++v) {
      auto col_out = at::empty({tot[v]}, col.options());
      auto val_out = at::empty({tot[v]}, col.options().dtype(at::kFloat));
      auto rp_v = rp_all.select(0, v);
      if (n > 0 && tot[v] > 0) {
        compact_view_kernel<index_t><<<row_blocks(n), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
            rowptr.data_ptr<index_t>(), col.data_ptr<index_t>(), n, d.keep.data_ptr<uint8_t>() + v * nnz,
            d.dinv.data_ptr<double>() + v * n, rp_v.data_ptr<int64_t>(), col_out.data_ptr<index_t>(),
            val_out.data_ptr<float>());
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      }
      rowptrs[v] = rp_v.to(rowptr.scalar_type()).contiguous();
      cols[v] = col_out;
      values[v] = val_out;
    }
  });
  return {rowptrs, cols, values};
}

}  // namespace
}  // namespace contrastive
}  // namespace llmhni

LLMHNI_REGISTER_KERNEL("edge_drop_mask", "cuda");
LLMHNI_REGISTER_KERNEL("edge_drop_compact", "cuda");

TORCH_LIBRARY_IMPL(llmhni, CUDA, m) {
  m.impl("edge_drop_mask", &llmhni::contrastive::edge_drop_mask_cuda);
  m.impl("edge_drop_compact", &llmhni::contrastive::edge_drop_compact_cuda);
}
