// AVX-512 causal GQA attention: attention_blocked.h with 16-wide loops. Scores: q·k with the canonical 16-lane dot
// of simd_avx512.h, 16 keys at a time folded by hsum16x8 (one key alone by hsum16, the same tree): half the
// instructions of the 8-wide kernel, which verification (5-9 query rows × 4 heads per KV head) is bound by.
// Values: 16 lanes per vector; each output element is the same FMA chain over positions as in the AVX2 kernel.
#if defined(LAYERSKIP_HAVE_AVX512)
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>  // (the standard headers attention_blocked.h uses, compiled here before the target pragma)

#include "../core/dtype.h"
#include "attention.h"
#include "thread_pool.h"

// Everything below may use AVX-512; everything included above stays baseline x86-64.
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")
// GCC 12's AVX-512 intrinsics headers trip its own uninitialized-value warnings (_mm512_undefined_*).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "simd_avx2.h"
#include "simd_avx512.h"
#include "attention_blocked.h"  // after simd_avx2.h, which it uses

namespace layerskip {

namespace {

using attention_blocked::Shape;
using avx512::first_lanes16;

// Canonical 16-lane dot of `query` with K keys at `keys`, keys[j] = keys + j · kv_stride.
template <int K>
inline void dot_keys(__m512 acc[K], const float* query, const float* keys, const Shape& shape) {
  for (int j = 0; j < K; j++) acc[j] = _mm512_setzero_ps();
  const int full = shape.head_dim & ~15;
  for (int d = 0; d < full; d += 16) {
    const __m512 qv = _mm512_loadu_ps(query + d);
    for (int j = 0; j < K; j++) acc[j] = _mm512_fmadd_ps(qv, _mm512_loadu_ps(keys + j * shape.kv_stride + d), acc[j]);
  }
  if (full < shape.head_dim) {
    const __mmask16 mask = first_lanes16(shape.head_dim - full);
    const __m512 qv = _mm512_maskz_loadu_ps(mask, query + full);
    for (int j = 0; j < K; j++) {
      acc[j] = _mm512_fmadd_ps(qv, _mm512_maskz_loadu_ps(mask, keys + j * shape.kv_stride + full), acc[j]);
    }
  }
}

// The policy of attention_blocked.h: scores 16 keys at a time; value sums over 4 heads × 4 vectors = 16
// accumulators of the 32 zmm registers.
struct Avx512Kernel {
  static constexpr int kKeyBlock = 16;
  static void score_block(float* scores, const float* query, const float* keys, const Shape& shape) {
    __m512 acc[16];
    dot_keys<16>(acc, query, keys, shape);
    const __m256 scale = _mm256_set1_ps(shape.scale);
    _mm256_storeu_ps(scores, _mm256_mul_ps(avx512::hsum16x8(acc), scale));
    _mm256_storeu_ps(scores + 8, _mm256_mul_ps(avx512::hsum16x8(acc + 8), scale));
  }
  static float score_one(const float* query, const float* key, const Shape& shape) {
    __m512 acc[1];
    dot_keys<1>(acc, query, key, shape);
    return avx512::hsum16(acc[0]) * shape.scale;
  }

  using Vec = __m512;
  static constexpr int kLanes = 16, kValueVectors = 4, kValueQueries = 4;
  static Vec zero() { return _mm512_setzero_ps(); }
  static Vec broadcast(float x) { return _mm512_set1_ps(x); }
  static Vec fmadd(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
  static Vec load(const float* p, int count) {
    return count == kLanes ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(first_lanes16(count), p);
  }
  static void store(float* p, int count, Vec v) { _mm512_mask_storeu_ps(p, first_lanes16(count), v); }
};

}  // namespace

void attention_avx512(float* out, const float* q, const float* k_cache, const float* v_cache, int n, int start_pos,
                      int num_heads, int num_kv_heads, int head_dim, ThreadPool& pool) {
  attention_blocked::attention<Avx512Kernel>(out, q, k_cache, v_cache, n, start_pos, num_heads, num_kv_heads,
                                            head_dim, pool);
}

}  // namespace layerskip
#endif  // LAYERSKIP_HAVE_AVX512
