// Philox4x32-10 for many counters at once on the CPU: 8 lanes per AVX2 instruction
// where the CPU has AVX2 (checked at run time, so the build needs no -mavx2), the
// scalar llmhni::random4 elsewhere. Lane for lane the words equal random4's.
#pragma once

#include <cstdint>

#include "common/philox.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define LLMHNI_PHILOX_AVX2 1
#include <immintrin.h>
#endif

namespace llmhni {

// words[j * count + i] = word j of random4(seed, offset, index[i], sub), j = 0..3.
inline void philox_many_scalar(uint64_t seed, uint64_t offset, const uint64_t* index, int64_t count, uint32_t sub,
                               uint32_t* words) {
  for (int64_t i = 0; i < count; ++i) {
    const Random4 r = random4(seed, offset, index[i], sub);
    for (int j = 0; j < 4; ++j) words[j * count + i] = r.x[j];
  }
}

#ifdef LLMHNI_PHILOX_AVX2

__attribute__((target("avx2"))) inline void philox_mulhilo8(__m256i m, __m256i x, __m256i& hi, __m256i& lo) {
  const __m256i even = _mm256_mul_epu32(x, m);                         // lanes 0, 2, 4, 6
  const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(x, 32), m);  // lanes 1, 3, 5, 7
  lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
  hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
}

__attribute__((target("avx2"))) inline void philox_many_avx2(uint64_t seed, uint64_t offset, const uint64_t* index,
                                                              int64_t count, uint32_t sub, uint32_t* words) {
  const __m256i m0 = _mm256_set1_epi64x(0xD2511F53u), m1 = _mm256_set1_epi64x(0xCD9E8D57u);
  const uint32_t key0 = static_cast<uint32_t>(seed);
  const uint32_t key1 = static_cast<uint32_t>(seed >> 32) ^ static_cast<uint32_t>(offset >> 32);
  // 8 uint64 indices -> their low and high words as 8 uint32 lanes
  const __m256i gather_lo = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
  int64_t i = 0;
  for (; i + 8 <= count; i += 8) {
    const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(index + i));      // idx 0..3
    const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(index + i + 4));  // idx 4..7
    const __m256i pa = _mm256_permutevar8x32_epi32(a, gather_lo);  // lo0..lo3 | hi0..hi3
    const __m256i pb = _mm256_permutevar8x32_epi32(b, gather_lo);  // lo4..lo7 | hi4..hi7
    __m256i c0 = _mm256_permute2x128_si256(pa, pb, 0x20);          // lo0..lo7
    __m256i c1 = _mm256_permute2x128_si256(pa, pb, 0x31);          // hi0..hi7
    __m256i c2 = _mm256_set1_epi32(static_cast<int>(sub));
    __m256i c3 = _mm256_set1_epi32(static_cast<int>(static_cast<uint32_t>(offset)));
    uint32_t k0 = key0, k1 = key1;
    for (int round = 0; round < 10; ++round) {
      __m256i hi0, lo0, hi1, lo1;
      philox_mulhilo8(m0, c0, hi0, lo0);
      philox_mulhilo8(m1, c2, hi1, lo1);
      const __m256i n0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1), _mm256_set1_epi32(static_cast<int>(k0)));
      const __m256i n2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), _mm256_set1_epi32(static_cast<int>(k1)));
      c0 = n0;
      c1 = lo1;
      c2 = n2;
      c3 = lo0;
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(words + 0 * count + i), c0);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(words + 1 * count + i), c1);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(words + 2 * count + i), c2);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(words + 3 * count + i), c3);
  }
  for (; i < count; ++i) {
    const Random4 r = random4(seed, offset, index[i], sub);
    for (int j = 0; j < 4; ++j) words[j * count + i] = r.x[j];
  }
}

inline bool philox_have_avx2() {
  static const bool have = __builtin_cpu_supports("avx2");
  return have;
}

#endif

inline void philox_many(uint64_t seed, uint64_t offset, const uint64_t* index, int64_t count, uint32_t sub,
                        uint32_t* words) {
#ifdef LLMHNI_PHILOX_AVX2
  if (philox_have_avx2()) return philox_many_avx2(seed, offset, index, count, sub, words);
#endif
  philox_many_scalar(seed, offset, index, count, sub, words);
}

}  // namespace llmhni
