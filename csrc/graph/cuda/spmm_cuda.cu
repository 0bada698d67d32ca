// CUDA kernels of spmm, csr_sddmm and the fused LightGCN propagation, and their launch
// (the policy Cuda); the host code shared with the CPU is graph/spmm_host.h.
//
// Load balance decides this op: realistic graphs have rows from 1 to thousands of
// entries, heavy ones hub rows of 10^4 and more. So work is split by stored entries,
// not by rows ("nnz-split"): warp w owns entries [w*S, (w+1)*S) and walks the rows that
// overlap them. A row that lies inside one segment is finished and written by its warp.
// A row cut by segment borders leaves one partial sum per segment in a scratch buffer
// (slot 1 in its first segment, slot 0 in the others), and a second, row-parallel pass
// adds them in segment order and writes the row, together with the empty rows. No
// atomics: the result is bit-identical run to run.
//
// In a warp, lanes own VEC consecutive columns (d = 32: 1, d = 64: 2, d = 128: 4, as
// one float/float2/float4 load per stored entry); column ids and values of 32 entries
// are loaded once, coalesced, and broadcast with shuffles. Wider d runs column tiles
// of 32 * VEC in blockIdx.y. int32 or int64 indices, the caller's stream, CUDAGuard.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "common/registry.h"
#include "graph/spmm_host.h"

