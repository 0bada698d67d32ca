// CUDA kernels of llmhni::sample_negatives.
//
// uniform / popularity: one thread per (user, negative slot).
// dns / llmhni: one warp per slot; lane l draws and scores candidates l, l+32, ...
// (gather-and-dot from the embedding tables, no B x M x d buffer), keeps candidate ids
// and ranking keys in shared memory, ranks them by (score desc, index asc), and
// reduces the choice with the same total order as the CPU kernel and the reference.
// Counts are integer atomics (order-independent); no float atomics. Runs on the
// caller's current stream.
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>

#include "common/registry.h"
#include "sampler/sample_negatives_host.h"
#include "sampler/sampler_common.h"

namespace llmhni {
namespace sampler {
namespace {

constexpr int kWarp = 32;
constexpr unsigned kFull = 0xffffffffu;

__device__ __forceinline__ long long warp_sum(long long v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFull, v, o);
  return v;
}

__device__ __forceinline__ void add_counts(unsigned long long* block_counts, long long rej, long long exh,
                                           long long filt, long long fb) {
  rej = warp_sum(rej);
  exh = warp_sum(exh);
  filt = warp_sum(filt);
  fb = warp_sum(fb);
  if ((threadIdx.x & (kWarp - 1)) == 0) {
    if (rej) atomicAdd(block_counts + 0, static_cast<unsigned long long>(rej));
    if (exh) atomicAdd(block_counts + 1, static_cast<unsigned long long>(exh));
    if (filt) atomicAdd(block_counts + 2, static_cast<unsigned long long>(filt));
    if (fb) atomicAdd(block_counts + 3, static_cast<unsigned long long>(fb));
  }
}

__device__ __forceinline__ void flush_counts(unsigned long long* block_counts, unsigned long long* counts) {
  __syncthreads();
  if (threadIdx.x < 4 && block_counts[threadIdx.x]) atomicAdd(counts + threadIdx.x, block_counts[threadIdx.x]);
}

template <typename I, typename TE>
__global__ void sample_simple_kernel(Params p, const I* __restrict__ rowptr, const I* __restrict__ col,
                                     const int64_t* __restrict__ users, const int64_t* __restrict__ cands,
                                     const int64_t* __restrict__ cdf, const TE* __restrict__ ue,
                                     const TE* __restrict__ ie, int64_t* __restrict__ neg, float* __restrict__ scores,
                                     unsigned long long* __restrict__ counts) {
  __shared__ unsigned long long block_counts[4];
  if (threadIdx.x < 4) block_counts[threadIdx.x] = 0;
  __syncthreads();
  const int64_t s = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  DrawCounts dc;
  if (s < p.S) {
    const int64_t u = users[s / p.N];
    const int64_t lo = static_cast<int64_t>(rowptr[u]), hi = static_cast<int64_t>(rowptr[u + 1]);
    const int64_t item = cands ? cands[s * p.M]
                               : draw_candidate(col, lo, hi, p.n_items, p.mode == kPopularity ? cdf : nullptr, p.seed,
                                                p.offset, static_cast<uint64_t>(s * p.M), p.max_redraws, dc);
    neg[s] = item;
    if (scores) scores[s] = lane8_dot(ue + u * p.d, ie + item * p.d, p.d);
  }
  add_counts(block_counts, dc.rejected, dc.exhausted, 0, 0);
  flush_counts(block_counts, counts);
}

// (value, index) pairs reduced across a warp; `better` is a strict total order.
struct Pick {
  float v;
  int m;  // -1: none
};

__device__ __forceinline__ bool max_better(const Pick& a, const Pick& b) {  // dns: higher key, lower index
  if (a.m < 0) return false;
  if (b.m < 0) return true;
  return a.v > b.v || (a.v == b.v && a.m < b.m);
}

__device__ __forceinline__ bool min_better(const Pick& a, const Pick& b) {  // llmhni: lower cosine, lower index
  if (a.m < 0) return false;
  if (b.m < 0) return true;
  return a.v < b.v || (a.v == b.v && a.m < b.m);
}

template <bool kMax>
__device__ __forceinline__ Pick warp_best(Pick x) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    Pick y{__shfl_xor_sync(kFull, x.v, o), __shfl_xor_sync(kFull, x.m, o)};
    if (kMax ? max_better(y, x) : min_better(y, x)) x = y;
  }
  return x;
}

