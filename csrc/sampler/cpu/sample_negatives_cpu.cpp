// CPU kernel of llmhni::sample_negatives: one task per (user, negative slot),
// at::parallel_for over slots; per-slot scratch only (no B x M x d buffer).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define LLMHNI_SAMPLER_AVX2 1
#endif

#include "common/registry.h"
#include "sampler/sample_negatives_host.h"
#include "sampler/sampler_common.h"

namespace llmhni {
namespace sampler {
namespace {

constexpr int kPhiloxLanes = 16;  // a multiple of 8 (AVX2 lanes)

#if defined(LLMHNI_SAMPLER_AVX2)
// philox4x32_10 on 8 lanes per AVX2 register (32x32 -> 64-bit products of the even and
// the odd lanes, then blends): integer arithmetic, so bit-identical to random4.
__attribute__((target("avx2"))) void first_words_avx2(uint64_t seed, uint64_t offset, uint64_t index0,
                                                      uint32_t* w0, uint32_t* w1, uint64_t stride) {
  constexpr int V = kPhiloxLanes / 8;
  alignas(32) uint32_t lo32[kPhiloxLanes], hi32[kPhiloxLanes];
  for (int l = 0; l < kPhiloxLanes; ++l) {
    const uint64_t idx = index0 + static_cast<uint64_t>(l) * stride;
    lo32[l] = static_cast<uint32_t>(idx);
    hi32[l] = static_cast<uint32_t>(idx >> 32);
  }
  __m256i c0[V], c1[V], c2[V], c3[V];
  for (int v = 0; v < V; ++v) {
    c0[v] = _mm256_load_si256(reinterpret_cast<const __m256i*>(lo32 + 8 * v));
    c1[v] = _mm256_load_si256(reinterpret_cast<const __m256i*>(hi32 + 8 * v));
    c2[v] = _mm256_setzero_si256();
    c3[v] = _mm256_set1_epi32(static_cast<int>(static_cast<uint32_t>(offset)));
  }
  uint32_t k0 = static_cast<uint32_t>(seed);
  uint32_t k1 = static_cast<uint32_t>(seed >> 32) ^ static_cast<uint32_t>(offset >> 32);
  const __m256i M0 = _mm256_set1_epi32(static_cast<int>(0xD2511F53u));
  const __m256i M1 = _mm256_set1_epi32(static_cast<int>(0xCD9E8D57u));
  for (int round = 0; round < 10; ++round) {
    const __m256i K0 = _mm256_set1_epi32(static_cast<int>(k0)), K1 = _mm256_set1_epi32(static_cast<int>(k1));
    for (int v = 0; v < V; ++v) {
      const __m256i pe0 = _mm256_mul_epu32(c0[v], M0), po0 = _mm256_mul_epu32(_mm256_srli_epi64(c0[v], 32), M0);
      const __m256i pe1 = _mm256_mul_epu32(c2[v], M1), po1 = _mm256_mul_epu32(_mm256_srli_epi64(c2[v], 32), M1);
      const __m256i lo0 = _mm256_blend_epi32(pe0, _mm256_slli_epi64(po0, 32), 0xAA);
      const __m256i hi0 = _mm256_blend_epi32(_mm256_srli_epi64(pe0, 32), po0, 0xAA);
      const __m256i lo1 = _mm256_blend_epi32(pe1, _mm256_slli_epi64(po1, 32), 0xAA);
      const __m256i hi1 = _mm256_blend_epi32(_mm256_srli_epi64(pe1, 32), po1, 0xAA);
      c0[v] = _mm256_xor_si256(_mm256_xor_si256(hi1, c1[v]), K0);
      c2[v] = _mm256_xor_si256(_mm256_xor_si256(hi0, c3[v]), K1);
      c1[v] = lo1;
      c3[v] = lo0;
    }
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  for (int v = 0; v < V; ++v) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(w0 + 8 * v), c0[v]);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(w1 + 8 * v), c1[v]);
  }
}

// LLMHNI_SAMPLER_NO_AVX2=1 takes the scalar path (tests compare both with the reference).
const bool kHaveAvx2 = [] {
  __builtin_cpu_init();  // this may run before libgcc's own CPU detection constructor
  const char* off = std::getenv("LLMHNI_SAMPLER_NO_AVX2");
  return __builtin_cpu_supports("avx2") && !(off != nullptr && off[0] == '1');
}();
#endif

// Words 0 and 1 of random4(seed, offset, index0 + l * stride, 0), l < kPhiloxLanes:
// AVX2 lanes where the CPU has them (3x faster), else scalar calls (which overlap in
// the core well enough that SSE2 lanes were no faster).
inline void first_words(uint64_t seed, uint64_t offset, uint64_t index0, uint32_t* w0, uint32_t* w1,
                        uint64_t stride = 1) {
#if defined(LLMHNI_SAMPLER_AVX2)
  if (kHaveAvx2) return first_words_avx2(seed, offset, index0, w0, w1, stride);
#endif
  for (int l = 0; l < kPhiloxLanes; ++l) {
    const Random4 r = random4(seed, offset, index0 + static_cast<uint64_t>(l) * stride, 0);
    w0[l] = r.x[0];
    w1[l] = r.x[1];
  }
}

// uniform / popularity: slots in groups of kGroup whose first draws are searched in
// lockstep, so that the cache misses of the row look-ups overlap. A first draw that
// hits a positive goes through draw_candidate (which replays it), so the samples and
// counts are those of the plain per-slot loop.
constexpr int kGroup = kPhiloxLanes;

template <typename I, typename TE>
DrawCounts draw_first_interleaved(const Params& p, const I* rowptr, const I* col, const int64_t* users,
                                  const int64_t* cdf, const TE* ue, const TE* ie, int64_t* neg, float* scores,
                                  int64_t s0, int64_t s1) {
  DrawCounts dc;
  const int64_t* pcdf = p.mode == kPopularity ? cdf : nullptr;
  const int64_t total = pcdf ? pcdf[p.n_items - 1] : 0;
  int64_t u[kGroup], lo[kGroup], hi[kGroup], item[kGroup], n[kGroup];
  const I* base[kGroup];
  uint32_t w0[kGroup], w1[kGroup];
  for (int64_t s = s0; s < s1; s += kGroup) {
    const int g = static_cast<int>(std::min<int64_t>(kGroup, s1 - s));
    if (p.max_redraws > 0)
      first_words(p.seed, p.offset, static_cast<uint64_t>(s * p.M), w0, w1, static_cast<uint64_t>(p.M));
    for (int j = 0; j < g; ++j) {
      u[j] = users[(s + j) / p.N];
      lo[j] = static_cast<int64_t>(rowptr[u[j]]);
      hi[j] = static_cast<int64_t>(rowptr[u[j] + 1]);
      if (p.max_redraws > 0) {
        item[j] = pcdf ? upper_bound_cdf(pcdf, p.n_items,
                                         static_cast<int64_t>(uniform_index(w0[j], w1[j], static_cast<uint64_t>(total))))
                       : static_cast<int64_t>(uniform_index(w0[j], w1[j], static_cast<uint64_t>(p.n_items)));
      }
      n[j] = hi[j] - lo[j];
      base[j] = col + lo[j];
    }
    if (p.max_redraws > 0) {
      for (bool more = true; more;) {  // branch-free searches, side by side
        more = false;
        for (int j = 0; j < g; ++j) {
          if (n[j] > 1) {
            const int64_t half = n[j] >> 1;
            base[j] = (static_cast<int64_t>(base[j][half]) <= item[j]) ? base[j] + half : base[j];
            n[j] -= half;
            more = true;
          }
        }
      }
    }
    for (int j = 0; j < g; ++j) {
      const bool hit = p.max_redraws == 0 || (n[j] > 0 && static_cast<int64_t>(*base[j]) == item[j]);
      const int64_t it = hit ? draw_candidate(col, lo[j], hi[j], p.n_items, pcdf, p.seed, p.offset,
                                              static_cast<uint64_t>((s + j) * p.M), p.max_redraws, dc)
                             : item[j];
      neg[s + j] = it;
      if (scores) scores[s + j] = lane8_dot(ue + u[j] * p.d, ie + it * p.d, p.d);
    }
  }
  return dc;
}

// ---- scored modes (dns, llmhni) with drawn candidates -----------------------------
// Per slot: the first draws of all M candidates (first_words), their searches in the
// user's row side by side, a redraw (draw_candidate replays the stream) for each hit,
// then the scores, four candidates at a time, in the lane-8 order of lane8_dot, the
// top K and the llmhni choice. Slots are software-pipelined (sample_scored_drawn), so
// the item, row and semantic fetches of one slot overlap another slot's arithmetic.
// The numbers are those of the plain per-candidate loop (and the reference twin).

template <typename T>
inline void prefetch_row(const T* row, int64_t n) {
  const char* r = reinterpret_cast<const char*>(row);
  for (int64_t o = 0; o < n * static_cast<int64_t>(sizeof(T)); o += 64) __builtin_prefetch(r + o);
}

// lane8_dot of a with b[0..3] (bit-identical to four lane8_dot calls).
template <typename T>
inline void lane8_dot4(const T* a, const T* const* b, int64_t d, float* out) {
  for (int j = 0; j < 4; ++j) out[j] = lane8_dot(a, b[j], d);
}

#if defined(__SSE2__)
// Lanes 0-3 and 4-7 of the lane-8 partial sums -> the lane8_dot fold.
inline float fold8(__m128 lo, __m128 hi) {
  const __m128 s = _mm_add_ps(lo, hi);                   // l += l + 4
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));   // l0 + l2, l1 + l3
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}

