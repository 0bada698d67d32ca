// Argument checks of the graph ops (csr_from_coo, bipartite_norm_adj, csr_transpose,
// spmm, csr_sddmm, lightgcn_propagate), one check_<op>_args per op, called by the host
// code of both devices before any work, so bad input raises a clear RuntimeError that
// starts with the op name. The CSR structure checks shared with the other families are
// common/csr_checks.h.
#pragma once

#include <ATen/ATen.h>

#include <limits>
#include <optional>

#include "common/checks.h"
#include "common/csr_checks.h"

namespace llmhni {
namespace graph {

inline void check_value(const char* op, const at::Tensor& col, const std::optional<at::Tensor>& value) {
  if (!value.has_value()) return;
  check_floating(*value, op, "value");
  TORCH_CHECK(value->dim() == 1 && value->numel() == col.numel(), op,
              ": value must have shape (nnz,) = (", col.numel(), ",), got ", value->sizes());
  check_same_device(col, *value, op, "col", "value");
}

// A dense operand: 2-D, floating, on the CSR's device.
inline void check_dense(const char* op, const at::Tensor& col, const at::Tensor& x, const char* name) {
  check_floating(x, op, name);
  check_dim(x, 2, op, name);
  check_same_device(col, x, op, "col", name);
}

// The transpose given for autograd (t_rowptr, t_col, t_perm): all or none; t_perm may be
// absent when A is symmetric (then t_rowptr/t_col are A's own).
inline void check_transpose_args(const char* op, const at::Tensor& col,
                                 const std::optional<at::Tensor>& t_rowptr,
                                 const std::optional<at::Tensor>& t_col,
                                 const std::optional<at::Tensor>& t_perm) {
  TORCH_CHECK(t_rowptr.has_value() == t_col.has_value(), op,
              ": give both t_rowptr and t_col (the transpose of A) or neither");
  TORCH_CHECK(!t_perm.has_value() || t_rowptr.has_value(), op, ": t_perm needs t_rowptr and t_col");
  if (!t_rowptr.has_value()) return;
  check_csr_tensors(op, *t_rowptr, *t_col);
  TORCH_CHECK(t_col->numel() == col.numel(), op, ": the transpose has ", t_col->numel(),
              " entries but A has ", col.numel());
  check_same_device(col, *t_col, op, "col", "t_col");
  if (t_perm.has_value()) {
    check_index(*t_perm, op, "t_perm");
    TORCH_CHECK(t_perm->numel() == col.numel(), op, ": t_perm must have nnz = ", col.numel(),
                " entries, got ", t_perm->numel());
    check_same_device(col, *t_perm, op, "col", "t_perm");
  }
}

inline void check_coo(const char* op, const at::Tensor& row, const at::Tensor& col, int64_t n_rows,
                      int64_t n_cols, const char* row_name, const char* col_name) {
  check_index(row, op, row_name);
  check_index(col, op, col_name);
  TORCH_CHECK(row.numel() == col.numel(), op, ": ", row_name, " and ", col_name,
              " must have the same length, got ", row.numel(), " and ", col.numel());
  check_same_device(row, col, op, row_name, col_name);
  TORCH_CHECK(n_rows >= 0 && n_cols >= 0, op, ": sizes must be non-negative, got ", n_rows, " and ", n_cols);
  check_range(row, n_rows, op, row_name);
  check_range(col, n_cols, op, col_name);
}

// ---- every check of one op, in one call (shared by the CPU and CUDA host code) ----------
// On the CPU the columns of spmm, csr_sddmm and lightgcn_propagate (with at least one
// layer) are checked by their kernels as they read them (cols_in_kernel).

// A CSR with optional edge values, a dense operand and the optional transpose.
inline void check_weighted_csr_and_dense(const char* op, const at::Tensor& rowptr, const at::Tensor& col,
                                         const std::optional<at::Tensor>& value, const at::Tensor& x,
                                         const char* x_name, const std::optional<at::Tensor>& t_rowptr,
                                         const std::optional<at::Tensor>& t_col,
                                         const std::optional<at::Tensor>& t_perm, c10::DeviceType device) {
  check_csr_tensors(op, rowptr, col);
  check_device_type(col, device, op, "col");
  check_value(op, col, value);
  check_dense(op, col, x, x_name);
  check_transpose_args(op, col, t_rowptr, t_col, t_perm);
}

inline void check_spmm_args(const at::Tensor& rowptr, const at::Tensor& col, const std::optional<at::Tensor>& value,
                            const at::Tensor& x, const std::optional<at::Tensor>& t_rowptr,
                            const std::optional<at::Tensor>& t_col, const std::optional<at::Tensor>& t_perm,
                            c10::DeviceType device) {
  constexpr const char* op = "spmm";
  check_weighted_csr_and_dense(op, rowptr, col, value, x, "x", t_rowptr, t_col, t_perm, device);
  check_csr_structure(op, rowptr, col, x.size(0), /*cols_in_kernel=*/device == c10::DeviceType::CPU);
}

inline void check_sddmm_args(const at::Tensor& rowptr, const at::Tensor& col, const at::Tensor& a,
                             const at::Tensor& b, c10::DeviceType device) {
  constexpr const char* op = "csr_sddmm";
  check_csr_tensors(op, rowptr, col);
  check_device_type(col, device, op, "col");
  check_dense(op, col, a, "a");
  check_dense(op, col, b, "b");
  TORCH_CHECK(a.scalar_type() == b.scalar_type(), op, ": a (", a.scalar_type(), ") and b (", b.scalar_type(),
              ") must have one dtype");
  TORCH_CHECK(a.size(0) == rowptr.numel() - 1, op, ": a must have n_rows = ", rowptr.numel() - 1, " rows, got ",
              a.size(0));
  TORCH_CHECK(a.size(1) == b.size(1), op, ": a and b must have the same width, got ", a.size(1), " and ",
              b.size(1));
  check_csr_structure(op, rowptr, col, b.size(0), /*cols_in_kernel=*/device == c10::DeviceType::CPU);
}

inline void check_propagate_args(const at::Tensor& rowptr, const at::Tensor& col,
                                 const std::optional<at::Tensor>& value, const at::Tensor& x0,
                                 at::ArrayRef<double> weights, const std::optional<at::Tensor>& t_rowptr,
                                 const std::optional<at::Tensor>& t_col, const std::optional<at::Tensor>& t_perm,
                                 c10::DeviceType device) {
  constexpr const char* op = "lightgcn_propagate";
  check_weighted_csr_and_dense(op, rowptr, col, value, x0, "x0", t_rowptr, t_col, t_perm, device);
  TORCH_CHECK(weights.size() >= 1, op, ": weights must have at least one entry (w_0 for layer 0)");
  const int64_t n_rows = rowptr.numel() - 1;
  TORCH_CHECK(x0.size(0) == n_rows, op, ": A must be square with one row per node of x0: A has ", n_rows,
              " rows, x0 has ", x0.size(0));
  // with no layer the kernel reads no column, so they are checked here
  check_csr_structure(op, rowptr, col, n_rows, device == c10::DeviceType::CPU && weights.size() > 1);
}

inline void check_csr_transpose_args(const at::Tensor& rowptr, const at::Tensor& col, int64_t n_cols,
                                     c10::DeviceType device) {
  constexpr const char* op = "csr_transpose";
  check_csr_tensors(op, rowptr, col);
  check_device_type(col, device, op, "col");
  TORCH_CHECK(n_cols >= 0, op, ": n_cols must be non-negative, got ", n_cols);
  check_csr_structure(op, rowptr, col, n_cols);
}

inline void check_coo_args(const char* op, const at::Tensor& row, const at::Tensor& col, int64_t n_rows,
                           int64_t n_cols, const char* row_name, const char* col_name, c10::DeviceType device) {
  check_coo(op, row, col, n_rows, n_cols, row_name, col_name);
  check_device_type(row, device, op, row_name);
}

// int32 when every size fits in it (n_rows + 1 row pointers, column ids, entries).
inline at::ScalarType index_dtype(int64_t n_rows, int64_t n_cols, int64_t nnz_bound) {
  const int64_t lim = std::numeric_limits<int32_t>::max();
  return (n_rows + 1 <= lim && n_cols <= lim && nnz_bound <= lim) ? at::kInt : at::kLong;
}

}  // namespace graph
}  // namespace llmhni
