// Token embedding lookup on the device; see embed.cu.
#pragma once
#include "common.cuh"

namespace layerskip {

// out (n, cols) f32 = rows `tokens` (device, n ids, each in [0, vocab)) of the table, widened to f32: a plain
// (vocab, padded_cols(cols)) matrix, or the qs plane of a Q8/Q4 matrix with its f16 `scales` and (Q4) `mins`
// planes (null for plain types).
Status embed_cuda(float* out, const int32_t* tokens, int n, const void* table, const uint16_t* scales,
                  const uint16_t* mins, WeightType type, int vocab, int cols, cudaStream_t stream);

}  // namespace layerskip
