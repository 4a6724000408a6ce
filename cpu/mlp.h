// Element-wise pieces of the transformer block: SwiGLU activation and the residual add. Each element is computed
// by the same arithmetic wherever it sits (threads split contiguous ranges; tails are masked vector blocks).
#pragma once
#include <cstddef>

#include "thread_pool.h"

namespace layerskip {

// out = silu(gate) * up, silu(x) = x / (1 + e^-x). out may alias gate. Runs the default variant (cpu_features.h).
void swiglu_cpu(float* out, const float* gate, const float* up, size_t count, ThreadPool& pool);
// accumulate += in.
void add_cpu(float* accumulate, const float* in, size_t count, ThreadPool& pool);

void swiglu_scalar(float* out, const float* gate, const float* up, size_t count, ThreadPool& pool);

#if defined(LAYERSKIP_HAVE_AVX2)
void swiglu_avx2(float* out, const float* gate, const float* up, size_t count, ThreadPool& pool);
#endif

}  // namespace layerskip
