// AVX2 matmul: out (n, rows) = in (n, cols) · Wᵀ. Two kernels, one arithmetic (simd_avx2.h's canonical dot):
//   - streaming (n ≤ 48: decode, speculative verification, short prompts): R weight rows at a time are converted
//     as they stream from memory into an R × T register tile of accumulators; further token tiles re-read those
//     rows from L1, so DRAM sees the weights once per call. The rows in flight lie far apart (stream_range).
//   - packed (n > 48: prefill): per thread, a panel of kPanelRows weight rows × kBlockK columns is converted to f32
//     once per block of tokens and reused by every token tile; a 4-token × 3-row register tile of 8-lane
//     accumulators sweeps it. Blocking over k only pauses a reduction: partial 8-lane accumulators are spilled and
//     resumed in the same step order, so every output element still sees exactly the canonical sequence of FMAs.
// Threads split output rows; k is never split, so results are identical for any thread count and any n.
#if defined(LAYERSKIP_HAVE_AVX2)
#include <algorithm>
#include <vector>

#include "../core/quant.h"
#include "matmul.h"
#include "simd_avx2.h"

namespace layerskip {

namespace {

using avx2::hsum;
using avx2::hsum8;
using avx2::lane_mask;

// 8 weights starting at `index` (a multiple of 8) widened exactly to f32: stored elements, or a quantized block's
// dequantized values (core/quant.h: q8 d·q, q4 fma(q, d, m)).
template <DType dtype>
inline __m256 load8(const Weight& w, size_t index) {
  if constexpr (dtype == DType::Q8) {
    const __m256 d = _mm256_set1_ps(_cvtsh_ss(w.scales[index / kQuantBlock]));
    const __m128i q = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(static_cast<const int8_t*>(w.data) + index));
    return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), d);
  } else if constexpr (dtype == DType::Q4) {
    const size_t block = index / kQuantBlock;
    const int within = int(index % kQuantBlock);
    const __m256 d = _mm256_set1_ps(_cvtsh_ss(w.scales[block]));
    const __m256 m = _mm256_set1_ps(_cvtsh_ss(w.mins[block]));
    const uint8_t* bytes = static_cast<const uint8_t*>(w.data) + block * 16 + (within & 15);
    const __m256i wide = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(bytes)));
    const __m256i levels = within < 16 ? _mm256_and_si256(wide, _mm256_set1_epi32(15)) : _mm256_srli_epi32(wide, 4);
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(levels), d, m);
  } else {
    return avx2::load8<dtype>(w.data, index);
  }
}

// The `count` (< 8) weights starting at `index` as f32, zero in the remaining lanes.
template <DType dtype>
inline __m256 load_partial(const Weight& w, size_t index, int count) {
  if constexpr (is_quantized(dtype)) {
    alignas(32) float padded[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int j = 0; j < count; j++) padded[j] = weight_element(w, 0, index + j);
    return _mm256_load_ps(padded);
  } else {
    return avx2::load_partial<dtype>(w.data, index, count);
  }
}

// Byte offset of weight `index` in its (packed) value plane.
template <DType dtype>
constexpr size_t byte_offset(size_t index) {
  return dtype == DType::Q4 ? index / 2 : dtype == DType::Q8 ? index : index * (dtype == DType::F32 ? 4 : 2);
}

// ---- streaming kernel (small n) ----------------------------------------------------------------------------------

// Software prefetch distance along each weight row: on top of the hardware streamers it keeps more lines in
// flight while eight rows stream side by side (measured +5-10% for bf16 decode).
constexpr int kPrefetchBytes = 512;

