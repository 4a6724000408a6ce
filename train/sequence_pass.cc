#include "sequence_pass.h"

#include <algorithm>
#include <cstring>

#include "gemm.h"
#include "ops.h"

namespace layerskip::train {

void ExitTotals::reset(int layers) {
  loss.assign(layers, 0.0);
  correct.assign(layers, 0.0);
  agree.assign(layers, 0.0);
  tokens = 0;
}

void ExitTotals::add(const ExitTotals& other) {
  for (size_t l = 0; l < loss.size(); ++l) {
    loss[l] += other.loss[l];
    correct[l] += other.correct[l];
    agree[l] += other.agree[l];
  }
  tokens += other.tokens;
}

SequencePass::SequencePass(const ModelConfig& c, int max_rows) : config_(c), max_rows_(max_rows) {
  const size_t t = size_t(max_rows), hidden = c.hidden_size, ffn = c.intermediate_size, q = c.q_dim(),
               kv = c.kv_dim();
  hidden_.assign(c.num_layers + 1, std::vector<float>(t * hidden));
  layers_.resize(c.num_layers);
  for (LayerActivations& a : layers_) {
    a.attention_rstd.resize(t);
    a.mlp_rstd.resize(t);
    a.attention_in.resize(t * hidden);
    a.q.resize(t * q);
    a.k.resize(t * kv);
    a.v.resize(t * kv);
    a.probabilities.resize(size_t(c.num_heads) * t * t);
    a.attention_out.resize(t * q);
    a.mid.resize(t * hidden);
    a.mlp_in.resize(t * hidden);
    a.gate.resize(t * ffn);
    a.up.resize(t * ffn);
    a.act.resize(t * ffn);
  }
  exit_gradient_.assign(c.num_layers, {});
  logits_.resize(t * c.vocab_size);
  exit_normed_.resize(t * hidden);
  exit_rstd_.resize(t);
  dresidual_.resize(t * hidden);
  dmid_.resize(t * hidden);
  dnormed_.resize(t * hidden);
  dq_.resize(t * q);
  dk_.resize(t * kv);
  dv_.resize(t * kv);
  dattention_.resize(t * q);
  dgate_.resize(t * ffn);
  dup_.resize(t * ffn);
  dact_.resize(t * ffn);
  const size_t widest = std::max({size_t(c.vocab_size), ffn, q, hidden});
  transpose_a_.resize(widest * t);
  transpose_b_.resize(widest * t);
  attention_scratch_.resize(2 * t * t + 2 * t * c.head_dim);
  final_argmax_.resize(t);
  exit_argmax_.resize(t);
}

void SequencePass::gemm_tn(float* c, const float* a, const float* b, int m, int n, int k, int lda, int ldb) {
  transpose(transpose_a_.data(), a, k, m, lda);
  transpose(transpose_b_.data(), b, k, n, ldb);
  gemm_nt(c, transpose_a_.data(), transpose_b_.data(), m, n, k, k, k, n, true);
}

void SequencePass::layer_forward(int layer, const LayerParameters& p, const float* rope_cos, const float* rope_sin,
                                 const float* in, float* out, int rows) {
  const ModelConfig& c = config_;
  const int hidden = c.hidden_size, ffn = c.intermediate_size, q = c.q_dim(), kv = c.kv_dim();
  const float eps = float(c.rms_norm_eps);
  LayerActivations& a = layers_[layer];
  // Attention block: mid = in + o_proj(attention(rope(q), rope(k), v)).
  rmsnorm_forward(a.attention_in.data(), a.attention_rstd.data(), in, p.attention_norm, rows, hidden, eps);
  gemm_nt(a.q.data(), a.attention_in.data(), p.q_proj, rows, q, hidden, hidden, hidden, q, false);
  gemm_nt(a.k.data(), a.attention_in.data(), p.k_proj, rows, kv, hidden, hidden, hidden, kv, false);
  gemm_nt(a.v.data(), a.attention_in.data(), p.v_proj, rows, kv, hidden, hidden, hidden, kv, false);
  rope_apply(a.q.data(), rope_cos, rope_sin, rows, c.num_heads, c.head_dim, false);
  rope_apply(a.k.data(), rope_cos, rope_sin, rows, c.num_kv_heads, c.head_dim, false);
  attention_forward(a.attention_out.data(), a.probabilities.data(), a.q.data(), a.k.data(), a.v.data(), rows,
                    c.num_heads, c.num_kv_heads, c.head_dim, attention_scratch_.data());
  std::memcpy(a.mid.data(), in, sizeof(float) * size_t(rows) * hidden);
  gemm_nt(a.mid.data(), a.attention_out.data(), p.o_proj, rows, hidden, q, q, q, hidden, true);
  // MLP block: out = mid + down_proj(silu(gate_proj(x)) · up_proj(x)), x = rmsnorm(mid).
  rmsnorm_forward(a.mlp_in.data(), a.mlp_rstd.data(), a.mid.data(), p.mlp_norm, rows, hidden, eps);
  gemm_nt(a.gate.data(), a.mlp_in.data(), p.gate_proj, rows, ffn, hidden, hidden, hidden, ffn, false);
  gemm_nt(a.up.data(), a.mlp_in.data(), p.up_proj, rows, ffn, hidden, hidden, hidden, ffn, false);
  swiglu_forward(a.act.data(), a.gate.data(), a.up.data(), rows * ffn);
  std::memcpy(out, a.mid.data(), sizeof(float) * size_t(rows) * hidden);
  gemm_nt(out, a.act.data(), p.down_proj, rows, hidden, ffn, ffn, ffn, hidden, true);
}

// dresidual holds ∂loss/∂out on entry and ∂loss/∂in on return.
void SequencePass::layer_backward(int layer, const LayerParameters& p, const LayerParameters& pt,
                                  const LayerParameters& g, const float* rope_cos, const float* rope_sin,
                                  const float* in, float* dresidual, int rows) {
  const ModelConfig& c = config_;
  const int hidden = c.hidden_size, ffn = c.intermediate_size, q = c.q_dim(), kv = c.kv_dim();
  const size_t residual_bytes = sizeof(float) * size_t(rows) * hidden;
  LayerActivations& a = layers_[layer];
  // MLP block.
  gemm_nt(dact_.data(), dresidual, pt.down_proj, rows, ffn, hidden, hidden, hidden, ffn, false);
  gemm_tn(g.down_proj, dresidual, a.act.data(), hidden, ffn, rows, hidden, ffn);
  swiglu_backward(dgate_.data(), dup_.data(), dact_.data(), a.gate.data(), a.up.data(), rows * ffn);
  gemm_nt(dnormed_.data(), dgate_.data(), pt.gate_proj, rows, hidden, ffn, ffn, ffn, hidden, false);
  gemm_nt(dnormed_.data(), dup_.data(), pt.up_proj, rows, hidden, ffn, ffn, ffn, hidden, true);
  gemm_tn(g.gate_proj, dgate_.data(), a.mlp_in.data(), ffn, hidden, rows, ffn, hidden);
  gemm_tn(g.up_proj, dup_.data(), a.mlp_in.data(), ffn, hidden, rows, ffn, hidden);
  std::memcpy(dmid_.data(), dresidual, residual_bytes);
  rmsnorm_backward(dmid_.data(), g.mlp_norm, dnormed_.data(), a.mid.data(), a.mlp_rstd.data(), p.mlp_norm, rows,
                   hidden);
  // Attention block.
  gemm_nt(dattention_.data(), dmid_.data(), pt.o_proj, rows, q, hidden, hidden, hidden, q, false);
  gemm_tn(g.o_proj, dmid_.data(), a.attention_out.data(), hidden, q, rows, hidden, q);
  std::fill(dk_.begin(), dk_.begin() + size_t(rows) * kv, 0.0f);
  std::fill(dv_.begin(), dv_.begin() + size_t(rows) * kv, 0.0f);
  attention_backward(dq_.data(), dk_.data(), dv_.data(), dattention_.data(), a.probabilities.data(), a.q.data(),
                     a.k.data(), a.v.data(), rows, c.num_heads, c.num_kv_heads, c.head_dim,
                     attention_scratch_.data());
  rope_apply(dq_.data(), rope_cos, rope_sin, rows, c.num_heads, c.head_dim, true);
  rope_apply(dk_.data(), rope_cos, rope_sin, rows, c.num_kv_heads, c.head_dim, true);
  gemm_nt(dnormed_.data(), dq_.data(), pt.q_proj, rows, hidden, q, q, q, hidden, false);
  gemm_nt(dnormed_.data(), dk_.data(), pt.k_proj, rows, hidden, kv, kv, kv, hidden, true);
  gemm_nt(dnormed_.data(), dv_.data(), pt.v_proj, rows, hidden, kv, kv, kv, hidden, true);
  gemm_tn(g.q_proj, dq_.data(), a.attention_in.data(), q, hidden, rows, q, hidden);
  gemm_tn(g.k_proj, dk_.data(), a.attention_in.data(), kv, hidden, rows, kv, hidden);
  gemm_tn(g.v_proj, dv_.data(), a.attention_in.data(), kv, hidden, rows, kv, hidden);
  std::memcpy(dresidual, dmid_.data(), residual_bytes);
  rmsnorm_backward(dresidual, g.attention_norm, dnormed_.data(), in, a.attention_rstd.data(), p.attention_norm, rows,
                   hidden);
}

double SequencePass::exit_head(const ParameterView& params, const ParameterView* transposed,
                               const ParameterView* gradients, const float* hidden, const int32_t* targets, int rows,
                               float gradient_scale, float* dhidden, int* correct, int32_t* argmax_out) {
  const ModelConfig& c = config_;
  const int dim = c.hidden_size, vocab = c.vocab_size;
  rmsnorm_forward(exit_normed_.data(), exit_rstd_.data(), hidden, params.final_norm, rows, dim,
                  float(c.rms_norm_eps));
  gemm_nt(logits_.data(), exit_normed_.data(), params.lm_head, rows, vocab, dim, dim, dim, vocab, false);
  const bool backward = gradients != nullptr;
  const double loss = cross_entropy(logits_.data(), targets, rows, vocab, backward ? gradient_scale : 0.0f, correct,
                                    argmax_out);
  if (!backward) return loss;
  // logits_ now holds ∂loss/∂logits.
  gemm_tn(gradients->lm_head, logits_.data(), exit_normed_.data(), vocab, dim, rows, vocab, dim);
  gemm_nt(dnormed_.data(), logits_.data(), transposed->lm_head, rows, dim, vocab, vocab, vocab, dim, false);
  std::fill(dhidden, dhidden + size_t(rows) * dim, 0.0f);
  rmsnorm_backward(dhidden, gradients->final_norm, dnormed_.data(), hidden, exit_rstd_.data(), params.final_norm,
                   rows, dim);
  return loss;
}

void SequencePass::embed(const ParameterView& params, const int32_t* tokens, int rows) {
  const int dim = config_.hidden_size;
  for (int t = 0; t < rows; ++t)
    std::memcpy(hidden_[0].data() + size_t(t) * dim, params.embed_tokens + size_t(tokens[t]) * dim,
                sizeof(float) * dim);
}

void SequencePass::train(const ParameterView& params, const ParameterView& transposed,
                         const ParameterView* gradients, const float* rope_cos, const float* rope_sin,
                         const int32_t* tokens, const int32_t* targets, int rows, const uint8_t* dropped,
                         const float* exit_weights, float gradient_scale, ExitTotals* totals) {
  const ModelConfig& c = config_;
  const int dim = c.hidden_size, layers = c.num_layers;
  embed(params, tokens, rows);
  for (int l = 0; l < layers; ++l) {
    if (dropped[l]) {
      std::memcpy(hidden_[l + 1].data(), hidden_[l].data(), sizeof(float) * size_t(rows) * dim);
    } else {
      layer_forward(l, params.layers[l], rope_cos, rope_sin, hidden_[l].data(), hidden_[l + 1].data(), rows);
    }
    if (exit_weights[l] <= 0.0f) continue;
    if (gradients && exit_gradient_[l].empty()) exit_gradient_[l].resize(size_t(max_rows_) * dim);
    int correct = 0;
    totals->loss[l] += exit_head(params, &transposed, gradients, hidden_[l + 1].data(), targets, rows,
                                 gradient_scale * exit_weights[l], gradients ? exit_gradient_[l].data() : nullptr,
                                 &correct, nullptr);
    totals->correct[l] += correct;
  }
  totals->tokens += rows;
  if (!gradients) return;

  std::fill(dresidual_.begin(), dresidual_.begin() + size_t(rows) * dim, 0.0f);
  for (int l = layers - 1; l >= 0; --l) {
    if (exit_weights[l] > 0.0f)
      for (size_t i = 0; i < size_t(rows) * dim; ++i) dresidual_[i] += exit_gradient_[l][i];
    if (dropped[l]) continue;
    layer_backward(l, params.layers[l], transposed.layers[l], gradients->layers[l], rope_cos, rope_sin,
                   hidden_[l].data(), dresidual_.data(), rows);
  }
  for (int t = 0; t < rows; ++t) {
    float* row = gradients->embed_tokens + size_t(tokens[t]) * dim;
    const float* d = dresidual_.data() + size_t(t) * dim;
    for (int i = 0; i < dim; ++i) row[i] += d[i];
  }
}

void SequencePass::evaluate(const ParameterView& params, const float* rope_cos, const float* rope_sin,
                            const int32_t* tokens, const int32_t* targets, int rows, ExitTotals* totals) {
  const ModelConfig& c = config_;
  const int layers = c.num_layers;
  embed(params, tokens, rows);
  for (int l = 0; l < layers; ++l)
    layer_forward(l, params.layers[l], rope_cos, rope_sin, hidden_[l].data(), hidden_[l + 1].data(), rows);
  // The last layer first: every exit's agreement is measured against its argmax.
  for (int l = layers - 1; l >= 0; --l) {
    int correct = 0;
    int32_t* argmax = l == layers - 1 ? final_argmax_.data() : exit_argmax_.data();
    totals->loss[l] += exit_head(params, nullptr, nullptr, hidden_[l + 1].data(), targets, rows, 0.0f, nullptr,
                                 &correct, argmax);
    totals->correct[l] += correct;
    for (int t = 0; t < rows; ++t) totals->agree[l] += argmax[t] == final_argmax_[t];
  }
  totals->tokens += rows;
}

}  // namespace layerskip::train
