#include "parameters.h"

#include <cmath>
#include <random>

namespace layerskip::train {

ParameterLayout::ParameterLayout(const ModelConfig& c) {
  const int64_t hidden = c.hidden_size, ffn = c.intermediate_size;
  add("model.embed_tokens.weight", {c.vocab_size, hidden}, true);
  for (int l = 0; l < c.num_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    add(p + "input_layernorm.weight", {hidden}, false);
    add(p + "self_attn.q_proj.weight", {c.q_dim(), hidden}, true);
    add(p + "self_attn.k_proj.weight", {c.kv_dim(), hidden}, true);
    add(p + "self_attn.v_proj.weight", {c.kv_dim(), hidden}, true);
    add(p + "self_attn.o_proj.weight", {hidden, c.q_dim()}, true);
    add(p + "post_attention_layernorm.weight", {hidden}, false);
    add(p + "mlp.gate_proj.weight", {ffn, hidden}, true);
    add(p + "mlp.up_proj.weight", {ffn, hidden}, true);
    add(p + "mlp.down_proj.weight", {hidden, ffn}, true);
  }
  add("model.norm.weight", {hidden}, false);
  if (!c.tie_word_embeddings) add("lm_head.weight", {c.vocab_size, hidden}, true);
}

void ParameterLayout::add(const std::string& name, std::vector<int64_t> shape, bool decays) {
  size_t size = 1;
  for (int64_t d : shape) size *= size_t(d);
  tensors_.push_back({name, std::move(shape), total_, size, decays});
  total_ += size;
}

const ParameterTensor* ParameterLayout::find(const std::string& name) const {
  for (const ParameterTensor& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

ParameterView view_parameters(const ModelConfig& c, const ParameterLayout& layout, float* base) {
  auto at = [&](const std::string& name) { return base + layout.find(name)->offset; };
  ParameterView v;
  v.embed_tokens = at("model.embed_tokens.weight");
  for (int l = 0; l < c.num_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    v.layers.push_back({at(p + "input_layernorm.weight"), at(p + "self_attn.q_proj.weight"),
                        at(p + "self_attn.k_proj.weight"), at(p + "self_attn.v_proj.weight"),
                        at(p + "self_attn.o_proj.weight"), at(p + "post_attention_layernorm.weight"),
                        at(p + "mlp.gate_proj.weight"), at(p + "mlp.up_proj.weight"), at(p + "mlp.down_proj.weight")});
  }
  v.final_norm = at("model.norm.weight");
  v.lm_head = c.tie_word_embeddings ? v.embed_tokens : at("lm_head.weight");
  return v;
}

void initialize_parameters(const ModelConfig& c, const ParameterLayout& layout, uint64_t seed, float* base) {
  std::mt19937_64 rng(seed);
  const double residual_scale = 1.0 / std::sqrt(2.0 * c.num_layers);
  for (const ParameterTensor& t : layout.tensors()) {
    float* data = base + t.offset;
    if (t.shape.size() == 1) {
      for (size_t i = 0; i < t.size; ++i) data[i] = 1.0f;
      continue;
    }
    const bool residual = t.name.find("o_proj") != std::string::npos || t.name.find("down_proj") != std::string::npos;
    std::normal_distribution<float> normal(0.0f, float(0.02 * (residual ? residual_scale : 1.0)));
    for (size_t i = 0; i < t.size; ++i) data[i] = normal(rng);
  }
}

}  // namespace layerskip::train
