// AVX2 RMSNorm: per row, squares summed in f64 over 8 lanes (two 4-wide f64 accumulators, a masked last block),
// then y = (x · scale) · w. Rows are independent; threads take whole rows.
#if defined(LAYERSKIP_HAVE_AVX2)
#include <algorithm>
#include <cmath>

#include "norm.h"
#include "simd_avx2.h"

namespace layerskip {

namespace {

void rmsnorm_row(float* y, const float* x, const float* weight, int dim, float eps) {
  const int full = dim & ~7;
  const __m256i tail_mask = avx2::lane_mask(dim - full);
  __m256d low = _mm256_setzero_pd(), high = _mm256_setzero_pd();
  auto accumulate = [&](__m256 v) {
    __m256d a = _mm256_cvtps_pd(_mm256_castps256_ps128(v)), b = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
    low = _mm256_fmadd_pd(a, a, low);
    high = _mm256_fmadd_pd(b, b, high);
  };
  for (int i = 0; i < full; i += 8) accumulate(_mm256_loadu_ps(x + i));
  if (full < dim) accumulate(_mm256_maskload_ps(x + full, tail_mask));
  alignas(32) double lanes[4];
  _mm256_store_pd(lanes, _mm256_add_pd(low, high));
  const double sum_squares = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
  const __m256 scale = _mm256_set1_ps(float(1.0 / std::sqrt(sum_squares / dim + eps)));
  for (int i = 0; i < full; i += 8) {
    _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), scale), _mm256_loadu_ps(weight + i)));
  }
  if (full < dim) {
    __m256 v = _mm256_mul_ps(_mm256_mul_ps(_mm256_maskload_ps(x + full, tail_mask), scale),
                             _mm256_maskload_ps(weight + full, tail_mask));
    _mm256_maskstore_ps(y + full, tail_mask, v);
  }
}

}  // namespace

void rmsnorm_avx2(float* out, const float* in, const float* weight, int n, int dim, float eps, ThreadPool& pool) {
  pool.parallel_for(size_t(n), std::max(1, 16384 / std::max(1, dim)), [&](size_t begin, size_t end, int) {
    for (size_t t = begin; t < end; t++) rmsnorm_row(out + t * dim, in + t * dim, weight, dim, eps);
  });
}

}  // namespace layerskip
#endif  // LAYERSKIP_HAVE_AVX2