// The tail (d % 8 elements) in scalar lanes, then the fold.
inline float finish8(__m128 lo, __m128 hi, const float* a, const float* b, int64_t k, int64_t d) {
  if (k < d) {
    alignas(16) float acc[8];
    _mm_store_ps(acc, lo);
    _mm_store_ps(acc + 4, hi);
    for (int l = 0; k + l < d; ++l) acc[l] = acc[l] + a[k + l] * b[k + l];
    lo = _mm_load_ps(acc);
    hi = _mm_load_ps(acc + 4);
  }
  return fold8(lo, hi);
}

template <>
inline void lane8_dot4<float>(const float* a, const float* const* b, int64_t d, float* out) {
  __m128 lo0 = _mm_setzero_ps(), hi0 = lo0, lo1 = lo0, hi1 = lo0, lo2 = lo0, hi2 = lo0, lo3 = lo0, hi3 = lo0;
  const float *b0 = b[0], *b1 = b[1], *b2 = b[2], *b3 = b[3];
  int64_t k = 0;
  for (; k + 8 <= d; k += 8) {
    const __m128 al = _mm_loadu_ps(a + k), ah = _mm_loadu_ps(a + k + 4);
    lo0 = _mm_add_ps(lo0, _mm_mul_ps(al, _mm_loadu_ps(b0 + k)));
    hi0 = _mm_add_ps(hi0, _mm_mul_ps(ah, _mm_loadu_ps(b0 + k + 4)));
    lo1 = _mm_add_ps(lo1, _mm_mul_ps(al, _mm_loadu_ps(b1 + k)));
    hi1 = _mm_add_ps(hi1, _mm_mul_ps(ah, _mm_loadu_ps(b1 + k + 4)));
    lo2 = _mm_add_ps(lo2, _mm_mul_ps(al, _mm_loadu_ps(b2 + k)));
    hi2 = _mm_add_ps(hi2, _mm_mul_ps(ah, _mm_loadu_ps(b2 + k + 4)));
    lo3 = _mm_add_ps(lo3, _mm_mul_ps(al, _mm_loadu_ps(b3 + k)));
    hi3 = _mm_add_ps(hi3, _mm_mul_ps(ah, _mm_loadu_ps(b3 + k + 4)));
  }
  out[0] = finish8(lo0, hi0, a, b0, k, d);
  out[1] = finish8(lo1, hi1, a, b1, k, d);
  out[2] = finish8(lo2, hi2, a, b2, k, d);
  out[3] = finish8(lo3, hi3, a, b3, k, d);
}
#endif

