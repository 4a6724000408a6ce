// The inline PTX (and load intrinsics) the kernels use, in one place: tensor-core mma, streaming and read-only
// loads, cp.async. Under the CPU emulator (cuda/emulator/, LAYERSKIP_CUDA_EMULATOR) each has a host twin with the
// instruction's documented semantics, so the kernels that call these run unchanged in the emulated test build.
#pragma once
#include <cstdint>

#include "common.cuh"

namespace layerskip {

#if defined(LAYERSKIP_CUDA_EMULATOR)

__device__ __forceinline__ void mma_m16n8k16_bf16(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                                  uint32_t b0, uint32_t b1) {
  emulator::mma_m16n8k16(d, {a0, a1, a2, a3}, {b0, b1}, emulator::MmaType::kBf16);
}
__device__ __forceinline__ void mma_m16n8k16_f16(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                                 uint32_t b0, uint32_t b1) {
  emulator::mma_m16n8k16(d, {a0, a1, a2, a3}, {b0, b1}, emulator::MmaType::kF16);
}
__device__ __forceinline__ uint4 load_streaming(const void* address) { return *static_cast<const uint4*>(address); }
__device__ __forceinline__ uint16_t load_readonly(const uint16_t* address) { return *address; }
__device__ __forceinline__ void cp_async16(void* shared_destination, const void* global_source, bool valid) {
  emulator::cp_async16(shared_destination, global_source, valid);
}
__device__ __forceinline__ void cp_async_commit() { emulator::cp_async_commit(); }
template <int kPending>
__device__ __forceinline__ void cp_async_wait() { emulator::cp_async_wait(kPending); }

#else

// D += A · B for one warp: A 16×16 (row-major fragments a0..a3), B 16×8 (column-major b0, b1), f32 accumulators.
__device__ __forceinline__ void mma_m16n8k16_bf16(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                                  uint32_t b0, uint32_t b1) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
               "{%0,%1,%2,%3};\n"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}
__device__ __forceinline__ void mma_m16n8k16_f16(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                                 uint32_t b0, uint32_t b1) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
               "{%0,%1,%2,%3};\n"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// Streaming 16-byte load (read-only path) that does not displace activations from L1.
__device__ __forceinline__ uint4 load_streaming(const void* address) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(address));
  return v;
}

// 16-bit load through the read-only (texture) cache: small per-block parameters that many lanes and tiles reread.
__device__ __forceinline__ uint16_t load_readonly(const uint16_t* address) { return __ldg(address); }

// Asynchronous 16-byte global → shared copy; !valid writes 16 zero bytes and reads nothing.
__device__ __forceinline__ void cp_async16(void* shared_destination, const void* global_source, bool valid) {
  const unsigned destination = static_cast<unsigned>(__cvta_generic_to_shared(shared_destination));
  const int source_bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(destination), "l"(global_source),
               "r"(source_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
// Waits until at most kPending of this thread's committed groups are still in flight.
template <int kPending>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending)); }

#endif

}  // namespace layerskip
