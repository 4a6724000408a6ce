// Portable rotary embedding and the dispatcher.
#include "rope.h"

#include <cmath>
#include <cstddef>

#include "cpu_features.h"

namespace layerskip {

void rope_scalar(float* vectors, int n, int row_stride, int num_heads, int head_dim, int start_pos,
                 const float* cos_table, const float* sin_table) {
  const int half = head_dim / 2;
  for (int t = 0; t < n; t++) {
    const float* cos_row = cos_table + size_t(start_pos + t) * half;
    const float* sin_row = sin_table + size_t(start_pos + t) * half;
    for (int h = 0; h < num_heads; h++) {
      float* head = vectors + size_t(t) * row_stride + size_t(h) * head_dim;
      for (int i = 0; i < half; i++) {
        float a = head[i], b = head[i + half];
        head[i] = std::fma(a, cos_row[i], -(b * sin_row[i]));
        head[i + half] = std::fma(b, cos_row[i], a * sin_row[i]);
      }
    }
  }
}

void rope_cpu(float* vectors, int n, int row_stride, int num_heads, int head_dim, int start_pos,
              const float* cos_table, const float* sin_table) {
  default_cpu_kernels().rope(vectors, n, row_stride, num_heads, head_dim, start_pos, cos_table, sin_table);
}

}  // namespace layerskip
