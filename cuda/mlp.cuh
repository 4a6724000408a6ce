// Element-wise pieces of the transformer block on the device: SwiGLU and the residual add; see mlp.cu.
#pragma once
#include "common.cuh"

namespace layerskip {

// out (count) = silu(gate) * up; out may alias gate or up.
Status swiglu_cuda(float* out, const float* gate, const float* up, size_t count, cudaStream_t stream);
// accumulate (count) += in.
Status add_cuda(float* accumulate, const float* in, size_t count, cudaStream_t stream);

}  // namespace layerskip
