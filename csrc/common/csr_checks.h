// Checks of a CSR (rowptr, col) shared by every family: dtypes and devices, and the
// structure (rowptr[0] == 0, non-decreasing, rowptr[n_rows] == nnz, 0 <= col < n_cols).
//
// Validating the structure costs one pass over rowptr and col: on the CPU it runs on every
// call; on CUDA (where it also costs a device->host sync) its result is remembered, see
// check_csr_structure.
#pragma once

#include <ATen/ATen.h>
#include <c10/core/StorageImpl.h>
#include <c10/util/intrusive_ptr.h>

#include <array>
#include <cstdlib>
#include <mutex>

#include "common/checks.h"

namespace llmhni {

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
  TORCH_CHECK(rowptr.is_cpu(), op, ": a column outside [0, ", n_cols, ") was seen");
  if (rowptr.scalar_type() == at::kInt)
    check_csr_cpu<int32_t>(op, rowptr.const_data_ptr<int32_t>(), rowptr.numel() - 1, col.const_data_ptr<int32_t>(),
                           col.numel(), n_cols, false);
  else
    check_csr_cpu<int64_t>(op, rowptr.const_data_ptr<int64_t>(), rowptr.numel() - 1, col.const_data_ptr<int64_t>(),
                           col.numel(), n_cols, false);
  TORCH_CHECK(false, op, ": col was modified while the kernel read it (a column outside [0, ", n_cols, ") was seen)");
}

}  // namespace llmhni
