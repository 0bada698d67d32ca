// Counter-based random numbers (Philox4x32-10, Salmon et al., SC'11), identical on
// host and device. A draw is a pure function of (seed, offset, index, sub), so a
// sample never depends on thread count, launch shape or device: CPU and CUDA
// kernels and the pure-PyTorch reference (llmhni_ext.reference.philox4x32)
// produce the same numbers.
//
// Key     = (lo32(seed), hi32(seed) ^ lo32(offset >> 32))
// Counter = (lo32(index), hi32(index), sub, lo32(offset))
#pragma once

#include <cstdint>

#if defined(__CUDACC__) || defined(__HIPCC__)
#define LLMHNI_HD __host__ __device__ __forceinline__
#else
#define LLMHNI_HD inline
#endif

namespace llmhni {

struct Random4 {
  uint32_t x[4];
};

LLMHNI_HD void philox_mulhilo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  const uint64_t p = static_cast<uint64_t>(a) * static_cast<uint64_t>(b);
  hi = static_cast<uint32_t>(p >> 32);
  lo = static_cast<uint32_t>(p);
}

LLMHNI_HD Random4 philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0,
                                uint32_t k1) {
  constexpr uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u;
  constexpr uint32_t W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
#if defined(__CUDACC__)
#pragma unroll
#endif
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, lo0, hi1, lo1;
    philox_mulhilo(M0, c0, hi0, lo0);
    philox_mulhilo(M1, c2, hi1, lo1);
    const uint32_t n0 = hi1 ^ c1 ^ k0;
    const uint32_t n2 = hi0 ^ c3 ^ k1;
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
    k0 += W0;
    k1 += W1;
  }
  return Random4{{c0, c1, c2, c3}};
}

LLMHNI_HD Random4 random4(uint64_t seed, uint64_t offset, uint64_t index, uint32_t sub) {
  return philox4x32_10(static_cast<uint32_t>(index), static_cast<uint32_t>(index >> 32), sub,
                       static_cast<uint32_t>(offset), static_cast<uint32_t>(seed),
                       static_cast<uint32_t>(seed >> 32) ^ static_cast<uint32_t>(offset >> 32));
}

// Uniform integer in [0, n) from two 32-bit words: floor(r * n / 2^64) with a
// 64-bit r, so the bias is at most n / 2^64.
LLMHNI_HD uint64_t uniform_index(uint32_t w_hi, uint32_t w_lo, uint64_t n) {
  const uint64_t r = (static_cast<uint64_t>(w_hi) << 32) | w_lo;
#if defined(__CUDA_ARCH__)
  return __umul64hi(r, n);
#else
  return static_cast<uint64_t>((static_cast<unsigned __int128>(r) * n) >> 64);
#endif
}

// Uniform float in [0, 1) with 24 random bits (exactly representable in fp32).
LLMHNI_HD float uniform_float(uint32_t w) {
  return static_cast<float>(w >> 8) * (1.0f / 16777216.0f);
}

}  // namespace llmhni
