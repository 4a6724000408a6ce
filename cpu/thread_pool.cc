#include "thread_pool.h"

#include <sched.h>

#include <algorithm>

#include "../core/available_cores.h"

namespace layerskip {

namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Pause iterations a worker spins before sleeping (~0.5-1 ms): longer than the gap between ops of one token.
constexpr int kSpinBeforeSleep = 1 << 13;
// Spinners call sched_yield() every this many pauses: free when the core is idle, and it hands the core over when
// another thread (this process's caller, or another process) is waiting for it.
constexpr int kPausesPerYield = 64;
constexpr size_t kMaxChunks = 0xFFFF;

constexpr uint64_t op_word(uint64_t generation, bool dynamic, size_t chunks) {
  return generation << 17 | uint64_t(dynamic) << 16 | chunks;
}
constexpr uint64_t op_generation(uint64_t op) { return op >> 17; }
constexpr bool op_dynamic(uint64_t op) { return (op >> 16) & 1; }
constexpr size_t op_chunks(uint64_t op) { return op & 0xFFFF; }

constexpr uint64_t claim_word(uint64_t generation, size_t chunks, size_t next) {
  return (generation & 0xFFFFFFFFull) << 32 | uint64_t(chunks) << 16 | next;
}

inline void spin_pause(int spin) {
  if (spin % kPausesPerYield == kPausesPerYield - 1) {
    sched_yield();
  } else {
    cpu_relax();
  }
}

}  // namespace

ThreadPool::ThreadPool(int threads) {
  if (threads <= 0) threads = available_cores();
  for (int i = 1; i < threads; i++) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_.store(true);
    op_.store(op_word(op_generation(op_.load()) + 1, false, 0));
  }
  wake_.notify_all();
  for (std::thread& worker : workers_) worker.join();
}

void ThreadPool::run_chunk(size_t chunk, int index) {
  const size_t size = chunk_.load(std::memory_order_relaxed);
  const size_t begin = chunk * size;
  (*body_.load(std::memory_order_relaxed))(begin, std::min(count_.load(std::memory_order_relaxed), begin + size), index);
  done_.fetch_add(1, std::memory_order_release);
}

// Claims and runs chunks of op `generation` until none is left (or a newer op replaced it).
void ThreadPool::run_dynamic(uint64_t generation, int index) {
  uint64_t claim = claim_.load(std::memory_order_acquire);
  while (true) {
    const size_t chunks = (claim >> 16) & 0xFFFF, next = claim & 0xFFFF;
    if ((claim >> 32) != (generation & 0xFFFFFFFFull) || next >= chunks) return;
    if (claim_.compare_exchange_weak(claim, claim + 1, std::memory_order_acq_rel, std::memory_order_acquire)) {
      run_chunk(next, index);
      claim = claim_.load(std::memory_order_acquire);
    }
  }
}

void ThreadPool::parallel_for(size_t count, size_t grain, const Body& body) {
  grain = std::max<size_t>(1, grain);
  size_t target = (count + size() * kChunksPerThread - 1) / (size() * kChunksPerThread);
  dispatch(count, (target + grain - 1) / grain * grain, true, body);
}

void ThreadPool::parallel_for_static(size_t count, size_t grain, const Body& body) {
  grain = std::max<size_t>(1, grain);
  size_t grains = (count + grain - 1) / grain;
  size_t per_thread = (grains + size() - 1) / size();
  dispatch(count, per_thread * grain, false, body);
}

void ThreadPool::dispatch(size_t count, size_t chunk, bool dynamic, const Body& body) {
  if (count == 0) return;
  chunk = std::max<size_t>(1, chunk);
  if ((count + chunk - 1) / chunk > kMaxChunks) chunk = (count + kMaxChunks - 1) / kMaxChunks;
  const size_t chunks = (count + chunk - 1) / chunk;
  if (chunks <= 1 || size() == 1) {
    body(0, count, 0);
    return;
  }
  body_.store(&body, std::memory_order_relaxed);
  count_.store(count, std::memory_order_relaxed);
  chunk_.store(chunk, std::memory_order_relaxed);
  done_.store(0, std::memory_order_relaxed);
  const uint64_t generation = op_generation(op_.load(std::memory_order_relaxed)) + 1;
  if (dynamic) claim_.store(claim_word(generation, chunks, 0), std::memory_order_release);
  op_.store(op_word(generation, dynamic, chunks), std::memory_order_seq_cst);  // publishes the fields above
  if (sleepers_.load(std::memory_order_seq_cst) > 0) {
    std::lock_guard<std::mutex> lock(mutex_);
    wake_.notify_all();
  }
  if (dynamic) {
    run_dynamic(generation, 0);
  } else {
    run_chunk(0, 0);
  }
  // Wait for the chunks (not the workers): with dynamic ops only chunks claimed by a running worker are left.
  for (int spin = 0; done_.load(std::memory_order_acquire) < chunks; spin++) spin_pause(spin);
}

void ThreadPool::worker_loop(int index) {
  uint64_t seen = 0;
  while (true) {
    uint64_t op = op_.load(std::memory_order_acquire);
    for (int spin = 0; spin < kSpinBeforeSleep && op == seen; spin++) {
      spin_pause(spin);
      op = op_.load(std::memory_order_acquire);
    }
    if (op == seen) {
      std::unique_lock<std::mutex> lock(mutex_);
      sleepers_.fetch_add(1, std::memory_order_seq_cst);
      wake_.wait(lock, [&] { return op_.load(std::memory_order_seq_cst) != seen; });
      sleepers_.fetch_sub(1, std::memory_order_relaxed);
      op = op_.load(std::memory_order_acquire);
    }
    seen = op;
    if (stopping_.load()) return;
    if (op_dynamic(op)) {
      run_dynamic(op_generation(op), index);
    } else if (size_t(index) < op_chunks(op)) {
      run_chunk(size_t(index), index);  // the caller waits for this chunk, so the op's fields stay put
    }
  }
}

}  // namespace layerskip
