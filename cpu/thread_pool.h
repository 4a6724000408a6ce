// ThreadPool: persistent workers for the CPU kernels. parallel_for hands out chunks of [0, count) from an atomic
// counter, and the caller waits for the chunks, not for the workers: a worker the OS descheduled (another process
// holds its core) misses the op and the others — the caller included — take its chunks. Kernels give the same bits
// whichever thread computes a chunk, so results never depend on timing. parallel_for_static keeps one contiguous
// range per thread for callers that keep per-thread state (the trainer's gradient buffers); it does wait for each.
// Per-token decode issues hundreds of small ops, so dispatch is lock-free on the hot path: the caller publishes an
// op word (generation, kind, chunks) that spinning workers watch; workers that spun too long sleep on a condition
// variable and are notified only when someone is asleep. Spinning yields the core every few dozen pauses, so on a
// machine with fewer free cores than threads the spinners hand their core to whoever has work.
// A late worker can never run a chunk of an op it did not read: it claims chunks with a compare-exchange on a word
// that carries the op's generation, and the caller rewrites an op's fields only after all its chunks are done.
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
  using Body = std::function<void(size_t, size_t, int)>;
  void dispatch(size_t count, size_t chunk, bool dynamic, const Body& body);
  void worker_loop(int index);
  void run_dynamic(uint64_t generation, int index);
  void run_chunk(size_t chunk, int index);

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  // The current op's fields, written by the caller before it publishes the op word; read by workers only for a
  // chunk they own (static) or claimed (dynamic), i.e. while the op is unfinished and the fields cannot change.
  std::atomic<const Body*> body_{nullptr};
  std::atomic<size_t> count_{0};
  std::atomic<size_t> chunk_{1};   // elements per chunk (a multiple of the grain)
  // (generation << 17) | (dynamic << 16) | chunks: what workers watch. Chunks < 2^16.
  std::atomic<uint64_t> op_{0};
  // Dynamic ops: (generation mod 2^32) << 32 | chunks << 16 | next chunk to claim.
  std::atomic<uint64_t> claim_{0};
  std::atomic<size_t> done_{0};    // chunks of the current op finished
  std::atomic<bool> stopping_{false};
  std::atomic<int> sleepers_{0};   // workers blocked (or about to block) on wake_
};

}  // namespace layerskip
