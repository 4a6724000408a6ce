// Picking a token from a row of logits: greedy argmax, or temperature → top-k → top-p → inverse-CDF draw.
#pragma once
#include "../core/backend.h"

namespace layerskip {

// One row of `vocab` logits; `uniform` in [0, 1) drives the draw (ignored when greedy).
SampledToken sample_row_cpu(const float* logits, int vocab, const SamplingParams& params, double uniform);

}  // namespace layerskip
