// Matrix multiply against a stored weight: out (n, rows) = in (n, cols) · Wᵀ; see matmul.cu for the design (and
// matmul_quant.cu for the quantized formats).
#pragma once
#include "common.cuh"

namespace layerskip {

// Bytes of scratch matmul_cuda needs for n rows of `cols` inputs against a weight of `type` (0 when none).
size_t matmul_workspace_bytes(int n, int cols, WeightType type);

// out rows are out_stride floats apart. weight: the device copy in `type`: a plain (rows, padded_cols(cols))
// matrix, or the qs plane of a Q8/Q4 matrix whose f16 `scales` and (Q4) `mins` planes come with it (null for plain
// types). workspace: matmul_workspace_bytes(n, cols, type) bytes of device memory (may be null when that is 0).
Status matmul_cuda(float* out, const float* in, const void* weight, const uint16_t* scales, const uint16_t* mins,
                   WeightType type, int rows, int cols, int n, int out_stride, void* workspace,
                   size_t workspace_bytes, cudaStream_t stream);

}  // namespace layerskip
