// AVX-512 f32 matmul: bf16 / f16 / f32 weights widened exactly to f32 in registers, 16-wide FMA against f32
// activations; the kernels are matmul_avx512_kernels.h. Results are exact f32 dot products in the canonical
// 16-lane order of simd_avx512.h.
#if defined(LAYERSKIP_HAVE_AVX512)
#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "../core/quant.h"
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
  static constexpr bool kPairedVec = false;
  static constexpr bool kOwnStreamTile = false;
  static constexpr int kBlockSteps = 64;  // 1024 columns per packed k block: the panel is 192 KiB
  static size_t byte_offset(size_t index) { return index * (dtype == DType::F32 ? 4 : 2); }
  static Vec weights(const Weight& w, size_t index) { return avx512::load16<dtype>(w.data, index); }
  static Vec weights_partial(const Weight& w, size_t index, int count) {
    return avx512::load16_partial<dtype>(w.data, index, count);
  }
  static Vec input(const float* x, int k) { return _mm512_loadu_ps(x + k); }
  static Vec input_partial(const float* x, int k, int count) {
    return _mm512_maskz_loadu_ps(avx512::first_lanes16(count), x + k);
  }
  static __m512 madd(__m512 acc, Vec x, Vec w) { return _mm512_fmadd_ps(x, w, acc); }
};

// Two 16-lane halves of one 32-column quantization block.
struct Block32 {
  __m512 lo, hi;
};

// Quantized weights (core/quant.h): a block is widened to its exact f32 values in registers — q8: d·q; q4:
// fma(q, d, m) — then FMA'd against f32 activations. Each half is one canonical 16-wide step, so results equal the
// f32 kernel's on the dequantized matrix. One block (32 columns) per step.
//   Packed kernel (prefill): weights() widens one block with its own parameters.
//   Streaming kernel (decode, verification): its own tile, stream_tile(), keeps the widening cheap enough that
//   decoding stays memory-bound. Per group of 16 blocks each row's 16 scales (and offsets) are widened by one
//   vcvtph2ps into a small table, and each block broadcasts its parameters from there (a load, no shuffle); q4
//   levels index a 16-entry table fma(level, d, m), level = 0…15, with vpermps (which reads the low 4 bits of
//   each index: the low nibble as is, the high one after a shift). Same values, same FMA order as weights().
template <DType format>
struct QuantArithmetic {
  using Element = float;
  using Vec = Block32;
  static constexpr int kStep = kQuantBlock;
  static constexpr bool kPairedVec = true;
  static constexpr bool kOwnStreamTile = true;
  static constexpr int kBlockSteps = 32;  // 1024 columns per packed k block
  static constexpr int kBlockBytes = quant_block_bytes(format);
  static size_t byte_offset(size_t index) { return format == DType::Q4 ? index / 2 : index; }
  static constexpr int kRowPrefetchBytes = 1024;  // distance of the software prefetch along each row
  template <int R>
  static constexpr int kNextTileLines = (R * kBlockBytes + 63) / 64;  // next-tile lines to fetch per block step

