// Causal grouped-query attention over the KV cache.
#pragma once
#include "thread_pool.h"

namespace layerskip {

// Query row i (position start_pos + i) attends to cache rows [0, start_pos + i]. Query head h reads KV head
// h / (num_heads / num_kv_heads). out, q: (n, num_heads * head_dim); caches: (capacity, num_kv_heads * head_dim).
void attention_cpu(float* out, const float* q, const float* k_cache, const float* v_cache, int n, int start_pos,
                   int num_heads, int num_kv_heads, int head_dim, ThreadPool& pool);

}  // namespace layerskip
