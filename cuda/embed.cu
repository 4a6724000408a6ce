// Token embedding lookup: out (n, cols) f32 = rows of the (vocab, padded_cols(cols)) table, converted from its
// stored dtype exactly (bf16/f16 → f32 is lossless). One block row per token, threads stride the columns; ids are
// range-checked again here (the Context already did) so a bad id writes zeros instead of reading out of bounds.
#include "embed.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace layerskip {

namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float load_weight(const void* table, WeightType type, size_t index) {
  switch (type) {
    case WeightType::F32: return static_cast<const float*>(table)[index];
    case WeightType::F16: return __half2float(static_cast<const __half*>(table)[index]);
    case WeightType::BF16: return __bfloat162float(static_cast<const __nv_bfloat16*>(table)[index]);
  }
  return 0.0f;
}

// grid (ceil(cols / 256), n)
__global__ void embed_kernel(float* __restrict__ out, const int32_t* __restrict__ tokens, const void* __restrict__ table,
                             WeightType type, int vocab, int cols, int padded) {
  const int row = blockIdx.y;
  const int column = blockIdx.x * kThreads + threadIdx.x;
  if (column >= cols) return;
  const int token = tokens[row];
  const bool valid = token >= 0 && token < vocab;
  out[size_t(row) * cols + column] = valid ? load_weight(table, type, size_t(token) * padded + column) : 0.0f;
}

}  // namespace

Status embed_cuda(float* out, const int32_t* tokens, int n, const void* table, WeightType type, int vocab, int cols,
                  cudaStream_t stream) {
  if (n < 1 || vocab < 1 || cols < 1) return Status::error("embed: invalid shape");
  if (out == nullptr || tokens == nullptr || table == nullptr) return Status::error("embed: null buffer");
  const dim3 grid(unsigned(ceil_div(cols, kThreads)), unsigned(n), 1);
  LS_RETURN_IF_ERROR(check_grid(grid, "embed"));
  launch_kernel(embed_kernel, grid, kThreads, 0, stream, out, tokens, table, type, vocab, cols, padded_cols(cols));
  return check_launch("embed");
}

}  // namespace layerskip
