// Dense f32 matrix products for the trainer, single-threaded (the trainer parallelizes over samples).
// Everything is phrased as C = A · Bᵀ with both operands' rows contiguous in K, so one register-blocked dot-product
// kernel serves the forward pass (X · Wᵀ) and, after a transpose, every gradient (dY · W, dYᵀ · X, attention).
#pragma once
#include <cstddef>

namespace layerskip::train {

// C (M, N; row stride ldc) = A (M, K; lda) · B (N, K; ldb)ᵀ, or C += … when `accumulate`.
void gemm_nt(float* c, const float* a, const float* b, int m, int n, int k, int lda, int ldb, int ldc,
             bool accumulate);

// out (cols, rows) = in (rows, cols; row stride ld_in)ᵀ, written densely.
void transpose(float* out, const float* in, int rows, int cols, int ld_in);

}  // namespace layerskip::train
