// Rotary-embedding tables: cos and sin of position × inverse frequency, (positions, head_dim / 2) each,
// with Llama 3 frequency scaling when the config asks for it. Computed in double, stored f32.
#pragma once
#include <vector>

#include "config.h"

namespace layerskip {

// HF LlamaRotaryEmbedding's inv_freq (with _compute_llama3_parameters when rope_scaling is llama3).
std::vector<double> rope_inverse_frequencies(const ModelConfig& config);

// Fills cos_out and sin_out, each (positions, head_dim / 2).
void build_rope_tables(const ModelConfig& config, int positions, std::vector<float>* cos_out,
                       std::vector<float>* sin_out);

}  // namespace layerskip
