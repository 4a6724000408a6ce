// RMSNorm over rows: out = in / sqrt(mean(in²) + eps) * weight, as HF LlamaRMSNorm (sum of squares in f64).
#pragma once
#include "thread_pool.h"

namespace layerskip {

// out, in: (n, dim). Each row is normalized by the same code whatever n or the thread count; out may alias in.
// Picks AVX2 when available.
void rmsnorm_cpu(float* out, const float* in, const float* weight, int n, int dim, float eps, ThreadPool& pool);

void rmsnorm_scalar(float* out, const float* in, const float* weight, int n, int dim, float eps, ThreadPool& pool);

#if defined(LAYERSKIP_HAVE_AVX2)
void rmsnorm_avx2(float* out, const float* in, const float* weight, int n, int dim, float eps, ThreadPool& pool);
#endif

}  // namespace layerskip
