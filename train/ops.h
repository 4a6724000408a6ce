// Forward and backward of the per-token ops for one sequence of T positions, f32, single-threaded. Backward
// functions accumulate (+=) into parameter gradients and overwrite (=) input gradients unless they say otherwise.
// Shapes are (rows, cols) row-major; T is the sequence length.
#pragma once
#include <cstdint>

namespace layerskip::train {

// y (T, dim) = x · rstd · weight, with rstd (T) = 1 / sqrt(mean(x²) + eps) saved for backward.
void rmsnorm_forward(float* y, float* rstd, const float* x, const float* weight, int rows, int dim, float eps);
// dx (T, dim) += ∂/∂x; dweight (dim) += ∂/∂weight.
void rmsnorm_backward(float* dx, float* dweight, const float* dy, const float* x, const float* rstd,
                      const float* weight, int rows, int dim);

// Rotates each head of x (T, heads · head_dim) in place (HF rotate_half convention) by the angles in cos/sin
// (positions, head_dim / 2); `inverse` rotates backward, which is the gradient of the forward rotation.
void rope_apply(float* x, const float* cos, const float* sin, int rows, int heads, int head_dim, bool inverse);

// Causal softmax attention over one sequence, grouped-query: query head h reads kv head h / (heads / kv_heads).
//   q (T, heads · hd), k and v (T, kv_heads · hd) → out (T, heads · hd); probabilities (heads, T, T) saved.
// `scratch` holds at least T · hd floats.
void attention_forward(float* out, float* probabilities, const float* q, const float* k, const float* v, int rows,
                       int heads, int kv_heads, int head_dim, float* scratch);
// dq = …, dk += …, dv += … (dk, dv must be zeroed by the caller). `scratch` holds ≥ 2·T·T + 2·T·hd floats.
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* probabilities,
                        const float* q, const float* k, const float* v, int rows, int heads, int kv_heads,
                        int head_dim, float* scratch);

// out = silu(gate) · up, elementwise over n.
void swiglu_forward(float* out, const float* gate, const float* up, int n);
// dgate, dup (n) = gradients of swiglu given dout.
void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int n);

// Cross-entropy of logits (T, vocab) against targets (T): returns the sum of −log p(target) over rows, counts
// argmax hits in *correct, writes the argmax of each row to argmax_out when non-null, and (when `gradient_scale`
// ≠ 0) turns logits in place into (softmax − onehot) · gradient_scale.
double cross_entropy(float* logits, const int32_t* targets, int rows, int vocab, float gradient_scale, int* correct,
                     int32_t* argmax_out);

}  // namespace layerskip::train
