// Rotary position embedding on the device; see rope.cu.
#pragma once
#include "common.cuh"

namespace layerskip {

// Rotates num_heads heads of each of n rows (row i at position start_pos + i, row_stride floats apart) in place.
// cos_table / sin_table: device (positions, head_dim / 2), as uploaded by the Context (core/rope_table.h).
Status rope_cuda(float* vectors, int n, int row_stride, int num_heads, int head_dim, int start_pos,
                 const float* cos_table, const float* sin_table, cudaStream_t stream);

}  // namespace layerskip
