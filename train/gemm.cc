// gemm_nt: a 3×4 register block of dot products (12 AVX2 accumulators, one load of A and B per FMA row), tiled so a
// panel of 64 B rows stays in L2 while all of A streams past it. Picked at run time; a portable loop otherwise.
#include "gemm.h"

#include <algorithm>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define LAYERSKIP_TRAIN_X86 1
#endif

namespace layerskip::train {
namespace {

constexpr int kPanelRows = 64;  // B rows per L2 panel

void store(float* c, float value, bool accumulate) { *c = accumulate ? *c + value : value; }

void gemm_portable(float* c, const float* a, const float* b, int m, int n, int k, int lda, int ldb, int ldc,
                   bool accumulate) {
  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < n; ++j) {
      const float* ar = a + size_t(i) * lda;
      const float* br = b + size_t(j) * ldb;
      float sum = 0.0f;
      for (int p = 0; p < k; ++p) sum += ar[p] * br[p];
      store(c + size_t(i) * ldc + j, sum, accumulate);
    }
  }
}

#ifdef LAYERSKIP_TRAIN_X86
__attribute__((target("avx2,fma"))) inline float horizontal_sum(__m256 v) {
  __m128 low = _mm256_castps256_ps128(v);
  __m128 high = _mm256_extractf128_ps(v, 1);
  __m128 sum = _mm_add_ps(low, high);
  sum = _mm_add_ps(sum, _mm_movehl_ps(sum, sum));
  sum = _mm_add_ss(sum, _mm_movehdup_ps(sum));
  return _mm_cvtss_f32(sum);
}

// Dot products of rows a[0..R) with rows b[0..C) (R ≤ 3, C ≤ 4), written to c.
template <int R, int C>
__attribute__((target("avx2,fma"))) void block(float* c, const float* a, const float* b, int k, int lda, int ldb,
                                                int ldc, bool accumulate) {
  __m256 acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int q = 0; q < C; ++q) acc[r][q] = _mm256_setzero_ps();
  int p = 0;
  for (; p + 8 <= k; p += 8) {
    __m256 av[R];
    for (int r = 0; r < R; ++r) av[r] = _mm256_loadu_ps(a + size_t(r) * lda + p);
    for (int q = 0; q < C; ++q) {
      __m256 bv = _mm256_loadu_ps(b + size_t(q) * ldb + p);
      for (int r = 0; r < R; ++r) acc[r][q] = _mm256_fmadd_ps(av[r], bv, acc[r][q]);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int q = 0; q < C; ++q) {
      float sum = horizontal_sum(acc[r][q]);
      for (int t = p; t < k; ++t) sum += a[size_t(r) * lda + t] * b[size_t(q) * ldb + t];
      store(c + size_t(r) * ldc + q, sum, accumulate);
    }
  }
}

template <int R>
__attribute__((target("avx2,fma"))) void row_block(float* c, const float* a, const float* b, int n, int k, int lda,
                                                    int ldb, int ldc, bool accumulate) {
  int j = 0;
  for (; j + 4 <= n; j += 4) block<R, 4>(c + j, a, b + size_t(j) * ldb, k, lda, ldb, ldc, accumulate);
  switch (n - j) {
    case 3: block<R, 3>(c + j, a, b + size_t(j) * ldb, k, lda, ldb, ldc, accumulate); break;
    case 2: block<R, 2>(c + j, a, b + size_t(j) * ldb, k, lda, ldb, ldc, accumulate); break;
    case 1: block<R, 1>(c + j, a, b + size_t(j) * ldb, k, lda, ldb, ldc, accumulate); break;
    default: break;
  }
}

__attribute__((target("avx2,fma"))) void gemm_avx2(float* c, const float* a, const float* b, int m, int n, int k,
                                                    int lda, int ldb, int ldc, bool accumulate) {
  for (int panel = 0; panel < n; panel += kPanelRows) {
    const int panel_rows = std::min(kPanelRows, n - panel);
    const float* bp = b + size_t(panel) * ldb;
    int i = 0;
    for (; i + 3 <= m; i += 3)
      row_block<3>(c + size_t(i) * ldc + panel, a + size_t(i) * lda, bp, panel_rows, k, lda, ldb, ldc, accumulate);
    if (m - i == 2)
      row_block<2>(c + size_t(i) * ldc + panel, a + size_t(i) * lda, bp, panel_rows, k, lda, ldb, ldc, accumulate);
    else if (m - i == 1)
      row_block<1>(c + size_t(i) * ldc + panel, a + size_t(i) * lda, bp, panel_rows, k, lda, ldb, ldc, accumulate);
  }
}

bool has_avx2() {
  static const bool supported = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return supported;
}
#endif

}  // namespace

void gemm_nt(float* c, const float* a, const float* b, int m, int n, int k, int lda, int ldb, int ldc,
             bool accumulate) {
#ifdef LAYERSKIP_TRAIN_X86
  if (has_avx2()) return gemm_avx2(c, a, b, m, n, k, lda, ldb, ldc, accumulate);
#endif
  gemm_portable(c, a, b, m, n, k, lda, ldb, ldc, accumulate);
}

void transpose(float* out, const float* in, int rows, int cols, int ld_in) {
  constexpr int kTile = 32;
  for (int r0 = 0; r0 < rows; r0 += kTile)
    for (int c0 = 0; c0 < cols; c0 += kTile)
      for (int r = r0; r < std::min(rows, r0 + kTile); ++r)
        for (int c = c0; c < std::min(cols, c0 + kTile); ++c) out[size_t(c) * rows + r] = in[size_t(r) * ld_in + c];
}

}  // namespace layerskip::train
