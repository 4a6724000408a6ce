// Picking tokens from rows of logits on the device; see sampling.cu.
#pragma once
#include "../core/backend.h"
#include "common.cuh"

namespace layerskip {

// Floats of scratch sample_cuda needs (tempered weights of every row).
inline size_t sampling_workspace_floats(int n, int vocab) { return size_t(n) * size_t(vocab); }

// out (device, n) ← one token per logits row (n, vocab). uniforms: device, n values in [0, 1) (unused when greedy).
Status sample_cuda(SampledToken* out, const float* logits, int n, int vocab, const SamplingParams& params,
                   const double* uniforms, float* workspace, size_t workspace_floats, cudaStream_t stream);

}  // namespace layerskip
