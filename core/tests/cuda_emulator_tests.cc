// The CUDA emulator's own semantics, checked against their definitions rather than against our kernels: the mma
// fragment layout element by element as the PTX ISA tabulates it, shuffle sources, cp.async landing only at
// wait_group, barrier deadlocks and launch limits reported as failed launches, device-copy bounds.
// Compiled only in emulator builds (cmake -DLAYERSKIP_CUDA_EMULATOR=ON).
#if defined(LAYERSKIP_CUDA_EMULATOR)

#include <cmath>
#include <random>
#include <vector>

#include "../../cuda/emulator/device.h"
#include "test_framework.h"

namespace layerskip {
namespace {

void run(dim3 grid, dim3 block, size_t shared_bytes, const std::function<void()>& body) {
  static const int kernel_identity = 0;  // stands in for a kernel pointer (shared-memory limits are per kernel)
  emulator::launch(&kernel_identity, grid, block, shared_bytes, nullptr, body);
}

uint16_t to_bf16_bits(float value) { return __bfloat16_as_ushort(__float2bfloat16_rn(value)); }
float from_bf16_bits(uint16_t bits) { return __uint_as_float(uint32_t(bits) << 16); }

// PTX ISA, "Matrix Fragments for mma.m16n8k16 with floating point type": element i of a lane's fragment.
//   A (a0..a7): row = groupID for i in {0,1,4,5}, else groupID + 8; col = 2·threadID_in_group + (i & 1), + 8 if i ≥ 4
//   B (b0..b3): row = 2·threadID_in_group + (i & 1), + 8 if i ≥ 2; col = groupID
//   C (c0..c3): row = groupID for i < 2, else groupID + 8; col = 2·threadID_in_group + (i & 1)
// Registers hold consecutive elements, low half first: register r = elements 2r, 2r + 1.
TEST(cuda_emulator_mma_matches_the_ptx_fragment_layout) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  float a[16][16], b[16][8], c[16][8];
  for (auto& row : a) for (float& v : row) v = from_bf16_bits(to_bf16_bits(dist(rng)));
  for (auto& row : b) for (float& v : row) v = from_bf16_bits(to_bf16_bits(dist(rng)));
  for (auto& row : c) for (float& v : row) v = dist(rng);
  float d[16][8];
  for (float& v : d[0]) v = NAN;
  run(dim3(1), dim3(32), 0, [&] {
    const int lane = int(threadIdx.x), group = lane >> 2, thread = lane & 3;
    uint32_t a_regs[4] = {}, b_regs[2] = {};
    for (int i = 0; i < 8; i++) {
      const int row = (i == 0 || i == 1 || i == 4 || i == 5) ? group : group + 8;
      const int col = 2 * thread + (i & 1) + (i >= 4 ? 8 : 0);
      a_regs[i / 2] |= uint32_t(to_bf16_bits(a[row][col])) << (16 * (i & 1));
    }
    for (int i = 0; i < 4; i++) {
      const int row = 2 * thread + (i & 1) + (i >= 2 ? 8 : 0);
      b_regs[i / 2] |= uint32_t(to_bf16_bits(b[row][group])) << (16 * (i & 1));
    }
    float acc[4];
    for (int i = 0; i < 4; i++) acc[i] = c[i < 2 ? group : group + 8][2 * thread + (i & 1)];
    emulator::mma_m16n8k16(acc, a_regs, b_regs, emulator::MmaType::kBf16);
    for (int i = 0; i < 4; i++) d[i < 2 ? group : group + 8][2 * thread + (i & 1)] = acc[i];
  });
  CHECK_EQ(int(cudaGetLastError()), int(cudaSuccess));
  for (int row = 0; row < 16; row++) {
    for (int col = 0; col < 8; col++) {
      double expected = c[row][col];
      for (int k = 0; k < 16; k++) expected += double(a[row][k]) * double(b[k][col]);
      CHECK_EQ(d[row][col], float(expected));
    }
  }
}

TEST(cuda_emulator_shuffles_read_the_documented_lane) {
  std::vector<int> xor_result(64), up_result(64), down_result(64), index_result(64);
  run(dim3(1), dim3(64), 0, [&] {
    const int t = int(threadIdx.x), lane = t & 31;
    xor_result[size_t(t)] = __shfl_xor_sync(0xffffffffu, t, 5);
    up_result[size_t(t)] = __shfl_up_sync(0xffffffffu, t, 3);
    down_result[size_t(t)] = __shfl_down_sync(0xffffffffu, t, 3);
    index_result[size_t(t)] = __shfl_sync(0xffffffffu, t, 31 - lane);
  });
  for (int t = 0; t < 64; t++) {
    const int lane = t & 31, warp_base = t - lane;
    CHECK_EQ(xor_result[size_t(t)], warp_base + (lane ^ 5));
    CHECK_EQ(up_result[size_t(t)], lane >= 3 ? t - 3 : t);
    CHECK_EQ(down_result[size_t(t)], lane + 3 < 32 ? t + 3 : t);
    CHECK_EQ(index_result[size_t(t)], warp_base + 31 - lane);
  }
}

TEST(cuda_emulator_syncthreads_orders_shared_memory) {
  // Each thread writes its slot, syncs, then reads its neighbour's: only correct if every write precedes every read.
  std::vector<int> seen(256, -1);
  run(dim3(3), dim3(256), 256 * sizeof(int), [&] {
    int* slots = static_cast<int*>(emulator::dynamic_shared_memory());
    const int t = int(threadIdx.x);
    slots[t] = t + 1000 * int(blockIdx.x);
    __syncthreads();
    if (blockIdx.x == 2) seen[size_t(t)] = slots[(t + 1) % 256];
  });
  for (int t = 0; t < 256; t++) CHECK_EQ(seen[size_t(t)], (t + 1) % 256 + 2000);
}

TEST(cuda_emulator_cp_async_lands_only_at_wait_group) {
  alignas(16) static float source[4] = {1.0f, 2.0f, 3.0f, 4.0f};
  float before = 0.0f, after_first = 0.0f, after_all = 0.0f, second_before = 0.0f;
  run(dim3(1), dim3(32), 64, [&] {
    float* stage = static_cast<float*>(emulator::dynamic_shared_memory());
    if (threadIdx.x != 0) return;
    emulator::cp_async16(stage, source, true);
    emulator::cp_async_commit();
    emulator::cp_async16(stage + 4, source, false);  // zero fill
    emulator::cp_async_commit();
    before = stage[0];
    emulator::cp_async_wait(1);  // the older group lands, the newer may still be in flight
    after_first = stage[0];
    second_before = stage[4];
    emulator::cp_async_wait(0);
    after_all = stage[4];
  });
  CHECK(std::isnan(before));  // dynamic shared memory starts as 0xFF bytes
  CHECK_EQ(after_first, 1.0f);
  CHECK(std::isnan(second_before));
  CHECK_EQ(after_all, 0.0f);
}

TEST(cuda_emulator_reports_deadlock_and_bad_launches) {
  std::printf("    (three launch failures expected next)\n");
  std::fflush(stdout);
  cudaGetLastError();
  run(dim3(1), dim3(64), 0, [&] {
    // Lane 0 waits at the block barrier, lanes 1-31 of its warp at __syncwarp for lane 0: neither can complete.
    if (threadIdx.x == 0) __syncthreads();
    else __syncwarp();
  });
  CHECK_EQ(int(cudaGetLastError()), int(cudaErrorLaunchFailure));

  int runs = 0;
  run(dim3(1), dim3(2048), 0, [&] { runs++; });
  CHECK_EQ(int(cudaGetLastError()), int(cudaErrorInvalidConfiguration));
  CHECK_EQ(runs, 0);

  static const int big_kernel = 0;
  emulator::launch(&big_kernel, dim3(1), dim3(32), 64 * 1024, nullptr, [&] { runs++; });
  CHECK_EQ(int(cudaGetLastError()), int(cudaErrorInvalidConfiguration));
  CHECK_EQ(int(cudaFuncSetAttribute(&big_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 64 * 1024)),
           int(cudaSuccess));
  emulator::launch(&big_kernel, dim3(1), dim3(32), 64 * 1024, nullptr, [&] { runs++; });
  CHECK_EQ(int(cudaGetLastError()), int(cudaSuccess));
  CHECK_EQ(runs, 32);
}

TEST(cuda_emulator_device_copies_stay_inside_allocations) {
  std::printf("    (two refused copies expected next)\n");
  std::fflush(stdout);
  void* device = nullptr;
  CHECK_EQ(int(cudaMalloc(&device, 100)), int(cudaSuccess));
  std::vector<char> host(200, 1);
  CHECK_EQ(int(cudaMemcpy(device, host.data(), 100, cudaMemcpyHostToDevice)), int(cudaSuccess));
  CHECK_EQ(int(cudaMemcpy(device, host.data(), 101, cudaMemcpyHostToDevice)), int(cudaErrorInvalidValue));
  CHECK_EQ(int(cudaMemcpy(host.data(), host.data() + 100, 10, cudaMemcpyDeviceToHost)), int(cudaErrorInvalidValue));
  cudaGetLastError();
  CHECK_EQ(int(cudaFree(device)), int(cudaSuccess));
}

}  // namespace
}  // namespace layerskip

#endif  // LAYERSKIP_CUDA_EMULATOR
