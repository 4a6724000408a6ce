// AVX-512 matmul kernels, templated on the arithmetic (matmul_avx512.cc: weights widened to f32, FMA;
// matmul_avx512bf16.cc: bf16 weights · bf16-rounded activations, vdpbf16ps). out (n, rows) = in (n, cols) · Wᵀ.
//   - streaming (n ≤ kMaxStreamTokens: decode, verification, short prompts): 4 weight rows stream from memory into
//     a 4 × T register tile of accumulators, T up to 6, so verifying up to 5 drafts reads and converts each weight
//     once; larger n runs balanced token tiles over the same rows, re-read from L1. The 4 rows are far apart (see
//     stream_range): each is one sequential stream through the thread's share of the matrix.
//   - packed (larger n: prefill): per thread a panel of kPanelRows weight rows × kBlockK columns is put in the
//     arithmetic's operand form once per block of tokens and swept by a 4-token × 6-row register tile. Blocking over
//     k only pauses a reduction (partial accumulators are spilled and resumed in the same step order).
// Every output element sees exactly the canonical sequence of simd_avx512.h whatever n or the tiling; threads split
// output rows, never k. Include after the variant's `#pragma GCC target` (see simd_avx512.h).
#pragma once
#include <algorithm>
#include <vector>

#include "../core/backend.h"
#include "simd_avx512.h"

