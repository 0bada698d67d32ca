// CPU kernels of spmm, csr_sddmm and the fused LightGCN propagation, and their launch
// (the policy Cpu); the host code shared with CUDA is graph/spmm_host.h.
//
// Work is split into chunks of equal cost (stored entries + rows), not of equal row
// count, so a few long rows do not leave a thread idle; every row is computed by one
// thread in a fixed order, so results are bit-identical run to run and independent of
// the thread count. The inner loop runs over the embedding dimension with the row's
// accumulator in registers (d = 32, 64, 128 are specialised); on x86-64 the kernels are
// compiled three times (AVX-512, AVX2+FMA, baseline) and chosen at run time.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <vector>

#include "common/balanced_rows.h"
#include "common/registry.h"
#include "graph/spmm_host.h"

#if defined(__GNUC__) && (defined(__x86_64__) || defined(_M_X64))
#define LLMHNI_X86_MULTIVERSION 1
#define LLMHNI_TARGET_AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma,f16c")))
#define LLMHNI_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#else
#define LLMHNI_X86_MULTIVERSION 0
#endif
#if defined(__GNUC__)
#define LLMHNI_INLINE inline __attribute__((always_inline))
#else
#define LLMHNI_INLINE inline
#endif

namespace llmhni {
namespace graph {
namespace {

enum class Isa { kBase, kAvx2, kAvx512 };

Isa cpu_isa() {
#if LLMHNI_X86_MULTIVERSION
  static const Isa isa = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq"))
      return Isa::kAvx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::kAvx2;
    return Isa::kBase;
  }();
  return isa;
#else
  return Isa::kBase;
#endif
}

int64_t chunk_count(int64_t work) {
  const int64_t threads = at::get_num_threads();
  return std::max<int64_t>(1, std::min<int64_t>(threads * 4, work / 16384));
}

template <typename T, typename A>
LLMHNI_INLINE A load(const T* p) { return static_cast<A>(*p); }

// out[r] = sum_e val[e] * x[col[e]] (+ beta * y[r]) for rows [r0, r1), D columns from
// column c0 of a row-major [*, d] layout. D > 0: compile-time width.
// A column outside [0, n_x) reads row 0 instead and sets `bad` (the caller then raises and
// the output is dropped): one compare and a conditional move per entry, where a separate
// pass over all of col would read it again (about a fifth of an spmm).
template <int D, bool kCheck, typename I, typename T, typename A, typename O>
LLMHNI_INLINE void spmm_block(const I* rp, const I* col, const A* val, const T* x, int64_t n_x, int64_t d,
                              int64_t c0, int64_t width, const A* y, A beta, O* out, int64_t r0, int64_t r1,
                              bool& bad) {
  constexpr int W = D > 0 ? D : 64;
  const int64_t w = D > 0 ? D : width;
  const uint64_t nx = static_cast<uint64_t>(n_x);
  (void)nx;
  bool seen = false;
  for (int64_t r = r0; r < r1; ++r) {
    A acc[W];
    for (int k = 0; k < W; ++k) acc[k] = A(0);
    const int64_t e1 = rp[r + 1];
    for (int64_t e = rp[r]; e < e1; ++e) {
      const A v = val ? val[e] : A(1);
      const T* xr;
      if constexpr (kCheck) {
        const uint64_t c = static_cast<uint64_t>(static_cast<int64_t>(col[e]));
        const bool out_of_range = c >= nx;
        seen |= out_of_range;
        xr = x + static_cast<int64_t>(out_of_range ? 0 : c) * d + c0;
      } else {
        xr = x + static_cast<int64_t>(col[e]) * d + c0;
      }
      if (e + 4 < e1) __builtin_prefetch(x + static_cast<int64_t>(col[e + 4]) * d + c0);
      if constexpr (D > 0) {
        for (int k = 0; k < D; ++k) acc[k] += v * load<T, A>(xr + k);
      } else {
        for (int64_t k = 0; k < w; ++k) acc[k] += v * load<T, A>(xr + k);
      }
    }
    O* o = out + r * d + c0;
    if (y) {
      const A* yr = y + r * d + c0;
      for (int64_t k = 0; k < w; ++k) o[k] = static_cast<O>(acc[k] + beta * yr[k]);
    } else {
      for (int64_t k = 0; k < w; ++k) o[k] = static_cast<O>(acc[k]);
    }
  }
  bad |= seen;
}

template <bool kCheck, typename I, typename T, typename A, typename O>
LLMHNI_INLINE bool spmm_rows(const I* rp, const I* col, const A* val, const T* x, int64_t n_x, int64_t d,
                             const A* y, A beta, O* out, int64_t r0, int64_t r1) {
  bool bad = false;
  switch (d) {
    case 32: spmm_block<32, kCheck>(rp, col, val, x, n_x, d, 0, 32, y, beta, out, r0, r1, bad); break;
    case 64: spmm_block<64, kCheck>(rp, col, val, x, n_x, d, 0, 64, y, beta, out, r0, r1, bad); break;
    case 128: spmm_block<128, kCheck>(rp, col, val, x, n_x, d, 0, 128, y, beta, out, r0, r1, bad); break;
    default:
      for (int64_t c0 = 0; c0 < d; c0 += 64)
        spmm_block<0, kCheck>(rp, col, val, x, n_x, d, c0, std::min<int64_t>(64, d - c0), y, beta, out, r0, r1, bad);
  }
  return bad;
}

#if LLMHNI_X86_MULTIVERSION
template <bool kCheck, typename I, typename T, typename A, typename O>
LLMHNI_TARGET_AVX512 bool spmm_rows_avx512(const I* rp, const I* col, const A* val, const T* x, int64_t n_x,
                                           int64_t d, const A* y, A beta, O* out, int64_t r0, int64_t r1) {
  return spmm_rows<kCheck>(rp, col, val, x, n_x, d, y, beta, out, r0, r1);
}
template <bool kCheck, typename I, typename T, typename A, typename O>
LLMHNI_TARGET_AVX2 bool spmm_rows_avx2(const I* rp, const I* col, const A* val, const T* x, int64_t n_x,
                                       int64_t d, const A* y, A beta, O* out, int64_t r0, int64_t r1) {
  return spmm_rows<kCheck>(rp, col, val, x, n_x, d, y, beta, out, r0, r1);
}
#endif
template <bool kCheck, typename I, typename T, typename A, typename O>
bool spmm_rows_base(const I* rp, const I* col, const A* val, const T* x, int64_t n_x, int64_t d, const A* y,
                    A beta, O* out, int64_t r0, int64_t r1) {
  return spmm_rows<kCheck>(rp, col, val, x, n_x, d, y, beta, out, r0, r1);
}

// out = A x (+ beta y), rows split into balanced chunks; x has n_x rows. kCheck: columns are
// checked as they are read; returns false when one outside [0, n_x) was seen (the output is
// then wrong and the caller raises). Without kCheck the columns must have been checked.
template <bool kCheck, typename I, typename T, typename A, typename O>
bool spmm_parallel(const I* rp, const I* col, const A* val, const T* x, int64_t n_x, int64_t n_rows, int64_t d,
                   const A* y, A beta, O* out) {
  if (n_rows == 0) return true;
  // every column is out of range when x has no rows: the kernels' fallback row 0 does not exist
  if (kCheck && n_x == 0) return rp[n_rows] == 0;
  if (d == 0) {  // nothing is read from x: the columns still have to be valid
    if (!kCheck) return true;
    const int64_t nnz = static_cast<int64_t>(rp[n_rows]);
    for (int64_t e = 0; e < nnz; ++e)
      if (static_cast<uint64_t>(static_cast<int64_t>(col[e])) >= static_cast<uint64_t>(n_x)) return false;
    return true;
  }
  const auto chunks = balanced_rows(rp, n_rows, chunk_count((static_cast<int64_t>(rp[n_rows]) + n_rows) * d));
  const Isa isa = cpu_isa();
  std::atomic<bool> bad{false};
  at::parallel_for(0, static_cast<int64_t>(chunks.size()) - 1, 1, [&](int64_t b, int64_t e) {
    bool local = false;
    for (int64_t t = b; t < e; ++t) {
#if LLMHNI_X86_MULTIVERSION
      if (isa == Isa::kAvx512) {
        local |= spmm_rows_avx512<kCheck>(rp, col, val, x, n_x, d, y, beta, out, chunks[t], chunks[t + 1]);
        continue;
      }
      if (isa == Isa::kAvx2) {
        local |= spmm_rows_avx2<kCheck>(rp, col, val, x, n_x, d, y, beta, out, chunks[t], chunks[t + 1]);
        continue;
      }
#endif
      local |= spmm_rows_base<kCheck>(rp, col, val, x, n_x, d, y, beta, out, chunks[t], chunks[t + 1]);
    }
    if (local) bad.store(true);
  });
  return !bad.load();
}

// csr_sddmm on the CPU: out[e] = <a[row e], b[col e]>, rows in balanced chunks; an entry
// whose column lies outside [0, n_b) is skipped and reported (returns false).
template <typename I, typename T, typename A>
bool sddmm_parallel(const I* rp, const I* c, const T* ap, const T* bp, int64_t n_rows, int64_t n_b, int64_t nnz,
                    int64_t d, A* o) {
  std::atomic<bool> bad{false};
  if (d == 0) {  // every entry is 0, but the columns still have to be valid
    for (int64_t e = 0; e < nnz; ++e) {
      if (static_cast<uint64_t>(static_cast<int64_t>(c[e])) >= static_cast<uint64_t>(n_b)) bad.store(true);
      o[e] = A(0);
    }
    return !bad.load();
  }
  const auto chunks = balanced_rows(rp, n_rows, chunk_count((nnz + n_rows) * d));
  at::parallel_for(0, static_cast<int64_t>(chunks.size()) - 1, 1, [&](int64_t cb, int64_t ce) {
    for (int64_t t = cb; t < ce; ++t)
      for (int64_t r = chunks[t]; r < chunks[t + 1]; ++r) {
        const T* ar = ap + r * d;
        for (int64_t e = rp[r]; e < rp[r + 1]; ++e) {
          const int64_t ci = static_cast<int64_t>(c[e]);
          if (static_cast<uint64_t>(ci) >= static_cast<uint64_t>(n_b)) {
            bad.store(true, std::memory_order_relaxed);
            continue;
          }
          const T* br = bp + ci * d;
          A s = 0;
          for (int64_t k = 0; k < d; ++k) s += static_cast<A>(ar[k]) * static_cast<A>(br[k]);
          o[e] = s;
        }
      }
  });
  return !bad.load();
}

// The CPU policy of graph/spmm_host.h.
struct Cpu {
  static constexpr c10::DeviceType kType = c10::DeviceType::CPU;
  struct Guard {
    explicit Guard(const at::Tensor&) {}
  };
  template <bool kCheck, typename I, typename T, typename A, typename O>
  static bool spmm(const I* rp, const I* col, const A* val, const T* x, int64_t n_x, int64_t n_rows, int64_t nnz,
                   int64_t d, const A* y, A beta, O* out, const at::TensorOptions&) {
    (void)nnz;
    return spmm_parallel<kCheck>(rp, col, val, x, n_x, n_rows, d, y, beta, out);
  }
  template <typename I, typename T, typename A>
  static bool sddmm(const I* rp, const I* col, const T* a, const T* b, int64_t n_rows, int64_t n_b, int64_t nnz,
                    int64_t d, A* out) {
    return sddmm_parallel(rp, col, a, b, n_rows, n_b, nnz, d, out);
  }
};

}  // namespace
}  // namespace graph
}  // namespace llmhni

LLMHNI_REGISTER_KERNEL("spmm", "cpu");
LLMHNI_REGISTER_KERNEL("csr_sddmm", "cpu");
LLMHNI_REGISTER_KERNEL("lightgcn_propagate", "cpu");

TORCH_LIBRARY_IMPL(llmhni, CPU, m) {
  m.impl("spmm", &llmhni::graph::spmm_host<llmhni::graph::Cpu>);
  m.impl("csr_sddmm", &llmhni::graph::csr_sddmm_host<llmhni::graph::Cpu>);
  m.impl("lightgcn_propagate", &llmhni::graph::lightgcn_propagate_host<llmhni::graph::Cpu>);
}
