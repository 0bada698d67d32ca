// Per-candidate logic of llmhni::sample_negatives, shared by the CPU and CUDA kernels
// (host + device). The reference twin (llmhni_ext/reference/sampler.py)
// implements the same stream and the same arithmetic order, so all three agree bit
// for bit:
//
//   slot s = b * num_negatives + n; candidate index = s * num_candidates + m.
//   Draw attempt a (a < max_redraws) of a candidate uses Philox words
//   (2*(a&1), 2*(a&1)+1) of random4(seed, offset, index, a >> 1): an item uniform in
//   [0, n_items), or, for popularity, the first j with cdf[j] > t for t uniform in
//   [0, cdf[n-1]). A draw that is a positive of the user (binary search in the sorted
//   CSR row) is rejected and redrawn. After max_redraws rejections the item is drawn
//   exactly from the complement of the row with words (0, 1) of sub kFallbackSub:
//   rank mapping for uniform; for popularity the complement's cumulative mass (or, if
//   the complement has no mass, uniform rank mapping).
//
//   Dot products are fp32: element k goes into partial sum k % 8 (increasing k), then
//   the partials fold as l += l+4, l += l+2, l0 + l1. Multiplies and adds are kept
//   separate (no FMA contraction). cos = dot / max(|a| |b|, 1e-12), NaN -> +inf.
#pragma once

#include <cmath>
#include <cstdint>

#include "common/philox.h"

