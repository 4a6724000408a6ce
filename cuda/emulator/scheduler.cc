// The emulator's execution model: a launch runs its blocks one after another; a block's threads are fibers
// (fiber.h) on the calling OS thread. A fiber runs until it reaches a barrier — __syncthreads, or a warp
// collective (shuffle, __syncwarp, mma.sync) — and the scheduler moves on to the next runnable fiber. The last
// thread to arrive releases the barrier; for a warp collective it also computes every lane's result from all
// lanes' inputs, which is how shuffles and mma fragments travel between lanes. Threads that have exited no
// longer count at barriers (as on sm_70+). A pass in which no fiber can run is a deadlock and fails the launch.
//
// To expose missing barriers, the thread order within a block alternates (ascending, descending) from block to
// block; dynamic shared memory starts every block filled with 0xFF bytes (NaN as float and bf16).
#include <sys/mman.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "device.h"
#include "fiber.h"
#include "runtime_state.h"

uint3 threadIdx;
uint3 blockIdx;
dim3 blockDim;
dim3 gridDim;

namespace layerskip {
namespace emulator {

namespace {

constexpr size_t kStackBytes = 128 * 1024;
constexpr int kWarpSize = 32;

enum class Wait { kNone, kBlock, kWarp };
enum class Collective { kNone, kSync, kExchange, kMma };

struct PendingCopy {
  void* destination;
  const void* source;
  bool valid;
};

// A fiber's stack, mapped with a PROT_NONE guard page below it: an overflow faults instead of corrupting the heap.
class FiberStack {
 public:
  static constexpr size_t kGuardBytes = 4096;
  FiberStack() = default;
  FiberStack(FiberStack&& other) noexcept : mapping_(std::exchange(other.mapping_, nullptr)) {}
  FiberStack& operator=(FiberStack&& other) noexcept {
    std::swap(mapping_, other.mapping_);
    return *this;
  }
  ~FiberStack() {
    if (mapping_ != nullptr) munmap(mapping_, kGuardBytes + kStackBytes);
  }
  // The usable kStackBytes, mapped on first use.
  char* get() {
    if (mapping_ == nullptr) {
      void* mapping = mmap(nullptr, kGuardBytes + kStackBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                           -1, 0);
      if (mapping == MAP_FAILED) throw std::bad_alloc();
      mprotect(mapping, kGuardBytes, PROT_NONE);
      mapping_ = mapping;
    }
    return static_cast<char*>(mapping_) + kGuardBytes;
  }

