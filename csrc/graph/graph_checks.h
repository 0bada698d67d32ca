// Argument checks of the graph ops (csr_from_coo, bipartite_norm_adj, csr_transpose,
// spmm, csr_sddmm, lightgcn_propagate). Every CPU and CUDA kernel calls these before
// any work, so bad input raises a clear RuntimeError that starts with the op name.
//
// Validating a CSR's index range and row pointers costs one pass over rowptr and col: on
// the CPU it runs on every call; on CUDA (where it also costs a device->host sync) its
// result is remembered, see check_csr_structure.
#pragma once

#include <ATen/ATen.h>
#include <c10/core/StorageImpl.h>
#include <c10/util/intrusive_ptr.h>

#include <ATen/Parallel.h>

#include <array>
#include <atomic>
#include <cstdlib>
#include <limits>
#include <mutex>
#include <optional>

#include "common/checks.h"

namespace llmhni {
namespace graph {

// The entries of a CSR are sorted by row; within a row columns are in any order for
// spmm (construction ops sort them). rowptr and col share one integer dtype.
inline void check_csr_tensors(const char* op, const at::Tensor& rowptr, const at::Tensor& col) {
  check_index(rowptr, op, "rowptr");
  check_index(col, op, "col");
  TORCH_CHECK(rowptr.scalar_type() == col.scalar_type(), op, ": rowptr (", rowptr.scalar_type(),
              ") and col (", col.scalar_type(), ") must share one integer dtype");
  TORCH_CHECK(rowptr.numel() >= 1, op, ": rowptr must have n_rows + 1 >= 1 entries, got 0");
  check_same_device(rowptr, col, op, "rowptr", "col");
}

inline void check_value(const char* op, const at::Tensor& col, const std::optional<at::Tensor>& value) {
  if (!value.has_value()) return;
  check_floating(*value, op, "value");
  TORCH_CHECK(value->dim() == 1 && value->numel() == col.numel(), op,
              ": value must have shape (nnz,) = (", col.numel(), ",), got ", value->sizes());
  check_same_device(col, *value, op, "col", "value");
}

namespace detail {
struct ValidatedCsr {
  c10::weak_intrusive_ptr<c10::StorageImpl> rowptr_storage{c10::intrusive_ptr<c10::StorageImpl>()};
  c10::weak_intrusive_ptr<c10::StorageImpl> col_storage{c10::intrusive_ptr<c10::StorageImpl>()};
  int64_t rowptr_offset = -1, col_offset = -1, n_rows = -1, nnz = -1, n_cols = -1;
  const void* rowptr_data = nullptr;
  const void* col_data = nullptr;
  at::ScalarType dtype = at::kLong;
  uint32_t rowptr_version = 0, col_version = 0;
  bool used = false;
};
struct ValidatedCache {
  std::mutex mutex;
  std::array<ValidatedCsr, 16> slots;
  size_t next = 0;
};
inline ValidatedCache& validated_cache() {
  static ValidatedCache* cache = new ValidatedCache();  // never destroyed: safe at exit
  return *cache;
}
inline bool cacheable(const at::Tensor& t) {
  return !t.is_inference() && t.has_storage();
}
inline bool same(const ValidatedCsr& v, const at::Tensor& rowptr, const at::Tensor& col, int64_t n_cols) {
  if (!v.used || v.n_cols != n_cols || v.n_rows != rowptr.numel() - 1 || v.nnz != col.numel()) return false;
  if (v.rowptr_offset != rowptr.storage_offset() || v.col_offset != col.storage_offset()) return false;
  if (v.rowptr_data != rowptr.const_data_ptr() || v.col_data != col.const_data_ptr()) return false;
  if (v.dtype != rowptr.scalar_type() || !rowptr.is_contiguous() || !col.is_contiguous()) return false;
  auto rs = v.rowptr_storage.lock();
  auto cs = v.col_storage.lock();
  if (!rs || !cs) return false;
  if (rs.get() != rowptr.storage().unsafeGetStorageImpl() || cs.get() != col.storage().unsafeGetStorageImpl())
    return false;
  return v.rowptr_version == rowptr._version() && v.col_version == col._version();
}
}  // namespace detail

namespace detail {
inline bool always_validate() {
  static const bool v = [] {
    const char* e = std::getenv("LLMHNI_VALIDATE_ALWAYS");
    return e != nullptr && e[0] != '\0' && e[0] != '0';
  }();
  return v;
}
}  // namespace detail

// rowptr[0] == 0, rowptr non-decreasing, rowptr[n_rows] == nnz, 0 <= col < n_cols.
//
// CPU: checked on every call, so writes that bypass torch's version counter (through
// .numpy(), .data, DLPack) cannot slip past it. Row pointers here (O(n_rows)); columns
// here too unless cols_in_kernel, where the kernel checks each column as it reads it
// (it skips the entry and flags it) and calls report_bad_columns afterwards, which costs
// nothing extra where a separate pass would read all of col again.
// CUDA: a full check costs a device->host sync, so its result is remembered per (storage,
// data pointer, offset, sizes, dtype, version) of contiguous rowptr/col; a write that
// bypasses the version counter is not seen there (LLMHNI_VALIDATE_ALWAYS=1 checks every
// call). docs/trusted-inputs.md says this for users of the raw ops.
inline void check_csr_structure(const char* op, const at::Tensor& rowptr, const at::Tensor& col,
                                int64_t n_cols, bool cols_in_kernel = false) {
  TORCH_CHECK(rowptr.is_contiguous() && col.is_contiguous(), op, ": rowptr and col must be contiguous");
  TORCH_CHECK(n_cols >= 0, op, ": the number of columns must be non-negative, got ", n_cols);
  const int64_t nnz = col.numel(), n_rows = rowptr.numel() - 1;
  if (rowptr.is_cpu()) {
    if (rowptr.scalar_type() == at::kInt) {
      const int32_t* rp = rowptr.const_data_ptr<int32_t>();
      if (cols_in_kernel) check_rowptr_cpu<int32_t>(op, rp, n_rows, nnz);
      else check_csr_cpu<int32_t>(op, rp, n_rows, col.const_data_ptr<int32_t>(), nnz, n_cols, false);
    } else {
      const int64_t* rp = rowptr.const_data_ptr<int64_t>();
      if (cols_in_kernel) check_rowptr_cpu<int64_t>(op, rp, n_rows, nnz);
      else check_csr_cpu<int64_t>(op, rp, n_rows, col.const_data_ptr<int64_t>(), nnz, n_cols, false);
    }
    return;
  }
  const bool cacheable = !detail::always_validate() && detail::cacheable(rowptr) && detail::cacheable(col);
  auto& cache = detail::validated_cache();
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache.mutex);
    for (const auto& v : cache.slots)
      if (detail::same(v, rowptr, col, n_cols)) return;
  }
  if (rowptr.numel() > 1) {
    auto diffs = rowptr.narrow(0, 1, rowptr.numel() - 1) - rowptr.narrow(0, 0, rowptr.numel() - 1);
    auto mn = diffs.numel() ? diffs.min().item<int64_t>() : 0;
    TORCH_CHECK(mn >= 0, op, ": malformed CSR, rowptr must be non-decreasing (a row has ", mn, " entries)");
  }
  auto ends = at::stack({rowptr[0].to(at::kLong), rowptr[-1].to(at::kLong)}).cpu();
  const int64_t first = ends[0].item<int64_t>(), last = ends[1].item<int64_t>();
  TORCH_CHECK(first == 0, op, ": malformed CSR, rowptr[0] must be 0, got ", first);
  TORCH_CHECK(last == nnz, op, ": malformed CSR, rowptr[-1] must equal nnz = col.numel() = ", nnz,
              ", got ", last);
  check_range(col, n_cols, op, "col");
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache.mutex);
    auto& v = cache.slots[cache.next++ % cache.slots.size()];
    v.rowptr_storage = c10::weak_intrusive_ptr<c10::StorageImpl>(
        c10::intrusive_ptr<c10::StorageImpl>::reclaim_copy(rowptr.storage().unsafeGetStorageImpl()));
    v.col_storage = c10::weak_intrusive_ptr<c10::StorageImpl>(
        c10::intrusive_ptr<c10::StorageImpl>::reclaim_copy(col.storage().unsafeGetStorageImpl()));
    v.rowptr_offset = rowptr.storage_offset();
    v.col_offset = col.storage_offset();
    v.rowptr_data = rowptr.const_data_ptr();
    v.col_data = col.const_data_ptr();
    v.dtype = rowptr.scalar_type();
    v.n_rows = n_rows;
    v.nnz = nnz;
    v.n_cols = n_cols;
    v.rowptr_version = rowptr._version();
    v.col_version = col._version();
    v.used = true;
  }
}

