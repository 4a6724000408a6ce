// Matrix multiply against a stored weight: out (n, rows) = in (n, cols) · Wᵀ, W in bf16 / f16 / f32, f32 accumulate.
#pragma once
#include "../core/backend.h"
#include "thread_pool.h"

namespace layerskip {

// out rows are `out_stride` floats apart. Each output element is reduced in the same fixed order whatever n is and
// however many threads run (threads split output rows, never k), so decoding one token and verifying it inside a
// batch give bit-identical results. Runs the default variant (cpu_features.h: default_cpu_kernels()).
void matmul_cpu(float* out, const float* in, const Weight& weight, int n, int out_stride, ThreadPool& pool);

// The portable kernel (always compiled).
void matmul_scalar(float* out, const float* in, const Weight& weight, int n, int out_stride, ThreadPool& pool);

#if defined(LAYERSKIP_HAVE_AVX2)
// The AVX2/FMA/F16C kernels; call only when cpu_has_avx2().
void matmul_avx2(float* out, const float* in, const Weight& weight, int n, int out_stride, ThreadPool& pool);
#endif

#if defined(LAYERSKIP_HAVE_AVX512)
// AVX-512 F/BW/VL/DQ: weights widened to f32, 16-wide FMA (matmul_avx512.cc).
void matmul_avx512(float* out, const float* in, const Weight& weight, int n, int out_stride, ThreadPool& pool);
// AVX512-BF16: bf16 weights against activations rounded to bf16 (vdpbf16ps); other dtypes as matmul_avx512.
void matmul_avx512bf16(float* out, const float* in, const Weight& weight, int n, int out_stride, ThreadPool& pool);
// AMX-BF16 tiles for bf16 weights (activations rounded to bf16); other dtypes as matmul_avx512bf16. Needs the
// OS's permission for the tile registers (cpu_features().amx_permitted).
void matmul_amx(float* out, const float* in, const Weight& weight, int n, int out_stride, ThreadPool& pool);
#endif

// matmul_amx's tiling on a software model of the tile unit (bf16 weights; other dtypes as matmul_scalar): slow,
// for tests on processors without AMX.
void matmul_amx_emulated(float* out, const float* in, const Weight& weight, int n, int out_stride, ThreadPool& pool);

}  // namespace layerskip
