// CPU kernels of spmm, csr_sddmm and the fused LightGCN propagation.
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
#include <vector>

#include "common/registry.h"
#include "graph/graph_checks.h"

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

// Row boundaries of `chunks` pieces of about equal cost, cost(row) = nnz(row) + 1.
template <typename I>
std::vector<int64_t> balanced_rows(const I* rp, int64_t n_rows, int64_t chunks) {
  std::vector<int64_t> b(chunks + 1);
  const int64_t total = static_cast<int64_t>(rp[n_rows]) + n_rows;
  b[0] = 0;
  for (int64_t t = 1; t < chunks; ++t) {
    const int64_t target = total * t / chunks;
    int64_t lo = b[t - 1], hi = n_rows;  // first r with rp[r] + r >= target
    while (lo < hi) {
      const int64_t mid = (lo + hi) / 2;
      if (static_cast<int64_t>(rp[mid]) + mid < target) lo = mid + 1;
      else hi = mid;
    }
    b[t] = lo;
  }
  b[chunks] = n_rows;
  return b;
}

int64_t chunk_count(int64_t work) {
  const int64_t threads = at::get_num_threads();
  return std::max<int64_t>(1, std::min<int64_t>(threads * 4, work / 16384));
}

template <typename T, typename A>
LLMHNI_INLINE A load(const T* p) { return static_cast<A>(*p); }

// out[r] = sum_e val[e] * x[col[e]] (+ beta * y[r]) for rows [r0, r1), D columns from
// column c0 of a row-major [*, d] layout. D > 0: compile-time width.
template <int D, typename I, typename T, typename A, typename O>
LLMHNI_INLINE void spmm_block(const I* rp, const I* col, const A* val, const T* x, int64_t d, int64_t c0,
                              int64_t width, const A* y, A beta, O* out, int64_t r0, int64_t r1) {
  constexpr int W = D > 0 ? D : 64;
  const int64_t w = D > 0 ? D : width;
  for (int64_t r = r0; r < r1; ++r) {
    A acc[W];
    for (int k = 0; k < W; ++k) acc[k] = A(0);
    const int64_t e1 = rp[r + 1];
    for (int64_t e = rp[r]; e < e1; ++e) {
      const A v = val ? val[e] : A(1);
      const T* xr = x + static_cast<int64_t>(col[e]) * d + c0;
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
}

template <typename I, typename T, typename A, typename O>
LLMHNI_INLINE void spmm_rows(const I* rp, const I* col, const A* val, const T* x, int64_t d, const A* y,
                             A beta, O* out, int64_t r0, int64_t r1) {
  switch (d) {
    case 32: return spmm_block<32>(rp, col, val, x, d, 0, 32, y, beta, out, r0, r1);
    case 64: return spmm_block<64>(rp, col, val, x, d, 0, 64, y, beta, out, r0, r1);
    case 128: return spmm_block<128>(rp, col, val, x, d, 0, 128, y, beta, out, r0, r1);
    default:
      for (int64_t c0 = 0; c0 < d; c0 += 64)
        spmm_block<0>(rp, col, val, x, d, c0, std::min<int64_t>(64, d - c0), y, beta, out, r0, r1);
  }
}

#if LLMHNI_X86_MULTIVERSION
template <typename I, typename T, typename A, typename O>
LLMHNI_TARGET_AVX512 void spmm_rows_avx512(const I* rp, const I* col, const A* val, const T* x, int64_t d,
                                           const A* y, A beta, O* out, int64_t r0, int64_t r1) {
  spmm_rows(rp, col, val, x, d, y, beta, out, r0, r1);
}
template <typename I, typename T, typename A, typename O>
LLMHNI_TARGET_AVX2 void spmm_rows_avx2(const I* rp, const I* col, const A* val, const T* x, int64_t d,
                                       const A* y, A beta, O* out, int64_t r0, int64_t r1) {
  spmm_rows(rp, col, val, x, d, y, beta, out, r0, r1);
}
#endif
template <typename I, typename T, typename A, typename O>
void spmm_rows_base(const I* rp, const I* col, const A* val, const T* x, int64_t d, const A* y, A beta,
                    O* out, int64_t r0, int64_t r1) {
  spmm_rows(rp, col, val, x, d, y, beta, out, r0, r1);
}

// out = A x (+ beta y), rows split into balanced chunks.
template <typename I, typename T, typename A, typename O>
void spmm_parallel(const I* rp, const I* col, const A* val, const T* x, int64_t n_rows, int64_t d,
                   const A* y, A beta, O* out) {
  if (n_rows == 0 || d == 0) return;
  const auto chunks = balanced_rows(rp, n_rows, chunk_count((static_cast<int64_t>(rp[n_rows]) + n_rows) * d));
  const Isa isa = cpu_isa();
  at::parallel_for(0, static_cast<int64_t>(chunks.size()) - 1, 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
#if LLMHNI_X86_MULTIVERSION
      if (isa == Isa::kAvx512) {
        spmm_rows_avx512(rp, col, val, x, d, y, beta, out, chunks[t], chunks[t + 1]);
        continue;
      }
      if (isa == Isa::kAvx2) {
        spmm_rows_avx2(rp, col, val, x, d, y, beta, out, chunks[t], chunks[t + 1]);
        continue;
      }
#endif
      spmm_rows_base(rp, col, val, x, d, y, beta, out, chunks[t], chunks[t + 1]);
    }
  });
}

