// Shared pieces of the CUDA kernels: error plumbing, launch checks, index helpers, warp reductions and the
// on-device layout of uploaded weights.
//
// Errors: launchers return a Status (never exit, never print). A launcher validates its arguments and launch
// configuration before launching and checks cudaGetLastError() after; the backend keeps the first failure and
// reports it from the next Status-returning call (its void ops cannot).
//
// The CPU emulator (cuda/emulator/) compiles these same files with the host compiler; the few places where it
// must differ (the launch, dynamic shared memory, inline PTX in ptx.cuh) switch on LAYERSKIP_CUDA_EMULATOR.
#pragma once
#include <cuda_runtime.h>
#include <cstdint>
#include <string>
#include <utility>

#if defined(LAYERSKIP_CUDA_EMULATOR)
#include "emulator/device.h"
#endif

#include "../core/status.h"

namespace layerskip {

// Device copies of plain weight matrices keep their dtype but pad each row to a multiple of 64 columns with zeros
// (row stride = padded_cols(cols)). Rows are then 128-byte aligned for 16-bit types and every kernel reads whole
// 64-column chunks without tail logic; the zeros add nothing to any dot product. Quantized planes (Q8, Q4) are
// copied unpadded: their 32-column blocks already keep rows 16-byte aligned (matmul_quant.cu).
constexpr int kWeightColumnAlign = 64;
inline int padded_cols(int cols) { return (cols + kWeightColumnAlign - 1) / kWeightColumnAlign * kWeightColumnAlign; }

inline int ceil_div(int a, int b) { return (a + b - 1) / b; }
inline size_t ceil_div(size_t a, size_t b) { return (a + b - 1) / b; }
inline bool aligned16(const void* pointer) { return (reinterpret_cast<uintptr_t>(pointer) & 15) == 0; }

inline Status cuda_status(cudaError_t error, const char* what) {
  if (error == cudaSuccess) return Status::ok();
  return Status::error(std::string("CUDA ") + what + ": " + cudaGetErrorString(error) + " (" +
                       cudaGetErrorName(error) + ")");
}

// Checks the launch that just happened (bad configuration, missing kernel image for this GPU, ...).
inline Status check_launch(const char* kernel) {
  cudaError_t error = cudaGetLastError();
  if (error == cudaSuccess) return Status::ok();
  return Status::error(std::string("CUDA kernel ") + kernel + " failed to launch: " + cudaGetErrorString(error));
}

// Launch limits every launcher asserts before launching.
constexpr unsigned kMaxGridY = 65535;
constexpr unsigned kMaxGridZ = 65535;

inline Status check_grid(dim3 grid, const char* kernel) {
  if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.y > kMaxGridY || grid.z > kMaxGridZ) {
    return Status::error(std::string("CUDA kernel ") + kernel + ": launch grid (" + std::to_string(grid.x) + ", " +
                         std::to_string(grid.y) + ", " + std::to_string(grid.z) + ") is outside the device limits");
  }
  return Status::ok();
}

#define LS_CUDA_RETURN_IF_ERROR(call, what) LS_RETURN_IF_ERROR(::layerskip::cuda_status((call), (what)))

// Device-side storage types as the backend's dtype tags (values match DType in core/dtype.h). Q8 and Q4 are the
// block-quantized formats of core/quant.h: a values plane plus f16 scale (and q4 offset) planes, kept unpadded.
enum class WeightType : int { F32 = 0, F16 = 1, BF16 = 2, Q8 = 5, Q4 = 6 };

#if defined(__CUDACC__) || defined(LAYERSKIP_CUDA_EMULATOR)

// Every launch goes through here (no bare <<<>>>), so the emulator runs the very same launchers.
template <typename... Params, typename... Args>
inline void launch_kernel(void (*kernel)(Params...), dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream,
                          Args... args) {
#if defined(LAYERSKIP_CUDA_EMULATOR)
  emulator::launch(reinterpret_cast<const void*>(kernel), grid, block, shared_bytes, stream, [=] { kernel(args...); });
#else
  kernel<<<grid, block, shared_bytes, stream>>>(args...);
#endif
}

// The block's dynamic shared memory (the launch's shared_bytes), 16-byte aligned.
template <typename T>
__device__ __forceinline__ T* dynamic_shared_memory() {
#if defined(LAYERSKIP_CUDA_EMULATOR)
  return static_cast<T*>(emulator::dynamic_shared_memory());
#else
  extern __shared__ __align__(16) unsigned char layerskip_dynamic_shared[];
  return reinterpret_cast<T*>(layerskip_dynamic_shared);
#endif
}

// Fixed-shape butterfly reductions: every lane ends with the same value and the order of additions depends only
// on the lane pattern, never on timing, so repeated runs and different batch sizes agree bit for bit.
__device__ __forceinline__ float warp_sum(float value) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) value += __shfl_xor_sync(0xffffffffu, value, offset);
  return value;
}

__device__ __forceinline__ float warp_max(float value) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) value = fmaxf(value, __shfl_xor_sync(0xffffffffu, value, offset));
  return value;
}

// Sum over a block of `kThreads` threads (a multiple of 32, ≤ 1024): warps reduce, then warp 0 adds the warp
// totals in warp order. `scratch` holds ≥ 33 floats. Every thread gets the result. Synchronizes twice.
template <int kThreads>
__device__ __forceinline__ float block_sum(float value, float* scratch) {
  static_assert(kThreads % 32 == 0 && kThreads <= 1024, "block_sum needs whole warps");
  constexpr int kWarps = kThreads / 32;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  value = warp_sum(value);
  if (lane == 0) scratch[warp] = value;
  __syncthreads();
  if (warp == 0) {
    float total = lane < kWarps ? scratch[lane] : 0.0f;
    total = warp_sum(total);
    if (lane == 0) scratch[32] = total;
  }
  __syncthreads();
  float result = scratch[32];
  __syncthreads();  // scratch may be reused right away
  return result;
}

#endif  // __CUDACC__ || LAYERSKIP_CUDA_EMULATOR

}  // namespace layerskip
