// Picking a token from a row of logits: greedy argmax, or temperature → top-k → top-p → inverse-CDF draw.
#pragma once
#include "../core/backend.h"

namespace layerskip {

// One row of `vocab` logits; `uniform` in [0, 1) drives the draw (ignored when greedy).
SampledToken sample_row_cpu(const float* logits, int vocab, const SamplingParams& params, double uniform);

// Speculative sampling on host logits: each draft row's TokenDistribution is kept until the step's verification.
std::unique_ptr<SpeculativeSampler> make_speculative_sampler_cpu(int capacity, int vocab);

}  // namespace layerskip
