// Element-wise pieces of the transformer block: SwiGLU activation and the residual add.
#pragma once
#include <cstddef>

namespace layerskip {

// out = silu(gate) * up, silu(x) = x / (1 + e^-x). out may alias gate.
void swiglu_cpu(float* out, const float* gate, const float* up, size_t count);
// accumulate += in.
void add_cpu(float* accumulate, const float* in, size_t count);

}  // namespace layerskip
