#include "thread_pool.h"

#include <algorithm>

namespace layerskip {

namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Pause iterations a worker spins before sleeping (~0.5-1 ms): longer than the gap between ops of one token.
constexpr int kSpinBeforeSleep = 1 << 13;

}  // namespace

ThreadPool::ThreadPool(int threads) {
  if (threads <= 0) threads = int(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 1; i < threads; i++) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    generation_.fetch_add(1);
  }
  wake_.notify_all();
  for (std::thread& worker : workers_) worker.join();
}

void ThreadPool::run_share(int index) {
  if (!dynamic_) {
    if (size_t(index) < chunks_) {
      size_t begin = size_t(index) * chunk_;
      (*body_)(begin, std::min(count_, begin + chunk_), index);
    }
    return;
  }
  for (size_t chunk = next_chunk_.fetch_add(1, std::memory_order_relaxed); chunk < chunks_;
       chunk = next_chunk_.fetch_add(1, std::memory_order_relaxed)) {
    size_t begin = chunk * chunk_;
    (*body_)(begin, std::min(count_, begin + chunk_), index);
  }
}

void ThreadPool::parallel_for(size_t count, size_t grain, const std::function<void(size_t, size_t, int)>& body) {
  grain = std::max<size_t>(1, grain);
  size_t target = (count + size() * kChunksPerThread - 1) / (size() * kChunksPerThread);
  dispatch(count, (target + grain - 1) / grain * grain, true, body);
}

void ThreadPool::parallel_for_static(size_t count, size_t grain,
                                     const std::function<void(size_t, size_t, int)>& body) {
  grain = std::max<size_t>(1, grain);
  size_t grains = (count + grain - 1) / grain;
  size_t per_thread = (grains + size() - 1) / size();
  dispatch(count, per_thread * grain, false, body);
}

void ThreadPool::dispatch(size_t count, size_t chunk, bool dynamic,
                          const std::function<void(size_t, size_t, int)>& body) {
  if (count == 0) return;
  chunk = std::max<size_t>(1, chunk);
  size_t chunks = (count + chunk - 1) / chunk;
  if (chunks <= 1 || size() == 1) {
    body(0, count, 0);
    return;
  }
  body_ = &body;
  count_ = count;
  chunk_ = chunk;
  chunks_ = chunks;
  dynamic_ = dynamic;
  next_chunk_.store(0, std::memory_order_relaxed);
  pending_.store(int(workers_.size()), std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_seq_cst);  // publishes the fields above
  if (sleepers_.load(std::memory_order_seq_cst) > 0) {
    std::lock_guard<std::mutex> lock(mutex_);
    wake_.notify_all();
  }
  run_share(0);
  while (pending_.load(std::memory_order_acquire) != 0) cpu_relax();
}

void ThreadPool::worker_loop(int index) {
  uint64_t seen = 0;
  while (true) {
    for (int spin = 0; spin < kSpinBeforeSleep && generation_.load(std::memory_order_acquire) == seen; spin++) {
      cpu_relax();
    }
    if (generation_.load(std::memory_order_acquire) == seen) {
      std::unique_lock<std::mutex> lock(mutex_);
      sleepers_.fetch_add(1, std::memory_order_seq_cst);
      wake_.wait(lock, [&] { return generation_.load(std::memory_order_seq_cst) != seen; });
      sleepers_.fetch_sub(1, std::memory_order_relaxed);
    }
    seen = generation_.load(std::memory_order_acquire);
    if (stopping_) return;
    run_share(index);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

}  // namespace layerskip
