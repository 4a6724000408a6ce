// AVX-512 f32 matmul: bf16 / f16 / f32 weights widened exactly to f32 in registers, 16-wide FMA against f32
// activations; the kernels are matmul_avx512_kernels.h. Results are exact f32 dot products in the canonical
// 16-lane order of simd_avx512.h.
#if defined(LAYERSKIP_HAVE_AVX512)
#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "matmul.h"

// Everything below may use AVX-512; everything included above stays baseline x86-64.
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")
// GCC 12's AVX-512 intrinsics headers trip its own uninitialized-value warnings (_mm512_undefined_*).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "matmul_avx512_kernels.h"

namespace layerskip {

namespace {

// Weights widened to f32 (exact for every stored dtype), FMA against f32 activations; 16 columns per step.
template <DType dtype>
struct F32Arithmetic {
  using Element = float;  // activations as the kernels read them
  using Vec = __m512;     // one operand step
  static constexpr int kStep = 16;
  static constexpr int kWeightBytes = dtype == DType::F32 ? 4 : 2;
  static constexpr int kBlockSteps = 64;  // 1024 columns per packed k block: the panel is 192 KiB
  static Vec weights(const void* w, size_t index) { return avx512::load16<dtype>(w, index); }
  static Vec weights_partial(const void* w, size_t index, int count) {
    return avx512::load16_partial<dtype>(w, index, count);
  }
  static Vec input(const float* x, int k) { return _mm512_loadu_ps(x + k); }
  static Vec input_partial(const float* x, int k, int count) {
    return _mm512_maskz_loadu_ps(avx512::first_lanes16(count), x + k);
  }
  static __m512 madd(__m512 acc, Vec x, Vec w) { return _mm512_fmadd_ps(x, w, acc); }
};

template <DType dtype>
void matmul_typed(float* out, const float* in, const Weight& weight, int n, int out_stride, ThreadPool& pool) {
  avx512::matmul_with<F32Arithmetic<dtype>>(out, in, size_t(weight.cols), weight, n, out_stride, pool);
}

}  // namespace

void matmul_avx512(float* out, const float* in, const Weight& weight, int n, int out_stride, ThreadPool& pool) {
  switch (weight.dtype) {
    case DType::BF16: return matmul_typed<DType::BF16>(out, in, weight, n, out_stride, pool);
    case DType::F16: return matmul_typed<DType::F16>(out, in, weight, n, out_stride, pool);
    case DType::F32: return matmul_typed<DType::F32>(out, in, weight, n, out_stride, pool);
  }
}

}  // namespace layerskip
#endif  // LAYERSKIP_HAVE_AVX512