template <typename F>
void dispatch_index(at::ScalarType t, const F& f) {
  if (t == at::kInt) f(int32_t{});
  else f(int64_t{});
}

at::ScalarType acc_type(at::ScalarType t) { return t == at::kDouble ? at::kDouble : at::kFloat; }

at::Tensor spmm_cpu(const at::Tensor& rowptr, const at::Tensor& col, const std::optional<at::Tensor>& value,
                    const at::Tensor& x, const std::optional<at::Tensor>& t_rowptr,
                    const std::optional<at::Tensor>& t_col, const std::optional<at::Tensor>& t_perm) {
  constexpr const char* op = "spmm";
  check_csr_tensors(op, rowptr, col);
  check_device_type(col, c10::DeviceType::CPU, op, "col");
  check_value(op, col, value);
  check_dense(op, col, x, "x");
  check_transpose_args(op, col, t_rowptr, t_col, t_perm);
  check_csr_structure(op, rowptr, col, x.size(0));
  const int64_t n_rows = rowptr.numel() - 1, d = x.size(1);
  const auto at_ = acc_type(x.scalar_type());
  auto xc = x.contiguous();
  at::Tensor v = value.has_value() ? value->to(at_).contiguous() : at::Tensor();
  auto out = at::empty({n_rows, d}, x.options());
  dispatch_index(col.scalar_type(), [&](auto tag) {
    using I = decltype(tag);
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "spmm_cpu", [&] {
      using T = scalar_t;
      using A = std::conditional_t<std::is_same_v<T, double>, double, float>;
      spmm_parallel<I, T, A, T>(rowptr.data_ptr<I>(), col.data_ptr<I>(), v.defined() ? v.data_ptr<A>() : nullptr,
                                xc.data_ptr<T>(), n_rows, d, nullptr, A(0), out.data_ptr<T>());
    });
  });
  return out;
}

at::Tensor csr_sddmm_cpu(const at::Tensor& rowptr, const at::Tensor& col, const at::Tensor& a,
                         const at::Tensor& b) {
  constexpr const char* op = "csr_sddmm";
  check_csr_tensors(op, rowptr, col);
  check_device_type(col, c10::DeviceType::CPU, op, "col");
  check_dense(op, col, a, "a");
  check_dense(op, col, b, "b");
  TORCH_CHECK(a.scalar_type() == b.scalar_type(), op, ": a (", a.scalar_type(), ") and b (", b.scalar_type(),
              ") must have one dtype");
  TORCH_CHECK(a.size(0) == rowptr.numel() - 1, op, ": a must have n_rows = ", rowptr.numel() - 1,
              " rows, got ", a.size(0));
  TORCH_CHECK(a.size(1) == b.size(1), op, ": a and b must have the same width, got ", a.size(1), " and ",
              b.size(1));
  check_csr_structure(op, rowptr, col, b.size(0));
  const int64_t n_rows = rowptr.numel() - 1, d = a.size(1);
  auto ac = a.contiguous();
  auto bc = b.contiguous();
  auto out = at::empty({col.numel()}, a.options().dtype(acc_type(a.scalar_type())));
  dispatch_index(col.scalar_type(), [&](auto tag) {
    using I = decltype(tag);
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, a.scalar_type(), "csr_sddmm_cpu", [&] {
      using T = scalar_t;
      using A = std::conditional_t<std::is_same_v<T, double>, double, float>;
      const I* rp = rowptr.data_ptr<I>();
      const I* c = col.data_ptr<I>();
      const T* ap = ac.data_ptr<T>();
      const T* bp = bc.data_ptr<T>();
      A* o = out.data_ptr<A>();
      if (n_rows == 0) return;
      const auto chunks = balanced_rows(rp, n_rows, chunk_count((static_cast<int64_t>(rp[n_rows]) + n_rows) * d));
      at::parallel_for(0, static_cast<int64_t>(chunks.size()) - 1, 1, [&](int64_t cb, int64_t ce) {
        for (int64_t t = cb; t < ce; ++t)
          for (int64_t r = chunks[t]; r < chunks[t + 1]; ++r) {
            const T* ar = ap + r * d;
            for (int64_t e = rp[r]; e < rp[r + 1]; ++e) {
              const T* br = bp + static_cast<int64_t>(c[e]) * d;
              A s = 0;
              for (int64_t k = 0; k < d; ++k) s += static_cast<A>(ar[k]) * static_cast<A>(br[k]);
              o[e] = s;
            }
          }
      });
    });
  });
  return out;
}