// A CPU kernel that checked columns as it read them (check_csr_structure with
// cols_in_kernel) found one outside [0, n_cols): raise the same error the full check gives.
[[noreturn]] inline void report_bad_columns(const char* op, const at::Tensor& rowptr, const at::Tensor& col,
                                            int64_t n_cols) {
  if (rowptr.scalar_type() == at::kInt)
    check_csr_cpu<int32_t>(op, rowptr.const_data_ptr<int32_t>(), rowptr.numel() - 1, col.const_data_ptr<int32_t>(),
                           col.numel(), n_cols, false);
  else
    check_csr_cpu<int64_t>(op, rowptr.const_data_ptr<int64_t>(), rowptr.numel() - 1, col.const_data_ptr<int64_t>(),
                           col.numel(), n_cols, false);
  TORCH_CHECK(false, op, ": col was modified while the kernel read it (a column outside [0, ", n_cols, ") was seen)");
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

// int32 when every size fits in it (n_rows + 1 row pointers, column ids, entries).
inline at::ScalarType index_dtype(int64_t n_rows, int64_t n_cols, int64_t nnz_bound) {
  const int64_t lim = std::numeric_limits<int32_t>::max();
  return (n_rows + 1 <= lim && n_cols <= lim && nnz_bound <= lim) ? at::kInt : at::kLong;
}

}  // namespace graph
}  // namespace llmhni
