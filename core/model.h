// Model: config + weights resident on a backend. Loading validates every tensor's presence, shape and dtype
// against config.json before anything runs.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "backend.h"
#include "config.h"
#include "safetensors.h"

namespace layerskip {

struct LayerWeights {
  float* attn_norm = nullptr;   // (dim) f32
  Weight q_proj;                // (q_dim, dim)
  Weight k_proj;                // (kv_dim, dim)
  Weight v_proj;                // (kv_dim, dim)
  Weight o_proj;                // (dim, q_dim)
  float* ffn_norm = nullptr;    // (dim) f32
  Weight gate_proj;             // (ffn, dim)
  Weight up_proj;               // (ffn, dim)
  Weight down_proj;             // (dim, ffn)
};

struct ModelWeights {
  Weight embed_tokens;          // (vocab, dim)
  std::vector<LayerWeights> layers;
  float* final_norm = nullptr;  // (dim) f32
  Weight lm_head;               // (vocab, dim); the embedding table itself when tied
};

class Model {
 public:
  // Loads `dir` (config.json + safetensors) onto `backend`.
  static Status load(const std::string& dir, std::unique_ptr<Backend> backend, std::unique_ptr<Model>* out);
  ~Model();

  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }
  Backend& backend() const { return *backend_; }
  const std::string& dir() const { return dir_; }
  // Bytes of weights one full forward pass of a single token reads (all layers + head), for roofline math.
  size_t weight_bytes_per_token() const;
  size_t weight_bytes_per_layer() const;
  size_t head_weight_bytes() const;
  // Stored dtype of the layer matrices (the first q_proj's).
  DType matrix_dtype() const { return weights_.layers.empty() ? DType::F32 : weights_.layers[0].q_proj.dtype; }

 private:
  Model() = default;
  Status bind_weights();

  std::string dir_;
  ModelConfig config_;
  std::unique_ptr<TensorStore> store_;   // keeps the mapping alive: CPU weights point into it
  std::unique_ptr<Backend> backend_;
  ModelWeights weights_;
  std::vector<float*> owned_vectors_;    // f32 norm weights allocated on the backend
};

}  // namespace layerskip