namespace llmhni {
namespace sampler {

constexpr uint32_t kFallbackSub = 0x7FFFFFFFu;
constexpr int64_t kMaxCandidates = 1024;
constexpr int64_t kMaxRedraws = 1 << 20;
constexpr int64_t kMaxCdfTotal = int64_t(1) << 46;
constexpr float kCosEps = 1e-12f;

enum Mode : int { kUniform = 0, kPopularity = 1, kDns = 2, kLlmhni = 3 };

// One call's sizes and settings, as the host code passes them to either device's kernels.
struct Params {
  int64_t B, S, N, M, K, n_items, d, ds, max_redraws;  // users, slots = B * N, negatives, candidates, top-k, ...
  uint64_t seed, offset;
  float thr;
  Mode mode;
};

#if defined(__CUDA_ARCH__)
LLMHNI_HD float fmul(float a, float b) { return __fmul_rn(a, b); }
LLMHNI_HD float fadd(float a, float b) { return __fadd_rn(a, b); }
LLMHNI_HD float fdiv(float a, float b) { return __fdiv_rn(a, b); }
LLMHNI_HD float fsqrt(float a) { return __fsqrt_rn(a); }
LLMHNI_HD bool fisnan(float a) { return isnan(a); }
#else
// Host: ISO C++ modes (torch builds with -std=c++17/20) default to -ffp-contract=off
// in GCC; the pragma asks the same of clang.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif
LLMHNI_HD float fmul(float a, float b) { return a * b; }
LLMHNI_HD float fadd(float a, float b) { return a + b; }
LLMHNI_HD float fdiv(float a, float b) { return a / b; }
LLMHNI_HD float fsqrt(float a) { return std::sqrt(a); }
LLMHNI_HD bool fisnan(float a) { return std::isnan(a); }
#endif

// True when `item` is in the sorted row col[lo, hi).
// Branch-free (conditional moves), since a draw's outcome is unpredictable.
template <typename I>
LLMHNI_HD bool row_contains(const I* col, int64_t lo, int64_t hi, int64_t item) {
  int64_t n = hi - lo;
  if (n <= 0) return false;
  const I* base = col + lo;
  while (n > 1) {
    const int64_t half = n >> 1;
    base = (static_cast<int64_t>(base[half]) <= item) ? base + half : base;
    n -= half;
  }
  return static_cast<int64_t>(*base) == item;
}

// First j in [0, n) with cdf[j] > target (n when none).
LLMHNI_HD int64_t upper_bound_cdf(const int64_t* cdf, int64_t n, int64_t target) {
  int64_t lo = 0, hi = n;
  while (lo < hi) {
    const int64_t mid = lo + ((hi - lo) >> 1);
    if (cdf[mid] <= target) lo = mid + 1; else hi = mid;
  }
  return lo;
}

// The t-th (0-based) item not in the sorted row col[lo, hi): t + #{k : row[k] - k <= t}.
template <typename I>
LLMHNI_HD int64_t complement_uniform(const I* col, int64_t lo, int64_t hi, int64_t t) {
  int64_t a = 0, b = hi - lo;
  while (a < b) {
    const int64_t mid = a + ((b - a) >> 1);
    if (static_cast<int64_t>(col[lo + mid]) - mid <= t) a = mid + 1; else b = mid;
  }
  return t + a;
}

LLMHNI_HD int64_t cdf_at(const int64_t* cdf, int64_t j) { return j >= 0 ? cdf[j] : 0; }

// Popularity mass of the complement of the row.
template <typename I>
LLMHNI_HD int64_t complement_mass(const I* col, int64_t lo, int64_t hi, const int64_t* cdf, int64_t n) {
  int64_t mass = cdf[n - 1];
  for (int64_t k = lo; k < hi; ++k) {
    const int64_t r = static_cast<int64_t>(col[k]);
    if (r < 0 || r >= n) continue;  // only reachable with check_rows=False on a bad CSR: never read outside cdf
    mass -= cdf[r] - cdf_at(cdf, r - 1);
  }
  return mass;
}

// Item of the complement whose cumulative complement mass first exceeds t (t < mass).
template <typename I>
LLMHNI_HD int64_t complement_popularity(const I* col, int64_t lo, int64_t hi, const int64_t* cdf,
                                        int64_t n, int64_t t) {
  int64_t prev = -1, base = 0;
  for (int64_t k = lo; k <= hi; ++k) {
    const int64_t r = k < hi ? static_cast<int64_t>(col[k]) : n;
    if (r <= prev || r > n) continue;  // a bad CSR trusted with check_rows=False: stay inside cdf
    const int64_t lo_mass = cdf_at(cdf, prev), hi_mass = cdf_at(cdf, r - 1);
    const int64_t seg = hi_mass - lo_mass;
    if (t < base + seg) return upper_bound_cdf(cdf, n, lo_mass + (t - base));
    base += seg;
    prev = r;
  }
  return n - 1;  // unreachable for t < mass
}

struct DrawCounts {
  int64_t rejected = 0;
  int64_t exhausted = 0;
};

// One candidate: drawn, redrawn while positive, exact complement fallback.
// cdf == nullptr: uniform. The row must not cover every item (checked before).
template <typename I>
LLMHNI_HD int64_t draw_candidate(const I* col, int64_t lo, int64_t hi, int64_t n_items, const int64_t* cdf,
                                 uint64_t seed, uint64_t offset, uint64_t index, int64_t max_redraws,
                                 DrawCounts& counts) {
  const int64_t total = cdf ? cdf[n_items - 1] : 0;
  Random4 r{{0, 0, 0, 0}};
  for (int64_t a = 0; a < max_redraws; ++a) {
    if ((a & 1) == 0) r = random4(seed, offset, index, static_cast<uint32_t>(a >> 1));
    const uint32_t w0 = (a & 1) ? r.x[2] : r.x[0];
    const uint32_t w1 = (a & 1) ? r.x[3] : r.x[1];
    const int64_t item =
        cdf ? upper_bound_cdf(cdf, n_items, static_cast<int64_t>(uniform_index(w0, w1, static_cast<uint64_t>(total))))
            : static_cast<int64_t>(uniform_index(w0, w1, static_cast<uint64_t>(n_items)));
    if (!row_contains(col, lo, hi, item)) return item;
    ++counts.rejected;
  }
  ++counts.exhausted;
  r = random4(seed, offset, index, kFallbackSub);
  const int64_t mass = cdf ? complement_mass(col, lo, hi, cdf, n_items) : 0;
  if (mass > 0) {
    const int64_t t = static_cast<int64_t>(uniform_index(r.x[0], r.x[1], static_cast<uint64_t>(mass)));
    return complement_popularity(col, lo, hi, cdf, n_items, t);
  }
  const int64_t t = static_cast<int64_t>(uniform_index(r.x[0], r.x[1], static_cast<uint64_t>(n_items - (hi - lo))));
  const int64_t item = complement_uniform(col, lo, hi, t);
  return item < n_items ? item : n_items - 1;  // (>= n_items only for a bad CSR trusted with check_rows=False)
}

// fp32 dot product in the fixed lane-8 order (see the header comment).
template <typename T>
LLMHNI_HD float lane8_dot(const T* a, const T* b, int64_t d) {
  float acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  int64_t k = 0;
  for (; k + 8 <= d; k += 8) {
#if defined(__CUDACC__)
#pragma unroll
#endif
    for (int l = 0; l < 8; ++l)
      acc[l] = fadd(acc[l], fmul(static_cast<float>(a[k + l]), static_cast<float>(b[k + l])));
  }
  for (int l = 0; k + l < d; ++l)
    acc[l] = fadd(acc[l], fmul(static_cast<float>(a[k + l]), static_cast<float>(b[k + l])));
#if defined(__CUDACC__)
#pragma unroll
#endif
  for (int l = 0; l < 4; ++l) acc[l] = fadd(acc[l], acc[l + 4]);
  acc[0] = fadd(acc[0], acc[2]);
  acc[1] = fadd(acc[1], acc[3]);
  return fadd(acc[0], acc[1]);
}

// cos(a, b) given |a|; NaN -> +inf (never chosen, counted as filtered).
template <typename T>
LLMHNI_HD float cosine(const T* a, float norm_a, const T* b, int64_t d) {
  const float norm_b = fsqrt(lane8_dot(b, b, d));
  float den = fmul(norm_a, norm_b);
  if (den < kCosEps) den = kCosEps;
  const float c = fdiv(lane8_dot(a, b, d), den);
  return fisnan(c) ? INFINITY : c;
}

// Ranking key of a backbone score: NaN ranks last.
LLMHNI_HD float rank_key(float s) { return fisnan(s) ? -INFINITY : s; }

}  // namespace sampler
}  // namespace llmhni