template <typename I, typename TE, typename TS>
__global__ void sample_scored_kernel(Params p, const I* __restrict__ rowptr, const I* __restrict__ col,
                                     const int64_t* __restrict__ users, const int64_t* __restrict__ cands,
                                     const TE* __restrict__ ue, const TE* __restrict__ ie, const TS* __restrict__ us,
                                     const TS* __restrict__ is, int64_t* __restrict__ neg, float* __restrict__ scores,
                                     unsigned long long* __restrict__ counts) {
  extern __shared__ __align__(16) unsigned char smem[];
  __shared__ unsigned long long block_counts[4];
  const int warps = blockDim.x / kWarp;
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  int64_t* cand = reinterpret_cast<int64_t*>(smem) + static_cast<int64_t>(warp) * p.M;
  float* key = reinterpret_cast<float*>(reinterpret_cast<int64_t*>(smem) + static_cast<int64_t>(warps) * p.M) +
               static_cast<int64_t>(warp) * p.M;
  if (threadIdx.x < 4) block_counts[threadIdx.x] = 0;
  __syncthreads();
  const int64_t s = static_cast<int64_t>(blockIdx.x) * warps + warp;
  DrawCounts dc;
  long long filtered = 0, fallbacks = 0;
  if (s < p.S) {  // warp-uniform
    const int64_t u = users[s / p.N];
    const int64_t lo = static_cast<int64_t>(rowptr[u]), hi = static_cast<int64_t>(rowptr[u + 1]);
    const TE* eu = ue + u * p.d;
    for (int64_t m = lane; m < p.M; m += kWarp) {
      const int64_t c = cands ? cands[s * p.M + m]
                              : draw_candidate(col, lo, hi, p.n_items, static_cast<const int64_t*>(nullptr), p.seed,
                                               p.offset, static_cast<uint64_t>(s * p.M + m), p.max_redraws, dc);
      cand[m] = c;
      key[m] = rank_key(lane8_dot(eu, ie + c * p.d, p.d));
    }
    __syncwarp();
    Pick best{0.f, -1};
    if (p.mode == kDns) {
      for (int64_t m = lane; m < p.M; m += kWarp) {
        const Pick x{key[m], static_cast<int>(m)};
        if (max_better(x, best)) best = x;
      }
      best = warp_best<true>(best);
    } else {
      const TS* su = us + u * p.ds;
      const float norm_u = fsqrt(lane8_dot(su, su, p.ds));
      for (int64_t m = lane; m < p.M; m += kWarp) {
        const float k = key[m];
        int64_t rank = 0;
        for (int64_t q = 0; q < p.M; ++q) {
          const float kq = key[q];
          rank += (kq > k) || (kq == k && q < m);
        }
        if (rank >= p.K) continue;
        const float c = cosine(su, norm_u, is + cand[m] * p.ds, p.ds);
        if (c <= p.thr) {
          const Pick x{c, static_cast<int>(m)};
          if (min_better(x, best)) best = x;
        } else {
          ++filtered;
        }
      }
      best = warp_best<false>(best);
      if (best.m < 0) {  // every top-K candidate is a probable false negative
        if (lane == 0) ++fallbacks;
        for (int64_t m = lane; m < p.M; m += kWarp) {
          const Pick x{cosine(su, norm_u, is + cand[m] * p.ds, p.ds), static_cast<int>(m)};
          if (min_better(x, best)) best = x;
        }
        best = warp_best<false>(best);
      }
    }
    if (lane == 0) {
      const int64_t item = cand[best.m];
      neg[s] = item;
      if (scores) scores[s] = lane8_dot(eu, ie + item * p.d, p.d);
    }
    __syncwarp();
  }
  add_counts(block_counts, dc.rejected, dc.exhausted, filtered, fallbacks);
  flush_counts(block_counts, counts);
}

// The CUDA policy of sampler/sample_negatives_host.h: one thread per slot for uniform and
// popularity, one warp per slot for dns and llmhni, on the current stream.
struct Cuda {
  static constexpr c10::DeviceType kType = c10::DeviceType::CUDA;
  struct Guard {
    explicit Guard(const at::Tensor& t) : g(t.device()) {}
    c10::cuda::CUDAGuard g;
  };
  static void run(const Params& p, const SampleInputs& in, at::Tensor& neg, at::Tensor& scores, at::Tensor& counts) {
    const bool with_scores = in.user_emb.defined();
    auto* cnt = reinterpret_cast<unsigned long long*>(counts.data_ptr<int64_t>());
    auto stream = at::cuda::getCurrentCUDAStream();
    with_index_type(in.rowptr.scalar_type(), [&](auto itag) {
      using I = decltype(itag);
      with_float_type(in.user_emb, [&](auto etag) {
        using TE = decltype(etag);
        if (p.mode == kUniform || p.mode == kPopularity) {
          constexpr int threads = 256;
          const int64_t blocks = (p.S + threads - 1) / threads;
          sample_simple_kernel<I, TE><<<static_cast<unsigned>(blocks), threads, 0, stream>>>(
              p, in.rowptr.const_data_ptr<I>(), in.col.const_data_ptr<I>(), in.users.const_data_ptr<int64_t>(),
              ptr_or_null<int64_t>(in.candidates), ptr_or_null<int64_t>(in.pop_cdf), ptr_or_null<TE>(in.user_emb),
              ptr_or_null<TE>(in.item_emb), neg.data_ptr<int64_t>(), with_scores ? scores.data_ptr<float>() : nullptr,
              cnt);
          C10_CUDA_KERNEL_LAUNCH_CHECK();
          return;
        }
        with_float_type(in.user_sem, [&](auto stag) {
          using TS = decltype(stag);
          const int64_t per_warp = p.M * static_cast<int64_t>(sizeof(int64_t) + sizeof(float));
          const int warps = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(4, 40960 / per_warp)));
          const size_t shmem = static_cast<size_t>(warps * per_warp);
          const int64_t blocks = (p.S + warps - 1) / warps;
          sample_scored_kernel<I, TE, TS><<<static_cast<unsigned>(blocks), warps * kWarp, shmem, stream>>>(
              p, in.rowptr.const_data_ptr<I>(), in.col.const_data_ptr<I>(), in.users.const_data_ptr<int64_t>(),
              ptr_or_null<int64_t>(in.candidates), ptr_or_null<TE>(in.user_emb), ptr_or_null<TE>(in.item_emb),
              ptr_or_null<TS>(in.user_sem), ptr_or_null<TS>(in.item_sem), neg.data_ptr<int64_t>(),
              with_scores ? scores.data_ptr<float>() : nullptr, cnt);
          C10_CUDA_KERNEL_LAUNCH_CHECK();
        });
      });
    });
  }
};

}  // namespace
}  // namespace sampler
}  // namespace llmhni

LLMHNI_REGISTER_KERNEL("sample_negatives", "cuda");

TORCH_LIBRARY_IMPL(llmhni, CUDA, m) {
  m.impl("sample_negatives", &llmhni::sampler::sample_negatives_host<llmhni::sampler::Cuda>);
}
