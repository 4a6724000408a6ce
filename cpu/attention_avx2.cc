// AVX2 causal GQA attention. A job is a block of up to 8 query rows × one KV head and serves every query head sharing
// that KV head, so each key and value row is fetched once per job rather than once per (row, head).
// Per (row, head): scores = q·k over the visible keys (8 keys at a time, canonical dot of simd_avx2.h folded by
// hsum8; leftover keys by hsum with the same tree), a numerically stable softmax (max subtracted, vector exp, lanes
// summed over 8-key blocks then one zero-padded block), and out = (Σ_p e_p·v_p, one FMA chain per lane in increasing
// p) · (1 / Σ e). The arithmetic of a (row, head) depends only on its absolute position, never on n, its place in the
// batch, how rows are blocked into jobs or which thread runs it. Threads pull jobs from a shared counter (longest
// rows first) so causal prefill stays balanced; that changes who computes a job, not how.
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

// One query row of a job: its `group` heads' queries (head_dim apart), outputs, and the positions it sees.
struct QueryRow {
  const float* queries;
  float* outs;
  int visible;
};

// scores[(i · group + h) · scores_stride + p] = scale · q_{i,h}·k_p for each row i of the block, p < visible_i.
// Each 8-key block is pulled into L1 once (prefetching the next) and dotted with every row's and head's query; a
// row's last partial block goes key by key (hsum, same tree), so each score is the same bits however rows are
// blocked.
void compute_scores(float* scores, size_t scores_stride, const QueryRow* rows, int row_count, int group,
                    const float* keys, const Shape& shape) {
  const __m256 scale = _mm256_set1_ps(shape.scale);
  int max_visible = 0;
  for (int i = 0; i < row_count; i++) max_visible = std::max(max_visible, rows[i].visible);
  for (int p = 0; p < max_visible; p += 8) {
    for (int j = 0; j < 8; j++) {
      const char* next = reinterpret_cast<const char*>(keys + (p + 8 + j) * shape.kv_stride);
      for (int line = 0; line < shape.head_dim * 4; line += 64) _mm_prefetch(next + line, _MM_HINT_T0);
    }
    for (int i = 0; i < row_count; i++) {
      const QueryRow& row = rows[i];
      for (int h = 0; h < group; h++) {
        const float* query = row.queries + size_t(h) * shape.head_dim;
        float* row_scores = scores + (size_t(i) * group + h) * scores_stride;
        if (p + 8 <= row.visible) {
          __m256 acc[8];
          dot_keys<8>(acc, query, keys + p * shape.kv_stride, shape);
          _mm256_storeu_ps(row_scores + p, _mm256_mul_ps(hsum8(acc), scale));
        } else {
          for (int key = p; key < row.visible; key++) {
            __m256 acc[1];
            dot_keys<1>(acc, query, keys + key * shape.kv_stride, shape);
            _mm_store_ss(row_scores + key, _mm_mul_ss(_mm_set_ss(hsum(acc[0])), _mm256_castps256_ps128(scale)));
          }
        }
      }
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

// Positions per value block: a block of V rows stays in L1 while every (row, head) of the job consumes it.
constexpr int kValueBlock = 64;

// A job: `row_count` query rows × the `group` query heads that share one KV head. Scores and sums for every
// (row, head) are computed exactly as for that row alone; blocking rows only lets them share K/V loads.
// scores: (row_count · group, scores_stride); inv_totals: (row_count · group) scratch.
void attend_block(const QueryRow* rows, int row_count, int group, float* scores, size_t scores_stride,
                  float* inv_totals, const float* keys, const float* values, const Shape& shape) {
  compute_scores(scores, scores_stride, rows, row_count, group, keys, shape);
  int max_visible = 0;
  for (int i = 0; i < row_count; i++) {
    max_visible = std::max(max_visible, rows[i].visible);
    for (int h = 0; h < group; h++) {
      inv_totals[i * group + h] = 1.0f / softmax_numerators(scores + (size_t(i) * group + h) * scores_stride,
                                                            rows[i].visible);
    }
  }
  for (int p0 = 0; p0 < max_visible; p0 += kValueBlock) {
    for (int i = 0; i < row_count; i++) {
      const int p1 = std::min(rows[i].visible, p0 + kValueBlock);
      if (p0 >= p1) continue;
      for (int h = 0; h < group; h++) {
        float* sums = rows[i].outs + size_t(h) * shape.head_dim;
        const float* weights = scores + (size_t(i) * group + h) * scores_stride;
        for (int d0 = 0; d0 < shape.head_dim; d0 += 64) {
          const int width = std::min(64, shape.head_dim - d0), vectors = (width + 7) / 8;
          if (width % 8 == 0) accumulate_values_block<false>(vectors, sums, weights, values, p0, p1, d0, shape);
          else accumulate_values_block<true>(vectors, sums, weights, values, p0, p1, d0, shape);
        }
      }
    }
  }
  for (int i = 0; i < row_count; i++) {
    for (int h = 0; h < group; h++) {
      float* out = rows[i].outs + size_t(h) * shape.head_dim;
      const __m256 inv = _mm256_set1_ps(inv_totals[i * group + h]);
      int d = 0;
      for (; d + 8 <= shape.head_dim; d += 8) _mm256_storeu_ps(out + d, _mm256_mul_ps(_mm256_loadu_ps(out + d), inv));
      if (d < shape.head_dim) {
        const __m256i mask = lane_mask(shape.head_dim - d);
        _mm256_maskstore_ps(out + d, mask, _mm256_mul_ps(_mm256_maskload_ps(out + d, mask), inv));
      }
    }
  }
}

}  // namespace

// Most query rows per job: they share every K/V block fetched. Fewer when that would leave threads without jobs
// (a block's rows are computed exactly as alone, so the choice never changes results).
constexpr int kMaxRowsPerJob = 8;

void attention_avx2(float* out, const float* q, const float* k_cache, const float* v_cache, int n, int start_pos,
                    int num_heads, int num_kv_heads, int head_dim, ThreadPool& pool) {
  const int group = num_heads / num_kv_heads;
  const size_t q_stride = size_t(num_heads) * head_dim;
  const Shape shape{head_dim, size_t(num_kv_heads) * head_dim, 1.0f / std::sqrt(float(head_dim))};
  const size_t scores_stride = size_t(start_pos + n + 8);
  const int rows_per_job = std::clamp(n * num_kv_heads / (4 * pool.size()), 1, kMaxRowsPerJob);
  const int row_blocks = (n + rows_per_job - 1) / rows_per_job;
  const size_t jobs = size_t(row_blocks) * num_kv_heads;  // (row block, KV head), longest rows first
  std::atomic<size_t> next_job{0};
  pool.parallel_for(size_t(pool.size()), 1, [&](size_t, size_t, int) {
    static thread_local std::vector<float> scores;      // (rows · group, visible positions padded to 8)
    static thread_local std::vector<float> inv_totals;  // (rows · group) 1 / softmax denominators
    scores.resize(scores_stride * rows_per_job * group);
    inv_totals.resize(size_t(rows_per_job) * group);
    for (size_t job = next_job.fetch_add(1, std::memory_order_relaxed); job < jobs;
         job = next_job.fetch_add(1, std::memory_order_relaxed)) {
      const int block = row_blocks - 1 - int(job / num_kv_heads), kv_head = int(job % num_kv_heads);
      const int first_row = block * rows_per_job, row_count = std::min(rows_per_job, n - first_row);
      QueryRow rows[kMaxRowsPerJob];
      for (int i = 0; i < row_count; i++) {
        const size_t offset = (first_row + i) * q_stride + size_t(kv_head) * group * head_dim;
        rows[i] = {q + offset, out + offset, start_pos + first_row + i + 1};
      }
      const size_t kv_offset = size_t(kv_head) * head_dim;
      attend_block(rows, row_count, group, scores.data(), scores_stride, inv_totals.data(), k_cache + kv_offset,
                   v_cache + kv_offset, shape);
    }
  });
}

}  // namespace layerskip
#endif  // LAYERSKIP_HAVE_AVX2