// Quantized rows for T tokens × R rows (core/quant.h), the same canonical sequence as stream_tile below: per
// group of 8 blocks each row's scales (and offsets) are widened once by vcvtph2ps into a small table; per block a
// row's 32 weights are widened 8 at a time (q8: d·q; q4: fma(q, d, m)) and FMA'd in column order. The next tile's
// rows are fetched at the pace this one is consumed (its quantized rows are too short for the hardware
// prefetchers to ramp up; see matmul_avx512.cc).
template <DType dtype, int T, int R>
void quant_stream_tile(float* out, int out_stride, const float* in, const Weight& w, int cols, int row0, int t0) {
  constexpr int kBlockBytes = quant_block_bytes(dtype);
  __m256 acc[T][R];
  for (int t = 0; t < T; t++)
    for (int r = 0; r < R; r++) acc[t][r] = _mm256_setzero_ps();
  const float* x = in + size_t(t0) * cols;
  const size_t blocks = size_t(cols / kQuantBlock);
  const char* qs = static_cast<const char*>(w.data);
  const size_t row_bytes = blocks * kBlockBytes;
  const char* next_tile = qs + size_t(row0 + R) * row_bytes;
  const char* next_tile_end = qs + size_t(std::min(row0 + 2 * R, w.rows)) * row_bytes;
  alignas(32) float scales[R][8], mins[R][8];
  for (size_t g = 0; g < blocks; g += 8) {
    const int group = int(std::min<size_t>(8, blocks - g));
    for (int r = 0; r < R; r++) {
      alignas(16) uint16_t bits[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      std::copy_n(w.scales + (row0 + r) * blocks + g, group, bits);
      _mm256_store_ps(scales[r], _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(bits))));
      if constexpr (dtype == DType::Q4) {
        std::copy_n(w.mins + (row0 + r) * blocks + g, group, bits);
        _mm256_store_ps(mins[r], _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(bits))));
      }
    }
    for (int b = 0; b < group; b++) {
      const size_t block = g + b;
      for (int line = 0; line < (R * kBlockBytes + 63) / 64 && next_tile < next_tile_end; line++, next_tile += 64) {
        _mm_prefetch(next_tile, _MM_HINT_T1);
      }
      const int k = int(block) * kQuantBlock;
      for (int r = 0; r < R; r++) {
        const char* q = qs + ((row0 + r) * blocks + block) * kBlockBytes;
        if ((block * kBlockBytes) % 64 == 0) _mm_prefetch(q + 1024, _MM_HINT_T0);
        const __m256 d = _mm256_set1_ps(scales[r][b]);
        __m256 part[4];  // columns 0-7, 8-15, 16-23, 24-31 of the block
        if constexpr (dtype == DType::Q8) {
          for (int s = 0; s < 4; s++) {
            const __m128i eight = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(q + 8 * s));
            part[s] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(eight)), d);
          }
        } else {
          const __m256 m = _mm256_set1_ps(mins[r][b]);
          const __m256i mask = _mm256_set1_epi32(15);
          for (int half = 0; half < 2; half++) {  // bytes 0-7 hold columns 0-7 and 16-23; bytes 8-15 8-15 and 24-31
            const __m256i bytes = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(q + 8 * half)));
            part[half] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_and_si256(bytes, mask)), d, m);
            part[half + 2] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(bytes, 4)), d, m);
          }
        }
        for (int s = 0; s < 4; s++) {
          for (int t = 0; t < T; t++) {
            acc[t][r] = _mm256_fmadd_ps(_mm256_loadu_ps(x + size_t(t) * cols + k + 8 * s), part[s], acc[t][r]);
          }
        }
      }
    }
  }
  if constexpr (T == 1 && R == 8) {
    _mm256_storeu_ps(out + size_t(t0) * out_stride + row0, hsum8(acc[0]));
  } else {
    for (int t = 0; t < T; t++)
      for (int r = 0; r < R; r++) out[size_t(t0 + t) * out_stride + row0 + r] = hsum(acc[t][r]);
  }
}

