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
#include "quant.h"
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
  // Q8 / Q4: quantize every matrix (layers, embedding, LM head) while loading; F32: run them as stored. A checkpoint
  // already quantized on disk loads as is, and then this must be F32 or its own format.
  DType quantize = DType::F32;
  // Q8 / Q4: keep a quantized copy of the LM head for speculative drafts only (Model::draft_head()).
  DType draft_head = DType::F32;
  // Threads quantization uses (≤ 0: one per core).
  int threads = 0;
};

// Names of the matrices a LlamaForCausalLM with `config` has, in load order: the embedding, each layer's seven
// projections, and lm_head unless tied — what `weights` and `layerskip quantize` quantize.
std::vector<std::string> llama_matrix_names(const ModelConfig& config);

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
  // The head speculative drafts use: the quantized draft head when loaded with one, else lm_head.
  const Weight& draft_head() const { return draft_head_.data ? draft_head_ : weights_.lm_head; }
  size_t draft_head_weight_bytes() const;
  // Stored dtype of the layer matrices (the first q_proj's): BF16, …, or Q8 / Q4 when quantized.
  DType matrix_dtype() const { return weights_.layers.empty() ? DType::F32 : weights_.layers[0].q_proj.dtype; }
  // The backend's memory right after the weights were uploaded (weights resident; for a GPU, free/total then).
  const BackendMemory& memory_after_load() const { return memory_after_load_; }

 private:
  // One tensor waiting for upload: a matrix (`host`, in host memory) into `matrix`, quantized first when `quantize`
  // names a format; or a norm vector into `vector`. `bytes`: checkpoint bytes it accounts for (progress).
  struct PendingUpload {
    std::string name;
    const TensorView* view = nullptr;
    Weight host;
    DType quantize = DType::F32;
    uint64_t bytes = 0;
    Weight* matrix = nullptr;
    float** vector = nullptr;
  };

  Model() = default;
  Status resolve_weights(std::vector<PendingUpload>* uploads);
  Status upload_weights(const std::vector<PendingUpload>& uploads, const ModelLoadOptions& options);
  Status upload_matrix(const PendingUpload& upload, const ModelLoadOptions& options);
  Status check_draft_head(const ModelLoadOptions& options) const;
  Status make_draft_head(const ModelLoadOptions& options);

  std::string dir_;
  ModelConfig config_;
  std::unique_ptr<TensorStore> store_;   // keeps the mapping alive: CPU weights point into it
  std::unique_ptr<Backend> backend_;
  ModelWeights weights_;
  std::vector<float*> owned_vectors_;    // f32 norm weights allocated on the backend
  std::vector<std::unique_ptr<QuantizedMatrix>> quantized_;  // planes quantized at load that the backend reads
  Weight draft_head_;                    // the quantized draft head, when loaded with one
  Weight host_head_;                     // the head as stored (host memory): the draft head's source
  DType quantize_ = DType::F32;          // quantize plain matrices to this while loading (F32: no)
  BackendMemory memory_after_load_;
};

}  // namespace layerskip
