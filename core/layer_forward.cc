// One layer over a multi-sequence batch; see layer_forward.h.
#include "layer_forward.h"

namespace layerskip {

void run_layer(Backend& backend, const ModelConfig& c, const LayerWeights& w, const float* next_attn_norm,
               const ForwardBuffers& b, int rows, const SequenceSpan* spans, int span_count) {
  const int dim = c.hidden_size, q_dim = c.q_dim(), kv_dim = c.kv_dim();
  const float eps = float(c.rms_norm_eps);

  // Attention block (normed holds attn_norm(hidden)). One sequence projects straight into its cache; several
  // project into scratch rows, rotate there and copy each span into its own cache.
  backend.matmul(b.query, b.normed, w.q_proj, rows, q_dim);
  const bool direct = span_count == 1;
  float* keys = direct ? spans[0].key_cache + size_t(spans[0].start_pos) * kv_dim : b.keys;
  float* values = direct ? spans[0].value_cache + size_t(spans[0].start_pos) * kv_dim : b.values;
  backend.matmul(keys, b.normed, w.k_proj, rows, kv_dim);
  backend.matmul(values, b.normed, w.v_proj, rows, kv_dim);
  for (int s = 0; s < span_count; s++) {
    const SequenceSpan& span = spans[s];
    float* span_query = b.query + size_t(span.row) * q_dim;
    float* span_keys = keys + size_t(span.row) * kv_dim;
    backend.rope(span_query, span.n, q_dim, c.num_heads, c.head_dim, span.start_pos, span.rope_cos, span.rope_sin);
    backend.rope(span_keys, span.n, kv_dim, c.num_kv_heads, c.head_dim, span.start_pos, span.rope_cos, span.rope_sin);
    if (!direct) {
      size_t cache_offset = size_t(span.start_pos) * kv_dim;
      backend.copy(span.key_cache + cache_offset, span_keys, size_t(span.n) * kv_dim);
      backend.copy(span.value_cache + cache_offset, values + size_t(span.row) * kv_dim, size_t(span.n) * kv_dim);
    }
    backend.attention(b.attention_out + size_t(span.row) * q_dim, span_query, span.key_cache, span.value_cache,
                      span.n, span.start_pos, c.num_heads, c.num_kv_heads, c.head_dim);
  }
  backend.matmul(b.projection, b.attention_out, w.o_proj, rows, dim);
  backend.add_rmsnorm(b.hidden, b.normed, b.projection, w.ffn_norm, rows, dim, eps);

  // MLP block (normed holds ffn_norm(hidden)): SwiGLU, residual + the next layer's attn_norm.
  backend.matmul(b.gate, b.normed, w.gate_proj, rows, c.intermediate_size);
  backend.matmul(b.up, b.normed, w.up_proj, rows, c.intermediate_size);
  backend.swiglu(b.gate, b.gate, b.up, size_t(rows) * c.intermediate_size);
  backend.matmul(b.projection, b.gate, w.down_proj, rows, dim);
  if (next_attn_norm != nullptr) {
    backend.add_rmsnorm(b.hidden, b.normed, b.projection, next_attn_norm, rows, dim, eps);
  } else {
    backend.add(b.hidden, b.projection, size_t(rows) * dim);
  }
}

}  // namespace layerskip
