// One transformer layer over a batch of rows that may belong to several sequences: the matmuls run once over all
// rows (each weight is read once per layer, whatever the batch holds), RoPE and attention run per sequence span
// against that sequence's own KV cache. Context::run_layers (one sequence) and BatchRunner (several) both call it,
// so a row's arithmetic is the same alone or batched.
#pragma once
#include "backend.h"
#include "config.h"
#include "model.h"

namespace layerskip {

// Working rows of a forward (max_rows rows each).
struct ForwardBuffers {
  float* hidden = nullptr;         // (rows, dim) residual stream
  float* normed = nullptr;         // (rows, dim) rmsnorm output
  float* query = nullptr;          // (rows, q_dim)
  float* attention_out = nullptr;  // (rows, q_dim)
  float* projection = nullptr;     // (rows, dim) o_proj / down_proj output
  float* gate = nullptr;           // (rows, ffn)
  float* up = nullptr;             // (rows, ffn)
  float* keys = nullptr;           // (rows, kv_dim) new keys before they reach their caches (multi-span only)
  float* values = nullptr;         // (rows, kv_dim)
};

// Rows [row, row + n) of the batch are one sequence's tokens at positions [start_pos, start_pos + n): their keys
// and values append to that sequence's cache of this layer (capacity × kv_dim).
struct SequenceSpan {
  int row = 0;
  int n = 0;
  int start_pos = 0;
  float* key_cache = nullptr;
  float* value_cache = nullptr;
  const float* rope_cos = nullptr;  // (capacity, head_dim / 2)
  const float* rope_sin = nullptr;
};

// Runs `layer` over rows [0, rows); on entry buffers.normed holds attn_norm(hidden). On return hidden holds the
// layer's output and, when next_attn_norm is given, normed holds next_attn_norm-normalized hidden (fused with the
// residual add, bit-identical to add then rmsnorm). Spans must cover rows [0, rows) in order.
void run_layer(Backend& backend, const ModelConfig& config, const LayerWeights& layer, const float* next_attn_norm,
               const ForwardBuffers& buffers, int rows, const SequenceSpan* spans, int span_count);

}  // namespace layerskip