namespace layerskip::avx512 {
namespace {

// Distance of the software prefetch along each weight row: keeps more lines in flight than the hardware
// streamers alone while several rows stream side by side. 1024 over 512: bf16 n = 1 matvecs interleaved 8 rounds
// on the Zen 5 VM read 2048×8192 (long rows) 3% and 8192×2048 1% faster; with no software prefetch, 10% slower.
constexpr int kPrefetchBytes = 1024;

// ---- streaming kernel ---------------------------------------------------------------------------------------------

// out[t0 + t][row0 + r · row_step] for T tokens × R rows. Inputs are rows of A::Element, `in_stride` apart.
template <class A, int T, int R>
void stream_tile(float* out, int out_stride, const typename A::Element* in, size_t in_stride, const Weight& weights,
                 int cols, int row0, int row_step, int t0) {
  if constexpr (A::kOwnStreamTile) {  // the arithmetic streams its own format (quantized blocks)
    return A::template stream_tile<T, R>(out, out_stride, in, in_stride, weights, cols, row0, row_step, t0);
  }
  __m512 acc[T][R];
  for (int t = 0; t < T; t++)
    for (int r = 0; r < R; r++) acc[t][r] = _mm512_setzero_ps();
  const typename A::Element* x = in + size_t(t0) * in_stride;
  const size_t w_base = size_t(row0) * cols, w_step = size_t(row_step) * cols;
  const int full = cols - cols % A::kStep;
  const char* weight_bytes = static_cast<const char*>(weights.data);
  for (int k = 0; k < full; k += A::kStep) {
    if (A::byte_offset(k) % 64 == 0) {
      for (int r = 0; r < R; r++) {
        _mm_prefetch(weight_bytes + A::byte_offset(w_base + r * w_step + k) + kPrefetchBytes, _MM_HINT_T0);
      }
    }
    typename A::Vec w[R];
    for (int r = 0; r < R; r++) w[r] = A::weights(weights, w_base + r * w_step + k);
    for (int t = 0; t < T; t++) {
      typename A::Vec xv = A::input(x + size_t(t) * in_stride, k);
      for (int r = 0; r < R; r++) acc[t][r] = A::madd(acc[t][r], xv, w[r]);
    }
  }
  if (full < cols) {
    const int tail = cols - full;
    typename A::Vec w[R];
    for (int r = 0; r < R; r++) w[r] = A::weights_partial(weights, w_base + r * w_step + full, tail);
    for (int t = 0; t < T; t++) {
      typename A::Vec xv = A::input_partial(x + size_t(t) * in_stride, full, tail);
      for (int r = 0; r < R; r++) acc[t][r] = A::madd(acc[t][r], xv, w[r]);
    }
  }
  for (int t = 0; t < T; t++)
    for (int r = 0; r < R; r++) out[size_t(t0 + t) * out_stride + row0 + r * row_step] = hsum16(acc[t][r]);
}

// All n tokens for the R rows row0 + r · row_step, in balanced token tiles of at most kMaxTokens (10 = 5 + 5).
template <class A, int R, int kMaxTokens>
void stream_rows(float* out, int out_stride, const typename A::Element* in, size_t in_stride, const Weight& weights,
                 int cols, int row0, int row_step, int n) {
  const int tiles = (n + kMaxTokens - 1) / kMaxTokens;
  for (int tile = 0, t0 = 0; tile < tiles; tile++) {
    const int tokens = (n - t0) / (tiles - tile);
    switch (tokens) {
#define LS_STREAM_CASE(T)                                                                            \
  case T:                                                                                            \
    if constexpr (T <= kMaxTokens) stream_tile<A, T, R>(out, out_stride, in, in_stride, weights, cols, row0, row_step, t0); \
    break;
      LS_STREAM_CASE(1) LS_STREAM_CASE(2) LS_STREAM_CASE(3) LS_STREAM_CASE(4) LS_STREAM_CASE(5)
      LS_STREAM_CASE(6) LS_STREAM_CASE(7) LS_STREAM_CASE(8) LS_STREAM_CASE(9)
#undef LS_STREAM_CASE
    }
    t0 += tokens;
  }
}

// Rows [begin, end) R at a time. The R rows in flight are far apart: the range is cut into R equal parts read side
// by side, each row after row, so every part is one sequential stream (the leftover rows go one at a time).
// Adjacent rows in flight — R streams one row (4-16 KiB) apart — read markedly slower: bf16 n = 1 matvecs on the
// Zen 5 VM, 3 interleaved rounds, 2 threads: 8 adjacent rows 33–38 GB/s, 4 far-apart rows 38–50 GB/s, 8 far-apart
// rows 31–40 GB/s, against 44–48 GB/s for the probe's plain sequential reads. Quantized rows shorter than
// kFarApartRowBytes stay adjacent: R of them are one short contiguous run, which their tile follows with a prefetch
// of the next tile (q4 rows of 2048 columns, 1 KiB: adjacent read 5–15% faster; q4 rows of 8192 columns, 4 KiB:
// far apart 79–83% of the probe against 53–65%).
constexpr size_t kFarApartRowBytes = 2048;

template <class A, int R, int kMaxTokens>
void stream_range(float* out, int out_stride, const typename A::Element* in, size_t in_stride, const Weight& weights,
                  int cols, int n, int begin, int end) {
  int row = begin;
  if (A::kOwnStreamTile && A::byte_offset(size_t(cols)) < kFarApartRowBytes) {
    for (; row + R <= end; row += R)
      stream_rows<A, R, kMaxTokens>(out, out_stride, in, in_stride, weights, cols, row, 1, n);
  } else {
    const int part = (end - begin) / R;
    for (int i = 0; i < part; i++)
      stream_rows<A, R, kMaxTokens>(out, out_stride, in, in_stride, weights, cols, begin + i, part, n);
    row = begin + part * R;
  }
  for (; row < end; row++) stream_rows<A, 1, kMaxTokens>(out, out_stride, in, in_stride, weights, cols, row, 1, n);
}

// Register tiles per n: T·R accumulators (≤ 24 of the 32 zmm registers). Weights read as stored always keep 4 rows
// in flight (stream_range), with balanced token tiles of at most 4-6 tokens: wider tiles over fewer rows measured
// slower (bf16 8192×2048 on the Zen 5 VM, time over n = 1: n = 8 as 4 + 4 1.39× against 2.01× as one 8 × 3 tile,
// n = 16 as 6 + 5 + 5 2.1× against 3.1×).
template <class A>
void stream_matmul(float* out, const typename A::Element* in, size_t in_stride, const Weight& weight, int n,
                   int out_stride, ThreadPool& pool) {
  const int cols = weight.cols;
  const Weight& w = weight;
  pool.parallel_for(size_t(weight.rows), 24, [&](size_t begin, size_t end, int) {
    const int b = int(begin), e = int(end);
    if constexpr (A::kPairedVec) {
      // Two zmm per operand (a 32-column block): 4-row tiles of at most 6 tokens (n = 8 as 4 + 4). Measured 2-3× the
      // multiply-add rate of 3 × 6 and 2 × 8 tiles, which keep fewer rows of widened weights in flight.
      switch (n) {
        case 1: return stream_range<A, 8, 1>(out, out_stride, in, in_stride, w, cols, n, b, e);
        case 2: return stream_range<A, 6, 2>(out, out_stride, in, in_stride, w, cols, n, b, e);
        case 3: case 4: return stream_range<A, 4, 4>(out, out_stride, in, in_stride, w, cols, n, b, e);
        case 5: case 6: return stream_range<A, 4, 6>(out, out_stride, in, in_stride, w, cols, n, b, e);
        case 7: case 8: return stream_range<A, 4, 4>(out, out_stride, in, in_stride, w, cols, n, b, e);
        case 9: return stream_range<A, 4, 5>(out, out_stride, in, in_stride, w, cols, n, b, e);
        default: return stream_range<A, 4, 6>(out, out_stride, in, in_stride, w, cols, n, b, e);
      }
    }
    switch (n) {
      case 1: return stream_range<A, 4, 1>(out, out_stride, in, in_stride, w, cols, n, b, e);
      case 2: return stream_range<A, 4, 2>(out, out_stride, in, in_stride, w, cols, n, b, e);
      case 3: case 4: return stream_range<A, 4, 4>(out, out_stride, in, in_stride, w, cols, n, b, e);
      case 5: case 6: return stream_range<A, 4, 6>(out, out_stride, in, in_stride, w, cols, n, b, e);
      case 7: case 8: return stream_range<A, 4, 4>(out, out_stride, in, in_stride, w, cols, n, b, e);
      case 9: return stream_range<A, 4, 5>(out, out_stride, in, in_stride, w, cols, n, b, e);
      default: return stream_range<A, 4, 6>(out, out_stride, in, in_stride, w, cols, n, b, e);
    }
  });
}

// ---- packed kernel ------------------------------------------------------------------------------------------------

constexpr int kTileTokens = 4;     // register tile: tokens ...
constexpr int kTileRows = 6;       // ... × weight rows
constexpr int kPanelRows = 48;     // weight rows per panel (a multiple of kTileRows)
constexpr int kBlockTokens = 64;   // tokens per block: bounds the spilled accumulators to 192 KiB

// Panel rows [row0, row0 + rows) × `steps` steps from column k0, in operand form, zero past `cols`; laid out per
// row tile g as (steps, tile rows, Vec) at g · kTileRows · steps.
template <class A>
void pack_weights(typename A::Vec* packed, const Weight& weights, int cols, int row0, int rows, int k0, int steps) {
  for (int g0 = 0; g0 < rows; g0 += kTileRows) {
    const int tile_rows = std::min(kTileRows, rows - g0);
    typename A::Vec* group = packed + size_t(g0) * steps;
    for (int r = 0; r < tile_rows; r++) {
      const size_t base = size_t(row0 + g0 + r) * cols;
      for (int s = 0; s < steps; s++) {
        const int k = k0 + s * A::kStep;
        group[size_t(s) * tile_rows + r] = k + A::kStep <= cols ? A::weights(weights, base + k)
                                                                : A::weights_partial(weights, base + k, cols - k);
      }
    }
  }
}

// Tokens [t0, t0 + tokens) × `steps` steps from column k0 laid out (steps, tokens, Vec), zero past `cols`.
template <class A>
void pack_inputs(typename A::Vec* packed, const typename A::Element* in, size_t in_stride, int cols, int t0,
                 int tokens, int k0, int steps) {
  for (int t = 0; t < tokens; t++) {
    const typename A::Element* x = in + size_t(t0 + t) * in_stride;
    for (int s = 0; s < steps; s++) {
      const int k = k0 + s * A::kStep;
      packed[size_t(s) * tokens + t] = k + A::kStep <= cols ? A::input(x, k) : A::input_partial(x, k, cols - k);
    }
  }
}

// One register tile over one k block. spill: (T, kPanelRows) partial accumulators at this tile's origin.
template <class A, int T, int R>
void packed_tile(const typename A::Vec* x_packed, const typename A::Vec* w_packed, int steps, __m512* spill,
                 bool first, bool last, float* out, int out_stride) {
  __m512 acc[T][R];
  for (int t = 0; t < T; t++)
    for (int r = 0; r < R; r++) acc[t][r] = first ? _mm512_setzero_ps() : spill[size_t(t) * kPanelRows + r];
  for (int s = 0; s < steps; s++) {
    typename A::Vec w[R];
    for (int r = 0; r < R; r++) w[r] = w_packed[size_t(s) * R + r];
    for (int t = 0; t < T; t++) {
      typename A::Vec xv = x_packed[size_t(s) * T + t];
      for (int r = 0; r < R; r++) acc[t][r] = A::madd(acc[t][r], xv, w[r]);
    }
  }
  for (int t = 0; t < T; t++)
    for (int r = 0; r < R; r++) {
      if (last) out[size_t(t) * out_stride + r] = hsum16(acc[t][r]);
      else spill[size_t(t) * kPanelRows + r] = acc[t][r];
    }
}

template <class A, int T>
void packed_tile_rows(int rows, const typename A::Vec* x_packed, const typename A::Vec* w_packed, int steps,
                      __m512* spill, bool first, bool last, float* out, int out_stride) {
  switch (rows) {
#define LS_ROWS_CASE(R) \
  case R: return packed_tile<A, T, R>(x_packed, w_packed, steps, spill, first, last, out, out_stride);
    LS_ROWS_CASE(1) LS_ROWS_CASE(2) LS_ROWS_CASE(3) LS_ROWS_CASE(4) LS_ROWS_CASE(5)
#undef LS_ROWS_CASE
    default: return packed_tile<A, T, kTileRows>(x_packed, w_packed, steps, spill, first, last, out, out_stride);
  }
}

// Scratch reused across calls by each thread: the panel, the packed token tile, spilled accumulators.
// (Plain 64-byte blocks: a std::vector of a vector type would drop its attributes.)
struct alignas(64) Block64 {
  char bytes[64];
};
template <class A>
struct PackedScratch {
  static constexpr size_t kVecBlocks = sizeof(typename A::Vec) / sizeof(Block64);
  std::vector<Block64> panel_blocks = std::vector<Block64>(size_t(kPanelRows) * A::kBlockSteps * kVecBlocks);
  std::vector<Block64> token_blocks = std::vector<Block64>(size_t(kTileTokens) * A::kBlockSteps * kVecBlocks);
  std::vector<Block64> spill_blocks = std::vector<Block64>(size_t(kBlockTokens) * kPanelRows);
  typename A::Vec* panel() { return reinterpret_cast<typename A::Vec*>(panel_blocks.data()); }
  typename A::Vec* tokens() { return reinterpret_cast<typename A::Vec*>(token_blocks.data()); }
  __m512* spill() { return reinterpret_cast<__m512*>(spill_blocks.data()); }
};

template <class A>
void packed_range(float* out, const typename A::Element* in, size_t in_stride, const Weight& weight, int n,
                  int out_stride, int row_begin, int row_end) {
  static thread_local PackedScratch<A> scratch;
  const int cols = weight.cols;
  const int block_k = A::kBlockSteps * A::kStep;
  for (int p0 = row_begin; p0 < row_end; p0 += kPanelRows) {
    const int panel_rows = std::min(kPanelRows, row_end - p0);
    for (int b0 = 0; b0 < n; b0 += kBlockTokens) {
      const int block_tokens = std::min(kBlockTokens, n - b0);
      for (int k0 = 0; k0 < cols; k0 += block_k) {
        const int steps = (std::min(block_k, cols - k0) + A::kStep - 1) / A::kStep;
        const bool first = k0 == 0, last = k0 + block_k >= cols;
        pack_weights<A>(scratch.panel(), weight, cols, p0, panel_rows, k0, steps);
        for (int t0 = b0; t0 < b0 + block_tokens; t0 += kTileTokens) {
          const int tile_tokens = std::min(kTileTokens, b0 + block_tokens - t0);
          pack_inputs<A>(scratch.tokens(), in, in_stride, cols, t0, tile_tokens, k0, steps);
          for (int g0 = 0; g0 < panel_rows; g0 += kTileRows) {
            const int tile_rows = std::min(kTileRows, panel_rows - g0);
            const typename A::Vec* w_packed = scratch.panel() + size_t(g0) * steps;
            __m512* tile_spill = scratch.spill() + size_t(t0 - b0) * kPanelRows + g0;
            float* tile_out = out + size_t(t0) * out_stride + p0 + g0;
            switch (tile_tokens) {
#define LS_PACKED_CASE(T)                                                                                     \
  case T:                                                                                                     \
    packed_tile_rows<A, T>(tile_rows, scratch.tokens(), w_packed, steps, tile_spill, first, last, tile_out, \
                           out_stride);                                                                        \
    break;
              LS_PACKED_CASE(1) LS_PACKED_CASE(2) LS_PACKED_CASE(3) LS_PACKED_CASE(4)
#undef LS_PACKED_CASE
            }
          }
        }
      }
    }
  }
}

// n up to this runs the streaming kernel.
constexpr int kMaxStreamTokens = 32;

template <class A>
void matmul_with(float* out, const typename A::Element* in, size_t in_stride, const Weight& weight, int n,
                 int out_stride, ThreadPool& pool) {
  if (n <= kMaxStreamTokens) return stream_matmul<A>(out, in, in_stride, weight, n, out_stride, pool);
  pool.parallel_for(size_t(weight.rows), kTileRows * 4, [&](size_t begin, size_t end, int) {
    packed_range<A>(out, in, in_stride, weight, n, out_stride, int(begin), int(end));
  });
}

}  // namespace
}  // namespace layerskip::avx512
