// AVX2 RMSNorm: per row, squares summed in f64 over 8 lanes (two 4-wide f64 accumulators, a masked last block),
// then y = (x · scale) · w. The fused variant forms x = residual + delta block by block, stores it and feeds the
// same accumulators, so its bits equal add then rmsnorm. Rows are independent; threads take whole rows.
#if defined(LAYERSKIP_HAVE_AVX2)
#include <algorithm>
#include <cmath>

#include "norm.h"
#include "simd_avx2.h"

namespace layerskip {

namespace {

// Σ x² of one row in f64: lane j of the two accumulators takes columns ≡ j (mod 8), then a fixed tree.
class SumOfSquares {
 public:
  void add(__m256 v) {
    __m256d a = _mm256_cvtps_pd(_mm256_castps256_ps128(v)), b = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
    low_ = _mm256_fmadd_pd(a, a, low_);
    high_ = _mm256_fmadd_pd(b, b, high_);
  }
  double total() const {
    alignas(32) double lanes[4];
    _mm256_store_pd(lanes, _mm256_add_pd(low_, high_));
    return (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
  }

 private:
  __m256d low_ = _mm256_setzero_pd(), high_ = _mm256_setzero_pd();
};

// y = (x · scale) · weight with scale = 1 / sqrt(sum_squares / dim + eps).
void normalize_row(float* y, const float* x, const float* weight, int dim, float eps, double sum_squares) {
  const int full = dim & ~7;
  const __m256 scale = _mm256_set1_ps(float(1.0 / std::sqrt(sum_squares / dim + eps)));
  for (int i = 0; i < full; i += 8) {
    _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), scale), _mm256_loadu_ps(weight + i)));
  }
  if (full < dim) {
    const __m256i tail_mask = avx2::lane_mask(dim - full);
    __m256 v = _mm256_mul_ps(_mm256_mul_ps(_mm256_maskload_ps(x + full, tail_mask), scale),
                             _mm256_maskload_ps(weight + full, tail_mask));
    _mm256_maskstore_ps(y + full, tail_mask, v);
  }
}

void rmsnorm_row(float* y, const float* x, const float* weight, int dim, float eps) {
  const int full = dim & ~7;
  SumOfSquares squares;
  for (int i = 0; i < full; i += 8) squares.add(_mm256_loadu_ps(x + i));
  if (full < dim) squares.add(_mm256_maskload_ps(x + full, avx2::lane_mask(dim - full)));
  normalize_row(y, x, weight, dim, eps, squares.total());
}

void add_rmsnorm_row(float* x, float* y, const float* delta, const float* weight, int dim, float eps) {
  const int full = dim & ~7;
  SumOfSquares squares;
  for (int i = 0; i < full; i += 8) {
    const __m256 sum = _mm256_add_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(delta + i));
    _mm256_storeu_ps(x + i, sum);
    squares.add(sum);
  }
  if (full < dim) {
    const __m256i tail_mask = avx2::lane_mask(dim - full);
    // Masked-off lanes load 0 + 0, exactly what rmsnorm_row's masked load of the sum contributes.
    const __m256 sum = _mm256_add_ps(_mm256_maskload_ps(x + full, tail_mask), _mm256_maskload_ps(delta + full, tail_mask));
    _mm256_maskstore_ps(x + full, tail_mask, sum);
    squares.add(sum);
  }
  normalize_row(y, x, weight, dim, eps, squares.total());
}

int row_grain(int dim) { return std::max(1, 16384 / std::max(1, dim)); }

}  // namespace

void rmsnorm_avx2(float* out, const float* in, const float* weight, int n, int dim, float eps, ThreadPool& pool) {
  pool.parallel_for(size_t(n), row_grain(dim), [&](size_t begin, size_t end, int) {
    for (size_t t = begin; t < end; t++) rmsnorm_row(out + t * dim, in + t * dim, weight, dim, eps);
  });
}

void add_rmsnorm_avx2(float* residual, float* normed, const float* delta, const float* weight, int n, int dim,
                      float eps, ThreadPool& pool) {
  pool.parallel_for(size_t(n), row_grain(dim), [&](size_t begin, size_t end, int) {
    for (size_t t = begin; t < end; t++) {
      add_rmsnorm_row(residual + t * dim, normed + t * dim, delta + t * dim, weight, dim, eps);
    }
  });
}

}  // namespace layerskip
#endif  // LAYERSKIP_HAVE_AVX2
