// Portable matmul and the dispatcher. The scalar kernel follows the same canonical reduction as the AVX2 one
// (simd_avx2.h): 8 interleaved partial sums over k (lane j takes k ≡ j mod 8), a zero-padded last step, then
// ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)) — the same order for every n.
#include "matmul.h"

#include <cmath>
#include <vector>

#include "../core/quant.h"
#include "cpu_features.h"

namespace layerskip {

namespace {

float dot_canonical(const float* x, const float* w, int length) {
  float lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int k = 0;
  for (; k + 8 <= length; k += 8) {
    for (int j = 0; j < 8; j++) lanes[j] = std::fma(x[k + j], w[k + j], lanes[j]);
  }
  if (k < length) {
    for (int j = 0; j < 8; j++) {
      bool inside = k + j < length;
      lanes[j] = std::fma(inside ? x[k + j] : 0.0f, inside ? w[k + j] : 0.0f, lanes[j]);
    }
  }
  return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
}

}  // namespace

void matmul_scalar(float* out, const float* in, const Weight& weight, int n, int out_stride, ThreadPool& pool) {
  const int cols = weight.cols;
  pool.parallel_for(size_t(weight.rows), 16, [&](size_t begin, size_t end, int) {
    std::vector<float> row(cols);  // (cols) one weight row in f32
    for (size_t r = begin; r < end; r++) {
      weight_row_to_f32(row.data(), weight, int(r));
      for (int t = 0; t < n; t++) {
        out[size_t(t) * out_stride + r] = dot_canonical(in + size_t(t) * cols, row.data(), cols);
      }
    }
  });
}

void matmul_cpu(float* out, const float* in, const Weight& weight, int n, int out_stride, ThreadPool& pool) {
  default_cpu_kernels().matmul(out, in, weight, n, out_stride, pool);
}

}  // namespace layerskip
