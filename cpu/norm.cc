// Portable RMSNorm (sum of squares in f64, one row at a time) and the dispatcher.
#include "norm.h"

#include <algorithm>
#include <cmath>

#include "cpu_features.h"

namespace layerskip {

void rmsnorm_scalar(float* out, const float* in, const float* weight, int n, int dim, float eps, ThreadPool& pool) {
  pool.parallel_for(size_t(n), std::max(1, 16384 / std::max(1, dim)), [&](size_t begin, size_t end, int) {
    for (size_t t = begin; t < end; t++) {
      const float* x = in + t * dim;
      float* y = out + t * dim;
      double sum_squares = 0;
      for (int i = 0; i < dim; i++) sum_squares += double(x[i]) * x[i];
      float scale = float(1.0 / std::sqrt(sum_squares / dim + eps));
      for (int i = 0; i < dim; i++) y[i] = (x[i] * scale) * weight[i];
    }
  });
}

void rmsnorm_cpu(float* out, const float* in, const float* weight, int n, int dim, float eps, ThreadPool& pool) {
#if defined(LAYERSKIP_HAVE_AVX2)
  if (cpu_has_avx2()) return rmsnorm_avx2(out, in, weight, n, dim, eps, pool);
#endif
  rmsnorm_scalar(out, in, weight, n, dim, eps, pool);
}

}  // namespace layerskip
