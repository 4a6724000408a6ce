// AVX2 causal GQA attention. A job is one (query row, head): scores = q·k over the visible keys (8 keys at a time,
// canonical dot of simd_avx2.h folded by hsum8; leftover keys by hsum with the same tree), a numerically stable
// softmax (max subtracted, vector exp, lanes summed over 8-key blocks then one zero-padded block), and
// out = Σ p·v / Σ p with head_dim split into register blocks of 64. The arithmetic of a job depends only on its
// absolute position, never on n, its place in the batch or which thread runs it. Threads pull jobs from a shared
// counter (longest rows first) so causal prefill stays balanced; that changes who computes a job, not how.
#if defined(LAYERSKIP_HAVE_AVX2)
#include <algorithm>
#include <atomic>
#include <cmath>
#include <vector>

#include "attention.h"
#include "simd_avx2.h"

namespace layerskip {

namespace {

using avx2::exp8;
using avx2::hsum;
using avx2::hsum8;
using avx2::lane_mask;

struct Shape {
  int head_dim;
  size_t kv_stride;  // floats between cache rows
  float scale;       // 1 / sqrt(head_dim)
};

// Canonical dot of `query` with K keys at `keys`, keys[j] = keys + j · kv_stride.
template <int K>
inline void dot_keys(__m256 acc[K], const float* query, const float* keys, const Shape& shape) {
  for (int j = 0; j < K; j++) acc[j] = _mm256_setzero_ps();
  const int full = shape.head_dim & ~7;
  for (int d = 0; d < full; d += 8) {
    __m256 qv = _mm256_loadu_ps(query + d);
    for (int j = 0; j < K; j++) acc[j] = _mm256_fmadd_ps(qv, _mm256_loadu_ps(keys + j * shape.kv_stride + d), acc[j]);
  }
  if (full < shape.head_dim) {
    const __m256i mask = lane_mask(shape.head_dim - full);
    __m256 qv = _mm256_maskload_ps(query + full, mask);
    for (int j = 0; j < K; j++) {
      acc[j] = _mm256_fmadd_ps(qv, _mm256_maskload_ps(keys + j * shape.kv_stride + full, mask), acc[j]);
    }
  }
}

// scores[p] = scale · q·k_p for p in [0, visible).
void compute_scores(float* scores, const float* query, const float* keys, int visible, const Shape& shape) {
  const __m256 scale = _mm256_set1_ps(shape.scale);
  int p = 0;
  for (; p + 8 <= visible; p += 8) {
    __m256 acc[8];
    dot_keys<8>(acc, query, keys + p * shape.kv_stride, shape);
    _mm256_storeu_ps(scores + p, _mm256_mul_ps(hsum8(acc), scale));
  }
  for (; p < visible; p++) {
    __m256 acc[1];
    dot_keys<1>(acc, query, keys + p * shape.kv_stride, shape);
    _mm_store_ss(scores + p, _mm_mul_ss(_mm_set_ss(hsum(acc[0])), _mm256_castps256_ps128(scale)));
  }
}

// scores ← exp(scores − max) over [0, visible), zero in the padding up to a multiple of 8; returns their sum.
float softmax_numerators(float* scores, int visible) {
  const int full = visible & ~7;
  __m256 max8 = _mm256_set1_ps(-INFINITY);
  for (int p = 0; p < full; p += 8) max8 = _mm256_max_ps(max8, _mm256_loadu_ps(scores + p));
  float max_score = -INFINITY;
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, max8);
  for (float lane : lanes) max_score = std::max(max_score, lane);
  for (int p = full; p < visible; p++) max_score = std::max(max_score, scores[p]);

  const __m256 max_v = _mm256_set1_ps(max_score);
  __m256 total = _mm256_setzero_ps();
  for (int p = 0; p < full; p += 8) {
    __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(scores + p), max_v));
    _mm256_storeu_ps(scores + p, e);
    total = _mm256_add_ps(total, e);
  }
  if (full < visible) {
    const __m256i mask = lane_mask(visible - full);
    __m256 e = exp8(_mm256_sub_ps(_mm256_maskload_ps(scores + full, mask), max_v));
    e = _mm256_and_ps(e, _mm256_castsi256_ps(mask));
    _mm256_storeu_ps(scores + full, e);  // the buffer has room for the padded block
    total = _mm256_add_ps(total, e);
  }
  return hsum(total);
}

