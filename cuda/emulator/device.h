// The CUDA device environment for kernels compiled by the host compiler under the CPU emulator.
//
// Why: this project's CUDA kernels must be trusted on machines with no GPU (CI, most sessions). The emulator
// builds cuda/*.cu as C++ and runs every CUDA thread of a block as a fiber on one OS thread, switching at
// __syncthreads, warp shuffles and mma.sync, which it implements with their documented semantics (fragment
// layouts, cp.async groups). The CUDA tests then compare these kernels with their CPU twins exactly as on a GPU.
// What it proves: indexing, tiling, fragment layouts, barriers and reductions, launch configuration and the
// host orchestration. What it cannot: timing, the hardware's own rounding inside mma and expf, and races it does
// not happen to expose (it runs blocks one at a time; the thread order alternates from block to block).
//
// Compiled with -include before everything else (cuda/cuda.cmake), so __shared__ is ours before cuda_runtime.h
// defines it: a block's __shared__ arrays become static locals, one per kernel, correct since blocks run in turn.
// Unlike dynamic shared memory (poisoned per block), these keep the previous block's values, so a read before any
// write there goes unnoticed.
#pragma once

#ifndef __shared__
#define __shared__ static
#endif

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <math.h>

#include <cstdint>
#include <cstring>
#include <functional>

#define __launch_bounds__(...)

// nvcc's cuda_runtime.h offers these for kernel pointers only when it compiles device code.
template <typename Kernel>
cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* attributes, Kernel* kernel) {
  return cudaFuncGetAttributes(attributes, reinterpret_cast<const void*>(kernel));
}
template <typename Kernel>
cudaError_t cudaFuncSetAttribute(Kernel* kernel, cudaFuncAttribute attribute, int value) {
  return cudaFuncSetAttribute(reinterpret_cast<const void*>(kernel), attribute, value);
}

extern uint3 threadIdx;
extern uint3 blockIdx;
extern dim3 blockDim;
extern dim3 gridDim;

namespace layerskip {
namespace emulator {

// Runs `body` once per thread of every block of `grid`, blocks in order; returns when all are done. Errors
// (a deadlock at a barrier, a bad configuration) are reported through cudaGetLastError, as a failed launch.
void launch(const void* kernel, dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream,
            const std::function<void()>& body);
void* dynamic_shared_memory();
// Kernel launches run so far in this process (what a GPU would see as launches: the tests count them per token).
uint64_t launch_count();

void sync_block();
void sync_warp();
// Every live lane of the warp passes its value; each gets the value of lane `source(lane)` (its own when the
// source lies outside the warp).
uint64_t warp_exchange(uint64_t value, int kind, int operand);
enum ExchangeKind { kShuffleIndex = 0, kShuffleXor = 1, kShuffleUp = 2, kShuffleDown = 3 };

enum class MmaType { kBf16, kF16 };
// mma.sync.aligned.m16n8k16.row.col.f32.{bf16,f16}: D = A·B + C with this lane's fragments (PTX ISA layout).
void mma_m16n8k16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2], MmaType type);

void cp_async16(void* shared_destination, const void* global_source, bool valid);
void cp_async_commit();
void cp_async_wait(int pending_groups);

template <typename T>
T exchange_typed(T value, int kind, int operand) {
  static_assert(sizeof(T) <= 8, "shuffles move at most 64 bits");
  uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof(T));
  bits = warp_exchange(bits, kind, operand);
  T result;
  std::memcpy(&result, &bits, sizeof(T));
  return result;
}

}  // namespace emulator
}  // namespace layerskip

// --- CUDA device built-ins, host versions ------------------------------------------------------------------------

inline void __syncthreads() { layerskip::emulator::sync_block(); }
inline void __syncwarp(unsigned = 0xffffffffu) { layerskip::emulator::sync_warp(); }

template <typename T>
T __shfl_sync(unsigned, T value, int source_lane, int = 32) {
  return layerskip::emulator::exchange_typed(value, layerskip::emulator::kShuffleIndex, source_lane);
}
template <typename T>
T __shfl_xor_sync(unsigned, T value, int lane_mask, int = 32) {
  return layerskip::emulator::exchange_typed(value, layerskip::emulator::kShuffleXor, lane_mask);
}
template <typename T>
T __shfl_up_sync(unsigned, T value, unsigned delta, int = 32) {
  return layerskip::emulator::exchange_typed(value, layerskip::emulator::kShuffleUp, int(delta));
}
template <typename T>
T __shfl_down_sync(unsigned, T value, unsigned delta, int = 32) {
  return layerskip::emulator::exchange_typed(value, layerskip::emulator::kShuffleDown, int(delta));
}

// Fibers never interleave inside a statement, so plain read-modify-write is atomic here.
inline int atomicMin(int* address, int value) { const int old = *address; if (value < old) *address = value; return old; }
inline int atomicMax(int* address, int value) { const int old = *address; if (value > old) *address = value; return old; }
inline int atomicAdd(int* address, int value) { const int old = *address; *address = old + value; return old; }
inline float atomicAdd(float* address, float value) { const float old = *address; *address = old + value; return old; }

inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }

// The _rn intrinsics: single IEEE operations that the compiler may not contract into an FMA (the emulator is
// compiled with -ffp-contract=off, so plain operators already mean that).
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline unsigned __float_as_uint(float value) { unsigned bits; std::memcpy(&bits, &value, 4); return bits; }
inline float __uint_as_float(unsigned bits) { float value; std::memcpy(&value, &bits, 4); return value; }
inline int __float_as_int(float value) { int bits; std::memcpy(&bits, &value, 4); return bits; }
inline float __int_as_float(int bits) { float value; std::memcpy(&value, &bits, 4); return value; }