 private:
  void* mapping_ = nullptr;
};

struct Fiber {
  FiberContext context;
  FiberStack stack;
  uint3 thread;
  int warp = 0, lane = 0;
  bool done = false;
  Wait wait = Wait::kNone;
  uint64_t wait_generation = 0;
  std::vector<PendingCopy> copies;  // cp.async issued and not yet performed, oldest first
  std::vector<size_t> group_ends;   // copies.size() at each commit_group, oldest first
};

struct WarpState {
  int live = 0, arrived = 0;
  uint64_t generation = 0;
  Collective op = Collective::kNone;
  int kind = 0;
  int operand[kWarpSize] = {};  // per lane: a shuffle's source lane, xor mask or delta
  MmaType mma_type = MmaType::kBf16;
  bool present[kWarpSize] = {};
  uint64_t in[kWarpSize] = {}, out[kWarpSize] = {};
  uint32_t a[kWarpSize][4] = {}, b[kWarpSize][2] = {};
  float c[kWarpSize][4] = {}, d[kWarpSize][4] = {};
};

struct BlockState {
  int threads = 0, live = 0;
  int arrived = 0;
  uint64_t generation = 0;
  std::vector<WarpState> warps;
  std::vector<uint4> shared;  // dynamic shared memory, 16-byte aligned
  int current = -1;
  std::string error;
  const std::function<void()>* body = nullptr;
};

FiberContext scheduler_context;
std::vector<Fiber> fibers;  // the pool; the first `threads` belong to the running block
BlockState* block = nullptr;
std::atomic<uint64_t> launches{0};

Fiber& current_fiber() { return fibers[size_t(block->current)]; }

void yield_to_scheduler() { fiber_switch(&current_fiber().context, &scheduler_context); }

// Fails the running block: the scheduler stops at its next turn and the fiber is never resumed.
[[noreturn]] void fail(const std::string& message) {
  if (block->error.empty()) block->error = message;
  for (;;) yield_to_scheduler();
}

std::string thread_name(const Fiber& fiber) {
  return "thread (" + std::to_string(fiber.thread.x) + "," + std::to_string(fiber.thread.y) + "," +
         std::to_string(fiber.thread.z) + ") of block (" + std::to_string(blockIdx.x) + "," +
         std::to_string(blockIdx.y) + "," + std::to_string(blockIdx.z) + ")";
}

// --- tensor-core fragments (PTX ISA, mma.m16n8k16 with .bf16/.f16 A/B and .f32 C/D) ------------------------------
// Lane = 4·groupID + threadID_in_group. A (16×16, row): register r of a lane holds the two elements at
// row groupID + 8·(r & 1), columns 2·threadID + 8·(r >> 1) + {0, 1} (low half first). B (16×8, col): register r
// holds rows 2·threadID + 8·r + {0, 1} of column groupID. C/D (16×8): element i sits at row groupID + 8·(i >> 1),
// column 2·threadID + (i & 1).

float half_to_float(uint32_t bits, MmaType type) {
  bits &= 0xffffu;
  if (type == MmaType::kBf16) return __uint_as_float(bits << 16);
  __half_raw raw;
  raw.x = uint16_t(bits);
  return __half2float(__half(raw));
}

float a_element(const WarpState& warp, int row, int k) {
  const int lane = 4 * (row % 8) + (k % 8) / 2;
  const int reg = (row >= 8 ? 1 : 0) + (k >= 8 ? 2 : 0);
  return half_to_float(warp.a[lane][reg] >> (16 * (k & 1)), warp.mma_type);
}

float b_element(const WarpState& warp, int k, int col) {
  const int lane = 4 * col + (k % 8) / 2;
  const int reg = k >= 8 ? 1 : 0;
  return half_to_float(warp.b[lane][reg] >> (16 * (k & 1)), warp.mma_type);
}

// Products of 16-bit floats are exact in double, and so is their 16-term sum here; one rounding to f32 at the end.
void compute_mma(WarpState& warp) {
  for (int lane = 0; lane < kWarpSize; lane++) {
    const int group = lane >> 2, thread = lane & 3;
    for (int i = 0; i < 4; i++) {
      const int row = group + 8 * (i >> 1), col = 2 * thread + (i & 1);
      double sum = warp.c[lane][i];
      for (int k = 0; k < 16; k++) sum += double(a_element(warp, row, k)) * double(b_element(warp, k, col));
      warp.d[lane][i] = float(sum);
    }
  }
}

int exchange_source(int lane, int kind, int operand) {
  switch (kind) {
    case kShuffleIndex: return operand & (kWarpSize - 1);
    case kShuffleXor: return lane ^ operand;
    case kShuffleUp: return lane - operand >= 0 ? lane - operand : lane;
    case kShuffleDown: return lane + operand < kWarpSize ? lane + operand : lane;
  }
  return lane;
}

// The last lane to arrive computes the collective's results for every lane that took part.
void release_warp(WarpState& warp, int warp_index) {
  if (warp.op == Collective::kExchange) {
    for (int lane = 0; lane < kWarpSize; lane++) {
      if (!warp.present[lane]) continue;
      const int source = exchange_source(lane, warp.kind, warp.operand[lane]);
      if (source < 0 || source >= kWarpSize || !warp.present[source]) {
        block->error = "warp " + std::to_string(warp_index) + ": lane " + std::to_string(lane) +
                       " shuffles from lane " + std::to_string(source) + ", which did not take part";
        return;
      }
      warp.out[lane] = warp.in[source];
    }
  } else if (warp.op == Collective::kMma) {
    for (int lane = 0; lane < kWarpSize; lane++) {
      if (!warp.present[lane]) {
        block->error = "warp " + std::to_string(warp_index) + ": mma.sync without lane " + std::to_string(lane);
        return;
      }
    }
    compute_mma(warp);
  }
  warp.generation++;
  warp.arrived = 0;
  warp.op = Collective::kNone;
}

void release_block() {
  block->generation++;
  block->arrived = 0;
}

// Arrival at a warp collective; returns once every live lane of the warp has arrived.
void warp_arrive(Collective op, int kind, int operand) {
  Fiber& fiber = current_fiber();
  WarpState& warp = block->warps[size_t(fiber.warp)];
  if (warp.arrived == 0) {
    warp.op = op;
    warp.kind = kind;
    for (bool& present : warp.present) present = false;
  } else if (warp.op != op || warp.kind != kind) {
    fail("divergent warp collective in warp " + std::to_string(fiber.warp) + ": " + thread_name(fiber) +
         " joined a different shuffle/mma/syncwarp than its lanes");
  }
  warp.present[fiber.lane] = true;
  warp.operand[fiber.lane] = operand;
  if (++warp.arrived == warp.live) {
    release_warp(warp, fiber.warp);
    if (!block->error.empty()) fail(block->error);
    return;
  }
  fiber.wait = Wait::kWarp;
  fiber.wait_generation = warp.generation;
  yield_to_scheduler();
  if (!block->error.empty()) fail(block->error);
}

void thread_exited(Fiber& fiber) {
  fiber.done = true;
  block->live--;
  WarpState& warp = block->warps[size_t(fiber.warp)];
  warp.live--;
  if (block->arrived > 0 && block->arrived == block->live) release_block();
  if (warp.arrived > 0 && warp.arrived == warp.live) release_warp(warp, fiber.warp);
}

void fiber_main() {
  (*block->body)();
  thread_exited(current_fiber());
  yield_to_scheduler();  // never resumed: the thread is done
}

bool runnable(const Fiber& fiber) {
  if (fiber.done) return false;
  switch (fiber.wait) {
    case Wait::kNone: return true;
    case Wait::kBlock: return block->generation != fiber.wait_generation;
    case Wait::kWarp: return block->warps[size_t(fiber.warp)].generation != fiber.wait_generation;
  }
  return false;
}

std::string describe_deadlock() {
  int at_block = 0, at_warp = 0;
  for (int i = 0; i < block->threads; i++) {
    if (fibers[size_t(i)].done) continue;
    (fibers[size_t(i)].wait == Wait::kBlock ? at_block : at_warp)++;
  }
  return "deadlock in block (" + std::to_string(blockIdx.x) + "," + std::to_string(blockIdx.y) + "," +
         std::to_string(blockIdx.z) + "): " + std::to_string(at_block) + " threads wait at __syncthreads and " +
         std::to_string(at_warp) + " at a warp collective that the other threads never reach";
}

void run_block(BlockState& state, bool reverse) {
  const int threads = state.threads;
  if (fibers.size() < size_t(threads)) fibers.resize(size_t(threads));
  // Warp state is reused from block to block (it is large); only the counters need resetting.
  state.warps.resize(size_t((threads + kWarpSize - 1) / kWarpSize));
  for (WarpState& warp : state.warps) {
    warp.live = warp.arrived = 0;
    warp.op = Collective::kNone;
  }
  for (int i = 0; i < threads; i++) {
    Fiber& fiber = fibers[size_t(i)];
    fiber.thread = make_uint3(unsigned(i) % blockDim.x, unsigned(i) / blockDim.x % blockDim.y,
                              unsigned(i) / (blockDim.x * blockDim.y));
    fiber.warp = i / kWarpSize;
    fiber.lane = i % kWarpSize;
    fiber.done = false;
    fiber.wait = Wait::kNone;
    fiber.copies.clear();
    fiber.group_ends.clear();
    state.warps[size_t(fiber.warp)].live++;
    // Stack tops staggered by 64-byte lines: equal offsets would alias in the cache across 256 fibers.
    fiber_prepare(&fiber.context, fiber.stack.get(), kStackBytes - size_t(i % 61) * 64, fiber_main);
  }
  while (state.live > 0 && state.error.empty()) {
    bool progressed = false;
    for (int step = 0; step < threads && state.error.empty(); step++) {
      const int i = reverse ? threads - 1 - step : step;
      Fiber& fiber = fibers[size_t(i)];
      if (!runnable(fiber)) continue;
      fiber.wait = Wait::kNone;
      state.current = i;
      threadIdx = fiber.thread;
      fiber_switch(&scheduler_context, &fiber.context);
      progressed = true;
    }
    if (!progressed && state.error.empty()) state.error = describe_deadlock();
  }
}

}  // namespace

void launch(const void* kernel, dim3 grid, dim3 block_dim, size_t shared_bytes, cudaStream_t,
            const std::function<void()>& body) {
  // One launch at a time process-wide: the built-ins (threadIdx, …) and the fiber pool are global.
  static std::mutex launch_mutex;
  std::lock_guard<std::mutex> lock(launch_mutex);
  const size_t threads = size_t(block_dim.x) * block_dim.y * block_dim.z;
  std::string problem;
  if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.y > 65535 || grid.z > 65535 || grid.x > 0x7fffffffu) {
    problem = "grid (" + std::to_string(grid.x) + "," + std::to_string(grid.y) + "," + std::to_string(grid.z) +
              ") is outside the device limits";
  } else if (threads == 0 || threads > 1024 || block_dim.x > 1024 || block_dim.y > 1024 || block_dim.z > 64) {
    problem = "block of " + std::to_string(threads) + " threads is outside the device limits";
  } else if (shared_bytes > max_dynamic_shared_bytes(kernel)) {
    problem = std::to_string(shared_bytes) + " bytes of dynamic shared memory exceed the kernel's limit of " +
              std::to_string(max_dynamic_shared_bytes(kernel)) + " (cudaFuncSetAttribute raises it to " +
              std::to_string(kMaxOptInSharedBytes) + ")";
  }
  if (!problem.empty()) {
    record_launch_failure(cudaErrorInvalidConfiguration, problem);
    return;
  }

