// Row ranges of about equal cost for the CPU kernels. Degrees are skewed, so equal row
// counts would leave one thread with most of the work: the cost of a row is its stored
// entries plus one. rowptr must be checked (non-decreasing, rowptr[n_rows] == nnz).
#pragma once

#include <cstdint>
#include <vector>

namespace llmhni {

// Boundaries b[0] = 0 <= b[1] <= ... <= b[chunks] = n_rows: b[t] is the first row r with
// rowptr[r] + r >= floor(t * (nnz + n_rows) / chunks) (computed without overflow).
template <typename I>
std::vector<int64_t> balanced_rows(const I* rp, int64_t n_rows, int64_t chunks) {
  std::vector<int64_t> b(chunks + 1, n_rows);
  const int64_t total = static_cast<int64_t>(rp[n_rows]) + n_rows;
  b[0] = 0;
  for (int64_t t = 1; t < chunks; ++t) {
    const int64_t target = total / chunks * t + total % chunks * t / chunks;
    int64_t lo = b[t - 1], hi = n_rows;
    while (lo < hi) {
      const int64_t mid = lo + (hi - lo) / 2;
      if (static_cast<int64_t>(rp[mid]) + mid >= target) hi = mid;
      else lo = mid + 1;
    }
    b[t] = lo;
  }
  return b;
}

}  // namespace llmhni