// cosine(a, norm_a, b, d) with |b| and <a, b> from one pass over b.
template <typename T>
inline float cosine_fused(const T* a, float norm_a, const T* b, int64_t d) {
  return cosine(a, norm_a, b, d);
}

#if defined(__SSE2__)
template <>
inline float cosine_fused<float>(const float* a, float norm_a, const float* b, int64_t d) {
  __m128 dl = _mm_setzero_ps(), dh = dl, nl = dl, nh = dl;
  int64_t k = 0;
  for (; k + 8 <= d; k += 8) {
    const __m128 bl = _mm_loadu_ps(b + k), bh = _mm_loadu_ps(b + k + 4);
    dl = _mm_add_ps(dl, _mm_mul_ps(_mm_loadu_ps(a + k), bl));
    dh = _mm_add_ps(dh, _mm_mul_ps(_mm_loadu_ps(a + k + 4), bh));
    nl = _mm_add_ps(nl, _mm_mul_ps(bl, bl));
    nh = _mm_add_ps(nh, _mm_mul_ps(bh, bh));
  }
  const float norm_b = fsqrt(finish8(nl, nh, b, b, k, d));
  float den = fmul(norm_a, norm_b);
  if (den < kCosEps) den = kCosEps;
  const float c = fdiv(finish8(dl, dh, a, b, k, d), den);
  return fisnan(c) ? INFINITY : c;
}
#endif

