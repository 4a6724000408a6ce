// Rotary position embedding, HF rotate-half layout: within each head, element i pairs with i + head_dim / 2.
#pragma once

namespace layerskip {

// Rotates num_heads heads of each of n rows (row i at position start_pos + i) in place.
// cos_table / sin_table: (positions, head_dim / 2). Every pair is rotated by the same arithmetic
// (a·c − b·s, b·c + a·s, each one rounding of an FMA over a rounded product) whatever n.
// Runs the default variant (cpu_features.h).
void rope_cpu(float* vectors, int n, int row_stride, int num_heads, int head_dim, int start_pos,
              const float* cos_table, const float* sin_table);

void rope_scalar(float* vectors, int n, int row_stride, int num_heads, int head_dim, int start_pos,
                 const float* cos_table, const float* sin_table);

#if defined(LAYERSKIP_HAVE_AVX2)
void rope_avx2(float* vectors, int n, int row_stride, int num_heads, int head_dim, int start_pos,
               const float* cos_table, const float* sin_table);
#endif

}  // namespace layerskip