// out[d0 .. d0 + 8V) = inv_total · Σ_p weights[p] · v_p[d0 ..]; the last vector masked when kPartial.
template <int V, bool kPartial>
void weighted_values(float* out, const float* weights, const float* values, int visible, int d0, float inv_total,
                     const Shape& shape) {
  __m256 acc[V];
  for (int j = 0; j < V; j++) acc[j] = _mm256_setzero_ps();
  const __m256i mask = lane_mask(kPartial ? (shape.head_dim - d0) - 8 * (V - 1) : 8);
  for (int p = 0; p < visible; p++) {
    const __m256 w = _mm256_broadcast_ss(weights + p);
    const float* v = values + p * shape.kv_stride + d0;
    for (int j = 0; j < V; j++) {
      __m256 value = (kPartial && j == V - 1) ? _mm256_maskload_ps(v + 8 * j, mask) : _mm256_loadu_ps(v + 8 * j);
      acc[j] = _mm256_fmadd_ps(w, value, acc[j]);
    }
  }
  const __m256 inv = _mm256_set1_ps(inv_total);
  for (int j = 0; j < V; j++) {
    __m256 result = _mm256_mul_ps(acc[j], inv);
    if (kPartial && j == V - 1) _mm256_maskstore_ps(out + d0 + 8 * j, mask, result);
    else _mm256_storeu_ps(out + d0 + 8 * j, result);
  }
}

template <bool kPartial>
void weighted_values_block(int vectors, float* out, const float* weights, const float* values, int visible, int d0,
                           float inv_total, const Shape& shape) {
  switch (vectors) {
#define LS_VALUES_CASE(V) \
  case V: return weighted_values<V, kPartial>(out, weights, values, visible, d0, inv_total, shape);
    LS_VALUES_CASE(1) LS_VALUES_CASE(2) LS_VALUES_CASE(3) LS_VALUES_CASE(4)
    LS_VALUES_CASE(5) LS_VALUES_CASE(6) LS_VALUES_CASE(7) LS_VALUES_CASE(8)
#undef LS_VALUES_CASE
  }
}

void attend_one(float* out, float* scores, const float* query, const float* keys, const float* values, int visible,
                const Shape& shape) {
  compute_scores(scores, query, keys, visible, shape);
  const float inv_total = 1.0f / softmax_numerators(scores, visible);
  for (int d0 = 0; d0 < shape.head_dim; d0 += 64) {
    const int width = std::min(64, shape.head_dim - d0);
    const int vectors = (width + 7) / 8;
    if (width % 8 == 0) weighted_values_block<false>(vectors, out, scores, values, visible, d0, inv_total, shape);
    else weighted_values_block<true>(vectors, out, scores, values, visible, d0, inv_total, shape);
  }
}

}  // namespace

void attention_avx2(float* out, const float* q, const float* k_cache, const float* v_cache, int n, int start_pos,
                    int num_heads, int num_kv_heads, int head_dim, ThreadPool& pool) {
  const int group = num_heads / num_kv_heads;
  const size_t q_stride = size_t(num_heads) * head_dim;
  const Shape shape{head_dim, size_t(num_kv_heads) * head_dim, 1.0f / std::sqrt(float(head_dim))};
  const size_t jobs = size_t(n) * num_heads;
  std::atomic<size_t> next_job{0};
  pool.parallel_for(size_t(pool.size()), 1, [&](size_t, size_t, int) {
    static thread_local std::vector<float> scores;  // (visible positions, padded to 8) of one job
    scores.resize(size_t(start_pos + n + 8));
    for (size_t job = next_job.fetch_add(1, std::memory_order_relaxed); job < jobs;
         job = next_job.fetch_add(1, std::memory_order_relaxed)) {
      const int t = n - 1 - int(job / num_heads), h = int(job % num_heads);
      const size_t kv_offset = size_t(h / group) * head_dim;
      attend_one(out + t * q_stride + size_t(h) * head_dim, scores.data(), q + t * q_stride + size_t(h) * head_dim,
                 k_cache + kv_offset, v_cache + kv_offset, start_pos + t + 1, shape);
    }
  });
}

}  // namespace layerskip
#endif  // LAYERSKIP_HAVE_AVX2