at::Tensor lightgcn_propagate_cpu(const at::Tensor& rowptr, const at::Tensor& col,
                                  const std::optional<at::Tensor>& value, const at::Tensor& x0,
                                  at::ArrayRef<double> weights, const std::optional<at::Tensor>& t_rowptr,
                                  const std::optional<at::Tensor>& t_col, const std::optional<at::Tensor>& t_perm) {
  constexpr const char* op = "lightgcn_propagate";
  check_csr_tensors(op, rowptr, col);
  check_device_type(col, c10::DeviceType::CPU, op, "col");
  check_value(op, col, value);
  check_dense(op, col, x0, "x0");
  check_transpose_args(op, col, t_rowptr, t_col, t_perm);
  TORCH_CHECK(weights.size() >= 1, op, ": weights must have at least one entry (w_0 for layer 0)");
  const int64_t n_rows = rowptr.numel() - 1, d = x0.size(1);
  TORCH_CHECK(x0.size(0) == n_rows, op, ": A must be square with one row per node of x0: A has ", n_rows,
              " rows, x0 has ", x0.size(0));
  check_csr_structure(op, rowptr, col, n_rows);
  const auto at_ = acc_type(x0.scalar_type());
  auto x = x0.to(at_).contiguous();
  at::Tensor v = value.has_value() ? value->to(at_).contiguous() : at::Tensor();
  const int64_t K = static_cast<int64_t>(weights.size()) - 1;
  at::Tensor h = x * weights[K];
  if (K == 0) return h.to(x0.scalar_type());
  at::Tensor h2 = at::empty_like(x);
  dispatch_index(col.scalar_type(), [&](auto tag) {
    using I = decltype(tag);
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lightgcn_propagate_cpu", [&] {
      using A = scalar_t;
      for (int64_t k = K - 1; k >= 0; --k) {  // h <- w_k x0 + A h
        spmm_parallel<I, A, A, A>(rowptr.data_ptr<I>(), col.data_ptr<I>(), v.defined() ? v.data_ptr<A>() : nullptr,
                                  h.data_ptr<A>(), n_rows, d, x.data_ptr<A>(), static_cast<A>(weights[k]),
                                  h2.data_ptr<A>());
        std::swap(h, h2);
      }
    });
  });
  return h.scalar_type() == x0.scalar_type() ? h : h.to(x0.scalar_type());
}

}  // namespace
}  // namespace graph
}  // namespace llmhni

LLMHNI_REGISTER_KERNEL("spmm", "cpu");
LLMHNI_REGISTER_KERNEL("csr_sddmm", "cpu");
LLMHNI_REGISTER_KERNEL("lightgcn_propagate", "cpu");

TORCH_LIBRARY_IMPL(llmhni, CPU, m) {
  m.impl("spmm", &llmhni::graph::spmm_cpu);
  m.impl("csr_sddmm", &llmhni::graph::csr_sddmm_cpu);
  m.impl("lightgcn_propagate", &llmhni::graph::lightgcn_propagate_cpu);
}
