// Token embedding lookup on the device; see embed.cu.
#pragma once
#include "common.cuh"

namespace layerskip {

// out (n, cols) f32 = rows `tokens` (device, n ids, each in [0, vocab)) of table (vocab, padded_cols(cols)).
Status embed_cuda(float* out, const int32_t* tokens, int n, const void* table, WeightType type, int vocab, int cols,
                  cudaStream_t stream);

}  // namespace layerskip
