#include "norm.h"

#include <cmath>

namespace layerskip {

void rmsnorm_cpu(float* out, const float* in, const float* weight, int n, int dim, float eps, ThreadPool& pool) {
  (void)pool;  // rows are short; one thread keeps the per-row reduction order trivially fixed
  for (int t = 0; t < n; t++) {
    const float* x = in + size_t(t) * dim;
    float* y = out + size_t(t) * dim;
    double sum_squares = 0;
    for (int i = 0; i < dim; i++) sum_squares += double(x[i]) * x[i];
    float scale = float(1.0 / std::sqrt(sum_squares / dim + eps));
    for (int i = 0; i < dim; i++) y[i] = (x[i] * scale) * weight[i];
  }
}

}  // namespace layerskip
