// Matrix multiply against a stored weight: out (n, rows) = in (n, cols) · Wᵀ, f32 accumulation.
//
// Layouts: in (n, cols) f32 row-major; W (rows, padded_cols(cols)) in its stored dtype, zero-padded rows (see
// common.cuh); out rows `out_stride` floats apart (so K/V projections can land in the cache).
//
// Batch invariance — the design decision of this file. Self-speculative decoding needs a token's output to be
// bit-identical whether it is multiplied alone (decode, n = 1) or inside a batch (verification, prefill). So every
// bf16/f16 output element, for every n and by every kernel here, is computed by the same arithmetic:
//   * the activation is rounded to the weight's 16-bit type (round-to-nearest-even) — the tensor-core inputs;
//   * k is cut into 64-column chunks and chunks into 512-column slices (8 chunks); both boundaries depend on
//     `cols` only;
//   * within a chunk, 4 mma.sync.m16n8k16 instructions accumulate into an f32 fragment, with k assigned to mma
//     operand slots by one fixed map (mma_chunk(): word q of lane (g, t) holds columns 32(q/4) + 8t + 2(q%4) + {0,1}),
//     the output row sitting at row r % 16 of its 16-row tile and the token at column n % 8 of its 8-token tile;
//   * each slice's chain starts from zero; the output is ((0 + slice0) + slice1) + … in slice order.
// The skinny kernel (n ≤ 16: decode and verification) runs slices on different warps of a block and adds them in
// slice order through shared memory; the tiled kernel (n > 16: prefill) runs slices one after the other in a
// warp, adding each finished slice into a second register set. A tensor-core mma computes each element of D from
// its own row of A, column of B and element of C only, so neighbours in the tile (other rows, other tokens, zero
// padding) never change a result. Hence the two kernels agree bit for bit for every n — exactness is not limited
// to small batches. The price is that activations enter as bf16/f16 (as in PyTorch bf16 inference): relative
// error ≈ 2⁻⁹ per product against the f32-activation CPU reference, which the tests bound.
// Why tensor cores for decode too: the alternative (CUDA-core f32 matvec for small n, mma for prefill) cannot
// reproduce the mma's internal summation, so prefill and decode would disagree; decode is bandwidth-bound and the
// mma costs nothing there. The slices give decode the parallelism to fill HBM on skinny matrices (k/v_proj).
//
// f32 weights (test fixtures) use CUDA cores: one warp per row, lane l takes float4 units l, l + 32, …, then a
// fixed butterfly — also the same code for every n. Q8/Q4 weights go to matmul_quant.cu, built the same way.
#include "matmul.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "matmul_quant.cuh"
#include "ptx.cuh"

