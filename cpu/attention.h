// Causal grouped-query attention over the KV cache.
#pragma once
#include "thread_pool.h"

namespace layerskip {

// Query row i (position start_pos + i) attends to cache rows [0, start_pos + i]. Query head h reads KV head
// h / (num_heads / num_kv_heads). out, q: (n, num_heads * head_dim); caches: (capacity, num_kv_heads * head_dim).
// Every (query row, head) is computed by the same code whose arithmetic depends only on its absolute position, so
// results do not depend on n, on the row's place in the batch or on the thread count. Runs the default variant (cpu_features.h).
void attention_cpu(float* out, const float* q, const float* k_cache, const float* v_cache, int n, int start_pos,
                   int num_heads, int num_kv_heads, int head_dim, ThreadPool& pool);

// The portable kernel (always compiled).
void attention_scalar(float* out, const float* q, const float* k_cache, const float* v_cache, int n, int start_pos,
                      int num_heads, int num_kv_heads, int head_dim, ThreadPool& pool);

#if defined(LAYERSKIP_HAVE_AVX2)
// The AVX2/FMA kernel; call only when cpu_has_avx2().
void attention_avx2(float* out, const float* q, const float* k_cache, const float* v_cache, int n, int start_pos,
                    int num_heads, int num_kv_heads, int head_dim, ThreadPool& pool);
#endif

#if defined(LAYERSKIP_HAVE_AVX512)
// The AVX-512 kernel (16-wide scores and values); call only when the CPU has AVX-512 F/BW/VL/DQ.
void attention_avx512(float* out, const float* q, const float* k_cache, const float* v_cache, int n, int start_pos,
                      int num_heads, int num_kv_heads, int head_dim, ThreadPool& pool);
#endif

}  // namespace layerskip