// out[t0 + t][row0 + r · row_step] for T tokens × R rows, weights converted on the fly.
template <DType dtype, int T, int R>
void stream_tile(float* out, int out_stride, const float* in, const Weight& weights, int cols, int row0, int row_step,
                 int t0) {
  if constexpr (is_quantized(dtype)) return quant_stream_tile<dtype, T, R>(out, out_stride, in, weights, cols, row0, t0);
  __m256 acc[T][R];
  for (int t = 0; t < T; t++)
    for (int r = 0; r < R; r++) acc[t][r] = _mm256_setzero_ps();
  const float* x = in + size_t(t0) * cols;
  const size_t w_base = size_t(row0) * cols, w_step = size_t(row_step) * cols;
  const int full = cols & ~7;
  const char* weight_bytes = static_cast<const char*>(weights.data);
  for (int k = 0; k < full; k += 8) {
    if (byte_offset<dtype>(k) % 64 == 0) {  // once per cache line of each row, kPrefetchBytes ahead
      for (int r = 0; r < R; r++) {
        _mm_prefetch(weight_bytes + byte_offset<dtype>(w_base + r * w_step + k) + kPrefetchBytes, _MM_HINT_T0);
      }
    }
    __m256 w[R];
    for (int r = 0; r < R; r++) w[r] = load8<dtype>(weights, w_base + r * w_step + k);
    for (int t = 0; t < T; t++) {
      __m256 xv = _mm256_loadu_ps(x + size_t(t) * cols + k);
      for (int r = 0; r < R; r++) acc[t][r] = _mm256_fmadd_ps(xv, w[r], acc[t][r]);
    }
  }
  if (full < cols) {
    const int tail = cols - full;
    const __m256i mask = lane_mask(tail);
    __m256 w[R];
    for (int r = 0; r < R; r++) w[r] = load_partial<dtype>(weights, w_base + r * w_step + full, tail);
    for (int t = 0; t < T; t++) {
      __m256 xv = _mm256_maskload_ps(x + size_t(t) * cols + full, mask);
      for (int r = 0; r < R; r++) acc[t][r] = _mm256_fmadd_ps(xv, w[r], acc[t][r]);
    }
  }
  for (int t = 0; t < T; t++)
    for (int r = 0; r < R; r++) out[size_t(t0 + t) * out_stride + row0 + r * row_step] = hsum(acc[t][r]);
}

// All n tokens for the R rows row0 + r · row_step, in balanced token tiles of at most kMaxTokens (5 = 3 + 2).
template <DType dtype, int R, int kMaxTokens>
void stream_rows(float* out, int out_stride, const float* in, const Weight& weights, int cols, int row0, int row_step,
                 int n) {
  const int tiles = (n + kMaxTokens - 1) / kMaxTokens;
  for (int tile = 0, t0 = 0; tile < tiles; tile++) {
    const int tokens = (n - t0) / (tiles - tile);
    switch (tokens) {
#define LS_STREAM_CASE(T) \
  case T: if constexpr (T <= kMaxTokens) stream_tile<dtype, T, R>(out, out_stride, in, weights, cols, row0, row_step, t0); break;
      LS_STREAM_CASE(1) LS_STREAM_CASE(2) LS_STREAM_CASE(3) LS_STREAM_CASE(4) LS_STREAM_CASE(5) LS_STREAM_CASE(6)
#undef LS_STREAM_CASE
    }
    t0 += tokens;
  }
}

// Rows [begin, end) R at a time: for weights read as stored, R far-apart rows (the range cut into R parts read side
// by side, each one sequential stream; see matmul_avx512_kernels.h's stream_range for why), quantized blocks R
// adjacent rows. Leftover rows go one at a time.
template <DType dtype, int R, int kMaxTokens>
void stream_range(float* out, int out_stride, const float* in, const Weight& weights, int cols, int n, int begin,
                  int end) {
  int row = begin;
  if constexpr (is_quantized(dtype)) {
    for (; row + R <= end; row += R) stream_rows<dtype, R, kMaxTokens>(out, out_stride, in, weights, cols, row, 1, n);
  } else {
    const int part = (end - begin) / R;
    for (int i = 0; i < part; i++)
      stream_rows<dtype, R, kMaxTokens>(out, out_stride, in, weights, cols, begin + i, part, n);
    row = begin + part * R;
  }
  for (; row < end; row++) stream_rows<dtype, 1, kMaxTokens>(out, out_stride, in, weights, cols, row, 1, n);
}

template <DType dtype>
void stream_matmul(float* out, const float* in, const Weight& weight, int n, int out_stride, ThreadPool& pool) {
  const int cols = weight.cols;
  pool.parallel_for(size_t(weight.rows), 24, [&](size_t begin, size_t end, int) {
    int b = int(begin), e = int(end);
    // n = 1: 4 far-apart rows, measured faster than 8 (bf16 matvecs, forced avx2 on the Zen 5 VM, 4 interleaved
    // rounds: 38–58 GB/s against 34–44 for 8 adjacent rows).
    if (n == 1) stream_range<dtype, 4, 1>(out, out_stride, in, weight, cols, n, b, e);
    else if (n == 2) stream_range<dtype, 4, 2>(out, out_stride, in, weight, cols, n, b, e);
    // 5 or 6 tokens (verifying 4 or 5 drafts) in one 2-row tile: each weight is converted once, not twice.
    else if (n == 5 || n == 6) stream_range<dtype, 2, 6>(out, out_stride, in, weight, cols, n, b, e);
    else stream_range<dtype, 3, 4>(out, out_stride, in, weight, cols, n, b, e);
  });
}

