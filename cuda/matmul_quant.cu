// Matrix multiply against a block-quantized weight (core/quant.h): out (n, rows) = in (n, cols) · dequant(W)ᵀ with
// f32 activations and f32 accumulation — the twin of the CPU backend's quantized matmul.
//
// Layouts. in (n, cols) f32 row-major; out rows `out_stride` floats apart. The device planes are the host planes
// byte for byte (no column padding). cols is a multiple of the 32-column block, so every qs row starts 16-byte
// aligned.
//   q8  qs (rows, cols) int8; scales (rows, cols/32) f16                 w = d·q
//   q4  qs (rows, cols/2) bytes; scales, mins (rows, cols/32) f16        w = fmaf(d, q, m)
//       block b of a row is bytes [16b, 16b + 16) of its qs row:
//         byte       |  0  |  1  | … |  15 |
//         bits 0..3  | q0  | q1  | … | q15 |
//         bits 4..7  | q16 | q17 | … | q31 |
//
// Work split. One warp per output row, kRowsPerBlock rows per block, the kTileTokens tokens of blockIdx.y. A qs row
// is read in 16-byte units (q8: 16 columns, half a block; q4: 32 columns, one block): lane l takes units l, l + 32,
// l + 64, …, so each load instruction of a warp covers 512 contiguous bytes, and each lane issues kUnitsInFlight
// loads before any math so that enough bytes are in flight for decode (n ≤ 8 reads the weights once, so decode
// and verification are bound by memory bandwidth). Scales and offsets come through the read-only cache.
//
// Arithmetic, and why it is batch invariant. Each weight is widened to its exact f32 value, exactly as
// weight_element() defines it: q from its bits by the 2²³ trick (the float with bits 2²³ | v is 2²³ + v, so
// subtracting 2²³ gives v exactly, cheaper than an int → float convert), then d·q (exact), plus m in one fmaf for
// q4. Per token, the lane runs one fmaf chain over its units in unit order and each unit's columns in column
// order, and warp_sum's fixed butterfly adds the 32 lane sums. That order depends on cols only; a token's chain
// never sees another token, the tile it sits in or n, so its output has the same bits alone (decode), inside a
// verification batch or inside a prefill. Activations are not rounded: the result is the dequantized f32 weights
// times f32 activations, within f32 summation error of the CPU twin.
//
// Prefill (large n) runs this same kernel, rereading the qs plane once per 8-token tile (mostly from L2) and
// widening it again each time. A tensor-core path for quantized prefill is future work; to keep batch invariance
// it would round activations and then have to serve decode too, as the 16-bit path in matmul.cu does.
#include "matmul_quant.cuh"

#include <cuda_fp16.h>

#include "ptx.cuh"

