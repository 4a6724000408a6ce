// Trainable parameters of a Llama model in one flat f32 buffer, laid out tensor by tensor under their HF names,
// so parameters, gradients and both AdamW moments are four buffers with one layout, and a ParameterView carves
// any of them into per-layer pointers.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "../core/config.h"

namespace layerskip::train {

struct ParameterTensor {
  std::string name;            // HF name, e.g. "model.layers.3.mlp.up_proj.weight"
  std::vector<int64_t> shape;  // (rows, cols) for matrices, (n) for norm weights
  size_t offset = 0;           // into the flat buffer, in floats
  size_t size = 0;             // element count
  bool decays = false;         // weight decay applies (matrices), not norm weights
};

class ParameterLayout {
 public:
  explicit ParameterLayout(const ModelConfig& config);
  const std::vector<ParameterTensor>& tensors() const { return tensors_; }
  size_t total() const { return total_; }
  // The tensor called `name`, or nullptr.
  const ParameterTensor* find(const std::string& name) const;

 private:
  void add(const std::string& name, std::vector<int64_t> shape, bool decays);
  std::vector<ParameterTensor> tensors_;
  size_t total_ = 0;
};

struct LayerParameters {
  float* attention_norm;  // (hidden)
  float* q_proj;          // (q_dim, hidden)
  float* k_proj;          // (kv_dim, hidden)
  float* v_proj;          // (kv_dim, hidden)
  float* o_proj;          // (hidden, q_dim)
  float* mlp_norm;        // (hidden)
  float* gate_proj;       // (ffn, hidden)
  float* up_proj;         // (ffn, hidden)
  float* down_proj;       // (hidden, ffn)
};

// Pointers into one flat buffer with a ParameterLayout. `lm_head` aliases `embed_tokens` when embeddings are tied.
struct ParameterView {
  float* embed_tokens;  // (vocab, hidden)
  std::vector<LayerParameters> layers;
  float* final_norm;    // (hidden)
  float* lm_head;       // (vocab, hidden)
};

ParameterView view_parameters(const ModelConfig& config, const ParameterLayout& layout, float* base);

// GPT-2/Llama-style initialization: matrices ~ N(0, 0.02), the residual projections (o_proj, down_proj) scaled by
// 1/sqrt(2·layers), norm weights 1. Deterministic in `seed`.
void initialize_parameters(const ModelConfig& config, const ParameterLayout& layout, uint64_t seed, float* base);

}  // namespace layerskip::train
