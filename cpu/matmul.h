// Matrix multiply against a stored weight: out (n, rows) = in (n, cols) · Wᵀ, W in bf16 / f16 / f32, f32 accumulate.
#pragma once
#include "../core/backend.h"
#include "thread_pool.h"

namespace layerskip {

// out rows are `out_stride` floats apart. Each output element is reduced in the same fixed order whatever n is
// (batch invariance), so decoding one token and verifying it inside a batch give bit-identical results.
void matmul_cpu(float* out, const float* in, const Weight& weight, int n, int out_stride, ThreadPool& pool);

}  // namespace layerskip
