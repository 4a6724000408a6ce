// AVX2 causal GQA attention. A job is one (query row, KV head) and serves the query heads sharing that KV head, so
// each key and value row is fetched from memory once per group. Per (row, head): scores = q·k over the visible keys
// (8 keys at a time, canonical dot of simd_avx2.h folded by hsum8; leftover keys by hsum with the same tree), a
// numerically stable softmax (max subtracted, vector exp, lanes summed over 8-key blocks then one zero-padded
// block), and out = (Σ_p e_p·v_p, one FMA chain per lane in increasing p) · (1 / Σ e). The arithmetic of a
// (row, head) depends only on its absolute position, never on n, its place in the batch or which thread runs it.
// Threads pull jobs from a shared counter (longest rows first) so causal prefill stays balanced; that changes who
// computes a job, not how.
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

// scores[h][p] = scale · q_h·k_p for the `group` query heads sharing these keys, p in [0, visible). Each 8-key
// block is pulled into L1 once (prefetching the next) and dotted with every head's query.
void compute_scores(float* scores, size_t scores_stride, const float* queries, int group, const float* keys,
                    int visible, const Shape& shape) {
  const __m256 scale = _mm256_set1_ps(shape.scale);
  int p = 0;
  for (; p + 8 <= visible; p += 8) {
    for (int j = 0; j < 8; j++) {
      const char* next = reinterpret_cast<const char*>(keys + (p + 8 + j) * shape.kv_stride);
      for (int line = 0; line < shape.head_dim * 4; line += 64) _mm_prefetch(next + line, _MM_HINT_T0);
    }
    for (int h = 0; h < group; h++) {
      __m256 acc[8];
      dot_keys<8>(acc, queries + size_t(h) * shape.head_dim, keys + p * shape.kv_stride, shape);
      _mm256_storeu_ps(scores + h * scores_stride + p, _mm256_mul_ps(hsum8(acc), scale));
    }
  }
  for (; p < visible; p++) {
    for (int h = 0; h < group; h++) {
      __m256 acc[1];
      dot_keys<1>(acc, queries + size_t(h) * shape.head_dim, keys + p * shape.kv_stride, shape);
      _mm_store_ss(scores + h * scores_stride + p,
                   _mm_mul_ss(_mm_set_ss(hsum(acc[0])), _mm256_castps256_ps128(scale)));
    }
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

// sums[d0 .. d0 + 8V) += Σ_{p in [p_begin, p_end)} weights[p] · v_p[d0 ..], resuming from the stored sums unless
// p_begin is 0 (the reduction over p stays one sequential FMA chain per lane); the last vector masked when kPartial.
template <int V, bool kPartial>
void accumulate_values(float* sums, const float* weights, const float* values, int p_begin, int p_end, int d0,
                       const Shape& shape) {
  const __m256i mask = lane_mask(kPartial ? (shape.head_dim - d0) - 8 * (V - 1) : 8);
  __m256 acc[V];
  for (int j = 0; j < V; j++) {
    const bool partial = kPartial && j == V - 1;
    acc[j] = p_begin == 0 ? _mm256_setzero_ps()
                          : partial ? _mm256_maskload_ps(sums + d0 + 8 * j, mask) : _mm256_loadu_ps(sums + d0 + 8 * j);
  }
  for (int p = p_begin; p < p_end; p++) {
    const __m256 w = _mm256_broadcast_ss(weights + p);
    const float* v = values + p * shape.kv_stride + d0;
    for (int j = 0; j < V; j++) {
      __m256 value = (kPartial && j == V - 1) ? _mm256_maskload_ps(v + 8 * j, mask) : _mm256_loadu_ps(v + 8 * j);
      acc[j] = _mm256_fmadd_ps(w, value, acc[j]);
    }
  }
  for (int j = 0; j < V; j++) {
    if (kPartial && j == V - 1) _mm256_maskstore_ps(sums + d0 + 8 * j, mask, acc[j]);
    else _mm256_storeu_ps(sums + d0 + 8 * j, acc[j]);
  }
}

template <bool kPartial>
void accumulate_values_block(int vectors, float* sums, const float* weights, const float* values, int p_begin,
                             int p_end, int d0, const Shape& shape) {
  switch (vectors) {
#define LS_VALUES_CASE(V) \
  case V: return accumulate_values<V, kPartial>(sums, weights, values, p_begin, p_end, d0, shape);
    LS_VALUES_CASE(1) LS_VALUES_CASE(2) LS_VALUES_CASE(3) LS_VALUES_CASE(4)
    LS_VALUES_CASE(5) LS_VALUES_CASE(6) LS_VALUES_CASE(7) LS_VALUES_CASE(8)
#undef LS_VALUES_CASE
  }
}

// Positions per value block: a block of V rows stays in L1 while every head of the group consumes it.
constexpr int kValueBlock = 64;

// The `group` query heads (outputs `outs`, queries `queries`, each head_dim apart) that share one KV head, for one
// query row seeing `visible` positions.
// inv_totals: (group) scratch.
void attend_group(float* outs, float* scores, size_t scores_stride, float* inv_totals, const float* queries, int group,
                  const float* keys, const float* values, int visible, const Shape& shape) {
  compute_scores(scores, scores_stride, queries, group, keys, visible, shape);
  for (int h = 0; h < group; h++) inv_totals[h] = 1.0f / softmax_numerators(scores + h * scores_stride, visible);
  for (int p0 = 0; p0 < visible; p0 += kValueBlock) {
    const int p1 = std::min(visible, p0 + kValueBlock);
    for (int h = 0; h < group; h++) {
      for (int d0 = 0; d0 < shape.head_dim; d0 += 64) {
        const int width = std::min(64, shape.head_dim - d0), vectors = (width + 7) / 8;
        float* sums = outs + size_t(h) * shape.head_dim;
        const float* weights = scores + h * scores_stride;
        if (width % 8 == 0) accumulate_values_block<false>(vectors, sums, weights, values, p0, p1, d0, shape);
        else accumulate_values_block<true>(vectors, sums, weights, values, p0, p1, d0, shape);
      }
    }
  }
  for (int h = 0; h < group; h++) {
    float* out = outs + size_t(h) * shape.head_dim;
    const __m256 inv = _mm256_set1_ps(inv_totals[h]);
    int d = 0;
    for (; d + 8 <= shape.head_dim; d += 8) _mm256_storeu_ps(out + d, _mm256_mul_ps(_mm256_loadu_ps(out + d), inv));
    if (d < shape.head_dim) {
      const __m256i mask = lane_mask(shape.head_dim - d);
      _mm256_maskstore_ps(out + d, mask, _mm256_mul_ps(_mm256_maskload_ps(out + d, mask), inv));
    }
  }
}

}  // namespace

void attention_avx2(float* out, const float* q, const float* k_cache, const float* v_cache, int n, int start_pos,
                    int num_heads, int num_kv_heads, int head_dim, ThreadPool& pool) {
  const int group = num_heads / num_kv_heads;
  const size_t q_stride = size_t(num_heads) * head_dim;
  const Shape shape{head_dim, size_t(num_kv_heads) * head_dim, 1.0f / std::sqrt(float(head_dim))};
  const size_t scores_stride = size_t(start_pos + n + 8);
  const size_t jobs = size_t(n) * num_kv_heads;  // (query row, KV head), longest rows first
  std::atomic<size_t> next_job{0};
  pool.parallel_for(size_t(pool.size()), 1, [&](size_t, size_t, int) {
    static thread_local std::vector<float> scores;  // (group, visible positions padded to 8) of one job
    static thread_local std::vector<float> inv_totals;  // (group) 1 / softmax denominators
    scores.resize(scores_stride * group);
    inv_totals.resize(group);
    for (size_t job = next_job.fetch_add(1, std::memory_order_relaxed); job < jobs;
         job = next_job.fetch_add(1, std::memory_order_relaxed)) {
      const int t = n - 1 - int(job / num_kv_heads), kv_head = int(job % num_kv_heads);
      const size_t head_offset = t * q_stride + size_t(kv_head) * group * head_dim;
      const size_t kv_offset = size_t(kv_head) * head_dim;
      attend_group(out + head_offset, scores.data(), scores_stride, inv_totals.data(), q + head_offset, group, k_cache + kv_offset,
                   v_cache + kv_offset, start_pos + t + 1, shape);
    }
  });
}

}  // namespace layerskip
#endif  // LAYERSKIP_HAVE_AVX2