// Scratch of one slot in flight.
struct SlotBuf {
  std::vector<int64_t> cand;
  std::vector<float> raw;  // backbone scores
  std::vector<float> key;  // rank keys (NaN -> -inf)
  std::vector<int64_t> top;
  int64_t cnt = 0, u = 0, lo = 0, hi = 0;
  void resize(int64_t M, int64_t K) {
    const size_t m = static_cast<size_t>((M + kPhiloxLanes - 1) / kPhiloxLanes * kPhiloxLanes);
    cand.resize(m);
    raw.resize(m);
    key.resize(m);
    top.resize(static_cast<size_t>(std::max<int64_t>(K, 1)));
  }
};

// Stage A of slot s: the first draw of each candidate (Philox words 0, 1 of sub 0) and
// a fetch of the user's row, so that stage B finds both in cache.
template <typename I, typename TE>
inline void first_draws_slot(const Params& p, const I* rowptr, const I* col, const int64_t* users, const TE* ue,
                             int64_t s, SlotBuf& buf) {
  const int64_t u = users[s / p.N];
  buf.u = u;
  buf.lo = static_cast<int64_t>(rowptr[u]);
  buf.hi = static_cast<int64_t>(rowptr[u + 1]);
  prefetch_row(ue + u * p.d, p.d);
  const int64_t row_bytes = (buf.hi - buf.lo) * static_cast<int64_t>(sizeof(I));
  if (row_bytes <= 64 * 64) prefetch_row(col + buf.lo, buf.hi - buf.lo);
  if (p.max_redraws == 0) return;  // every candidate comes from the exact fallback (stage B)
  int64_t* cand = buf.cand.data();
  const uint64_t index0 = static_cast<uint64_t>(s * p.M);
  uint32_t w0[kPhiloxLanes], w1[kPhiloxLanes];
  for (int64_t m0 = 0; m0 < p.M; m0 += kPhiloxLanes) {
    first_words(p.seed, p.offset, index0 + static_cast<uint64_t>(m0), w0, w1);
    const int lanes = static_cast<int>(std::min<int64_t>(kPhiloxLanes, p.M - m0));
    for (int l = 0; l < lanes; ++l)
      cand[m0 + l] = static_cast<int64_t>(uniform_index(w0[l], w1[l], static_cast<uint64_t>(p.n_items)));
  }
}