  launches++;
  // The thread order alternates from block to block, and a kernel's successive launches start on alternate orders,
  // so even a one-block kernel is run both ways.
  static std::unordered_map<const void*, uint64_t> launches_per_kernel;
  uint64_t order_parity = launches_per_kernel[kernel]++;
  gridDim = grid;
  blockDim = block_dim;
  static BlockState state;  // reused: its warp state keeps its allocation
  // Exactly the launch's dynamic shared memory, so a kernel indexing past it is caught under AddressSanitizer.
  state.shared = std::vector<uint4>((shared_bytes + 15) / 16);
  for (unsigned z = 0; z < grid.z; z++) {
    for (unsigned y = 0; y < grid.y; y++) {
      for (unsigned x = 0; x < grid.x; x++) {
        state.threads = int(threads);
        state.live = int(threads);
        state.arrived = 0;
        state.current = -1;
        state.error.clear();
        state.body = &body;
        std::memset(state.shared.data(), 0xff, state.shared.size() * sizeof(uint4));
        blockIdx = make_uint3(x, y, z);
        block = &state;
        run_block(state, (order_parity++ & 1) != 0);
        block = nullptr;
        if (!state.error.empty()) {
          record_launch_failure(cudaErrorLaunchFailure, state.error);
          return;
        }
      }
    }
  }
}

void* dynamic_shared_memory() { return block->shared.data(); }

uint64_t launch_count() { return launches.load(); }

void sync_block() {
  Fiber& fiber = current_fiber();
  if (++block->arrived == block->live) {
    release_block();
    return;
  }
  fiber.wait = Wait::kBlock;
  fiber.wait_generation = block->generation;
  yield_to_scheduler();
  if (!block->error.empty()) fail(block->error);
}

void sync_warp() { warp_arrive(Collective::kSync, 0, 0); }

uint64_t warp_exchange(uint64_t value, int kind, int operand) {
  Fiber& fiber = current_fiber();
  WarpState& warp = block->warps[size_t(fiber.warp)];
  warp.in[fiber.lane] = value;  // safe: the previous exchange's inputs were consumed at its release
  warp_arrive(Collective::kExchange, kind, operand);
  return warp.out[fiber.lane];
}

void mma_m16n8k16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2], MmaType type) {
  Fiber& fiber = current_fiber();
  WarpState& warp = block->warps[size_t(fiber.warp)];
  for (int i = 0; i < 4; i++) warp.a[fiber.lane][i] = a[i];
  for (int i = 0; i < 2; i++) warp.b[fiber.lane][i] = b[i];
  for (int i = 0; i < 4; i++) warp.c[fiber.lane][i] = d[i];
  warp.mma_type = type;
  warp_arrive(Collective::kMma, int(type), 0);
  for (int i = 0; i < 4; i++) d[i] = warp.d[fiber.lane][i];
}

