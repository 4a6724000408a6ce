// Portable attention and the dispatcher: each (query row, head) job runs the same scalar code.
#include "attention.h"

#include <cmath>
#include <vector>

#include "cpu_features.h"

namespace layerskip {

void attention_scalar(float* out, const float* q, const float* k_cache, const float* v_cache, int n, int start_pos,
                      int num_heads, int num_kv_heads, int head_dim, ThreadPool& pool) {
  const int group = num_heads / num_kv_heads;
  const size_t q_stride = size_t(num_heads) * head_dim;
  const size_t kv_stride = size_t(num_kv_heads) * head_dim;
  const float scale = 1.0f / std::sqrt(float(head_dim));
  pool.parallel_for(size_t(n) * num_heads, 1, [&](size_t begin, size_t end, int) {
    std::vector<float> scores(start_pos + n);  // (visible positions) of one job
    for (size_t job = begin; job < end; job++) {
      int t = int(job / num_heads), h = int(job % num_heads);
      int kv_head = h / group;
      int visible = start_pos + t + 1;
      const float* query = q + t * q_stride + size_t(h) * head_dim;
      float max_score = -INFINITY;
      for (int p = 0; p < visible; p++) {
        const float* key = k_cache + p * kv_stride + size_t(kv_head) * head_dim;
        float dot = 0;
        for (int i = 0; i < head_dim; i++) dot += query[i] * key[i];
        scores[p] = dot * scale;
        if (scores[p] > max_score) max_score = scores[p];
      }
      float total = 0;
      for (int p = 0; p < visible; p++) {
        scores[p] = std::exp(scores[p] - max_score);
        total += scores[p];
      }
      float* result = out + t * q_stride + size_t(h) * head_dim;
      for (int i = 0; i < head_dim; i++) result[i] = 0;
      for (int p = 0; p < visible; p++) {
        const float* value = v_cache + p * kv_stride + size_t(kv_head) * head_dim;
        float weight = scores[p] / total;
        for (int i = 0; i < head_dim; i++) result[i] += weight * value[i];
      }
    }
  });
}

void attention_cpu(float* out, const float* q, const float* k_cache, const float* v_cache, int n, int start_pos,
                   int num_heads, int num_kv_heads, int head_dim, ThreadPool& pool) {
  default_cpu_kernels().attention(out, q, k_cache, v_cache, n, start_pos, num_heads, num_kv_heads, head_dim, pool);
}

}  // namespace layerskip
