// AVX2 SwiGLU: silu(g) · u = g / (1 + exp8(−g)) · u, 8 elements at a time, the tail as one masked block.
#if defined(LAYERSKIP_HAVE_AVX2)
#include "mlp.h"
#include "simd_avx2.h"

namespace layerskip {

namespace {

inline __m256 swiglu8(__m256 g, __m256 u) {
  const __m256 one = _mm256_set1_ps(1.0f);
  __m256 denominator = _mm256_add_ps(one, avx2::exp8(_mm256_sub_ps(_mm256_setzero_ps(), g)));
  return _mm256_mul_ps(_mm256_div_ps(g, denominator), u);
}

}  // namespace

void swiglu_avx2(float* out, const float* gate, const float* up, size_t count, ThreadPool& pool) {
  // Ranges are multiples of 8, so the vector blocks do not depend on the thread count.
  pool.parallel_for(count, 1 << 15, [&](size_t begin, size_t end, int) {
    size_t i = begin;
    for (; i + 8 <= end; i += 8) _mm256_storeu_ps(out + i, swiglu8(_mm256_loadu_ps(gate + i), _mm256_loadu_ps(up + i)));
    if (i < end) {
      const __m256i mask = avx2::lane_mask(int(end - i));
      _mm256_maskstore_ps(out + i, mask, swiglu8(_mm256_maskload_ps(gate + i, mask), _mm256_maskload_ps(up + i, mask)));
    }
  });
}

}  // namespace layerskip
#endif  // LAYERSKIP_HAVE_AVX2
