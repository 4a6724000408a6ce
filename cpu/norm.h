// RMSNorm over rows: out = in / sqrt(mean(in²) + eps) * weight, as HF LlamaRMSNorm (sum of squares in f64), plain
// and fused with the residual add that precedes it in every transformer block.
#pragma once
#include "thread_pool.h"

namespace layerskip {

// out, in: (n, dim). Each row is normalized by the same code whatever n or the thread count; out may alias in.
// Runs the default variant (cpu_features.h).
void rmsnorm_cpu(float* out, const float* in, const float* weight, int n, int dim, float eps, ThreadPool& pool);

// residual (n, dim) += delta, then normed (n, dim) = rmsnorm(residual) · weight, row by row in one pass: the same
// additions as add_cpu and the same arithmetic as rmsnorm_cpu, so the bits equal add_cpu followed by rmsnorm_cpu.
// normed must not alias residual or delta. Runs the default variant (cpu_features.h).
void add_rmsnorm_cpu(float* residual, float* normed, const float* delta, const float* weight, int n, int dim, float eps,
                     ThreadPool& pool);

void rmsnorm_scalar(float* out, const float* in, const float* weight, int n, int dim, float eps, ThreadPool& pool);
void add_rmsnorm_scalar(float* residual, float* normed, const float* delta, const float* weight, int n, int dim,
                        float eps, ThreadPool& pool);

#if defined(LAYERSKIP_HAVE_AVX2)
void rmsnorm_avx2(float* out, const float* in, const float* weight, int n, int dim, float eps, ThreadPool& pool);
void add_rmsnorm_avx2(float* residual, float* normed, const float* delta, const float* weight, int n, int dim,
                      float eps, ThreadPool& pool);
#endif

}  // namespace layerskip
