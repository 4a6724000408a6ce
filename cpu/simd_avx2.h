// AVX2/FMA/F16C building blocks shared by the *_avx2.cc kernels (include only from files compiled with those flags).
//
// The canonical f32 dot product every AVX2 kernel follows, whatever its tiling, so results are batch invariant:
//   8 lanes over k (lane j takes k ≡ j mod 8), one FMA per lane per 8-wide step in increasing k; a final partial
//   step loads zero-padded operands (padded lanes add 0·0); then the fixed tree
//   ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)).
// hsum() and hsum8() both evaluate exactly that tree, one vector at a time or eight at once.
#pragma once
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "../core/dtype.h"

namespace layerskip::avx2 {
namespace {  // internal linkage: every including file gets its own copy, compiled for its own target

// 8 stored elements starting at `index`, widened exactly to f32 (unaligned loads: weights sit in the mmap).
template <DType dtype>
inline __m256 load8(const void* data, size_t index) {
  if constexpr (dtype == DType::F32) {
    return _mm256_loadu_ps(static_cast<const float*>(data) + index);
  } else if constexpr (dtype == DType::F16) {
    const uint16_t* halves = static_cast<const uint16_t*>(data) + index;
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(halves)));
  } else {
    const uint16_t* halves = static_cast<const uint16_t*>(data) + index;
    __m128i bits = _mm_loadu_si128(reinterpret_cast<const __m128i*>(halves));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(bits), 16));
  }
}

// The `count` (< 8) stored elements starting at `index` as f32, zero in the remaining lanes.
template <DType dtype>
inline __m256 load_partial(const void* data, size_t index, int count) {
  alignas(32) float padded[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int j = 0; j < count; j++) padded[j] = load_as_f32(data, dtype, index + j);
  return _mm256_load_ps(padded);
}

// Mask selecting the first `count` of 8 lanes, for maskload / maskstore.
inline __m256i lane_mask(int count) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(count), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)).
inline float hsum(__m256 v) {
  __m256 pairs = _mm256_hadd_ps(v, v);          // l0+l1, l2+l3, .. | l4+l5, l6+l7, ..
  __m256 quads = _mm256_hadd_ps(pairs, pairs);  // (l0+l1)+(l2+l3) .. | (l4+l5)+(l6+l7) ..
  return _mm_cvtss_f32(_mm_add_ss(_mm256_castps256_ps128(quads), _mm256_extractf128_ps(quads, 1)));
}

// Lane i of the result = hsum(v[i]), with the same tree.
inline __m256 hsum8(const __m256 v[8]) {
  __m256 lo = _mm256_hadd_ps(_mm256_hadd_ps(v[0], v[1]), _mm256_hadd_ps(v[2], v[3]));
  __m256 hi = _mm256_hadd_ps(_mm256_hadd_ps(v[4], v[5]), _mm256_hadd_ps(v[6], v[7]));
  return _mm256_add_ps(_mm256_permute2f128_ps(lo, hi, 0x20), _mm256_permute2f128_ps(lo, hi, 0x31));
}

// e^x for 8 lanes (Cephes-style range reduction + degree-6 polynomial, ≤ 2 ulp on [-87, 88]; tiny below).
inline __m256 exp8(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.33654f)), _mm256_set1_ps(88.37626f));
  __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                             _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  __m256 r2 = _mm256_mul_ps(r, r);
  p = _mm256_fmadd_ps(p, r2, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  __m256i exponent = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(exponent));
}

}  // namespace
}  // namespace layerskip::avx2
