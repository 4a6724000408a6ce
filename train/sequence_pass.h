// SequencePass: the forward and backward pass of one training sequence through a Llama model with LayerSkip's
// two training-time additions:
//   - layer dropout: a layer marked dropped is the identity for this sequence (skipped forward and backward);
//   - early-exit loss: after every layer l with exit_weights[l] > 0, the model's own final norm + LM head predict
//     the targets, and that cross-entropy, weighted, joins the loss.
// Single-threaded; the Trainer runs one pass per thread over different sequences. The workspace is sized once for
// up to max_rows positions.
#pragma once
#include <cstdint>
#include <vector>

#include "../core/config.h"
#include "parameters.h"

namespace layerskip::train {

// Per exit layer: Σ −log p(target), argmax hits, and (evaluation only) agreement with the last layer's argmax.
struct ExitTotals {
  std::vector<double> loss;  // (layers)
  std::vector<double> correct;
  std::vector<double> agree;
  double tokens = 0;         // positions counted per exit

  void reset(int layers);
  void add(const ExitTotals& other);
};

class SequencePass {
 public:
  SequencePass(const ModelConfig& config, int max_rows);

  // Forward, then backward when `gradients` is non-null:
  //   tokens, targets (rows); dropped (layers) nonzero = skip; exit_weights (layers), 0 = no exit there;
  //   gradient_scale multiplies every loss term's gradient (1 / tokens in the batch);
  //   transposed: the same parameters with every matrix stored transposed (cols, rows), for input gradients.
  // Totals accumulate into `totals` for every exit with a weight > 0.
  void train(const ParameterView& params, const ParameterView& transposed, const ParameterView* gradients,
             const float* rope_cos, const float* rope_sin, const int32_t* tokens, const int32_t* targets, int rows,
             const uint8_t* dropped, const float* exit_weights, float gradient_scale, ExitTotals* totals);

  // Forward only, no dropout, every layer's exit evaluated (loss, hits, agreement with the last layer).
  void evaluate(const ParameterView& params, const float* rope_cos, const float* rope_sin, const int32_t* tokens,
                const int32_t* targets, int rows, ExitTotals* totals);

 private:
  struct LayerActivations {
    std::vector<float> attention_rstd, mlp_rstd;  // (T)
    std::vector<float> attention_in;   // (T, hidden) rmsnorm output feeding q/k/v
    std::vector<float> q, k, v;        // (T, q_dim), (T, kv_dim) ×2, after rope
    std::vector<float> probabilities;  // (heads, T, T)
    std::vector<float> attention_out;  // (T, q_dim)
    std::vector<float> mid;            // (T, hidden) residual after attention
    std::vector<float> mlp_in;         // (T, hidden) rmsnorm output feeding gate/up
    std::vector<float> gate, up, act;  // (T, ffn); act = silu(gate) · up
  };

  // hidden_[0] rows [0, rows) = the embeddings of tokens.
  void embed(const ParameterView& params, const int32_t* tokens, int rows);
  void layer_forward(int layer, const LayerParameters& p, const float* rope_cos, const float* rope_sin,
                     const float* in, float* out, int rows);
  void layer_backward(int layer, const LayerParameters& p, const LayerParameters& pt, const LayerParameters& g,
                      const float* rope_cos, const float* rope_sin, const float* in, float* dresidual, int rows);
  // Exit through final norm + head from hidden (T, hidden); with `dhidden`, writes the exit's gradient there.
  double exit_head(const ParameterView& params, const ParameterView* transposed, const ParameterView* gradients,
                   const float* hidden, const int32_t* targets, int rows, float gradient_scale, float* dhidden,
                   int* correct, int32_t* argmax_out);
  // c (m, n) (+)= a (m, k) · b (n, k)ᵀ where a and b are given column-major: aᵀ (k, m), bᵀ (k, n), transposing both.
  void gemm_tn(float* c, const float* a, const float* b, int m, int n, int k, int lda, int ldb);

  ModelConfig config_;
  int max_rows_;
  std::vector<std::vector<float>> hidden_;  // (layers + 1) × (T, hidden): input of layer l; [layers] = output
  std::vector<LayerActivations> layers_;
  std::vector<std::vector<float>> exit_gradient_;  // (layers) × (T, hidden), for exits with weight > 0
  std::vector<float> logits_;       // (T, vocab)
  std::vector<float> exit_normed_, exit_rstd_;  // (T, hidden), (T)
  std::vector<float> dresidual_;    // (T, hidden)
  std::vector<float> dmid_, dnormed_;  // (T, hidden)
  std::vector<float> dq_, dk_, dv_, dattention_;  // (T, q_dim), (T, kv_dim) ×2, (T, q_dim)
  std::vector<float> dgate_, dup_, dact_;  // (T, ffn)
  std::vector<float> transpose_a_, transpose_b_;  // (max(vocab, ffn, q_dim, hidden) · T)
  std::vector<float> attention_scratch_;  // 2·T·T + 2·T·head_dim
  std::vector<int32_t> final_argmax_, exit_argmax_;  // (T)
};

}  // namespace layerskip::train
