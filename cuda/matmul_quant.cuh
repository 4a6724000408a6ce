// Matrix multiply against a block-quantized weight (Q8, Q4); see matmul_quant.cu. Called through matmul_cuda.
#pragma once
#include "common.cuh"

namespace layerskip {

// out (n, rows), rows out_stride floats apart, = in (n, cols) · dequant(W)ᵀ. qs, scales, mins: the device planes
// of a `type` matrix (core/quant.h; mins null for Q8), cols a multiple of 32. Shapes and pointers are checked.
Status matmul_quantized_cuda(float* out, const float* in, const void* qs, const uint16_t* scales,
                             const uint16_t* mins, WeightType type, int rows, int cols, int n, int out_stride,
                             cudaStream_t stream);

}  // namespace layerskip
