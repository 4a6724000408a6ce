// Model: config + weights resident on a backend. Loading validates every tensor's presence, shape and dtype
// against config.json, then checks the weights fit in the backend's memory, then uploads them tensor by tensor.
#pragma once
#include <cstdint>
#include <functional>
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

struct ModelLoadOptions {
  // Called on the loading thread after each tensor is uploaded, with the checkpoint bytes uploaded so far and the
  // total: strictly increasing, the last call has uploaded == total. Returning false stops the load, which then
  // fails with "loading was cancelled". May be empty.
  std::function<bool(uint64_t uploaded_bytes, uint64_t total_bytes)> on_progress;
};

class Model {
 public:
  // Loads `dir` (config.json + safetensors) onto `backend`.
  static Status load(const std::string& dir, std::unique_ptr<Backend> backend, std::unique_ptr<Model>* out,
                     const ModelLoadOptions& options = ModelLoadOptions());
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
  // The backend's memory right after the weights were uploaded (weights resident; for a GPU, free/total then).
  const BackendMemory& memory_after_load() const { return memory_after_load_; }

 private:
  // One tensor waiting for upload: a matrix into `matrix`, or a norm vector into `vector`.
  struct PendingUpload {
    const TensorView* view = nullptr;
    int rows = 0, cols = 0;
    Weight* matrix = nullptr;
    float** vector = nullptr;
  };

  Model() = default;
  Status resolve_weights(std::vector<PendingUpload>* uploads);
  Status upload_weights(const std::vector<PendingUpload>& uploads, const ModelLoadOptions& options);

  std::string dir_;
  ModelConfig config_;
  std::unique_ptr<TensorStore> store_;   // keeps the mapping alive: CPU weights point into it
  std::unique_ptr<Backend> backend_;
  ModelWeights weights_;
  std::vector<float*> owned_vectors_;    // f32 norm weights allocated on the backend
  BackendMemory memory_after_load_;
};

}  // namespace layerskip