// Stage B, first half: rejects the first draws that are positives of the user (the
// searches run side by side: every candidate walks the same row, so they take the
// same steps) and redraws them with draw_candidate, which replays the stream.
template <typename I, typename TE>
inline void reject_slot(const Params& p, const I* col, const TE* ie, int64_t s, SlotBuf& buf, DrawCounts& dc) {
  int64_t* cand = buf.cand.data();
  const uint64_t index0 = static_cast<uint64_t>(s * p.M);
  const int64_t lo = buf.lo, hi = buf.hi;
  if (p.max_redraws == 0) {
    for (int64_t m = 0; m < p.M; ++m) {
      cand[m] = draw_candidate(col, lo, hi, p.n_items, static_cast<const int64_t*>(nullptr), p.seed, p.offset,
                               index0 + static_cast<uint64_t>(m), p.max_redraws, dc);
      prefetch_row(ie + cand[m] * p.d, p.d);
    }
    return;
  }
  const int64_t n = hi - lo;
  if (n == 0) return;
  const I* row = col + lo;
  int64_t pos[kMaxCandidates];
  for (int64_t m = 0; m < p.M; ++m) pos[m] = 0;
  for (int64_t len = n; len > 1;) {
    const int64_t half = len >> 1;
    for (int64_t m = 0; m < p.M; ++m)  // arithmetic, not a branch: the outcome is a coin flip
      pos[m] += half * static_cast<int64_t>(static_cast<int64_t>(row[pos[m] + half]) <= cand[m]);
    len -= half;
  }
  for (int64_t m = 0; m < p.M; ++m) {
    if (static_cast<int64_t>(row[pos[m]]) == cand[m]) {
      cand[m] = draw_candidate(col, lo, hi, p.n_items, static_cast<const int64_t*>(nullptr), p.seed, p.offset,
                               index0 + static_cast<uint64_t>(m), p.max_redraws, dc);
      prefetch_row(ie + cand[m] * p.d, p.d);
    }
  }
}

// Stage B, second half: scores buf.cand against the user's embedding (buf.raw, and
// buf.key for ranking), fetching the item rows of the next slot's first draws on the way.
template <typename TE>
inline void score_slot(const Params& p, const TE* eu, const TE* ie, SlotBuf& buf, const SlotBuf* next) {
  const int64_t* cand = buf.cand.data();
  const int64_t* nc = next && p.max_redraws > 0 ? next->cand.data() : nullptr;
  float* raw = buf.raw.data();
  int64_t m = 0;
  for (; m + 4 <= p.M; m += 4) {
    if (nc)
      for (int j = 0; j < 4; ++j) prefetch_row(ie + nc[m + j] * p.d, p.d);
    const TE* b[4] = {ie + cand[m] * p.d, ie + cand[m + 1] * p.d, ie + cand[m + 2] * p.d, ie + cand[m + 3] * p.d};
    lane8_dot4(eu, b, p.d, raw + m);
  }
  for (; m < p.M; ++m) {
    if (nc) prefetch_row(ie + nc[m] * p.d, p.d);
    raw[m] = lane8_dot(eu, ie + cand[m] * p.d, p.d);
  }
  for (m = 0; m < p.M; ++m) buf.key[m] = rank_key(raw[m]);
}

