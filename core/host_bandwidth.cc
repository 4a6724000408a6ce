// The read-bandwidth probe: several read patterns over one buffer, the best one wins, so the roofline is never
// flattered by a probe that reads worse than the kernels do.
#include "host_bandwidth.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "../cpu/cpu_features.h"
#include "../cpu/matmul.h"
#include "../cpu/thread_pool.h"
#include "available_cores.h"

namespace layerskip {

namespace {

// Sums `count` words as `kStreams` interleaved streams (sub-ranges read side by side).
template <int kStreams>
uint64_t sum_words(const uint64_t* data, size_t count) {
  size_t per_stream = count / kStreams;
  uint64_t lanes[kStreams] = {};
  for (size_t i = 0; i < per_stream; i++) {
    for (int j = 0; j < kStreams; j++) lanes[j] += data[j * per_stream + i];
  }
  for (size_t i = per_stream * kStreams; i < count; i++) lanes[0] += data[i];
  uint64_t total = 0;
  for (uint64_t lane : lanes) total += lane;
  return total;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

double measure_host_read_bandwidth(int threads, size_t bytes, int repeats) {
  threads = std::max(1, threads <= 0 ? available_cores() : threads);
  constexpr int kColumns = 4096;  // the matvec pattern's row length (bf16)
  const size_t rows = std::max<size_t>(1, bytes / (2 * kColumns));
  bytes = rows * kColumns * 2;
  const size_t words = bytes / sizeof(uint64_t);
  uint64_t* data = static_cast<uint64_t*>(std::aligned_alloc(64, words * sizeof(uint64_t)));
  if (data == nullptr) return 0;
  // Touch every page so the timing sees no page faults; four bf16 values in [1, 2) per word.
  for (size_t i = 0; i < words; i++) data[i] = 0x3f803f803f803f80ull + (i & 0x007f007f007f007full);
  std::vector<uint64_t> sinks(threads);
  ThreadPool pool(threads);
  std::vector<float> input(kColumns, 1.0f), output(rows);
  const Weight matrix{data, DType::BF16, int(rows), kColumns};
  double best = 0;
  for (int r = 0; r < repeats; r++) {
    // Pattern 1 and 2: one and eight sequential streams per thread, scalar loads.
    for (int streams : {1, 8}) {
      auto start = std::chrono::steady_clock::now();
      pool.parallel_for_static(words, 4096, [&](size_t begin, size_t end, int thread) {
        sinks[thread] += streams == 1 ? sum_words<1>(data + begin, end - begin) : sum_words<8>(data + begin, end - begin);
      });
      best = std::max(best, double(bytes) / seconds_since(start));
    }
    // Pattern 3: the decode kernels themselves, a bf16 matrix-vector product over the whole buffer (the portable
    // one only when it is all there is: it cannot win and takes seconds).
    for (const CpuKernels* kernels : runnable_cpu_kernels()) {
      if (kernels->matmul == matmul_scalar && runnable_cpu_kernels().size() > 1) continue;
      auto start = std::chrono::steady_clock::now();
      kernels->matmul(output.data(), input.data(), matrix, 1, int(rows), pool);
      best = std::max(best, double(bytes) / seconds_since(start));
    }
  }
  volatile uint64_t keep = 0;
  for (uint64_t sink : sinks) keep = keep + sink;
  volatile float keep_output = output[0];
  (void)keep_output;
  std::free(data);
  return best;
}

}  // namespace layerskip
