// The AMX-BF16 matmul's tiling, written once against a tile unit `Tiles` so the same code runs on the processor's
// AMX (matmul_amx.cc) and on a software model of it (amx_emulator.h, matmul_amx_emulated.cc: tests on any machine).
// out (n, rows) = in (n, cols) · Wᵀ for bf16 W, with the activations rounded to bf16 (round to nearest even).
//
// Eight tiles, each 16 rows × 64 bytes:
//   A0, A1  weights: 16 output rows × 32 columns, loaded straight from the checkpoint (row stride cols · 2 bytes)
//   B0, B1  activations: 16 column pairs × 16 tokens, in the "VNNI" pair layout packed once per call
//   C0..C3  f32 accumulators: 16 output rows × 16 tokens, C[2a + b] = A_a · B_b
// A block of 32 output rows × 32 tokens sweeps all columns in steps of 32 with the accumulators held in the tiles,
// so every output element is one chain of tdpbf16ps steps over k in order: its arithmetic never depends on n,
// on where its token sits in the batch or on the thread that computes it (batch invariance). n = 1 runs the same
// tiles with 15 token columns of zeros: decode stays memory-bound, and self-speculative verification matches it.
// Include after the variant's `#pragma GCC target` (if any), like matmul_avx512_kernels.h.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "../core/backend.h"
#include "thread_pool.h"