// ---- packed kernel (large n) -------------------------------------------------------------------------------------

constexpr int kTileTokens = 4;     // register tile: tokens ...
constexpr int kTileRows = 3;       // ... × weight rows
constexpr int kPanelRows = 48;     // weight rows converted per panel (a multiple of kTileRows)
constexpr int kBlockK = 1024;       // columns per k block (a multiple of 8): panel 192 KiB (L2), token tile 16 KiB (L1)
constexpr int kBlockTokens = 128;  // tokens per block: bounds the spilled accumulators to 192 KiB

// Panel rows [row0, row0 + rows) × columns [k0, k0 + steps·8) as f32, zero past `cols`, laid out per row tile g
// as (steps, tile rows, 8) at g · kTileRows · steps · 8.
template <DType dtype>
void pack_weights(float* packed, const Weight& weights, int cols, int row0, int rows, int k0, int steps) {
  for (int g0 = 0; g0 < rows; g0 += kTileRows) {
    const int tile_rows = std::min(kTileRows, rows - g0);
    float* group = packed + size_t(g0) * steps * 8;
    for (int r = 0; r < tile_rows; r++) {
      const size_t base = size_t(row0 + g0 + r) * cols;
      for (int s = 0; s < steps; s++) {
        const int k = k0 + s * 8;
        __m256 v = k + 8 <= cols ? load8<dtype>(weights, base + k) : load_partial<dtype>(weights, base + k, cols - k);
        _mm256_store_ps(group + (size_t(s) * tile_rows + r) * 8, v);
      }
    }
  }
}

// Tokens [t0, t0 + tokens) × columns [k0, k0 + steps·8) laid out (steps, tokens, 8), zero past `cols`.
void pack_inputs(float* packed, const float* in, int cols, int t0, int tokens, int k0, int steps) {
  for (int t = 0; t < tokens; t++) {
    const float* x = in + size_t(t0 + t) * cols;
    for (int s = 0; s < steps; s++) {
      const int k = k0 + s * 8;
      __m256 v = k + 8 <= cols ? _mm256_loadu_ps(x + k) : _mm256_maskload_ps(x + k, lane_mask(cols - k));
      _mm256_store_ps(packed + (size_t(s) * tokens + t) * 8, v);
    }
  }
}

// One register tile over one k block. spill: (T, kPanelRows, 8) partial accumulators at this tile's origin.
// First block starts from zero, the last one folds the lanes and writes out.
template <int T, int R>
void packed_tile(const float* x_packed, const float* w_packed, int steps, float* spill, bool first, bool last,
                 float* out, int out_stride) {
  __m256 acc[T][R];
  for (int t = 0; t < T; t++)
    for (int r = 0; r < R; r++)
      acc[t][r] = first ? _mm256_setzero_ps() : _mm256_load_ps(spill + (size_t(t) * kPanelRows + r) * 8);
  for (int s = 0; s < steps; s++) {
    __m256 w[R];
    for (int r = 0; r < R; r++) w[r] = _mm256_load_ps(w_packed + (size_t(s) * R + r) * 8);
    for (int t = 0; t < T; t++) {
      __m256 xv = _mm256_load_ps(x_packed + (size_t(s) * T + t) * 8);
      for (int r = 0; r < R; r++) acc[t][r] = _mm256_fmadd_ps(xv, w[r], acc[t][r]);
    }
  }
  for (int t = 0; t < T; t++)
    for (int r = 0; r < R; r++) {
      if (last) out[size_t(t) * out_stride + r] = hsum(acc[t][r]);
      else _mm256_store_ps(spill + (size_t(t) * kPanelRows + r) * 8, acc[t][r]);
    }
}

template <int T>
void packed_tile_rows(int rows, const float* x_packed, const float* w_packed, int steps, float* spill, bool first,
                      bool last, float* out, int out_stride) {
  switch (rows) {
    case 1: packed_tile<T, 1>(x_packed, w_packed, steps, spill, first, last, out, out_stride); break;
    case 2: packed_tile<T, 2>(x_packed, w_packed, steps, spill, first, last, out, out_stride); break;
    default: packed_tile<T, 3>(x_packed, w_packed, steps, spill, first, last, out, out_stride); break;
  }
}

