// Portable SwiGLU, the residual add (exact, so one version) and the dispatcher.
#include "mlp.h"

#include <cmath>

#include "cpu_features.h"

namespace layerskip {

namespace {
// Elements per thread range: below this an op runs on the calling thread alone.
constexpr size_t kElementGrain = 1 << 15;
}  // namespace

void swiglu_scalar(float* out, const float* gate, const float* up, size_t count, ThreadPool& pool) {
  pool.parallel_for(count, kElementGrain, [&](size_t begin, size_t end, int) {
    for (size_t i = begin; i < end; i++) {
      float g = gate[i];
      out[i] = g / (1.0f + std::exp(-g)) * up[i];
    }
  });
}

void swiglu_cpu(float* out, const float* gate, const float* up, size_t count, ThreadPool& pool) {
  default_cpu_kernels().swiglu(out, gate, up, count, pool);
}

void add_cpu(float* accumulate, const float* in, size_t count, ThreadPool& pool) {
  pool.parallel_for(count, kElementGrain, [&](size_t begin, size_t end, int) {
    for (size_t i = begin; i < end; i++) accumulate[i] += in[i];
  });
}

}  // namespace layerskip
