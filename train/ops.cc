#include "ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "gemm.h"

namespace layerskip::train {

void rmsnorm_forward(float* y, float* rstd, const float* x, const float* weight, int rows, int dim, float eps) {
  for (int r = 0; r < rows; ++r) {
    const float* xr = x + size_t(r) * dim;
    double sum = 0.0;
    for (int i = 0; i < dim; ++i) sum += double(xr[i]) * xr[i];
    const float s = float(1.0 / std::sqrt(sum / dim + eps));
    rstd[r] = s;
    float* yr = y + size_t(r) * dim;
    for (int i = 0; i < dim; ++i) yr[i] = xr[i] * s * weight[i];
  }
}

void rmsnorm_backward(float* dx, float* dweight, const float* dy, const float* x, const float* rstd,
                      const float* weight, int rows, int dim) {
  for (int r = 0; r < rows; ++r) {
    const float* xr = x + size_t(r) * dim;
    const float* dyr = dy + size_t(r) * dim;
    float* dxr = dx + size_t(r) * dim;
    const float s = rstd[r];
    double dot = 0.0;  // Σ dy·w·x
    for (int i = 0; i < dim; ++i) {
      dot += double(dyr[i]) * weight[i] * xr[i];
      dweight[i] += dyr[i] * xr[i] * s;
    }
    const float correction = float(dot) * s * s * s / float(dim);
    for (int i = 0; i < dim; ++i) dxr[i] += dyr[i] * weight[i] * s - xr[i] * correction;
  }
}

void rope_apply(float* x, const float* cos, const float* sin, int rows, int heads, int head_dim, bool inverse) {
  const int half = head_dim / 2;
  const float direction = inverse ? -1.0f : 1.0f;
  for (int r = 0; r < rows; ++r) {
    const float* c = cos + size_t(r) * half;
    const float* s = sin + size_t(r) * half;
    for (int h = 0; h < heads; ++h) {
      float* v = x + (size_t(r) * heads + h) * head_dim;
      for (int i = 0; i < half; ++i) {
        const float a = v[i], b = v[i + half], si = direction * s[i];
        v[i] = a * c[i] - b * si;
        v[i + half] = b * c[i] + a * si;
      }
    }
  }
}

namespace {

// Softmax of each row of scores (rows, rows) over its causal prefix [0, row], zero above the diagonal.
void causal_softmax(float* scores, int rows) {
  for (int t = 0; t < rows; ++t) {
    float* row = scores + size_t(t) * rows;
    float max = row[0];
    for (int s = 1; s <= t; ++s) max = std::max(max, row[s]);
    float sum = 0.0f;
    for (int s = 0; s <= t; ++s) sum += (row[s] = std::exp(row[s] - max));
    const float inv = 1.0f / sum;
    for (int s = 0; s <= t; ++s) row[s] *= inv;
    for (int s = t + 1; s < rows; ++s) row[s] = 0.0f;
  }
}

}  // namespace

void attention_forward(float* out, float* probabilities, const float* q, const float* k, const float* v, int rows,
                       int heads, int kv_heads, int head_dim, float* scratch) {
  const int q_stride = heads * head_dim, kv_stride = kv_heads * head_dim, group = heads / kv_heads;
  const float scale = 1.0f / std::sqrt(float(head_dim));
  float* v_transposed = scratch;  // (hd, T)
  for (int h = 0; h < heads; ++h) {
    const int g = h / group;
    float* p = probabilities + size_t(h) * rows * rows;
    gemm_nt(p, q + h * head_dim, k + g * head_dim, rows, rows, head_dim, q_stride, kv_stride, rows, false);
    for (size_t i = 0; i < size_t(rows) * rows; ++i) p[i] *= scale;
    causal_softmax(p, rows);
    transpose(v_transposed, v + g * head_dim, rows, head_dim, kv_stride);
    gemm_nt(out + h * head_dim, p, v_transposed, rows, head_dim, rows, rows, rows, q_stride, false);
  }
}

void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* probabilities,
                        const float* q, const float* k, const float* v, int rows, int heads, int kv_heads,
                        int head_dim, float* scratch) {
  const int q_stride = heads * head_dim, kv_stride = kv_heads * head_dim, group = heads / kv_heads;
  const float scale = 1.0f / std::sqrt(float(head_dim));
  float* dscores = scratch;                            // (T, T)
  float* transposed = dscores + size_t(rows) * rows;   // (T, T)
  float* column_a = transposed + size_t(rows) * rows;  // (hd, T)
  float* column_b = column_a + size_t(rows) * head_dim;  // (hd, T)
  for (int h = 0; h < heads; ++h) {
    const int g = h / group;
    const float* p = probabilities + size_t(h) * rows * rows;
    const float* dout_h = dout + h * head_dim;
    // dv_g += pᵀ · dout_h
    transpose(transposed, p, rows, rows, rows);
    transpose(column_a, dout_h, rows, head_dim, q_stride);
    gemm_nt(dv + g * head_dim, transposed, column_a, rows, head_dim, rows, rows, rows, kv_stride, true);
    // dp = dout_h · v_gᵀ, then dscores = p ⊙ (dp − Σ_s p·dp) · scale
    gemm_nt(dscores, dout_h, v + g * head_dim, rows, rows, head_dim, q_stride, kv_stride, rows, false);
    for (int t = 0; t < rows; ++t) {
      float* ds = dscores + size_t(t) * rows;
      const float* pr = p + size_t(t) * rows;
      float dot = 0.0f;
      for (int s = 0; s <= t; ++s) dot += pr[s] * ds[s];
      for (int s = 0; s <= t; ++s) ds[s] = pr[s] * (ds[s] - dot) * scale;
      for (int s = t + 1; s < rows; ++s) ds[s] = 0.0f;
    }
    // dq_h = dscores · k_g
    transpose(column_a, k + g * head_dim, rows, head_dim, kv_stride);
    gemm_nt(dq + h * head_dim, dscores, column_a, rows, head_dim, rows, rows, rows, q_stride, false);
    // dk_g += dscoresᵀ · q_h
    transpose(transposed, dscores, rows, rows, rows);
    transpose(column_b, q + h * head_dim, rows, head_dim, q_stride);
    gemm_nt(dk + g * head_dim, transposed, column_b, rows, head_dim, rows, rows, rows, kv_stride, true);
  }
}

