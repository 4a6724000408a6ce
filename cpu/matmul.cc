// Portable matmul. Reduction order per output element: 8 interleaved partial sums over k (lane j takes
// k ≡ j mod 8), combined pairwise, then the tail — the same order for every n.
#include "matmul.h"

#include <cmath>
#include <vector>

namespace layerskip {

namespace {

void weight_row_to_f32(float* out, const Weight& weight, int row) {
  size_t base = size_t(row) * weight.cols;
  for (int k = 0; k < weight.cols; k++) out[k] = load_as_f32(weight.data, weight.dtype, base + k);
}

float dot_canonical(const float* x, const float* w, int length) {
  float lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int k = 0;
  for (; k + 8 <= length; k += 8) {
    for (int j = 0; j < 8; j++) lanes[j] = std::fma(x[k + j], w[k + j], lanes[j]);
  }
  float sum = ((lanes[0] + lanes[4]) + (lanes[2] + lanes[6])) + ((lanes[1] + lanes[5]) + (lanes[3] + lanes[7]));
  for (; k < length; k++) sum = std::fma(x[k], w[k], sum);
  return sum;
}

}  // namespace

void matmul_cpu(float* out, const float* in, const Weight& weight, int n, int out_stride, ThreadPool& pool) {
  const int cols = weight.cols;
  pool.parallel_for(size_t(weight.rows), 16, [&](size_t begin, size_t end, int) {
    std::vector<float> row(cols);
    for (size_t r = begin; r < end; r++) {
      weight_row_to_f32(row.data(), weight, int(r));
      for (int t = 0; t < n; t++) out[size_t(t) * out_stride + r] = dot_canonical(in + size_t(t) * cols, row.data(), cols);
    }
  });
}

}  // namespace layerskip
