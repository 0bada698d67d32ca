// Argument checks shared by every op. Each op validates its arguments with these
// before any kernel runs, so bad input raises a clear RuntimeError in Python.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <atomic>
#include <limits>
#include <string>

namespace llmhni {

inline void check_index(const at::Tensor& t, const char* op, const char* name) {
  TORCH_CHECK(t.scalar_type() == at::kInt || t.scalar_type() == at::kLong, op, ": ", name,
              " must be an int32 or int64 tensor, got ", t.scalar_type());
  TORCH_CHECK(t.dim() == 1, op, ": ", name, " must be 1-D, got shape ", t.sizes());
}

inline void check_floating(const at::Tensor& t, const char* op, const char* name) {
  const auto s = t.scalar_type();
  TORCH_CHECK(s == at::kFloat || s == at::kDouble || s == at::kHalf || s == at::kBFloat16, op, ": ",
              name, " must be float32, float64, float16 or bfloat16, got ", s);
}

inline void check_dim(const at::Tensor& t, int64_t dim, const char* op, const char* name) {
  TORCH_CHECK(t.dim() == dim, op, ": ", name, " must be ", dim, "-D, got shape ", t.sizes());
}

inline void check_same_device(const at::Tensor& a, const at::Tensor& b, const char* op,
                              const char* name_a, const char* name_b) {
  TORCH_CHECK(a.device() == b.device(), op, ": ", name_a, " is on ", a.device(), " but ", name_b,
              " is on ", b.device(), "; move them to one device");
}

inline void check_device_type(const at::Tensor& t, c10::DeviceType type, const char* op,
                              const char* name) {
  TORCH_CHECK(t.device().type() == type, op, ": ", name, " must be on ", c10::DeviceType(type),
              ", got ", t.device());
}

// Value range of an index tensor, in one pass; used for "index out of range" checks.
// (One device->host sync; ops call it once per call, never inside a hot loop.)
inline void check_range(const at::Tensor& idx, int64_t upper, const char* op, const char* name) {
  if (idx.numel() == 0) return;
  auto mm = at::aminmax(idx);
  const int64_t lo = std::get<0>(mm).item<int64_t>();
  const int64_t hi = std::get<1>(mm).item<int64_t>();
  TORCH_CHECK(lo >= 0 && hi < upper, op, ": ", name, " has values in [", lo, ", ", hi,
              "] but must lie in [0, ", upper, ")");
}

// A CSR's row pointers on the CPU: rowptr[0] == 0, non-decreasing, rowptr[n_rows] == nnz.
// One parallel pass over n_rows + 1 entries, no allocation, no cache.
template <typename I>
inline void check_rowptr_cpu(const char* op, const I* rp, int64_t n_rows, int64_t nnz) {
  const int64_t first = static_cast<int64_t>(rp[0]), last = static_cast<int64_t>(rp[n_rows]);
  TORCH_CHECK(first == 0, op, ": malformed CSR, rowptr[0] must be 0, got ", first);
  TORCH_CHECK(last == nnz, op, ": malformed CSR, rowptr[-1] must equal nnz = col.numel() = ", nnz, ", got ", last);
  // (one thread up to ~4M rows: a parallel region costs more than the pass, and waking the
  // pool right before the kernel's own region made the next spmm slower half the time)
  std::atomic<int64_t> bad_row{std::numeric_limits<int64_t>::max()};
  at::parallel_for(0, n_rows, 1 << 22, [&](int64_t b, int64_t e) {
    bool bad = false;
    for (int64_t r = b; r < e; ++r) bad |= rp[r + 1] < rp[r];
    if (!bad) return;
    for (int64_t r = b; r < e; ++r)
      if (rp[r + 1] < rp[r]) {
        int64_t cur = bad_row.load();
        while (r < cur && !bad_row.compare_exchange_weak(cur, r)) {}
        return;
      }
  });
  const int64_t br = bad_row.load();
  TORCH_CHECK(br == std::numeric_limits<int64_t>::max(), op,
              ": malformed CSR, rowptr must be non-decreasing (row ", br, " has ",
              static_cast<int64_t>(rp[br + 1]) - static_cast<int64_t>(rp[br]), " entries)");
}

// A CSR's structure on the CPU: check_rowptr_cpu, then 0 <= col < n_cols, and with
// sorted_rows, columns strictly increasing within each row. Parallel passes with no
// allocation and no cache; the first violation found is reported. The column pass reads
// all of col (about a fifth of an spmm's time), so the graph kernels check columns as
// they read them instead and call this only to report (see graph/graph_checks.h).
template <typename I>
inline void check_csr_cpu(const char* op, const I* rp, int64_t n_rows, const I* c, int64_t nnz, int64_t n_cols,
                          bool sorted_rows) {
  check_rowptr_cpu<I>(op, rp, n_rows, nnz);
  if (nnz > 0) {
    std::atomic<int64_t> lo{std::numeric_limits<int64_t>::max()}, hi{std::numeric_limits<int64_t>::min()};
    at::parallel_for(0, nnz, 1 << 16, [&](int64_t b, int64_t e) {
      I l = c[b], h = c[b];
      for (int64_t k = b; k < e; ++k) l = std::min(l, c[k]), h = std::max(h, c[k]);
      int64_t cur = lo.load();
      while (l < cur && !lo.compare_exchange_weak(cur, static_cast<int64_t>(l))) {}
      cur = hi.load();
      while (h > cur && !hi.compare_exchange_weak(cur, static_cast<int64_t>(h))) {}
    });
    TORCH_CHECK(lo.load() >= 0 && hi.load() < n_cols, op, ": col has values in [", lo.load(), ", ", hi.load(),
                "] but must lie in [0, ", n_cols, ")");
  }
  if (!sorted_rows) return;
  std::atomic<int64_t> unsorted{std::numeric_limits<int64_t>::max()};
  at::parallel_for(0, n_rows, 1 << 12, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r)
      for (int64_t k = static_cast<int64_t>(rp[r]) + 1; k < static_cast<int64_t>(rp[r + 1]); ++k)
        if (c[k] <= c[k - 1]) {
          int64_t cur = unsorted.load();
          while (r < cur && !unsorted.compare_exchange_weak(cur, r)) {}
          return;
        }
  });
  const int64_t ur = unsorted.load();
  TORCH_CHECK(ur == std::numeric_limits<int64_t>::max(), op, ": the columns of row ", ur,
              " are not sorted and duplicate-free (each row of the CSR must be strictly increasing)");
}

}  // namespace llmhni