namespace layerskip {

namespace {

constexpr int kBlockCols = 32;     // columns per quantization block (kQuantBlock in core/quant.h)
constexpr int kUnitBytes = 16;     // one qs load per lane
constexpr int kRowsPerBlock = 4;   // one warp per row
constexpr int kTileTokens = 8;     // tokens per block; grid.y tiles the batch
constexpr int kUnitsInFlight = 4;  // qs loads each lane issues before its math

__device__ __forceinline__ float f16_bits_to_float(uint16_t bits) { return __half2float(__ushort_as_half(bits)); }

// Weights of one 16-byte qs unit, widened to f32 16 columns (a piece) at a time, in column order: a q8 unit is one
// piece, a q4 unit two (its low nibbles, then its high ones), which keeps the widened weights in 16 registers.
constexpr int kPieceCols = 16;
template <WeightType kType> struct QuantUnit;

template <> struct QuantUnit<WeightType::Q8> {
  static constexpr int kPieces = 1;  // 16 columns: half a block
  // Byte i is column i, q in two's complement; b ^ 0x80 = q + 128, so the float with bits 2²³ | (b ^ 0x80) is
  // 2²³ + 128 + q and subtracting 2²³ + 128 leaves q exactly.
  __device__ __forceinline__ static void widen(float (&w)[kPieceCols], uint4 raw, int, float d, float) {
    const uint32_t words[4] = {raw.x ^ 0x80808080u, raw.y ^ 0x80808080u, raw.z ^ 0x80808080u, raw.w ^ 0x80808080u};
#pragma unroll
    for (int i = 0; i < kPieceCols; i++) {
      const uint32_t biased = (words[i / 4] >> (8 * (i % 4))) & 0xffu;
      w[i] = d * (__uint_as_float(0x4b000000u | biased) - 8388736.0f);
    }
  }
};

template <> struct QuantUnit<WeightType::Q4> {
  static constexpr int kPieces = 2;  // 32 columns: one block
  // Byte j holds column j in its low nibble (piece 0) and column j + 16 in its high nibble (piece 1).
  __device__ __forceinline__ static void widen(float (&w)[kPieceCols], uint4 raw, int piece, float d, float m) {
    const uint32_t words[4] = {raw.x, raw.y, raw.z, raw.w};
    const int shift = 4 * piece;
#pragma unroll
    for (int j = 0; j < kPieceCols; j++) {
      const uint32_t level = (words[j / 4] >> (8 * (j % 4) + shift)) & 15u;
      w[j] = fmaf(d, __uint_as_float(0x4b000000u | level) - 8388608.0f, m);
    }
  }
};

// acc + Σ_c w[c]·x[c] over one piece: one fmaf per column, in column order. kVec4: x is 16-byte aligned.
template <bool kVec4>
__device__ __forceinline__ float dot_piece(float acc, const float (&w)[kPieceCols], const float* x) {
#pragma unroll
  for (int c = 0; c < kPieceCols; c += 4) {
    const float4 v = kVec4 ? *reinterpret_cast<const float4*>(x + c) : make_float4(x[c], x[c + 1], x[c + 2], x[c + 3]);
    acc = fmaf(w[c], v.x, acc);
    acc = fmaf(w[c + 1], v.y, acc);
    acc = fmaf(w[c + 2], v.z, acc);
    acc = fmaf(w[c + 3], v.w, acc);
  }
  return acc;
}

// grid (ceil(rows / kRowsPerBlock), ceil(n / kTileTokens)), block kRowsPerBlock warps.
template <WeightType kType, bool kVec4>
__global__ void __launch_bounds__(kRowsPerBlock * 32)
matmul_quant_kernel(float* __restrict__ out, const float* __restrict__ in, const uint8_t* __restrict__ qs,
                    const uint16_t* __restrict__ scales, const uint16_t* __restrict__ mins, int rows, int cols, int n,
                    int out_stride) {
  constexpr int kPieces = QuantUnit<kType>::kPieces, kUnitCols = kPieces * kPieceCols;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int row = blockIdx.x * kRowsPerBlock + warp;
  if (row >= rows) return;  // whole warp
  const int token_base = blockIdx.y * kTileTokens;
  const int units = cols / kUnitCols, blocks = cols / kBlockCols;
  const uint8_t* row_qs = qs + size_t(row) * units * kUnitBytes;        // (units, 16) bytes
  const uint16_t* row_scales = scales + size_t(row) * blocks;           // (blocks) f16
  const uint16_t* row_mins = kType == WeightType::Q4 ? mins + size_t(row) * blocks : nullptr;

  float acc[kTileTokens];
#pragma unroll
  for (int j = 0; j < kTileTokens; j++) acc[j] = 0.0f;

  for (int first = lane; first < units; first += 32 * kUnitsInFlight) {
    // All loads of this round before any math.
    uint4 raw[kUnitsInFlight];
    float d[kUnitsInFlight], m[kUnitsInFlight];
#pragma unroll
    for (int i = 0; i < kUnitsInFlight; i++) {
      const int unit = first + 32 * i;
      const int block = unit * kUnitCols / kBlockCols;
      const bool live = unit < units;
      raw[i] = live ? load_streaming(row_qs + size_t(unit) * kUnitBytes) : make_uint4(0, 0, 0, 0);
      d[i] = live ? f16_bits_to_float(load_readonly(row_scales + block)) : 0.0f;
      m[i] = live && kType == WeightType::Q4 ? f16_bits_to_float(load_readonly(row_mins + block)) : 0.0f;
    }
#pragma unroll
    for (int i = 0; i < kUnitsInFlight; i++) {
      const int unit = first + 32 * i;
      if (unit < units) {
#pragma unroll
        for (int piece = 0; piece < kPieces; piece++) {
          float w[kPieceCols];
          QuantUnit<kType>::widen(w, raw[i], piece, d[i], m[i]);
          const float* x = in + size_t(token_base) * cols + size_t(unit) * kUnitCols + piece * kPieceCols;
#pragma unroll
          for (int j = 0; j < kTileTokens; j++) {
            if (token_base + j < n) acc[j] = dot_piece<kVec4>(acc[j], w, x + size_t(j) * cols);
          }
        }
      }
    }
  }

#pragma unroll
  for (int j = 0; j < kTileTokens; j++) {
    const int token = token_base + j;
    if (token < n) {  // warp-uniform
      const float total = warp_sum(acc[j]);
      if (lane == 0) out[size_t(token) * out_stride + row] = total;
    }
  }
}

template <WeightType kType>
void launch_quant(dim3 grid, bool vec4, cudaStream_t stream, float* out, const float* in, const uint8_t* qs,
                  const uint16_t* scales, const uint16_t* mins, int rows, int cols, int n, int out_stride) {
  if (vec4) {
    launch_kernel(matmul_quant_kernel<kType, true>, grid, kRowsPerBlock * 32, 0, stream, out, in, qs, scales, mins,
                  rows, cols, n, out_stride);
  } else {
    launch_kernel(matmul_quant_kernel<kType, false>, grid, kRowsPerBlock * 32, 0, stream, out, in, qs, scales, mins,
                  rows, cols, n, out_stride);
  }
}

}  // namespace

Status matmul_quantized_cuda(float* out, const float* in, const void* qs, const uint16_t* scales,
                             const uint16_t* mins, WeightType type, int rows, int cols, int n, int out_stride,
                             cudaStream_t stream) {
  const bool q4 = type == WeightType::Q4;
  if (type != WeightType::Q8 && !q4) return Status::error("matmul: not a quantized weight type");
  if (rows < 1 || cols < kBlockCols || cols % kBlockCols != 0 || n < 1 || out_stride < rows) {
    return Status::error(std::string("matmul ") + (q4 ? "q4" : "q8") + ": invalid shape (rows " +
                         std::to_string(rows) + ", cols " + std::to_string(cols) + ", n " + std::to_string(n) +
                         ", out_stride " + std::to_string(out_stride) + "; cols must be a multiple of 32)");
  }
  if (out == nullptr || in == nullptr || qs == nullptr || scales == nullptr || (q4 && mins == nullptr)) {
    return Status::error(std::string("matmul ") + (q4 ? "q4" : "q8") + ": null buffer or missing scale plane");
  }
  if (!aligned16(qs)) return Status::error("matmul: quantized weight is not 16-byte aligned");
  const dim3 grid(unsigned(ceil_div(rows, kRowsPerBlock)), unsigned(ceil_div(n, kTileTokens)), 1);
  const char* name = q4 ? "matmul_q4" : "matmul_q8";
  LS_RETURN_IF_ERROR(check_grid(grid, name));
  const uint8_t* planes = static_cast<const uint8_t*>(qs);
  if (q4) {
    launch_quant<WeightType::Q4>(grid, aligned16(in), stream, out, in, planes, scales, mins, rows, cols, n, out_stride);
  } else {
    launch_quant<WeightType::Q8>(grid, aligned16(in), stream, out, in, planes, scales, mins, rows, cols, n, out_stride);
  }
  return check_launch(name);
}

}  // namespace layerskip