namespace llmhni {
namespace graph {
namespace {

constexpr int kWarp = 32;
constexpr int kWarpsPerBlock = 8;

template <int VEC, typename T, typename A>
__device__ __forceinline__ void load_vec(const T* __restrict__ p, int64_t c, int64_t d, bool vec_ok, A (&v)[VEC]) {
  if constexpr (VEC == 4 && std::is_same_v<T, float>) {
    if (vec_ok) {
      const float4 q = __ldg(reinterpret_cast<const float4*>(p + c));
      v[0] = q.x; v[1] = q.y; v[2] = q.z; v[3] = q.w;
      return;
    }
  } else if constexpr (VEC == 2 && std::is_same_v<T, float>) {
    if (vec_ok) {
      const float2 q = __ldg(reinterpret_cast<const float2*>(p + c));
      v[0] = q.x; v[1] = q.y;
      return;
    }
  }
#pragma unroll
  for (int j = 0; j < VEC; ++j) v[j] = (c + j < d) ? static_cast<A>(p[c + j]) : A(0);
}

template <int VEC, typename O, typename A>
__device__ __forceinline__ void store_vec(O* __restrict__ p, int64_t c, int64_t d, bool vec_ok, const A (&v)[VEC]) {
  if constexpr (VEC == 4 && std::is_same_v<O, float>) {
    if (vec_ok) {
      *reinterpret_cast<float4*>(p + c) = make_float4(v[0], v[1], v[2], v[3]);
      return;
    }
  } else if constexpr (VEC == 2 && std::is_same_v<O, float>) {
    if (vec_ok) {
      *reinterpret_cast<float2*>(p + c) = make_float2(v[0], v[1]);
      return;
    }
  }
#pragma unroll
  for (int j = 0; j < VEC; ++j)
    if (c + j < d) p[c + j] = static_cast<O>(v[j]);
}

// The row r with rowptr[r] <= e < rowptr[r + 1] (e < nnz).
template <typename I>
__device__ __forceinline__ int64_t row_of(const I* __restrict__ rowptr, int64_t n_rows, int64_t e) {
  int64_t lo = 0, hi = n_rows;  // invariant: rowptr[lo] <= e, answer in [lo, hi)
  while (hi - lo > 1) {
    const int64_t mid = (lo + hi) >> 1;
    if (static_cast<int64_t>(__ldg(rowptr + mid)) <= e) lo = mid;
    else hi = mid;
  }
  return lo;
}

// Epilogue: out[r] = acc (+ beta * y[r]).
template <int VEC, typename O, typename A>
__device__ __forceinline__ void finish_row(O* out, const A* y, A beta, int64_t r, int64_t c, int64_t d, bool vec_ok,
                                           A (&acc)[VEC]) {
  if (y != nullptr) {
    A yv[VEC];
    load_vec<VEC>(y + r * d, c, d, vec_ok, yv);
#pragma unroll
    for (int j = 0; j < VEC; ++j) acc[j] += beta * yv[j];
  }
  store_vec<VEC>(out + r * d, c, d, vec_ok, acc);
}

// Pass 1: one warp per segment of S stored entries.
template <int VEC, typename I, typename T, typename A, typename O>
__global__ void __launch_bounds__(kWarp* kWarpsPerBlock)
    spmm_segment_kernel(const I* __restrict__ rowptr, const I* __restrict__ col, const A* __restrict__ val,
                        const T* __restrict__ x, int64_t n_rows, int64_t nnz, int64_t d, int64_t S,
                        const A* __restrict__ y, A beta, O* __restrict__ out, A* __restrict__ partial) {
  const int lane = threadIdx.x & (kWarp - 1);
  const int64_t seg = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  const int64_t e0 = seg * S;
  if (e0 >= nnz) return;
  const int64_t e1 = min(e0 + S, nnz);
  const int64_t c = static_cast<int64_t>(blockIdx.y) * kWarp * VEC + lane * VEC;
  const bool vec_ok = (d % VEC == 0) && (c + VEC <= d);
  int64_t r = row_of(rowptr, n_rows, e0);
  int64_t e = e0;
  while (true) {
    const int64_t row_start = __ldg(rowptr + r), row_end = __ldg(rowptr + r + 1);
    const int64_t stop = min(row_end, e1);
    A acc[VEC];
#pragma unroll
    for (int j = 0; j < VEC; ++j) acc[j] = A(0);
    for (int64_t base = e; base < stop; base += kWarp) {
      const int64_t mine = base + lane;
      int64_t my_c = 0;
      A my_v = A(1);
      if (mine < stop) {
        my_c = static_cast<int64_t>(__ldg(col + mine));
        if (val != nullptr) my_v = __ldg(val + mine);
      }
      const int cnt = static_cast<int>(min(static_cast<int64_t>(kWarp), stop - base));
#pragma unroll 4
      for (int j = 0; j < cnt; ++j) {
        const int64_t cj = __shfl_sync(0xffffffffu, my_c, j);
        const A vj = __shfl_sync(0xffffffffu, my_v, j);
        A xv[VEC];
        load_vec<VEC>(x + cj * d, c, d, vec_ok, xv);
#pragma unroll
        for (int k = 0; k < VEC; ++k) acc[k] += vj * xv[k];
      }
    }
    if (row_start >= e0 && row_end <= e1) {
      finish_row<VEC>(out, y, beta, r, c, d, vec_ok, acc);
    } else {
      const int slot = row_start < e0 ? 0 : 1;
      store_vec<VEC>(partial + (seg * 2 + slot) * d, c, d, vec_ok, acc);
    }
    e = stop;
    if (e >= e1) break;
    ++r;
    while (__ldg(rowptr + r + 1) <= e) ++r;  // skip empty rows (pass 2 writes them)
  }
}

// Pass 2: one warp per row; writes empty rows and sums the partials of split rows.
template <int VEC, typename I, typename A, typename O>
__global__ void __launch_bounds__(kWarp* kWarpsPerBlock)
    spmm_fixup_kernel(const I* __restrict__ rowptr, int64_t n_rows, int64_t d, int64_t S, const A* __restrict__ y,
                      A beta, O* __restrict__ out, const A* __restrict__ partial) {
  const int lane = threadIdx.x & (kWarp - 1);
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  if (r >= n_rows) return;
  const int64_t s = __ldg(rowptr + r), t = __ldg(rowptr + r + 1);
  const int64_t c = static_cast<int64_t>(blockIdx.y) * kWarp * VEC + lane * VEC;
  const bool vec_ok = (d % VEC == 0) && (c + VEC <= d);
  A acc[VEC];
#pragma unroll
  for (int j = 0; j < VEC; ++j) acc[j] = A(0);
  if (s < t) {
    const int64_t s0 = s / S, s1 = (t - 1) / S;
    if (s0 == s1) return;  // written by pass 1
    load_vec<VEC>(partial + (s0 * 2 + 1) * d, c, d, vec_ok, acc);
    for (int64_t k = s0 + 1; k <= s1; ++k) {
      A p[VEC];
      load_vec<VEC>(partial + (k * 2) * d, c, d, vec_ok, p);
#pragma unroll
      for (int j = 0; j < VEC; ++j) acc[j] += p[j];
    }
  }
  finish_row<VEC>(out, y, beta, r, c, d, vec_ok, acc);
}

int64_t segment_length(int64_t nnz, int64_t tiles) {
  // Enough warps to fill the GPU about four times over; at least 32 entries per warp.
  const int sms = at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
  const int64_t want_warps = static_cast<int64_t>(sms) * 64 * 4 / std::max<int64_t>(tiles, 1);
  int64_t S = (nnz + want_warps - 1) / std::max<int64_t>(want_warps, 1);
  S = std::min<int64_t>(std::max<int64_t>(S, 32), 1024);
  return (S + 31) / 32 * 32;
}

// out = A x (+ beta y) on the current stream.
template <int VEC, typename I, typename T, typename A, typename O>
void launch_vec(const I* rowptr, const I* col, const A* val, const T* x, int64_t n_rows, int64_t nnz, int64_t d,
                const A* y, A beta, O* out, const at::TensorOptions& acc_opt) {
  const int64_t tiles = (d + kWarp * VEC - 1) / (kWarp * VEC);
  TORCH_CHECK(tiles <= 65535, "spmm: d = ", d, " is too wide for one launch");
  auto stream = at::cuda::getCurrentCUDAStream();
  const int64_t S = segment_length(nnz, tiles);
  const int64_t nseg = (nnz + S - 1) / S;
  at::Tensor partial = at::empty({std::max<int64_t>(nseg, 1) * 2 * d}, acc_opt);
  const dim3 block(kWarp * kWarpsPerBlock);
  if (nseg > 0) {
    const dim3 grid((nseg + kWarpsPerBlock - 1) / kWarpsPerBlock, tiles);
    spmm_segment_kernel<VEC, I, T, A, O><<<grid, block, 0, stream>>>(rowptr, col, val, x, n_rows, nnz, d, S, y,
                                                                      beta, out, partial.data_ptr<A>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  const dim3 grid2((n_rows + kWarpsPerBlock - 1) / kWarpsPerBlock, tiles);
  spmm_fixup_kernel<VEC, I, A, O><<<grid2, block, 0, stream>>>(rowptr, n_rows, d, S, y, beta, out,
                                                              partial.data_ptr<A>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename I, typename T, typename A, typename O>
void spmm_launch(const I* rowptr, const I* col, const A* val, const T* x, int64_t n_rows, int64_t nnz, int64_t d,
                 const A* y, A beta, O* out, const at::TensorOptions& acc_opt) {
  if (n_rows == 0 || d == 0) return;
  if (d <= 32) launch_vec<1>(rowptr, col, val, x, n_rows, nnz, d, y, beta, out, acc_opt);
  else if (d <= 64) launch_vec<2>(rowptr, col, val, x, n_rows, nnz, d, y, beta, out, acc_opt);
  else launch_vec<4>(rowptr, col, val, x, n_rows, nnz, d, y, beta, out, acc_opt);
}

// csr_sddmm: one warp per stored entry (grid-stride), lanes over d, butterfly sum.
template <typename I, typename T, typename A>
__global__ void sddmm_kernel(const I* __restrict__ rowptr, const I* __restrict__ col, const T* __restrict__ a,
                             const T* __restrict__ b, int64_t n_rows, int64_t nnz, int64_t d, A* __restrict__ out) {
  const int lane = threadIdx.x & (kWarp - 1);
  const int64_t warps = static_cast<int64_t>(gridDim.x) * kWarpsPerBlock;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5); e < nnz; e += warps) {
    const int64_t r = row_of(rowptr, n_rows, e);
    const int64_t cidx = __ldg(col + e);
    A s = 0;
    for (int64_t k = lane; k < d; k += kWarp) s += static_cast<A>(a[r * d + k]) * static_cast<A>(b[cidx * d + k]);
#pragma unroll
    for (int off = kWarp / 2; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
    if (lane == 0) out[e] = s;
  }
}

// The CUDA policy of graph/spmm_host.h. Columns were checked before any launch
// (check_csr_structure), so the kernels read them as they are.
struct Cuda {
  static constexpr c10::DeviceType kType = c10::DeviceType::CUDA;
  struct Guard {
    explicit Guard(const at::Tensor& t) : g(t.device()) {}
    c10::cuda::CUDAGuard g;
  };
  template <bool kCheck, typename I, typename T, typename A, typename O>
  static bool spmm(const I* rp, const I* col, const A* val, const T* x, int64_t n_x, int64_t n_rows, int64_t nnz,
                   int64_t d, const A* y, A beta, O* out, const at::TensorOptions& acc) {
    (void)n_x;
    spmm_launch<I, T, A, O>(rp, col, val, x, n_rows, nnz, d, y, beta, out, acc);
    return true;
  }
  template <typename I, typename T, typename A>
  static bool sddmm(const I* rp, const I* col, const T* a, const T* b, int64_t n_rows, int64_t n_b, int64_t nnz,
                    int64_t d, A* out) {
    (void)n_b;
    const int64_t blocks = std::min<int64_t>((nnz + kWarpsPerBlock - 1) / kWarpsPerBlock, 65535 * 8);
    sddmm_kernel<I, T, A><<<blocks, kWarp * kWarpsPerBlock, 0, at::cuda::getCurrentCUDAStream()>>>(
        rp, col, a, b, n_rows, nnz, d, out);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return true;
  }
};

}  // namespace
}  // namespace graph
}  // namespace llmhni

LLMHNI_REGISTER_KERNEL("spmm", "cuda");
LLMHNI_REGISTER_KERNEL("csr_sddmm", "cuda");
LLMHNI_REGISTER_KERNEL("lightgcn_propagate", "cuda");

TORCH_LIBRARY_IMPL(llmhni, CUDA, m) {
  m.impl("spmm", &llmhni::graph::spmm_host<llmhni::graph::Cuda>);
  m.impl("csr_sddmm", &llmhni::graph::csr_sddmm_host<llmhni::graph::Cuda>);
  m.impl("lightgcn_propagate", &llmhni::graph::lightgcn_propagate_host<llmhni::graph::Cuda>);
}
