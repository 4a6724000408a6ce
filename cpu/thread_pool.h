// ThreadPool: persistent workers for the CPU kernels. parallel_for hands out chunks of [0, count) from an atomic
// counter, so a thread that the OS descheduled (a busy or shared machine) delays only the chunk it holds while the
// others take the rest; the calling thread works too. Kernels give the same bits whichever thread computes a chunk,
// so results never depend on timing. parallel_for_static keeps one contiguous range per thread for callers that
// keep per-thread state (the trainer's gradient buffers).
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

  // Calls body(begin, end, thread_index) over chunks of [0, count), each a multiple of `grain` long except the
  // last (about kChunksPerThread per thread), taken dynamically; a thread may run several. Returns when all are done.
  void parallel_for(size_t count, size_t grain, const std::function<void(size_t, size_t, int)>& body);

  // Calls body(begin, end, thread_index) once per thread over a partition of [0, count) into at most size()
  // contiguous ranges, each a multiple of `grain` long except the last; range i goes to thread i.
  void parallel_for_static(size_t count, size_t grain, const std::function<void(size_t, size_t, int)>& body);

  // Chunks per thread that parallel_for aims for: enough that a stalled thread's share can be taken over, few
  // enough that each chunk streams a long run of weights.
  static constexpr size_t kChunksPerThread = 4;

 private:
  void dispatch(size_t count, size_t chunk, bool dynamic, const std::function<void(size_t, size_t, int)>& body);
  void worker_loop(int index);
  void run_share(int index);

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  // The current op; written by the caller before it publishes a new generation.
  const std::function<void(size_t, size_t, int)>* body_ = nullptr;
  size_t count_ = 0;
  size_t chunk_ = 1;          // elements per chunk (a multiple of the grain)
  size_t chunks_ = 0;         // chunks in [0, count_)
  bool dynamic_ = false;      // chunks from next_chunk_, or chunk i to thread i
  std::atomic<size_t> next_chunk_{0};
  bool stopping_ = false;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};   // workers yet to finish the current generation
  std::atomic<int> sleepers_{0};  // workers blocked (or about to block) on wake_
};

}  // namespace layerskip