namespace layerskip {

namespace {

constexpr int kChunkCols = 64;         // one 128-byte row segment of a 16-bit weight
constexpr int kChunksPerSlice = 8;     // 512 columns per slice
constexpr int kSkinnyMaxTokens = 16;   // n ≤ this: skinny kernel, else tiled kernel (same arithmetic)
constexpr int kSkinnyWarps = 4;
constexpr int kGemmRows = 128, kGemmTokens = 64, kGemmStages = 3, kGemmThreads = 256;
constexpr int kGemmStageBytes = (kGemmRows + kGemmTokens) * kChunkCols * 2;
constexpr int kGemmSmemBytes = kGemmStages * kGemmStageBytes;  // 72 KiB
constexpr int kF32Warps = 4, kF32Tokens = 4;

struct Bf16Tag {};
struct F16Tag {};

// --- the canonical chunk, shared by both tensor-core kernels ---------------------------------------------------

template <typename Tag> __device__ __forceinline__ uint32_t pack_pair(float lo, float hi);
template <> __device__ __forceinline__ uint32_t pack_pair<Bf16Tag>(float lo, float hi) {
  return uint32_t(__bfloat16_as_ushort(__float2bfloat16_rn(lo))) |
         (uint32_t(__bfloat16_as_ushort(__float2bfloat16_rn(hi))) << 16);
}
template <> __device__ __forceinline__ uint32_t pack_pair<F16Tag>(float lo, float hi) {
  return uint32_t(__half_as_ushort(__float2half_rn(lo))) | (uint32_t(__half_as_ushort(__float2half_rn(hi))) << 16);
}

template <typename Tag>
__device__ __forceinline__ void mma_16816(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                          uint32_t b0, uint32_t b1);
template <>
__device__ __forceinline__ void mma_16816<Bf16Tag>(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                                   uint32_t b0, uint32_t b1) {
  mma_m16n8k16_bf16(d, a0, a1, a2, a3, b0, b1);
}
template <>
__device__ __forceinline__ void mma_16816<F16Tag>(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                                  uint32_t b0, uint32_t b1) {
  mma_m16n8k16_f16(d, a0, a1, a2, a3, b0, b1);
}

// One 64-column chunk into a 16-row × 8-token f32 fragment (lane = 4g + t). row_lo / row_hi: the lane's 8 words
// of rows g and g + 8; token: its 8 words of token g. Word q holds columns 32(q/4) + 8t + 2(q%4) + {0, 1}: that is,
// the lane's two 16-byte pieces of a 128-byte chunk row, at byte offsets 16t and 64 + 16t. mma step s takes words
// 2s (operand slots 2t, 2t+1) and 2s + 1 (slots 2t+8, 2t+9) from A and B alike, so each step sums 16 matching k.
template <typename Tag>
__device__ __forceinline__ void mma_chunk(float (&acc)[4], const uint32_t (&row_lo)[8], const uint32_t (&row_hi)[8],
                                          const uint32_t (&token)[8]) {
#pragma unroll
  for (int s = 0; s < 4; s++) {
    mma_16816<Tag>(acc, row_lo[2 * s], row_hi[2 * s], row_lo[2 * s + 1], row_hi[2 * s + 1], token[2 * s],
                   token[2 * s + 1]);
  }
}

__device__ __forceinline__ void unpack_words(uint32_t (&words)[8], uint4 first, uint4 second) {
  words[0] = first.x; words[1] = first.y; words[2] = first.z; words[3] = first.w;
  words[4] = second.x; words[5] = second.y; words[6] = second.z; words[7] = second.w;
}

// The lane's 8 words of one f32 activation row for the chunk starting at column k0 (columns ≥ cols read as 0).
// kVec4: the row is 16-byte aligned and cols % 4 == 0, so float4 loads are allowed; the values are the same.
template <typename Tag, bool kVec4>
__device__ __forceinline__ void load_token_words(uint32_t (&words)[8], const float* row, int k0, int cols, int t) {
#pragma unroll
  for (int h = 0; h < 2; h++) {
    const int k = k0 + 32 * h + 8 * t;
    float v[8];
    if (kVec4 && k + 8 <= cols) {
      float4 a = *reinterpret_cast<const float4*>(row + k);
      float4 b = *reinterpret_cast<const float4*>(row + k + 4);
      v[0] = a.x; v[1] = a.y; v[2] = a.z; v[3] = a.w; v[4] = b.x; v[5] = b.y; v[6] = b.z; v[7] = b.w;
    } else {
#pragma unroll
      for (int j = 0; j < 8; j++) v[j] = k + j < cols ? row[k + j] : 0.0f;
    }
#pragma unroll
    for (int j = 0; j < 4; j++) words[4 * h + j] = pack_pair<Tag>(v[2 * j], v[2 * j + 1]);
  }
}

// --- skinny kernel: n ≤ 16 (decode, verification) -------------------------------------------------------------
// Block = one 16-row tile × all tokens (8 per tile); warp w takes slices w, w + 4, …; each round the warps park
// their slice fragments in shared memory and thread e adds them, in slice order, into its output element e.
template <typename Tag, int kTokenTiles, bool kVec4>
__global__ void __launch_bounds__(kSkinnyWarps * 32)
matmul_skinny_kernel(float* __restrict__ out, const float* __restrict__ in, const uint16_t* __restrict__ weight,
                     int rows, int cols, int padded, int n, int out_stride) {
  constexpr int kThreads = kSkinnyWarps * 32;
  constexpr int kTileElements = 16 * 8;
  constexpr int kPerThread = kTokenTiles * kTileElements / kThreads;
  static_assert(kTokenTiles * kTileElements % kThreads == 0, "elements must split evenly over threads");
  __shared__ float partial[kSkinnyWarps][kTokenTiles * kTileElements];  // [warp][tile][token 8][row 16]

  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int row_base = blockIdx.x * 16;
  const int row_lo = row_base + g, row_hi = row_base + g + 8;
  const bool has_lo = row_lo < rows, has_hi = row_hi < rows;
  const uint16_t* weight_lo = weight + size_t(has_lo ? row_lo : 0) * padded;
  const uint16_t* weight_hi = weight + size_t(has_hi ? row_hi : 0) * padded;
  bool has_token[kTokenTiles];
  const float* token_row[kTokenTiles];
#pragma unroll
  for (int j = 0; j < kTokenTiles; j++) {
    const int token = 8 * j + g;
    has_token[j] = token < n;
    token_row[j] = in + size_t(has_token[j] ? token : 0) * cols;
  }

  const int chunks = padded / kChunkCols;
  const int slices = (chunks + kChunksPerSlice - 1) / kChunksPerSlice;
  float total[kPerThread];
#pragma unroll
  for (int i = 0; i < kPerThread; i++) total[i] = 0.0f;

  for (int round_base = 0; round_base < slices; round_base += kSkinnyWarps) {
    const int slice = round_base + warp;
    if (slice < slices) {  // warp-uniform
      float acc[kTokenTiles][4];
#pragma unroll
      for (int j = 0; j < kTokenTiles; j++) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.0f;
      const int chunk_begin = slice * kChunksPerSlice;
      const int chunk_end = min(chunk_begin + kChunksPerSlice, chunks);
      for (int c = chunk_begin; c < chunk_end; c += 4) {
        // Issue the weight loads of up to 4 chunks before any math: 8 KiB in flight per warp.
        uint4 lo[4][2], hi[4][2];
#pragma unroll
        for (int i = 0; i < 4; i++) {
          const int k = (c + i) * kChunkCols + 8 * t;
          const bool live = c + i < chunk_end;
          const uint4 zero = make_uint4(0, 0, 0, 0);
          lo[i][0] = live && has_lo ? load_streaming(weight_lo + k) : zero;
          lo[i][1] = live && has_lo ? load_streaming(weight_lo + k + 32) : zero;
          hi[i][0] = live && has_hi ? load_streaming(weight_hi + k) : zero;
          hi[i][1] = live && has_hi ? load_streaming(weight_hi + k + 32) : zero;
        }
#pragma unroll
        for (int i = 0; i < 4; i++) {
          if (c + i < chunk_end) {  // warp-uniform
            uint32_t words_lo[8], words_hi[8];
            unpack_words(words_lo, lo[i][0], lo[i][1]);
            unpack_words(words_hi, hi[i][0], hi[i][1]);
#pragma unroll
            for (int j = 0; j < kTokenTiles; j++) {
              uint32_t token_words[8] = {0, 0, 0, 0, 0, 0, 0, 0};
              if (has_token[j]) load_token_words<Tag, kVec4>(token_words, token_row[j], (c + i) * kChunkCols, cols, t);
              mma_chunk<Tag>(acc[j], words_lo, words_hi, token_words);
            }
          }
        }
      }
      // Fragment → [token][row]: d0 (row g, token 2t), d1 (g, 2t+1), d2 (g+8, 2t), d3 (g+8, 2t+1).
#pragma unroll
      for (int j = 0; j < kTokenTiles; j++) {
        float* tile = partial[warp] + j * kTileElements;
        tile[(2 * t) * 16 + g] = acc[j][0];
        tile[(2 * t + 1) * 16 + g] = acc[j][1];
        tile[(2 * t) * 16 + g + 8] = acc[j][2];
        tile[(2 * t + 1) * 16 + g + 8] = acc[j][3];
      }
    }
    __syncthreads();
#pragma unroll
    for (int i = 0; i < kPerThread; i++) {
      const int e = threadIdx.x + i * kThreads;
      for (int w = 0; w < kSkinnyWarps && round_base + w < slices; w++) total[i] += partial[w][e];
    }
    __syncthreads();
  }

#pragma unroll
  for (int i = 0; i < kPerThread; i++) {
    const int e = threadIdx.x + i * kThreads;
    const int token = (e / kTileElements) * 8 + (e % kTileElements) / 16;
    const int row = row_base + e % 16;
    if (row < rows && token < n) out[size_t(token) * out_stride + row] = total[i];
  }
}

// --- tiled kernel: n > 16 (prefill) ----------------------------------------------------------------------------
// Block tile 128 rows × 64 tokens, 8 warps as 4 (rows) × 2 (tokens), warp tile 32 × 32; 64-column chunks staged
// through a 3-stage cp.async ring. Activations come pre-rounded to 16 bits (to_16bit_rows_kernel), zero-padded to
// `padded` columns. Shared-memory rows are 128 bytes; 16-byte unit u of row r sits at u ^ 4(r & 1), which makes the
// fragment reads (rows 2p, 2p+1 × units t or 4+t per quarter-warp) bank-conflict free.

__device__ __forceinline__ int swizzled_unit(int row, int unit) { return unit ^ ((row & 1) << 2); }

__device__ __forceinline__ void read_tile_words(uint32_t (&words)[8], const uint16_t* tile, int row, int t) {
  const uint16_t* base = tile + row * kChunkCols;
  uint4 first = *reinterpret_cast<const uint4*>(base + swizzled_unit(row, t) * 8);
  uint4 second = *reinterpret_cast<const uint4*>(base + swizzled_unit(row, 4 + t) * 8);
  unpack_words(words, first, second);
}

template <typename Tag>
__global__ void __launch_bounds__(kGemmThreads)
matmul_tiled_kernel(float* __restrict__ out, const uint16_t* __restrict__ in16, const uint16_t* __restrict__ weight,
                    int rows, int padded, int n, int out_stride) {
  uint8_t* shared = dynamic_shared_memory<uint8_t>();
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int row_base = blockIdx.x * kGemmRows, token_base = blockIdx.y * kGemmTokens;
  const int warp_row = (warp & 3) * 32, warp_token = (warp >> 2) * 32;
  const int chunks = padded / kChunkCols;

  auto stage_weight = [&](int stage) { return reinterpret_cast<uint16_t*>(shared + stage * kGemmStageBytes); };
  auto stage_input = [&](int stage) { return stage_weight(stage) + kGemmRows * kChunkCols; };
  auto load_chunk = [&](int chunk, int stage) {
    uint16_t* weight_tile = stage_weight(stage);  // (128 rows, 64 columns)
    uint16_t* input_tile = stage_input(stage);    // (64 tokens, 64 columns)
    const int k0 = chunk * kChunkCols;
    for (int i = threadIdx.x; i < kGemmRows * 8; i += kGemmThreads) {
      const int r = i >> 3, unit = i & 7, row = row_base + r;
      const bool live = row < rows;
      cp_async16(weight_tile + r * kChunkCols + swizzled_unit(r, unit) * 8,
                 weight + size_t(live ? row : 0) * padded + k0 + unit * 8, live);
    }
    for (int i = threadIdx.x; i < kGemmTokens * 8; i += kGemmThreads) {
      const int r = i >> 3, unit = i & 7, token = token_base + r;
      const bool live = token < n;
      cp_async16(input_tile + r * kChunkCols + swizzled_unit(r, unit) * 8,
                 in16 + size_t(live ? token : 0) * padded + k0 + unit * 8, live);
    }
  };

  float acc[2][4][4], total[2][4][4];
#pragma unroll
  for (int mt = 0; mt < 2; mt++)
#pragma unroll
    for (int nt = 0; nt < 4; nt++)
#pragma unroll
      for (int e = 0; e < 4; e++) acc[mt][nt][e] = total[mt][nt][e] = 0.0f;

#pragma unroll
  for (int s = 0; s < kGemmStages - 1; s++) {
    if (s < chunks) load_chunk(s, s);
    cp_async_commit();
  }
  for (int c = 0; c < chunks; c++) {
    cp_async_wait<kGemmStages - 2>();
    __syncthreads();  // chunk c is visible to all; everyone is done with the stage refilled below
    const int next = c + kGemmStages - 1;
    if (next < chunks) load_chunk(next, next % kGemmStages);
    cp_async_commit();

    const uint16_t* weight_tile = stage_weight(c % kGemmStages);
    const uint16_t* input_tile = stage_input(c % kGemmStages);
    uint32_t token_words[4][8];
#pragma unroll
    for (int nt = 0; nt < 4; nt++) read_tile_words(token_words[nt], input_tile, warp_token + nt * 8 + g, t);
#pragma unroll
    for (int mt = 0; mt < 2; mt++) {
      uint32_t words_lo[8], words_hi[8];
      read_tile_words(words_lo, weight_tile, warp_row + mt * 16 + g, t);
      read_tile_words(words_hi, weight_tile, warp_row + mt * 16 + g + 8, t);
#pragma unroll
      for (int nt = 0; nt < 4; nt++) mma_chunk<Tag>(acc[mt][nt], words_lo, words_hi, token_words[nt]);
    }
    if ((c + 1) % kChunksPerSlice == 0 || c + 1 == chunks) {  // slice done: fold it in, in slice order
#pragma unroll
      for (int mt = 0; mt < 2; mt++)
#pragma unroll
        for (int nt = 0; nt < 4; nt++)
#pragma unroll
          for (int e = 0; e < 4; e++) {
            total[mt][nt][e] += acc[mt][nt][e];
            acc[mt][nt][e] = 0.0f;
          }
    }
  }
  cp_async_wait<0>();

#pragma unroll
  for (int mt = 0; mt < 2; mt++)
#pragma unroll
    for (int nt = 0; nt < 4; nt++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int row = row_base + warp_row + mt * 16 + g + (e >= 2 ? 8 : 0);
        const int token = token_base + warp_token + nt * 8 + 2 * t + (e & 1);
        if (row < rows && token < n) out[size_t(token) * out_stride + row] = total[mt][nt][e];
      }
}

// (n, cols) f32 → (n, padded) 16-bit words, columns ≥ cols zero; the same rounding as load_token_words.
template <typename Tag>
__global__ void to_16bit_rows_kernel(uint32_t* __restrict__ out, const float* __restrict__ in, int n, int cols,
                                     int padded) {
  const size_t words_per_row = size_t(padded) / 2;
  const size_t words = size_t(n) * words_per_row;
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < words; i += size_t(gridDim.x) * blockDim.x) {
    const size_t token = i / words_per_row;
    const int k = int(i % words_per_row) * 2;
    const float* row = in + token * cols;
    out[i] = pack_pair<Tag>(k < cols ? row[k] : 0.0f, k + 1 < cols ? row[k + 1] : 0.0f);
  }
}

// --- f32 weights -----------------------------------------------------------------------------------------------
template <bool kVec4>
__global__ void __launch_bounds__(kF32Warps * 32)
matmul_f32_kernel(float* __restrict__ out, const float* __restrict__ in, const float* __restrict__ weight, int rows,
                  int cols, int padded, int n, int out_stride) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int row = blockIdx.x * kF32Warps + warp;
  if (row >= rows) return;  // whole warp
  const int token_base = blockIdx.y * kF32Tokens;
  const float4* weight_row = reinterpret_cast<const float4*>(weight + size_t(row) * padded);
  float acc[kF32Tokens] = {};
  for (int unit = lane; unit < padded / 4; unit += 32) {
    const float4 w = weight_row[unit];
    const int k = 4 * unit;
#pragma unroll
    for (int j = 0; j < kF32Tokens; j++) {
      const int token = token_base + j;
      if (token >= n) continue;
      const float* x = in + size_t(token) * cols + k;
      float4 v;
      if (kVec4 && k + 4 <= cols) {
        v = *reinterpret_cast<const float4*>(x);
      } else {
        v.x = k < cols ? x[0] : 0.0f;
        v.y = k + 1 < cols ? x[1] : 0.0f;
        v.z = k + 2 < cols ? x[2] : 0.0f;
        v.w = k + 3 < cols ? x[3] : 0.0f;
      }
      acc[j] = fmaf(w.x, v.x, acc[j]);
      acc[j] = fmaf(w.y, v.y, acc[j]);
      acc[j] = fmaf(w.z, v.z, acc[j]);
      acc[j] = fmaf(w.w, v.w, acc[j]);
    }
  }
#pragma unroll
  for (int j = 0; j < kF32Tokens; j++) acc[j] = warp_sum(acc[j]);
  if (lane == 0) {
#pragma unroll
    for (int j = 0; j < kF32Tokens; j++) {
      const int token = token_base + j;
      if (token < n) out[size_t(token) * out_stride + row] = acc[j];
    }
  }
}

