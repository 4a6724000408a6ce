// ThreadPool: persistent workers for the CPU kernels. parallel_for splits [0, count) into one contiguous range per
// thread (static partition, so results never depend on timing) and the calling thread takes the first range.
// Per-token decode issues hundreds of small ops, so dispatch is lock-free on the hot path: the caller bumps a
// generation counter that spinning workers watch; workers that spun too long sleep on a condition variable and are
// notified only when someone is actually asleep. Every worker acknowledges every generation, so a slow worker can
// never mix up the parameters of two consecutive ops.
#pragma once
#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace layerskip {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);  // threads ≤ 0: one per core
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return int(workers_.size()) + 1; }

  // Calls body(begin, end, thread_index) over a partition of [0, count) into at most size() ranges, each a
  // multiple of `grain` long except the last. Returns when all ranges are done.
  void parallel_for(size_t count, size_t grain, const std::function<void(size_t, size_t, int)>& body);

 private:
  void worker_loop(int index);
  void run_range(int index);

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  // The current op; written by the caller before it publishes a new generation.
  const std::function<void(size_t, size_t, int)>* body_ = nullptr;
  size_t count_ = 0;
  size_t grain_ = 1;
  int active_ranges_ = 0;
  bool stopping_ = false;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};   // workers yet to finish the current generation
  std::atomic<int> sleepers_{0};  // workers blocked (or about to block) on wake_
};

}  // namespace layerskip
