// Host code of spmm, csr_sddmm and the fused LightGCN propagation, written once for both
// devices: argument checks, allocation, dtype dispatch and the Horner loop. Each kernel
// file (cpu/spmm_cpu.cpp, cuda/spmm_cuda.cu) defines a device policy with its kernels'
// launches and registers spmm_host<Policy> & co.
//
// A policy `Dev` provides
//   static constexpr c10::DeviceType kType;
//   struct Guard { explicit Guard(const at::Tensor&); };            // CUDAGuard or nothing
//   template <bool kCheck, typename I, typename T, typename A, typename O>
//   static bool spmm(const I* rp, const I* col, const A* val, const T* x, int64_t n_x, int64_t n_rows,
//                    int64_t nnz, int64_t d, const A* y, A beta, O* out, const at::TensorOptions& acc);
//       out = A x (+ beta y) on the current stream; with kCheck a kernel that checks columns as it
//       reads them returns false when one lies outside [0, n_x) (CUDA checks them before: true)
//   template <typename I, typename T, typename A>
//   static bool sddmm(const I* rp, const I* col, const T* a, const T* b, int64_t n_rows, int64_t n_b,
//                     int64_t nnz, int64_t d, A* out);                 // out[e] = <a[row e], b[col e]>
#pragma once

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>

#include <optional>
#include <utility>

#include "common/dispatch.h"
#include "graph/graph_checks.h"

namespace llmhni {
namespace graph {

template <class Dev>
at::Tensor spmm_host(const at::Tensor& rowptr, const at::Tensor& col, const std::optional<at::Tensor>& value,
                     const at::Tensor& x, const std::optional<at::Tensor>& t_rowptr,
                     const std::optional<at::Tensor>& t_col, const std::optional<at::Tensor>& t_perm) {
  check_spmm_args(rowptr, col, value, x, t_rowptr, t_col, t_perm, Dev::kType);
  const typename Dev::Guard guard(x);
  const int64_t n_rows = rowptr.numel() - 1, d = x.size(1), nnz = col.numel(), n_x = x.size(0);
  const auto acc = acc_type(x.scalar_type());
  const auto xc = x.contiguous();
  const at::Tensor v = value.has_value() ? value->to(acc).contiguous() : at::Tensor();
  auto out = at::empty({n_rows, d}, x.options());
  bool ok = true;
  with_index_type(col.scalar_type(), [&](auto tag) {
    using I = decltype(tag);
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "spmm", [&] {
      using T = scalar_t;
      using A = acc_t<T>;
      ok = Dev::template spmm<true, I, T, A, T>(rowptr.const_data_ptr<I>(), col.const_data_ptr<I>(),
                                                ptr_or_null<A>(v), xc.const_data_ptr<T>(), n_x, n_rows, nnz, d,
                                                nullptr, A(0), out.data_ptr<T>(), x.options().dtype(acc));
    });
  });
  if (!ok) report_bad_columns("spmm", rowptr, col, n_x);
  return out;
}

template <class Dev>
at::Tensor csr_sddmm_host(const at::Tensor& rowptr, const at::Tensor& col, const at::Tensor& a, const at::Tensor& b) {
  check_sddmm_args(rowptr, col, a, b, Dev::kType);
  const typename Dev::Guard guard(a);
  const int64_t n_rows = rowptr.numel() - 1, d = a.size(1), nnz = col.numel(), n_b = b.size(0);
  const auto ac = a.contiguous();
  const auto bc = b.contiguous();
  auto out = at::empty({nnz}, a.options().dtype(acc_type(a.scalar_type())));
  if (nnz == 0) return out;
  bool ok = true;
  with_index_type(col.scalar_type(), [&](auto tag) {
    using I = decltype(tag);
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, a.scalar_type(), "csr_sddmm", [&] {
      using T = scalar_t;
      using A = acc_t<T>;
      ok = Dev::template sddmm<I, T, A>(rowptr.const_data_ptr<I>(), col.const_data_ptr<I>(), ac.const_data_ptr<T>(),
                                        bc.const_data_ptr<T>(), n_rows, n_b, nnz, d, out.data_ptr<A>());
    });
  });
  if (!ok) report_bad_columns("csr_sddmm", rowptr, col, n_b);
  return out;
}

// sum_k w_k A^k x0 by Horner's rule: h = w_K x0, then h <- w_k x0 + A h for k = K-1 .. 0
// (one sparse pass per layer, accumulated in fp32 or fp64); columns checked in the first.
template <class Dev>
at::Tensor lightgcn_propagate_host(const at::Tensor& rowptr, const at::Tensor& col,
                                   const std::optional<at::Tensor>& value, const at::Tensor& x0,
                                   at::ArrayRef<double> weights, const std::optional<at::Tensor>& t_rowptr,
                                   const std::optional<at::Tensor>& t_col, const std::optional<at::Tensor>& t_perm) {
  check_propagate_args(rowptr, col, value, x0, weights, t_rowptr, t_col, t_perm, Dev::kType);
  const typename Dev::Guard guard(x0);
  const int64_t n_rows = rowptr.numel() - 1, d = x0.size(1), nnz = col.numel();
  const auto acc = acc_type(x0.scalar_type());
  const auto x = x0.to(acc).contiguous();
  const at::Tensor v = value.has_value() ? value->to(acc).contiguous() : at::Tensor();
  const int64_t K = static_cast<int64_t>(weights.size()) - 1;
  at::Tensor h = x * weights[K];
  if (K == 0) return h.to(x0.scalar_type());
  at::Tensor h2 = at::empty_like(x);
  bool ok = true;
  with_index_type(col.scalar_type(), [&](auto tag) {
    using I = decltype(tag);
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lightgcn_propagate", [&] {
      using A = scalar_t;
      const I* rp = rowptr.const_data_ptr<I>();
      const I* cp = col.const_data_ptr<I>();
      const A* vp = ptr_or_null<A>(v);
      for (int64_t k = K - 1; k >= 0 && ok; --k) {
        const A w = static_cast<A>(weights[k]);
        ok = k == K - 1 ? Dev::template spmm<true, I, A, A, A>(rp, cp, vp, h.const_data_ptr<A>(), n_rows, n_rows, nnz,
                                                               d, x.const_data_ptr<A>(), w, h2.data_ptr<A>(),
                                                               x.options())
                        : Dev::template spmm<false, I, A, A, A>(rp, cp, vp, h.const_data_ptr<A>(), n_rows, n_rows,
                                                                nnz, d, x.const_data_ptr<A>(), w, h2.data_ptr<A>(),
                                                                x.options());
        std::swap(h, h2);
      }
    });
  });
  if (!ok) report_bad_columns("lightgcn_propagate", rowptr, col, n_rows);
  return h.scalar_type() == x0.scalar_type() ? h : h.to(x0.scalar_type());
}

}  // namespace graph
}  // namespace llmhni
