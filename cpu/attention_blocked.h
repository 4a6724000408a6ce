// Causal GQA attention in jobs of query rows × one KV head, shared by the AVX2 and AVX-512 kernels
// (attention_avx2.cc, attention_avx512.cc), which supply a policy `K`:
//   K::kKeyBlock, K::score_block(scores, query, keys, shape), K::score_one(query, key, shape): q·k · scale for
//     a block of consecutive keys and for one key, with the kernel's own lanes and reduction tree — the same bits
//     either way, so a score does not depend on whether its key fell in a full block;
//   K::Vec, kLanes and zero / broadcast / fmadd / load / store (the last two of the first `count` lanes) for the
//     value sums below, whose register tile is K::kValueQueries heads × K::kValueVectors vectors of the d block.
// Scores: each block of keys is pulled into L1 once (prefetching the next) and dotted with every row's and head's
// query of the job.
// Value sums: for up to kValueQueries heads of one row at once, sums[h][d] += weights[h][p] · v_p[d], one FMA chain
// per element in increasing p, resumed from the stored sums when positions are blocked — so the bits are the same
// however positions, heads or lanes are grouped; the heads together only share the value loads and give the FMA
// unit enough independent chains (one head alone waits on FMA latency).
// Around them: a numerically stable softmax (max subtracted, vector exp, lanes summed over 8-key blocks then one
// zero-padded block) and out = sums · (1 / Σ e). The arithmetic of a (row, head) depends only on its absolute
// position, never on n, its place in the batch, how rows are blocked into jobs or which thread runs it. Threads
// pull jobs from a shared counter (longest rows first) so causal prefill stays balanced; that changes who computes
// a job, not how. Include after the including file's target flags or pragma, and after simd_avx2.h.
#pragma once
#include <algorithm>
#include <atomic>
#include <cmath>
#include <vector>

#include "thread_pool.h"

