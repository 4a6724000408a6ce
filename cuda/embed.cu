// Token embedding lookup: out (n, cols) f32 = rows of the table, converted from its stored dtype exactly: bf16/f16
// → f32 is lossless, and a quantized row is widened as weight_element() (core/quant.h) defines it — q8 d·q, q4
// fmaf(d, q, m) with q4 block b of a row in bytes [16b, 16b + 16), byte j holding q[j] (low nibble) and q[j + 16]
// (high). Plain tables are (vocab, padded_cols(cols)); quantized planes are unpadded. One block row per token,
// threads stride the columns; ids are range-checked again here (the Context already did) so a bad id writes zeros
// instead of reading out of bounds.
#include "embed.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace layerskip {

namespace {

constexpr int kThreads = 256;
constexpr int kBlockCols = 32;  // kQuantBlock in core/quant.h

// Element (row, column) of a table whose rows are row_stride elements apart (quantized: row_stride = cols).
__device__ __forceinline__ float load_weight(const void* table, const uint16_t* scales, const uint16_t* mins,
                                             WeightType type, size_t row, int column, int row_stride) {
  const size_t index = row * size_t(row_stride) + column;
  switch (type) {
    case WeightType::F32: return static_cast<const float*>(table)[index];
    case WeightType::F16: return __half2float(static_cast<const __half*>(table)[index]);
    case WeightType::BF16: return __bfloat162float(static_cast<const __nv_bfloat16*>(table)[index]);
    case WeightType::Q8: case WeightType::Q4: break;
  }
  const size_t block = index / kBlockCols;
  const float d = __half2float(__ushort_as_half(scales[block]));
  if (type == WeightType::Q8) return d * float(static_cast<const int8_t*>(table)[index]);
  const int within = column % kBlockCols;
  const uint8_t byte = static_cast<const uint8_t*>(table)[block * 16 + (within & 15)];
  const int level = within < 16 ? byte & 15 : byte >> 4;
  return fmaf(d, float(level), __half2float(__ushort_as_half(mins[block])));
}

// grid (ceil(cols / 256), n)
__global__ void embed_kernel(float* __restrict__ out, const int32_t* __restrict__ tokens, const void* __restrict__ table,
                             const uint16_t* __restrict__ scales, const uint16_t* __restrict__ mins, WeightType type,
                             int vocab, int cols, int row_stride) {
  const int row = blockIdx.y;
  const int column = blockIdx.x * kThreads + threadIdx.x;
  if (column >= cols) return;
  const int token = tokens[row];
  const bool valid = token >= 0 && token < vocab;
  out[size_t(row) * cols + column] =
      valid ? load_weight(table, scales, mins, type, size_t(token), column, row_stride) : 0.0f;
}

}  // namespace

Status embed_cuda(float* out, const int32_t* tokens, int n, const void* table, const uint16_t* scales,
                  const uint16_t* mins, WeightType type, int vocab, int cols, cudaStream_t stream) {
  if (n < 1 || vocab < 1 || cols < 1) return Status::error("embed: invalid shape");
  if (out == nullptr || tokens == nullptr || table == nullptr) return Status::error("embed: null buffer");
  const bool quantized = type == WeightType::Q8 || type == WeightType::Q4;
  if (quantized && (cols % kBlockCols != 0 || scales == nullptr || (type == WeightType::Q4 && mins == nullptr))) {
    return Status::error("embed: quantized table with " + std::to_string(cols) +
                         " columns (a multiple of 32 is needed) or without its scale planes");
  }
  const dim3 grid(unsigned(ceil_div(cols, kThreads)), unsigned(n), 1);
  LS_RETURN_IF_ERROR(check_grid(grid, "embed"));
  launch_kernel(embed_kernel, grid, kThreads, 0, stream, out, tokens, table, scales, mins, type, vocab, cols,
                quantized ? cols : padded_cols(cols));
  return check_launch("embed");
}

}  // namespace layerskip