template <typename Tag>
Status launch_16bit(float* out, const float* in, const uint16_t* weight, int rows, int cols, int n, int out_stride,
                    void* workspace, size_t workspace_bytes, cudaStream_t stream) {
  const int padded = padded_cols(cols);
  const bool vec4 = cols % 4 == 0 && aligned16(in);
  if (n <= kSkinnyMaxTokens) {
    const dim3 grid(unsigned(ceil_div(rows, 16)), 1, 1);
    LS_RETURN_IF_ERROR(check_grid(grid, "matmul_skinny"));
    if (n <= 8) {
      if (vec4) launch_kernel(matmul_skinny_kernel<Tag, 1, true>, grid, kSkinnyWarps * 32, 0, stream, out, in, weight, rows, cols, padded, n, out_stride);
      else launch_kernel(matmul_skinny_kernel<Tag, 1, false>, grid, kSkinnyWarps * 32, 0, stream, out, in, weight, rows, cols, padded, n, out_stride);
    } else {
      if (vec4) launch_kernel(matmul_skinny_kernel<Tag, 2, true>, grid, kSkinnyWarps * 32, 0, stream, out, in, weight, rows, cols, padded, n, out_stride);
      else launch_kernel(matmul_skinny_kernel<Tag, 2, false>, grid, kSkinnyWarps * 32, 0, stream, out, in, weight, rows, cols, padded, n, out_stride);
    }
    return check_launch("matmul_skinny");
  }

  const size_t needed = matmul_workspace_bytes(n, cols, WeightType::BF16);
  if (workspace == nullptr || workspace_bytes < needed) {
    return Status::error("matmul: workspace of " + std::to_string(workspace_bytes) + " bytes is smaller than the " +
                         std::to_string(needed) + " needed");
  }
  uint32_t* in16 = static_cast<uint32_t*>(workspace);
  const size_t words = size_t(n) * padded / 2;
  const unsigned convert_blocks = unsigned(std::min<size_t>(ceil_div(words, size_t(256)), 4096));
  launch_kernel(to_16bit_rows_kernel<Tag>, convert_blocks, 256, 0, stream, in16, in, n, cols, padded);
  LS_RETURN_IF_ERROR(check_launch("to_16bit_rows"));

  LS_CUDA_RETURN_IF_ERROR(cudaFuncSetAttribute(matmul_tiled_kernel<Tag>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                               kGemmSmemBytes),
                          "matmul_tiled shared memory opt-in");
  const dim3 grid(unsigned(ceil_div(rows, kGemmRows)), unsigned(ceil_div(n, kGemmTokens)), 1);
  LS_RETURN_IF_ERROR(check_grid(grid, "matmul_tiled"));
  launch_kernel(matmul_tiled_kernel<Tag>, grid, kGemmThreads, kGemmSmemBytes, stream, out,
                reinterpret_cast<const uint16_t*>(in16), weight, rows, padded, n, out_stride);
  return check_launch("matmul_tiled");
}

}  // namespace

