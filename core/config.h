// ModelConfig: the shape and hyper-parameters of a HuggingFace LlamaForCausalLM checkpoint, read from config.json
// (and generation_config.json for stop tokens when present).
#pragma once
#include <string>
#include <vector>

#include "json.h"
#include "dtype.h"
#include "status.h"

namespace layerskip {

// rope_scaling of type "llama3" (Llama 3.1 / 3.2): long-wavelength frequencies are slowed by `factor`,
// short ones kept, and the band between interpolated.
struct RopeScaling {
  bool enabled = false;
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  double original_max_position_embeddings = 8192;
};

struct ModelConfig {
  int hidden_size = 0;         // dim of the residual stream
  int intermediate_size = 0;   // FFN width
  int num_layers = 0;
  int num_heads = 0;
  int num_kv_heads = 0;        // < num_heads: grouped-query attention
  int head_dim = 0;            // hidden_size / num_heads unless config.json says otherwise
  int vocab_size = 0;
  int max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  int bos_token_id = -1;                // -1: none
  std::vector<int> eos_token_ids;       // stop tokens (config.json, overridden by generation_config.json)
  std::string torch_dtype;              // informational
  // quantization_config of a checkpoint written by `layerskip quantize` (core/quant.h): the matrices' format,
  // F32 when the checkpoint is not quantized; keep_head: the LM head (and a tied embedding) stay as stored.
  DType quantized_format = DType::F32;
  bool quantized_keep_head = false;

  int q_dim() const { return num_heads * head_dim; }
  int kv_dim() const { return num_kv_heads * head_dim; }
};

// Reads `dir`/config.json and, when present, `dir`/generation_config.json.
Status load_model_config(const std::string& dir, ModelConfig* out);

// Interprets an already-parsed config.json; `path` names it in error messages.
Status parse_model_config(const JsonValue& json, const std::string& path, ModelConfig* out);

}  // namespace layerskip
