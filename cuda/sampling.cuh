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

// Floats of scratch verify_sampled_cuda needs (verify and draft weights of every row).
inline size_t verify_sampled_workspace_floats(int n, int vocab) { return size_t(n) * 2 * size_t(vocab); }

// Speculative sampling's verification (core/backend.h SpeculativeSampler::verify) on device buffers: out (n),
// logits (n, vocab) for step rows [row_begin, row_begin + n), draft_logits (drafted, vocab) and draft_tokens
// (drafted) of the step's kept draft rows, uniforms (n). params.temperature must be > 0.
Status verify_sampled_cuda(VerifyRow* out, const float* logits, const float* draft_logits, const int32_t* draft_tokens,
                           int row_begin, int n, int drafted, int vocab, const SamplingParams& params,
                           const double* uniforms, float* workspace, size_t workspace_floats, cudaStream_t stream);

}  // namespace layerskip