size_t matmul_workspace_bytes(int n, int cols, WeightType type) {
  if ((type != WeightType::BF16 && type != WeightType::F16) || n <= kSkinnyMaxTokens) return 0;
  return size_t(n) * size_t(padded_cols(cols)) * 2;
}

Status matmul_cuda(float* out, const float* in, const void* weight, const uint16_t* scales, const uint16_t* mins,
                   WeightType type, int rows, int cols, int n, int out_stride, void* workspace,
                   size_t workspace_bytes, cudaStream_t stream) {
  if (rows < 1 || cols < 1 || n < 1 || out_stride < rows) {
    return Status::error("matmul: invalid shape (rows " + std::to_string(rows) + ", cols " + std::to_string(cols) +
                         ", n " + std::to_string(n) + ", out_stride " + std::to_string(out_stride) + ")");
  }
  if (out == nullptr || in == nullptr || weight == nullptr) return Status::error("matmul: null buffer");
  if (!aligned16(weight)) return Status::error("matmul: weight is not 16-byte aligned");
  switch (type) {
    case WeightType::BF16:
      return launch_16bit<Bf16Tag>(out, in, static_cast<const uint16_t*>(weight), rows, cols, n, out_stride,
                                   workspace, workspace_bytes, stream);
    case WeightType::F16:
      return launch_16bit<F16Tag>(out, in, static_cast<const uint16_t*>(weight), rows, cols, n, out_stride,
                                  workspace, workspace_bytes, stream);
    case WeightType::F32: {
      const int padded = padded_cols(cols);
      const dim3 grid(unsigned(ceil_div(rows, kF32Warps)), unsigned(ceil_div(n, kF32Tokens)), 1);
      LS_RETURN_IF_ERROR(check_grid(grid, "matmul_f32"));
      const float* weight_f32 = static_cast<const float*>(weight);
      if (cols % 4 == 0 && aligned16(in)) {
        launch_kernel(matmul_f32_kernel<true>, grid, kF32Warps * 32, 0, stream, out, in, weight_f32, rows, cols, padded, n, out_stride);
      } else {
        launch_kernel(matmul_f32_kernel<false>, grid, kF32Warps * 32, 0, stream, out, in, weight_f32, rows, cols, padded, n, out_stride);
      }
      return check_launch("matmul_f32");
    }
    case WeightType::Q8:
    case WeightType::Q4:
      return matmul_quantized_cuda(out, in, weight, scales, mins, type, rows, cols, n, out_stride, stream);
  }
  return Status::error("matmul: unknown weight type");
}

}  // namespace layerskip
