// Portable RMSNorm (sum of squares in f64, one row at a time), its fused residual-add variant and the dispatchers.
#include "norm.h"

#include <algorithm>
#include <cmath>

#include "cpu_features.h"

namespace layerskip {

namespace {

// Rows per thread range: about 16 K elements, so small batches stay on the calling thread.
int row_grain(int dim) { return std::max(1, 16384 / std::max(1, dim)); }

// y = (x · scale) · weight with scale = 1 / sqrt(mean(x²) + eps); `sum_squares` is Σ x² in f64, in column order.
void normalize_row(float* y, const float* x, const float* weight, int dim, float eps, double sum_squares) {
  float scale = float(1.0 / std::sqrt(sum_squares / dim + eps));
  for (int i = 0; i < dim; i++) y[i] = (x[i] * scale) * weight[i];
}

}  // namespace

void rmsnorm_scalar(float* out, const float* in, const float* weight, int n, int dim, float eps, ThreadPool& pool) {
  pool.parallel_for(size_t(n), row_grain(dim), [&](size_t begin, size_t end, int) {
    for (size_t t = begin; t < end; t++) {
      const float* x = in + t * dim;
      double sum_squares = 0;
      for (int i = 0; i < dim; i++) sum_squares += double(x[i]) * x[i];
      normalize_row(out + t * dim, x, weight, dim, eps, sum_squares);
    }
  });
}

void add_rmsnorm_scalar(float* residual, float* normed, const float* delta, const float* weight, int n, int dim,
                        float eps, ThreadPool& pool) {
  pool.parallel_for(size_t(n), row_grain(dim), [&](size_t begin, size_t end, int) {
    for (size_t t = begin; t < end; t++) {
      float* x = residual + t * dim;
      const float* d = delta + t * dim;
      double sum_squares = 0;
      for (int i = 0; i < dim; i++) {
        x[i] += d[i];
        sum_squares += double(x[i]) * x[i];
      }
      normalize_row(normed + t * dim, x, weight, dim, eps, sum_squares);
    }
  });
}

void rmsnorm_cpu(float* out, const float* in, const float* weight, int n, int dim, float eps, ThreadPool& pool) {
  default_cpu_kernels().rmsnorm(out, in, weight, n, dim, eps, pool);
}

void add_rmsnorm_cpu(float* residual, float* normed, const float* delta, const float* weight, int n, int dim, float eps,
                     ThreadPool& pool) {
  default_cpu_kernels().add_rmsnorm(residual, normed, delta, weight, n, dim, eps, pool);
}

}  // namespace layerskip