// Scratch reused across calls by each thread: the converted panel, the packed token tile, spilled accumulators.
struct alignas(32) Lanes8 {
  float lanes[8];
};
struct PackedScratch {
  std::vector<Lanes8> panel = std::vector<Lanes8>(size_t(kPanelRows) * kBlockK / 8);    // (kPanelRows, kBlockK)
  std::vector<Lanes8> tokens = std::vector<Lanes8>(size_t(kTileTokens) * kBlockK / 8);  // (kTileTokens, kBlockK)
  std::vector<Lanes8> spill = std::vector<Lanes8>(size_t(kBlockTokens) * kPanelRows);   // (kBlockTokens, kPanelRows, 8)
};

template <DType dtype>
void packed_range(float* out, const float* in, const Weight& weight, int n, int out_stride, int row_begin,
                  int row_end) {
  static thread_local PackedScratch scratch;
  float* panel = scratch.panel.data()->lanes;
  float* tokens = scratch.tokens.data()->lanes;
  float* spill = scratch.spill.data()->lanes;
  const int cols = weight.cols;
  for (int p0 = row_begin; p0 < row_end; p0 += kPanelRows) {
    const int panel_rows = std::min(kPanelRows, row_end - p0);
    for (int b0 = 0; b0 < n; b0 += kBlockTokens) {
      const int block_tokens = std::min(kBlockTokens, n - b0);
      for (int k0 = 0; k0 < cols; k0 += kBlockK) {
        const int steps = (std::min(kBlockK, cols - k0) + 7) / 8;
        const bool first = k0 == 0, last = k0 + kBlockK >= cols;
        pack_weights<dtype>(panel, weight, cols, p0, panel_rows, k0, steps);
        for (int t0 = b0; t0 < b0 + block_tokens; t0 += kTileTokens) {
          const int tile_tokens = std::min(kTileTokens, b0 + block_tokens - t0);
          pack_inputs(tokens, in, cols, t0, tile_tokens, k0, steps);
          for (int g0 = 0; g0 < panel_rows; g0 += kTileRows) {
            const int tile_rows = std::min(kTileRows, panel_rows - g0);
            const float* w_packed = panel + size_t(g0) * steps * 8;
            float* tile_spill = spill + (size_t(t0 - b0) * kPanelRows + g0) * 8;
            float* tile_out = out + size_t(t0) * out_stride + p0 + g0;
            switch (tile_tokens) {
#define LS_PACKED_CASE(T) \
  case T: packed_tile_rows<T>(tile_rows, tokens, w_packed, steps, tile_spill, first, last, tile_out, out_stride); break;
              LS_PACKED_CASE(1) LS_PACKED_CASE(2) LS_PACKED_CASE(3) LS_PACKED_CASE(4)
#undef LS_PACKED_CASE
            }
          }
        }
      }
    }
  }
}

template <DType dtype>
void packed_matmul(float* out, const float* in, const Weight& weight, int n, int out_stride, ThreadPool& pool) {
  pool.parallel_for(size_t(weight.rows), kTileRows * 4, [&](size_t begin, size_t end, int) {
    packed_range<dtype>(out, in, weight, n, out_stride, int(begin), int(end));
  });
}

// n up to this runs the streaming kernel (measured crossover: beyond it the token tiles fall out of L1/L2).
constexpr int kMaxStreamTokens = 48;

template <DType dtype>
void matmul_typed(float* out, const float* in, const Weight& weight, int n, int out_stride, ThreadPool& pool) {
  if (n <= kMaxStreamTokens) stream_matmul<dtype>(out, in, weight, n, out_stride, pool);
  else packed_matmul<dtype>(out, in, weight, n, out_stride, pool);
}

}  // namespace

void matmul_avx2(float* out, const float* in, const Weight& weight, int n, int out_stride, ThreadPool& pool) {
  with_matrix_dtype(weight.dtype, [&](auto dtype) {
    matmul_typed<decltype(dtype)::value>(out, in, weight, n, out_stride, pool);
  });
}

}  // namespace layerskip
#endif  // LAYERSKIP_HAVE_AVX2