  static Vec widen(const Weight& w, size_t block, float d, float m) {
    if constexpr (format == DType::Q8) {
      const int8_t* q = static_cast<const int8_t*>(w.data) + block * kQuantBlock;
      const __m512 scale = _mm512_set1_ps(d);
      const __m512 lo = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q))));
      const __m512 hi =
          _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q + 16))));
      return {_mm512_mul_ps(lo, scale), _mm512_mul_ps(hi, scale)};
    } else {
      const __m512 levels = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
      const __m512 table = _mm512_fmadd_ps(levels, _mm512_set1_ps(d), _mm512_set1_ps(m));
      const uint8_t* bytes = static_cast<const uint8_t*>(w.data) + block * 16;
      const __m512i wide = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(bytes)));
      return {_mm512_permutexvar_ps(wide, table), _mm512_permutexvar_ps(_mm512_srli_epi32(wide, 4), table)};
    }
  }

  static Vec weights(const Weight& w, size_t index) {
    const size_t block = index / kQuantBlock;
    return widen(w, block, _cvtsh_ss(w.scales[block]), format == DType::Q4 ? _cvtsh_ss(w.mins[block]) : 0.0f);
  }
  // Quantized columns are whole blocks, so a partial step never occurs; kept total for the template.
  static Vec weights_partial(const Weight& w, size_t index, int count) {
    Vec v = weights(w, index);
    return {_mm512_maskz_mov_ps(avx512::first_lanes16(std::min(count, 16)), v.lo),
            _mm512_maskz_mov_ps(avx512::first_lanes16(std::max(count - 16, 0)), v.hi)};
  }
  static Vec input(const float* x, int k) { return {_mm512_loadu_ps(x + k), _mm512_loadu_ps(x + k + 16)}; }
  static Vec input_partial(const float* x, int k, int count) {
    return {_mm512_maskz_loadu_ps(avx512::first_lanes16(std::min(count, 16)), x + k),
            _mm512_maskz_loadu_ps(avx512::first_lanes16(std::max(count - 16, 0)), x + k + 16)};
  }
  static __m512 madd(__m512 acc, Vec x, Vec w) { return _mm512_fmadd_ps(x.hi, w.hi, _mm512_fmadd_ps(x.lo, w.lo, acc)); }

  // out[t0 + t][row0 + r · row_step] for T tokens × R rows (matmul_avx512_kernels.h's stream_tile contract).
  template <int T, int R>
  static void stream_tile(float* out, int out_stride, const float* in, size_t in_stride, const Weight& w, int cols,
                          int row0, int row_step, int t0) {
    __m512 acc[T][R];
    for (int t = 0; t < T; t++)
      for (int r = 0; r < R; r++) acc[t][r] = _mm512_setzero_ps();
    const float* x = in + size_t(t0) * in_stride;
    const size_t blocks = size_t(cols / kQuantBlock);
    size_t first_block[R];  // of each row in flight
    for (int r = 0; r < R; r++) first_block[r] = size_t(row0 + r * row_step) * blocks;
    alignas(64) float scales[R][16], mins[R][16];
    const char* qs = static_cast<const char*>(w.data);
    // The scale (and offset) planes are further streams per row, too many for the hardware prefetchers next to
    // the values: fetch each row's parameters (a few lines) up front.
    for (int r = 0; r < R; r++) {
      const char* first = reinterpret_cast<const char*>(w.scales + first_block[r]);
      const char* first_min = reinterpret_cast<const char*>(w.mins + first_block[r]);
      for (size_t byte = 0; byte < blocks * 2; byte += 64) {
        _mm_prefetch(first + byte, _MM_HINT_T0);
        if constexpr (format == DType::Q4) _mm_prefetch(first_min + byte, _MM_HINT_T0);
      }
    }
    // Adjacent rows (row_step 1, short rows) are too short for the hardware prefetchers to ramp up: the next tile's
    // rows, contiguous after this tile's, are fetched line by line at the pace this tile consumes its own (R blocks of
    // bytes per step). Far-apart rows are each followed by the next row of their part, so the row prefetch below
    // simply runs on across the row's end.
    const size_t row_bytes = blocks * kBlockBytes;
    const char* next_tile = row_step == 1 ? qs + size_t(row0 + R) * row_bytes : nullptr;
    const char* next_tile_end = row_step == 1 ? qs + size_t(std::min(row0 + 2 * R, w.rows)) * row_bytes : nullptr;
    for (size_t g = 0; g < blocks; g += 16) {
      const int group = int(std::min<size_t>(16, blocks - g));
      const __mmask16 mask = avx512::first_lanes16(group);
      for (int r = 0; r < R; r++) {
        _mm512_store_ps(scales[r], _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, w.scales + first_block[r] + g)));
        if constexpr (format == DType::Q4) {
          _mm512_store_ps(mins[r], _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, w.mins + first_block[r] + g)));
        }
      }
      for (int b = 0; b < group; b++) {
        const size_t block = g + b;
        if ((block * kBlockBytes) % 64 == 0) {
          for (int r = 0; r < R; r++) {
            _mm_prefetch(qs + (first_block[r] + block) * kBlockBytes + kRowPrefetchBytes, _MM_HINT_T0);
          }
        }
        for (int line = 0; line < kNextTileLines<R> && next_tile < next_tile_end; line++, next_tile += 64) {
          _mm_prefetch(next_tile, _MM_HINT_T1);
        }
        Vec wv[R];
        for (int r = 0; r < R; r++) {
          wv[r] = widen(w, first_block[r] + block, scales[r][b], format == DType::Q4 ? mins[r][b] : 0.0f);
        }
        const int k = int(block) * kQuantBlock;
        for (int t = 0; t < T; t++) {
          const Vec xv = input(x + size_t(t) * in_stride, k);
          for (int r = 0; r < R; r++) acc[t][r] = madd(acc[t][r], xv, wv[r]);
        }
      }
    }
    for (int t = 0; t < T; t++)
      for (int r = 0; r < R; r++) out[size_t(t0 + t) * out_stride + row0 + r * row_step] = avx512::hsum16(acc[t][r]);
  }
};

template <DType dtype>
void matmul_typed(float* out, const float* in, const Weight& weight, int n, int out_stride, ThreadPool& pool) {
  if constexpr (is_quantized(dtype)) {
    avx512::matmul_with<QuantArithmetic<dtype>>(out, in, size_t(weight.cols), weight, n, out_stride, pool);
  } else {
    avx512::matmul_with<F32Arithmetic<dtype>>(out, in, size_t(weight.cols), weight, n, out_stride, pool);
  }
}

}  // namespace

void matmul_avx512(float* out, const float* in, const Weight& weight, int n, int out_stride, ThreadPool& pool) {
  with_matrix_dtype(weight.dtype, [&](auto dtype) {
    matmul_typed<decltype(dtype)::value>(out, in, weight, n, out_stride, pool);
  });
}

}  // namespace layerskip
#endif  // LAYERSKIP_HAVE_AVX512
