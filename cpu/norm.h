// RMSNorm over rows: out = in / sqrt(mean(in²) + eps) * weight, as HF LlamaRMSNorm (computed in f32).
#pragma once
#include "thread_pool.h"

namespace layerskip {

void rmsnorm_cpu(float* out, const float* in, const float* weight, int n, int dim, float eps, ThreadPool& pool);

}  // namespace layerskip
