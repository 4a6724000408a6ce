// AVX-512 building blocks shared by the *_avx512*.cc kernels. Include only after the file's
// `#pragma GCC target("avx512f,…")` and after every other header (see matmul_avx512.cc), so that code from shared
// headers stays baseline x86-64 and only these kernels use AVX-512.
//
// The canonical dot product of the AVX-512 variants, whatever the tiling, so results are batch invariant:
//   16 f32 lanes over k. f32 arithmetic: lane j takes k ≡ j mod 16, one FMA per 16-wide step in increasing k.
//   bf16 arithmetic (vdpbf16ps): lane j takes k ≡ 2j, 2j+1 mod 32, one dot-pair accumulate per 32-wide step.
//   A final partial step reads zero-padded operands (padded lanes add 0·0). Then the fixed tree hsum16():
//   a_i = l_i + l_{i+8}, then ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)).
#pragma once
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "../core/dtype.h"

namespace layerskip::avx512 {
namespace {  // internal linkage: every including file gets its own copy, compiled for its own target

// Mask of the first `count` (0…16) lanes.
inline __mmask16 first_lanes16(int count) { return __mmask16((1u << count) - 1u); }
inline __mmask32 first_lanes32(int count) { return count >= 32 ? ~__mmask32(0) : __mmask32((1u << count) - 1u); }

// 16 stored elements starting at `index`, widened exactly to f32.
template <DType dtype>
inline __m512 load16(const void* data, size_t index) {
  if constexpr (dtype == DType::F32) {
    return _mm512_loadu_ps(static_cast<const float*>(data) + index);
  } else {
    __m256i halves = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(data) + index));
    if constexpr (dtype == DType::F16) return _mm512_cvtph_ps(halves);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(halves), 16));
  }
}

// The first `count` (< 16) stored elements starting at `index` as f32, zero in the other lanes.
template <DType dtype>
inline __m512 load16_partial(const void* data, size_t index, int count) {
  const __mmask16 mask = first_lanes16(count);
  if constexpr (dtype == DType::F32) {
    return _mm512_maskz_loadu_ps(mask, static_cast<const float*>(data) + index);
  } else {
    __m256i halves = _mm256_maskz_loadu_epi16(mask, static_cast<const uint16_t*>(data) + index);
    if constexpr (dtype == DType::F16) return _mm512_cvtph_ps(halves);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(halves), 16));
  }
}

// The canonical tree: a_i = l_i + l_{i+8}, then ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)).
inline float hsum16(__m512 v) {
  __m256 a = _mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
  __m256 pairs = _mm256_hadd_ps(a, a);
  __m256 quads = _mm256_hadd_ps(pairs, pairs);
  return _mm_cvtss_f32(_mm_add_ss(_mm256_castps256_ps128(quads), _mm256_extractf128_ps(quads, 1)));
}

// Lane i of the result = hsum16(v[i]) for 8 vectors, with the same tree.
inline __m256 hsum16x8(const __m512 v[8]) {
  __m256 a[8];
  for (int i = 0; i < 8; i++) {
    a[i] = _mm256_add_ps(_mm512_castps512_ps256(v[i]), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v[i]), 1)));
  }
  __m256 lo = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
  __m256 hi = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
  return _mm256_add_ps(_mm256_permute2f128_ps(lo, hi, 0x20), _mm256_permute2f128_ps(lo, hi, 0x31));
}

}  // namespace
}  // namespace layerskip::avx512