void swiglu_forward(float* out, const float* gate, const float* up, int n) {
  for (int i = 0; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int n) {
  for (int i = 0; i < n; ++i) {
    const float sigmoid = 1.0f / (1.0f + std::exp(-gate[i]));
    const float silu = gate[i] * sigmoid;
    dup[i] = dout[i] * silu;
    dgate[i] = dout[i] * up[i] * sigmoid * (1.0f + gate[i] * (1.0f - sigmoid));
  }
}

double cross_entropy(float* logits, const int32_t* targets, int rows, int vocab, float gradient_scale, int* correct,
                     int32_t* argmax_out) {
  double loss = 0.0;
  int hits = 0;
  for (int r = 0; r < rows; ++r) {
    float* row = logits + size_t(r) * vocab;
    int best = 0;
    for (int i = 1; i < vocab; ++i)
      if (row[i] > row[best]) best = i;
    const float max = row[best];
    double sum = 0.0;
    for (int i = 0; i < vocab; ++i) sum += std::exp(double(row[i] - max));
    const double log_sum = std::log(sum) + max;
    loss += log_sum - row[targets[r]];
    hits += best == targets[r];
    if (argmax_out) argmax_out[r] = best;
    if (gradient_scale != 0.0f) {
      for (int i = 0; i < vocab; ++i) row[i] = float(std::exp(double(row[i]) - log_sum)) * gradient_scale;
      row[targets[r]] -= gradient_scale;
    }
  }
  if (correct) *correct += hits;
  return loss;
}

}  // namespace layerskip::train
