// Causal grouped-query attention over the f32 KV cache; see attention.cu for the design.
#pragma once
#include "common.cuh"

namespace layerskip {

// Floats of scratch attention_cuda wants for this call (it also works with less, in more passes, down to the
// needs of a single query).
size_t attention_workspace_floats(int n, int start_pos, int num_heads, int head_dim);

// Query row i (position start_pos + i) attends to cache rows [0, start_pos + i]; query head h reads KV head
// h / (num_heads / num_kv_heads). out, q: (n, num_heads * head_dim); caches: (capacity, num_kv_heads * head_dim).
Status attention_cuda(float* out, const float* q, const float* k_cache, const float* v_cache, int n, int start_pos,
                      int num_heads, int num_kv_heads, int head_dim, float* workspace, size_t workspace_floats,
                      cudaStream_t stream);

}  // namespace layerskip