// Top K of buf.key by (score desc, index asc), by insertion, into buf.top[0, buf.cnt).
// The kept keys live in a local array, so a candidate below the K-th is one compare.
inline void top_k_slot(const Params& p, SlotBuf& buf) {
  const float* key = buf.key.data();
  int64_t* top = buf.top.data();
  float tk[kMaxCandidates];
  const int64_t K = p.K;
  int64_t cnt = 0;
  for (int64_t m = 0; m < p.M; ++m) {
    const float k = key[m];
    if (cnt == K && !(k > tk[K - 1])) continue;
    int64_t pos = cnt < K ? cnt : K - 1;
    while (pos > 0 && tk[pos - 1] < k) {
      tk[pos] = tk[pos - 1];
      top[pos] = top[pos - 1];
      --pos;
    }
    tk[pos] = k;
    top[pos] = m;
    if (cnt < K) ++cnt;
  }
  buf.cnt = cnt;
}

// Slots [s0, s1) of a scored mode with drawn candidates, as a three-stage software
// pipeline (A: first draws of s+1; B: rejection, scores and top K of s; C: the llmhni
// choice of s-1), so that each stage's memory traffic is in flight during another's work.
// llmhni's choice among the top K candidates (slots top[0..cnt)): the one least similar to the
// user (lowest cosine, ties to the lower slot), never one above `thr`. When every top-K
// candidate is above it (probable false negatives), the least similar of all M slots, counted
// as a fallback. `cos(m)` is the cosine of slot m.
template <typename Cos>
inline int64_t least_similar(const int64_t* top, int64_t cnt, int64_t M, float thr, int64_t& filtered,
                             int64_t& fallbacks, Cos cos) {
  int64_t best = -1;
  float best_c = INFINITY;
  for (int64_t t = 0; t < cnt; ++t) {
    const int64_t m = top[t];
    const float c = cos(m);
    if (c <= thr) {
      if (best < 0 || c < best_c || (c == best_c && m < best)) best = m, best_c = c;
    } else {
      ++filtered;
    }
  }
  if (best < 0) {
    ++fallbacks;
    best = 0;
    best_c = cos(0);
    for (int64_t m = 1; m < M; ++m) {
      const float c = cos(m);
      if (c < best_c) best = m, best_c = c;
    }
  }
  return best;
}

template <typename I, typename TE, typename TS>
void sample_scored_drawn(const Params& p, const I* rowptr, const I* col, const int64_t* users, const TE* ue,
                         const TE* ie, const TS* us, const TS* is, int64_t* neg, float* scores, int64_t s0, int64_t s1,
                         DrawCounts& dc, int64_t& filtered, int64_t& fallbacks) {
  SlotBuf bufs[3];
  for (auto& b : bufs) b.resize(p.M, p.K);
  const bool llm = p.mode == kLlmhni;
  auto choose = [&](int64_t s, SlotBuf& buf) {
    int64_t pick = 0;
    if (!llm) {
      float best = buf.key[0];
      for (int64_t m = 1; m < p.M; ++m)
        if (buf.key[m] > best) best = buf.key[m], pick = m;
    } else {
      const TS* su = us + buf.u * p.ds;
      const float norm_u = fsqrt(lane8_dot(su, su, p.ds));
      pick = least_similar(buf.top.data(), buf.cnt, p.M, p.thr, filtered, fallbacks, [&](int64_t m) {
        return cosine_fused(su, norm_u, is + buf.cand[m] * p.ds, p.ds);
      });
    }
    neg[s] = buf.cand[pick];
    if (scores) scores[s] = buf.raw[pick];
  };
  first_draws_slot(p, rowptr, col, users, ue, s0, bufs[0]);
  if (p.max_redraws > 0)
    for (int64_t m = 0; m < p.M; ++m) prefetch_row(ie + bufs[0].cand[m] * p.d, p.d);
  for (int64_t s = s0; s < s1; ++s) {
    SlotBuf& cur = bufs[(s - s0) % 3];
    SlotBuf* next = s + 1 < s1 ? &bufs[(s + 1 - s0) % 3] : nullptr;
    if (next) first_draws_slot(p, rowptr, col, users, ue, s + 1, *next);
    reject_slot(p, col, ie, s, cur, dc);
    score_slot(p, ue + cur.u * p.d, ie, cur, next);
    if (!llm) {
      choose(s, cur);
      continue;
    }
    top_k_slot(p, cur);
    prefetch_row(us + cur.u * p.ds, p.ds);
    for (int64_t t = 0; t < cur.cnt; ++t) prefetch_row(is + cur.cand[cur.top[t]] * p.ds, p.ds);
    if (s > s0) choose(s - 1, bufs[(s - 1 - s0) % 3]);
  }
  if (llm) choose(s1 - 1, bufs[(s1 - 1 - s0) % 3]);
}

