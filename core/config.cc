// Reading config.json into ModelConfig with a precise error for every missing or malformed field.
#include "config.h"

#include <cmath>
#include <sys/stat.h>

#include "limits.h"
#include "quant.h"

namespace layerskip {

namespace {

// Anything at `path` (read_json_file then refuses what is not a regular file, naming it).
bool path_exists(const std::string& path) {
  struct stat info;
  return stat(path.c_str(), &info) == 0;
}

// An integer field in [minimum, maximum] (core/limits.h bounds the shape fields).
Status read_int(const JsonValue& json, const std::string& path, const char* key, bool required, int minimum,
                int maximum, int* out) {
  const JsonValue* value = json.find(key);
  if (value == nullptr || value->is_null()) {
    if (required) return Status::error(path + ": missing required field \"" + key + "\"");
    return Status::ok();
  }
  if (!value->is_number()) {
    return Status::error(path + ": field \"" + key + "\" must be a number, got " +
                         JsonValue::kind_name(value->kind()));
  }
  double number = value->as_number();
  if (!std::isfinite(number) || number != std::floor(number) || number < minimum || number > maximum) {
    return Status::error(path + ": field \"" + key + "\" must be an integer in [" + std::to_string(minimum) + ", " +
                         std::to_string(maximum) + "], got " + std::to_string(number));
  }
  *out = int(number);
  return Status::ok();
}

Status read_double(const JsonValue& json, const std::string& path, const char* key, bool positive, double* out) {
  const JsonValue* value = json.find(key);
  if (value == nullptr || value->is_null()) return Status::ok();
  if (!value->is_number() || !std::isfinite(value->as_number()) || (positive && value->as_number() <= 0)) {
    return Status::error(path + ": field \"" + key + "\" must be a " + (positive ? "positive " : "") +
                         "finite number");
  }
  *out = value->as_number();
  return Status::ok();
}

// bos/eos ids may be an int, a list of ints or null; each must be a token of the vocabulary [0, vocab_size).
Status read_token_ids(const JsonValue& json, const std::string& path, const char* key, int vocab_size,
                      bool* present, std::vector<int>* out) {
  const JsonValue* value = json.find(key);
  *present = false;
  if (value == nullptr || value->is_null()) return Status::ok();
  std::vector<int> ids;
  auto take = [&](const JsonValue& item) -> Status {
    const double id = item.is_number() ? item.as_number() : -1;
    if (!(id >= 0 && id < double(vocab_size) && id == std::floor(id))) {
      return Status::error(path + ": field \"" + key + "\" must be a token id in the vocabulary [0, " +
                           std::to_string(vocab_size) + ") or a list of them, got " +
                           (item.is_number() ? std::to_string(item.as_number()) : JsonValue::kind_name(item.kind())));
    }
    ids.push_back(int(id));
    return Status::ok();
  };
  if (value->is_array()) {
    for (const JsonValue& item : value->items()) LS_RETURN_IF_ERROR(take(item));
  } else {
    LS_RETURN_IF_ERROR(take(*value));
  }
  *present = true;
  *out = ids;
  return Status::ok();
}

Status parse_rope_scaling(const JsonValue& json, const std::string& path, RopeScaling* out) {
  const JsonValue* scaling = json.find("rope_scaling");
  if (scaling == nullptr || scaling->is_null()) return Status::ok();
  if (!scaling->is_object()) return Status::error(path + ": \"rope_scaling\" must be an object or null");
  const JsonValue* type = scaling->find("rope_type");
  if (type == nullptr) type = scaling->find("type");
  std::string type_name = type != nullptr && type->is_string() ? type->as_string() : "";
  if (type_name == "default") return Status::ok();
  if (type_name != "llama3") {
    return Status::error(path + ": unsupported rope_scaling type \"" + type_name +
                         "\" (supported: llama3, default, or null)");
  }
  out->enabled = true;
  std::string where = path + " rope_scaling";
  // All four are required, as in HF transformers: a missing one must not silently become a default.
  for (const char* key : {"factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"}) {
    const JsonValue* value = scaling->find(key);
    if (value == nullptr || value->is_null()) return Status::error(where + ": llama3 scaling needs \"" + key + "\"");
  }
  LS_RETURN_IF_ERROR(read_double(*scaling, where, "factor", true, &out->factor));
  LS_RETURN_IF_ERROR(read_double(*scaling, where, "low_freq_factor", true, &out->low_freq_factor));
  LS_RETURN_IF_ERROR(read_double(*scaling, where, "high_freq_factor", true, &out->high_freq_factor));
  LS_RETURN_IF_ERROR(read_double(*scaling, where, "original_max_position_embeddings", true,
                                 &out->original_max_position_embeddings));
  if (out->high_freq_factor <= out->low_freq_factor) {
    return Status::error(where + ": high_freq_factor must exceed low_freq_factor");
  }
  return Status::ok();
}

}  // namespace

// quantization_config written by `layerskip quantize` (README "Quantized weights", "On-disk layout").
static Status parse_quantization_config(const JsonValue& json, const std::string& path, ModelConfig* config) {
  const JsonValue* quantization = json.find("quantization_config");
  if (quantization == nullptr || quantization->is_null()) return Status::ok();
  const std::string where = path + ": quantization_config";
  if (!quantization->is_object()) return Status::error(where + " must be an object");
  const JsonValue* method = quantization->find("quant_method");
  if (method == nullptr || !method->is_string() || method->as_string() != "layerskip") {
    return Status::error(where + ".quant_method is " +
                         (method != nullptr && method->is_string() ? "\"" + method->as_string() + "\"" : "missing") +
                         "; layerskip reads only checkpoints written by `layerskip quantize` (quant_method \"layerskip\")");
  }
  const JsonValue* version = quantization->find("version");
  if (version == nullptr || !version->is_number() || version->as_number() != kQuantFormatVersion) {
    return Status::error(where + ".version must be " + std::to_string(kQuantFormatVersion) +
                         " (written by a different layerskip version?)");
  }
  const JsonValue* format = quantization->find("format");
  if (format == nullptr || !format->is_string() || !parse_quant_format(format->as_string(), &config->quantized_format)) {
    return Status::error(where + ".format must be \"q8\" or \"q4\"");
  }
  const JsonValue* block = quantization->find("block_size");
  if (block == nullptr || !block->is_number() || block->as_number() != kQuantBlock) {
    return Status::error(where + ".block_size must be " + std::to_string(kQuantBlock));
  }
  const JsonValue* keep_head = quantization->find("keep_head");
  if (keep_head != nullptr && !keep_head->is_null()) {
    if (!keep_head->is_bool()) return Status::error(where + ".keep_head must be true or false");
    config->quantized_keep_head = keep_head->as_bool();
  }
  return Status::ok();
}

Status parse_model_config(const JsonValue& json, const std::string& path, ModelConfig* out) {
  ModelConfig config;
  if (!json.is_object()) return Status::error(path + ": expected a JSON object");

  // Architecture: accept LlamaForCausalLM (all six LayerSkip checkpoints) and model_type "llama".
  const JsonValue* architectures = json.find("architectures");
  const JsonValue* model_type = json.find("model_type");
  bool is_llama = false;
  std::string named;
  if (architectures != nullptr && architectures->is_array()) {
    for (const JsonValue& item : architectures->items()) {
      if (item.is_string()) {
        named += (named.empty() ? "" : ", ") + item.as_string();
        if (item.as_string() == "LlamaForCausalLM") is_llama = true;
      }
    }
  }
  if (architectures == nullptr && model_type != nullptr && model_type->is_string() &&
      model_type->as_string() == "llama") {
    is_llama = true;
  }
  if (!is_llama) {
    if (named.empty() && model_type != nullptr && model_type->is_string()) named = model_type->as_string();
    return Status::error(path + ": unsupported architecture \"" + (named.empty() ? "unknown" : named) +
                         "\" (supported: LlamaForCausalLM)");
  }

  LS_RETURN_IF_ERROR(read_int(json, path, "hidden_size", true, 1, kMaxModelWidth, &config.hidden_size));
  LS_RETURN_IF_ERROR(read_int(json, path, "intermediate_size", true, 1, kMaxModelWidth, &config.intermediate_size));
  LS_RETURN_IF_ERROR(read_int(json, path, "num_hidden_layers", true, 1, kMaxLayers, &config.num_layers));
  LS_RETURN_IF_ERROR(read_int(json, path, "num_attention_heads", true, 1, kMaxHeads, &config.num_heads));
  config.num_kv_heads = config.num_heads;
  LS_RETURN_IF_ERROR(read_int(json, path, "num_key_value_heads", false, 1, kMaxHeads, &config.num_kv_heads));
  LS_RETURN_IF_ERROR(read_int(json, path, "vocab_size", true, 1, kMaxVocabSize, &config.vocab_size));
  config.max_position_embeddings = 2048;
  LS_RETURN_IF_ERROR(read_int(json, path, "max_position_embeddings", false, 1, 2147483647,
                              &config.max_position_embeddings));
  if (config.hidden_size % config.num_heads != 0) {
    return Status::error(path + ": hidden_size " + std::to_string(config.hidden_size) +
                         " is not divisible by num_attention_heads " + std::to_string(config.num_heads));
  }
  config.head_dim = config.hidden_size / config.num_heads;
  LS_RETURN_IF_ERROR(read_int(json, path, "head_dim", false, 2, kMaxHeadDim, &config.head_dim));
  if (config.head_dim % 2 != 0) return Status::error(path + ": head_dim must be even for rotary embeddings");
  // q_dim() and kv_dim() are int products: bounded here so they can never wrap.
  if (int64_t(config.num_heads) * config.head_dim > kMaxModelWidth) {
    return Status::error(path + ": num_attention_heads × head_dim = " +
                         std::to_string(int64_t(config.num_heads) * config.head_dim) + " is above the limit of " +
                         std::to_string(kMaxModelWidth));
  }
  if (config.num_heads % config.num_kv_heads != 0) {
    return Status::error(path + ": num_attention_heads " + std::to_string(config.num_heads) +
                         " is not a multiple of num_key_value_heads " + std::to_string(config.num_kv_heads));
  }
  LS_RETURN_IF_ERROR(read_double(json, path, "rms_norm_eps", true, &config.rms_norm_eps));
  LS_RETURN_IF_ERROR(read_double(json, path, "rope_theta", true, &config.rope_theta));
  LS_RETURN_IF_ERROR(parse_rope_scaling(json, path, &config.rope_scaling));

  const JsonValue* tie = json.find("tie_word_embeddings");
  if (tie != nullptr && !tie->is_null()) {
    if (!tie->is_bool()) return Status::error(path + ": \"tie_word_embeddings\" must be true or false");
    config.tie_word_embeddings = tie->as_bool();
  }
  const JsonValue* torch_dtype = json.find("torch_dtype");
  if (torch_dtype != nullptr && torch_dtype->is_string()) config.torch_dtype = torch_dtype->as_string();

  LS_RETURN_IF_ERROR(parse_quantization_config(json, path, &config));

  bool present = false;
  std::vector<int> ids;
  LS_RETURN_IF_ERROR(read_token_ids(json, path, "bos_token_id", config.vocab_size, &present, &ids));
  if (present && !ids.empty()) config.bos_token_id = ids[0];
  LS_RETURN_IF_ERROR(read_token_ids(json, path, "eos_token_id", config.vocab_size, &present, &ids));
  if (present) config.eos_token_ids = ids;
  *out = config;
  return Status::ok();
}

Status load_model_config(const std::string& dir, ModelConfig* out) {
  std::string path = dir + "/config.json";
  if (!path_exists(path)) return Status::error(path + ": missing file (is this a HuggingFace model folder?)");
  JsonValue json;
  LS_RETURN_IF_ERROR(read_json_file(path, &json));
  LS_RETURN_IF_ERROR(parse_model_config(json, path, out));

  // generation_config.json, when present, names the stop tokens generation should use.
  std::string generation_path = dir + "/generation_config.json";
  if (path_exists(generation_path)) {
    JsonValue generation;
    LS_RETURN_IF_ERROR(read_json_file(generation_path, &generation));
    if (generation.is_object()) {
      bool present = false;
      std::vector<int> ids;
      LS_RETURN_IF_ERROR(read_token_ids(generation, generation_path, "eos_token_id", out->vocab_size, &present, &ids));
      // Union with config.json's: instruct checkpoints list extra end-of-turn ids here.
      for (int id : present ? ids : std::vector<int>()) {
        bool known = false;
        for (int existing : out->eos_token_ids) known = known || existing == id;
        if (!known) out->eos_token_ids.push_back(id);
      }
    }
  }
  return Status::ok();
}

}  // namespace layerskip
