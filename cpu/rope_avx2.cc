// AVX2 rotary embedding: 8 pairs at a time, the last partial block masked — the same two FMAs per pair.
#if defined(LAYERSKIP_HAVE_AVX2)
#include "rope.h"
#include "simd_avx2.h"

namespace layerskip {

void rope_avx2(float* vectors, int n, int row_stride, int num_heads, int head_dim, int start_pos,
               const float* cos_table, const float* sin_table) {
  const int half = head_dim / 2;
  const int full = half & ~7;
  const __m256i tail_mask = avx2::lane_mask(half - full);
  for (int t = 0; t < n; t++) {
    const float* cos_row = cos_table + size_t(start_pos + t) * half;
    const float* sin_row = sin_table + size_t(start_pos + t) * half;
    for (int h = 0; h < num_heads; h++) {
      float* head = vectors + size_t(t) * row_stride + size_t(h) * head_dim;
      auto rotate = [&](__m256 a, __m256 b, __m256 c, __m256 s, __m256* first, __m256* second) {
        *first = _mm256_fmsub_ps(a, c, _mm256_mul_ps(b, s));
        *second = _mm256_fmadd_ps(b, c, _mm256_mul_ps(a, s));
      };
      for (int i = 0; i < full; i += 8) {
        __m256 first, second;
        rotate(_mm256_loadu_ps(head + i), _mm256_loadu_ps(head + half + i), _mm256_loadu_ps(cos_row + i),
               _mm256_loadu_ps(sin_row + i), &first, &second);
        _mm256_storeu_ps(head + i, first);
        _mm256_storeu_ps(head + half + i, second);
      }
      if (full < half) {
        __m256 first, second;
        rotate(_mm256_maskload_ps(head + full, tail_mask), _mm256_maskload_ps(head + half + full, tail_mask),
               _mm256_maskload_ps(cos_row + full, tail_mask), _mm256_maskload_ps(sin_row + full, tail_mask), &first,
               &second);
        _mm256_maskstore_ps(head + full, tail_mask, first);
        _mm256_maskstore_ps(head + half + full, tail_mask, second);
      }
    }
  }
}

}  // namespace layerskip
#endif  // LAYERSKIP_HAVE_AVX2