template <typename I, typename TE, typename TS>
void sample_cpu_impl(const Params& p, const I* rowptr, const I* col, const int64_t* users, const int64_t* cands,
                     const int64_t* cdf, const TE* ue, const TE* ie, const TS* us, const TS* is, int64_t* neg,
                     float* scores, int64_t* counts_out) {
  std::atomic<int64_t> c_rej{0}, c_exh{0}, c_filt{0}, c_fb{0};
  // each thread adds its counts once; the totals go to counts_out (rejected, exhausted, filtered, fallbacks)
  auto add_counts = [&](const DrawCounts& dc, int64_t filtered, int64_t fallbacks) {
    c_rej += dc.rejected;
    c_exh += dc.exhausted;
    c_filt += filtered;
    c_fb += fallbacks;
  };
  auto write_counts = [&]() {
    counts_out[0] = c_rej.load();
    counts_out[1] = c_exh.load();
    counts_out[2] = c_filt.load();
    counts_out[3] = c_fb.load();
  };
  const int64_t S = p.B * p.N;
  const bool scored = p.mode == kDns || p.mode == kLlmhni;
  const int64_t m_draw = scored ? p.M : 1;
  // Uniform draws cost ~0.1 us each: below ~4k slots threads cost more than they save.
  const int64_t grain = scored ? 16 : 4096;
  if (!scored && !cands) {
    at::parallel_for(0, S, grain, [&](int64_t s0, int64_t s1) {
      add_counts(draw_first_interleaved(p, rowptr, col, users, cdf, ue, ie, neg, scores, s0, s1), 0, 0);
    });
    write_counts();
    return;
  }
  if (scored && !cands) {
    at::parallel_for(0, S, grain, [&](int64_t s0, int64_t s1) {
      DrawCounts dc;
      int64_t filtered = 0, fallbacks = 0;
      sample_scored_drawn(p, rowptr, col, users, ue, ie, us, is, neg, scores, s0, s1, dc, filtered, fallbacks);
      add_counts(dc, filtered, fallbacks);
    });
    write_counts();
    return;
  }
  at::parallel_for(0, S, grain, [&](int64_t s0, int64_t s1) {
    std::vector<int64_t> cand(static_cast<size_t>(m_draw));
    std::vector<float> key(scored ? static_cast<size_t>(p.M) : 0);
    std::vector<int64_t> top(p.mode == kLlmhni ? static_cast<size_t>(p.K) : 0);
    DrawCounts dc;
    int64_t filtered = 0, fallbacks = 0;
    for (int64_t s = s0; s < s1; ++s) {
      const int64_t u = users[s / p.N];
      const int64_t lo = static_cast<int64_t>(rowptr[u]), hi = static_cast<int64_t>(rowptr[u + 1]);
      for (int64_t m = 0; m < m_draw; ++m) {
        cand[m] = cands ? cands[s * p.M + m]
                        : draw_candidate(col, lo, hi, p.n_items, p.mode == kPopularity ? cdf : nullptr, p.seed,
                                         p.offset, static_cast<uint64_t>(s * p.M + m), p.max_redraws, dc);
        if (scored) {  // fetch the row while the next candidates are drawn
          const char* r = reinterpret_cast<const char*>(ie + cand[m] * p.d);
          for (int64_t o = 0; o < p.d * static_cast<int64_t>(sizeof(TE)); o += 64) __builtin_prefetch(r + o);
        }
      }
      int64_t pick = 0;
      if (scored) {
        const TE* eu = ue + u * p.d;
        for (int64_t m = 0; m < p.M; ++m) key[m] = rank_key(lane8_dot(eu, ie + cand[m] * p.d, p.d));
        if (p.mode == kDns) {
          float best = key[0];
          for (int64_t m = 1; m < p.M; ++m)
            if (key[m] > best) best = key[m], pick = m;
        } else {
          // top K by (score desc, index asc), by insertion
          int64_t cnt = 0;
          for (int64_t m = 0; m < p.M; ++m) {
            const float k = key[m];
            if (cnt == p.K && !(k > key[top[cnt - 1]])) continue;
            int64_t pos = cnt < p.K ? cnt : p.K - 1;
            while (pos > 0 && key[top[pos - 1]] < k) {
              top[pos] = top[pos - 1];
              --pos;
            }
            top[pos] = m;
            if (cnt < p.K) ++cnt;
          }
          const TS* su = us + u * p.ds;
          const int64_t sem_bytes = p.ds * static_cast<int64_t>(sizeof(TS));
          for (int64_t t = 0; t < cnt; ++t) {
            const char* r = reinterpret_cast<const char*>(is + cand[top[t]] * p.ds);
            for (int64_t o = 0; o < sem_bytes; o += 64) __builtin_prefetch(r + o);
          }
          const float norm_u = fsqrt(lane8_dot(su, su, p.ds));
          pick = least_similar(top.data(), cnt, p.M, p.thr, filtered, fallbacks, [&](int64_t m) {
            return cosine(su, norm_u, is + cand[m] * p.ds, p.ds);
          });
        }
      }
      const int64_t item = cand[pick];
      neg[s] = item;
      if (scores) scores[s] = lane8_dot(ue + u * p.d, ie + item * p.d, p.d);
    }
    add_counts(dc, filtered, fallbacks);
  });
  write_counts();
}