namespace layerskip::amx {
namespace {

constexpr int kTileRows = 16;       // output rows per A tile, k pairs per B tile
constexpr int kTileTokens = 16;     // tokens per B / C tile
constexpr int kStepCols = 32;       // columns per k step: one 64-byte row of an A tile
constexpr int kTileBytes = 64;      // bytes per tile row
enum TileIndex { kC0 = 0, kC1 = 1, kC2 = 2, kC3 = 3, kA0 = 4, kA1 = 5, kB0 = 6, kB1 = 7 };

// Activations rounded to bf16 (core/dtype.h, to nearest even) in tile order: block (token block tb, k step s) is 16 k pairs × 16 tokens × 2 bf16 (1 KiB) at
// (tb · steps + s) · 512 elements; zero past n tokens and past cols.
void pack_activations(uint16_t* packed, const float* in, int n, int cols, int token_blocks, int steps) {
  std::memset(packed, 0, size_t(token_blocks) * steps * kTileRows * kTileTokens * 2 * sizeof(uint16_t));
  for (int t = 0; t < n; t++) {
    const float* x = in + size_t(t) * cols;
    uint16_t* token_base = packed + size_t(t / kTileTokens) * steps * 512 + (t % kTileTokens) * 2;
    for (int k = 0; k < cols; k++) {
      token_base[size_t(k / kStepCols) * 512 + (k % kStepCols / 2) * 32 + (k & 1)] = f32_to_bf16(x[k]);
    }
  }
}

// Where a group of 16 weight rows is read from: the checkpoint itself, or a zero-padded copy when the group is
// short (the last rows) or the rows end inside a k step (cols not a multiple of 32).
struct RowGroup {
  const uint16_t* data;
  size_t stride_bytes;
};

RowGroup row_group(const Weight& weight, int row0, int steps, std::vector<uint16_t>& padded) {
  const uint16_t* rows = static_cast<const uint16_t*>(weight.data) + size_t(row0) * weight.cols;
  const int count = std::min(kTileRows, weight.rows - row0);
  if (count == kTileRows && weight.cols % kStepCols == 0) return {rows, size_t(weight.cols) * 2};
  const size_t padded_cols = size_t(steps) * kStepCols;
  padded.assign(kTileRows * padded_cols, 0);
  for (int r = 0; r < count; r++) std::memcpy(&padded[r * padded_cols], rows + size_t(r) * weight.cols, weight.cols * 2);
  return {padded.data(), padded_cols * 2};
}

// One block: row groups g0 (and g1 when kRowTiles = 2) × token blocks tb (and tb + 1 when kTokenTiles = 2).
template <class Tiles, int kRowTiles, int kTokenTiles>
void block(Tiles& tiles, const RowGroup* groups, const uint16_t* packed, int tb, int steps, float* out,
           int out_stride, int row0, int rows, int n) {
  tiles.template zero<kC0>();
  if constexpr (kTokenTiles == 2) tiles.template zero<kC1>();
  if constexpr (kRowTiles == 2) tiles.template zero<kC2>();
  if constexpr (kRowTiles == 2 && kTokenTiles == 2) tiles.template zero<kC3>();
  const uint16_t* b0 = packed + size_t(tb) * steps * 512;
  const uint16_t* b1 = b0 + size_t(steps) * 512;
  for (int s = 0; s < steps; s++) {
    tiles.template load<kA0>(reinterpret_cast<const char*>(groups[0].data) + size_t(s) * kTileBytes, groups[0].stride_bytes);
    tiles.template load<kB0>(b0 + size_t(s) * 512, kTileBytes);
    tiles.template dot<kC0, kA0, kB0>();
    if constexpr (kTokenTiles == 2) {
      tiles.template load<kB1>(b1 + size_t(s) * 512, kTileBytes);
      tiles.template dot<kC1, kA0, kB1>();
    }
    if constexpr (kRowTiles == 2) {
      tiles.template load<kA1>(reinterpret_cast<const char*>(groups[1].data) + size_t(s) * kTileBytes,
                               groups[1].stride_bytes);
      tiles.template dot<kC2, kA1, kB0>();
      if constexpr (kTokenTiles == 2) tiles.template dot<kC3, kA1, kB1>();
    }
  }
  // C tiles are (output row, token): transpose into out (token, output row).
  alignas(64) float c[kTileRows][kTileTokens];
  auto write = [&](int group, int token_block) {
    const int r_base = row0 + group * kTileRows, t_base = token_block * kTileTokens;
    const int r_count = std::min(kTileRows, rows - r_base), t_count = std::min(kTileTokens, n - t_base);
    for (int t = 0; t < t_count; t++)
      for (int r = 0; r < r_count; r++) out[size_t(t_base + t) * out_stride + r_base + r] = c[r][t];
  };
  tiles.template store<kC0>(c, kTileBytes);
  write(0, tb);
  if constexpr (kTokenTiles == 2) {
    tiles.template store<kC1>(c, kTileBytes);
    write(0, tb + 1);
  }
  if constexpr (kRowTiles == 2) {
    tiles.template store<kC2>(c, kTileBytes);
    write(1, tb);
    if constexpr (kTokenTiles == 2) {
      tiles.template store<kC3>(c, kTileBytes);
      write(1, tb + 1);
    }
  }
}

// Output rows [begin, end) (begin a multiple of 32) for all tokens.
template <class Tiles>
void row_range(const uint16_t* packed, const Weight& weight, int n, int token_blocks, int steps, float* out,
               int out_stride, int begin, int end) {
  static thread_local std::vector<uint16_t> padded[2];
  Tiles tiles;  // configures the tile unit for this thread; released when it goes out of scope
  for (int row0 = begin; row0 < end; row0 += 2 * kTileRows) {
    const bool two_groups = row0 + kTileRows < end;
    RowGroup groups[2] = {row_group(weight, row0, steps, padded[0]), {}};
    if (two_groups) groups[1] = row_group(weight, row0 + kTileRows, steps, padded[1]);
    for (int tb = 0; tb < token_blocks; tb += 2) {
      const bool two_token_blocks = tb + 1 < token_blocks;
      if (two_groups && two_token_blocks) block<Tiles, 2, 2>(tiles, groups, packed, tb, steps, out, out_stride, row0, end, n);
      else if (two_groups) block<Tiles, 2, 1>(tiles, groups, packed, tb, steps, out, out_stride, row0, end, n);
      else if (two_token_blocks) block<Tiles, 1, 2>(tiles, groups, packed, tb, steps, out, out_stride, row0, end, n);
      else block<Tiles, 1, 1>(tiles, groups, packed, tb, steps, out, out_stride, row0, end, n);
    }
  }
}

// The whole matmul for bf16 weights. Threads split output rows in multiples of 32, never k.
template <class Tiles>
void matmul_bf16(float* out, const float* in, const Weight& weight, int n, int out_stride, ThreadPool& pool) {
  const int steps = (weight.cols + kStepCols - 1) / kStepCols;
  const int token_blocks = (n + kTileTokens - 1) / kTileTokens;
  static thread_local std::vector<uint16_t> packed;
  packed.resize(size_t(token_blocks) * steps * 512);
  pack_activations(packed.data(), in, n, weight.cols, token_blocks, steps);
  const uint16_t* packed_data = packed.data();
  pool.parallel_for(size_t(weight.rows), 2 * kTileRows, [&](size_t begin, size_t end, int) {
    row_range<Tiles>(packed_data, weight, n, token_blocks, steps, out, out_stride, int(begin), int(end));
  });
}

}  // namespace
}  // namespace layerskip::amx