namespace layerskip::attention_blocked {
namespace {  // internal linkage: each kernel file compiles its own copy for its own target

struct Shape {
  int head_dim;
  size_t kv_stride;  // floats between cache rows
  float scale;       // 1 / sqrt(head_dim)
};

// One query row of a job: its `group` heads' queries (head_dim apart), outputs, and the positions it sees.
struct QueryRow {
  const float* queries;
  float* outs;
  int visible;
};

// scores[(i · group + h) · scores_stride + p] = scale · q_{i,h}·k_p for each row i of the job, p < visible_i
// (max_visible: the largest visible_i); a row's last partial block key by key.
template <class K>
void compute_scores(float* scores, size_t scores_stride, const QueryRow* rows, int row_count, int group,
                    int max_visible, const float* keys, const Shape& shape) {
  for (int p = 0; p < max_visible; p += K::kKeyBlock) {
    for (int j = 0; j < K::kKeyBlock; j++) {
      const char* next = reinterpret_cast<const char*>(keys + (p + K::kKeyBlock + j) * shape.kv_stride);
      for (int line = 0; line < shape.head_dim * 4; line += 64) _mm_prefetch(next + line, _MM_HINT_T0);
    }
    for (int i = 0; i < row_count; i++) {
      const QueryRow& row = rows[i];
      for (int h = 0; h < group; h++) {
        const float* query = row.queries + size_t(h) * shape.head_dim;
        float* row_scores = scores + (size_t(i) * group + h) * scores_stride;
        if (p + K::kKeyBlock <= row.visible) {
          K::score_block(row_scores + p, query, keys + p * shape.kv_stride, shape);
        } else {
          for (int key = p; key < row.visible; key++) {
            row_scores[key] = K::score_one(query, keys + key * shape.kv_stride, shape);
          }
        }
      }
    }
  }
}

// scores ← exp(scores − max) over [0, visible), zero in the padding up to a multiple of 8; returns their sum.
float softmax_numerators(float* scores, int visible) {
  using namespace avx2;
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

// out[0 .. head_dim) *= scale.
void scale_row(float* out, float scale, int head_dim) {
  const __m256 factor = _mm256_set1_ps(scale);
  int d = 0;
  for (; d + 8 <= head_dim; d += 8) _mm256_storeu_ps(out + d, _mm256_mul_ps(_mm256_loadu_ps(out + d), factor));
  for (; d < head_dim; d++) out[d] *= scale;
}

// For Q heads: sums[q][d0 .. d0 + V · lanes) += Σ_{p in [p_begin, p_end)} weights[q][p] · v_p[d0 ..], resuming from
// the stored sums unless p_begin is 0; the last vector holds `last` (≤ lanes) elements.
template <class K, int Q, int V>
void accumulate_values(float* const* sums, const float* const* weights, const float* values, int p_begin, int p_end,
                       int d0, int last, const Shape& shape) {
  using Vec = typename K::Vec;
  auto width = [&](int j) { return j == V - 1 ? last : K::kLanes; };
  Vec acc[Q][V];
  for (int q = 0; q < Q; q++)
    for (int j = 0; j < V; j++) acc[q][j] = p_begin == 0 ? K::zero() : K::load(sums[q] + d0 + K::kLanes * j, width(j));
  for (int p = p_begin; p < p_end; p++) {
    const float* v = values + p * shape.kv_stride + d0;
    Vec value[V];
    for (int j = 0; j < V; j++) value[j] = K::load(v + K::kLanes * j, width(j));
    for (int q = 0; q < Q; q++) {
      const Vec w = K::broadcast(weights[q][p]);
      for (int j = 0; j < V; j++) acc[q][j] = K::fmadd(w, value[j], acc[q][j]);
    }
  }
  for (int q = 0; q < Q; q++)
    for (int j = 0; j < V; j++) K::store(sums[q] + d0 + K::kLanes * j, width(j), acc[q][j]);
}

template <class K, int Q>
void accumulate_values_vectors(int vectors, float* const* sums, const float* const* weights, const float* values,
                               int p_begin, int p_end, int d0, int last, const Shape& shape) {
  switch (vectors) {
#define LS_VECTORS_CASE(V)                                                                              \
  case V:                                                                                               \
    if constexpr (V <= K::kValueVectors) {                                                              \
      return accumulate_values<K, Q, V>(sums, weights, values, p_begin, p_end, d0, last, shape);        \
    }                                                                                                   \
    break;
    LS_VECTORS_CASE(1) LS_VECTORS_CASE(2) LS_VECTORS_CASE(3) LS_VECTORS_CASE(4)
#undef LS_VECTORS_CASE
  }
}

// Heads [h0, h0 + queries) of one row over the positions [p_begin, p_end), d block by d block.
template <class K>
void accumulate_heads(int queries, float* const* sums, const float* const* weights, const float* values, int p_begin,
                      int p_end, const Shape& shape) {
  for (int d0 = 0; d0 < shape.head_dim; d0 += K::kValueVectors * K::kLanes) {
    const int width = std::min(K::kValueVectors * K::kLanes, shape.head_dim - d0);
    const int vectors = (width + K::kLanes - 1) / K::kLanes, last = width - K::kLanes * (vectors - 1);
    switch (queries) {
#define LS_QUERIES_CASE(Q)                                                                                     \
  case Q:                                                                                                      \
    if constexpr (Q <= K::kValueQueries) {                                                                     \
      accumulate_values_vectors<K, Q>(vectors, sums, weights, values, p_begin, p_end, d0, last, shape);        \
    }                                                                                                          \
    break;
      LS_QUERIES_CASE(1) LS_QUERIES_CASE(2) LS_QUERIES_CASE(3) LS_QUERIES_CASE(4)
#undef LS_QUERIES_CASE
    }
  }
}

// Positions per value block: a block of V rows stays in L1 while every (row, head) of the job consumes it.
constexpr int kValueBlock = 64;

// A job: `row_count` query rows × the `group` query heads that share one KV head. Scores and sums for every
// (row, head) are computed exactly as for that row alone; blocking rows only lets them share K/V loads.
// scores: (row_count · group, scores_stride); inv_totals: (row_count · group) scratch.
template <class K>
void attend_block(const QueryRow* rows, int row_count, int group, float* scores, size_t scores_stride,
                  float* inv_totals, const float* keys, const float* values, const Shape& shape) {
  int max_visible = 0;
  for (int i = 0; i < row_count; i++) max_visible = std::max(max_visible, rows[i].visible);
  compute_scores<K>(scores, scores_stride, rows, row_count, group, max_visible, keys, shape);
  for (int i = 0; i < row_count; i++) {
    for (int h = 0; h < group; h++) {
      inv_totals[i * group + h] = 1.0f / softmax_numerators(scores + (size_t(i) * group + h) * scores_stride,
                                                            rows[i].visible);
    }
  }
  for (int p0 = 0; p0 < max_visible; p0 += kValueBlock) {
    for (int i = 0; i < row_count; i++) {
      const int p1 = std::min(rows[i].visible, p0 + kValueBlock);
      if (p0 >= p1) continue;
      constexpr int kQueries = K::kValueQueries;
      for (int h0 = 0; h0 < group; h0 += kQueries) {
        const int queries = std::min(kQueries, group - h0);
        float* sums[kQueries];
        const float* weights[kQueries];
        for (int h = 0; h < queries; h++) {
          sums[h] = rows[i].outs + size_t(h0 + h) * shape.head_dim;
          weights[h] = scores + (size_t(i) * group + h0 + h) * scores_stride;
        }
        accumulate_heads<K>(queries, sums, weights, values, p0, p1, shape);
      }
    }
  }
  for (int i = 0; i < row_count; i++) {
    for (int h = 0; h < group; h++) {
      scale_row(rows[i].outs + size_t(h) * shape.head_dim, inv_totals[i * group + h], shape.head_dim);
    }
  }
}

// Most query rows per job: they share every K/V block fetched. Fewer when that would leave threads without jobs
// (a block's rows are computed exactly as alone, so the choice never changes results).
constexpr int kMaxRowsPerJob = 8;

template <class K>
void attention(float* out, const float* q, const float* k_cache, const float* v_cache, int n, int start_pos,
               int num_heads, int num_kv_heads, int head_dim, ThreadPool& pool) {
  const int group = num_heads / num_kv_heads;
  const size_t q_stride = size_t(num_heads) * head_dim;
  const Shape shape{head_dim, size_t(num_kv_heads) * head_dim, 1.0f / std::sqrt(float(head_dim))};
  const size_t scores_stride = size_t(start_pos + n + 16);  // room for a padded block of 16
  const int rows_per_job = std::clamp(n * num_kv_heads / (4 * pool.size()), 1, kMaxRowsPerJob);
  const int row_blocks = (n + rows_per_job - 1) / rows_per_job;
  const size_t jobs = size_t(row_blocks) * num_kv_heads;  // (row block, KV head), longest rows first
  std::atomic<size_t> next_job{0};
  pool.parallel_for(size_t(pool.size()), 1, [&](size_t, size_t, int) {
    static thread_local std::vector<float> scores;      // (rows · group, visible positions padded)
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
      attend_block<K>(rows, row_count, group, scores.data(), scores_stride, inv_totals.data(), k_cache + kv_offset,
                      v_cache + kv_offset, shape);
    }
  });
}

}  // namespace
}  // namespace layerskip::attention_blocked