// The CPU policy of sampler/sample_negatives_host.h.
struct Cpu {
  static constexpr c10::DeviceType kType = c10::DeviceType::CPU;
  struct Guard {
    explicit Guard(const at::Tensor&) {}
  };
  static void run(const Params& p, const SampleInputs& in, at::Tensor& neg, at::Tensor& scores, at::Tensor& counts) {
    with_index_type(in.rowptr.scalar_type(), [&](auto itag) {
      using I = decltype(itag);
      with_float_type(in.user_emb, [&](auto etag) {
        using TE = decltype(etag);
        with_float_type(in.user_sem, [&](auto stag) {
          using TS = decltype(stag);
          sample_cpu_impl<I, TE, TS>(p, in.rowptr.const_data_ptr<I>(), in.col.const_data_ptr<I>(),
                                     in.users.const_data_ptr<int64_t>(), ptr_or_null<int64_t>(in.candidates),
                                     ptr_or_null<int64_t>(in.pop_cdf), ptr_or_null<TE>(in.user_emb),
                                     ptr_or_null<TE>(in.item_emb), ptr_or_null<TS>(in.user_sem),
                                     ptr_or_null<TS>(in.item_sem), neg.data_ptr<int64_t>(),
                                     in.user_emb.defined() ? scores.data_ptr<float>() : nullptr, counts.data_ptr<int64_t>());
        });
      });
    });
  }
};

}  // namespace
}  // namespace sampler
}  // namespace llmhni

LLMHNI_REGISTER_KERNEL("sample_negatives", "cpu");

TORCH_LIBRARY_IMPL(llmhni, CPU, m) {
  m.impl("sample_negatives", &llmhni::sampler::sample_negatives_host<llmhni::sampler::Cpu>);
}
