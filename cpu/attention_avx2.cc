// AVX2 causal GQA attention: attention_blocked.h with 8-wide loops. Scores: q·k with the canonical dot of
// simd_avx2.h, 8 keys at a time folded by hsum8 (one key alone by hsum, the same tree). Values: 8 lanes per vector.
#if defined(LAYERSKIP_HAVE_AVX2)
#include "attention.h"
#include "simd_avx2.h"
#include "attention_blocked.h"  // after simd_avx2.h, which it uses

namespace layerskip {

namespace {

using avx2::hsum;
using avx2::hsum8;
using avx2::lane_mask;
using attention_blocked::Shape;

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

// The policy of attention_blocked.h: scores 8 keys at a time; value sums over 4 heads × 2 vectors = 8 accumulators
// of the 16 ymm registers.
struct Avx2Kernel {
  static constexpr int kKeyBlock = 8;
  static void score_block(float* scores, const float* query, const float* keys, const Shape& shape) {
    __m256 acc[8];
    dot_keys<8>(acc, query, keys, shape);
    _mm256_storeu_ps(scores, _mm256_mul_ps(hsum8(acc), _mm256_set1_ps(shape.scale)));
  }
  static float score_one(const float* query, const float* key, const Shape& shape) {
    __m256 acc[1];
    dot_keys<1>(acc, query, key, shape);
    return hsum(acc[0]) * shape.scale;
  }

  using Vec = __m256;
  static constexpr int kLanes = 8, kValueVectors = 2, kValueQueries = 4;
  static Vec zero() { return _mm256_setzero_ps(); }
  static Vec broadcast(float x) { return _mm256_set1_ps(x); }
  static Vec fmadd(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
  static Vec load(const float* p, int count) {
    return count == kLanes ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, lane_mask(count));
  }
  static void store(float* p, int count, Vec v) {
    if (count == kLanes) _mm256_storeu_ps(p, v);
    else _mm256_maskstore_ps(p, lane_mask(count), v);
  }
};

}  // namespace

void attention_avx2(float* out, const float* q, const float* k_cache, const float* v_cache, int n, int start_pos,
                    int num_heads, int num_kv_heads, int head_dim, ThreadPool& pool) {
  attention_blocked::attention<Avx2Kernel>(out, q, k_cache, v_cache, n, start_pos, num_heads, num_kv_heads, head_dim,
                                          pool);
}

}  // namespace layerskip
#endif  // LAYERSKIP_HAVE_AVX2