// cp.async: copies wait in the issuing thread's queue until a cp.async.wait_group lets them land — the latest
// moment the hardware may complete them, so a kernel that reads a stage before waiting sees stale bytes.
void cp_async16(void* shared_destination, const void* global_source, bool valid) {
  current_fiber().copies.push_back({shared_destination, global_source, valid});
}

void cp_async_commit() {
  Fiber& fiber = current_fiber();
  fiber.group_ends.push_back(fiber.copies.size());
}

void cp_async_wait(int pending_groups) {
  Fiber& fiber = current_fiber();
  const int groups = int(fiber.group_ends.size());
  if (groups <= pending_groups) return;
  const size_t landed = fiber.group_ends[size_t(groups - pending_groups - 1)];
  for (size_t i = 0; i < landed; i++) {
    const PendingCopy& copy = fiber.copies[i];
    if (copy.valid) std::memcpy(copy.destination, copy.source, 16);
    else std::memset(copy.destination, 0, 16);
  }
  fiber.copies.erase(fiber.copies.begin(), fiber.copies.begin() + std::ptrdiff_t(landed));
  fiber.group_ends.erase(fiber.group_ends.begin(), fiber.group_ends.begin() + (groups - pending_groups));
  for (size_t& end : fiber.group_ends) end -= landed;
}

}  // namespace emulator
}  // namespace layerskip
