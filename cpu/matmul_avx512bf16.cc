// AVX512-BF16 matmul for bf16 weights: the activations are rounded to bf16 once per call (round to nearest even,
// as llama.cpp does for its bf16 dot products), then vdpbf16ps multiplies 32 weight/activation pairs per
// instruction into 16 f32 accumulators — half the instructions of widening the weights, no conversion of them at
// all. The price is activation precision (8 significant bits); the f32 variant (matmul_avx512.cc) keeps it and
// runs f16 / f32 weights here too. Kernels: matmul_avx512_kernels.h.
#if defined(LAYERSKIP_HAVE_AVX512)
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "matmul.h"

// Everything below may use AVX-512 BF16; everything included above stays baseline x86-64.
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx2,fma,f16c")
// GCC 12's AVX-512 intrinsics headers trip its own uninitialized-value warnings (_mm512_undefined_*).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "matmul_avx512_kernels.h"

namespace layerskip {

namespace {

// Activation rows are padded to a multiple of 32 columns with zeros, so input tails need no mask.
constexpr int kPairStep = 32;

struct Bf16DotArithmetic {
  using Element = uint16_t;  // bf16 bits
  using Vec = __m512i;       // 32 bf16
  static constexpr int kStep = kPairStep;
  static constexpr bool kPairedVec = false;
  static constexpr bool kOwnStreamTile = false;
  static constexpr int kBlockSteps = 64;  // 2048 columns per packed k block: the panel is 192 KiB
  static size_t byte_offset(size_t index) { return index * 2; }
  static Vec weights(const Weight& w, size_t index) {
    return _mm512_loadu_si512(static_cast<const uint16_t*>(w.data) + index);
  }
  static Vec weights_partial(const Weight& w, size_t index, int count) {
    return _mm512_maskz_loadu_epi16(avx512::first_lanes32(count), static_cast<const uint16_t*>(w.data) + index);
  }
  static Vec input(const uint16_t* x, int k) { return _mm512_loadu_si512(x + k); }
  static Vec input_partial(const uint16_t* x, int k, int) { return _mm512_loadu_si512(x + k); }
  static __m512 madd(__m512 acc, Vec x, Vec w) { return _mm512_dpbf16_ps(acc, (__m512bh)x, (__m512bh)w); }
};

// in (n, cols) f32 → out (n, padded) bf16, zero past cols.
void round_inputs_to_bf16(uint16_t* out, const float* in, int n, int cols, int padded) {
  for (int t = 0; t < n; t++) {
    const float* x = in + size_t(t) * cols;
    uint16_t* y = out + size_t(t) * padded;
    for (int k = 0; k < padded; k += 32) {
      const __mmask16 lo = avx512::first_lanes16(std::clamp(cols - k, 0, 16));
      const __mmask16 hi = avx512::first_lanes16(std::clamp(cols - k - 16, 0, 16));
      __m512bh pairs = _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(hi, x + k + 16), _mm512_maskz_loadu_ps(lo, x + k));
      _mm512_storeu_si512(y + k, (__m512i)pairs);
    }
  }
}

}  // namespace

void matmul_avx512bf16(float* out, const float* in, const Weight& weight, int n, int out_stride, ThreadPool& pool) {
  if (weight.dtype != DType::BF16) return matmul_avx512(out, in, weight, n, out_stride, pool);
  const int padded = (weight.cols + kPairStep - 1) / kPairStep * kPairStep;
  static thread_local std::vector<uint16_t> rounded;  // (n, padded) the caller's activations in bf16
  rounded.resize(size_t(n) * padded);
  round_inputs_to_bf16(rounded.data(), in, n, weight.cols, padded);
  avx512::matmul_with<Bf16DotArithmetic>(out, rounded.data(), size_t(padded), weight, n, out_stride, pool);
}

}  // namespace layerskip
#endif  // LAYERSKIP_HAVE_AVX512
