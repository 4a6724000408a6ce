#include "host_bandwidth.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

namespace layerskip {

namespace {

// Sums `count` words as eight interleaved streams (eight sub-ranges read side by side): one stream per core
// leaves DRAM bandwidth unused on many machines, so a single-stream figure would understate the roofline.
uint64_t sum_words(const uint64_t* data, size_t count) {
  constexpr int kStreams = 8;
  size_t per_stream = count / kStreams;
  uint64_t lanes[kStreams] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (size_t i = 0; i < per_stream; i++) {
    for (int j = 0; j < kStreams; j++) lanes[j] += data[j * per_stream + i];
  }
  for (size_t i = per_stream * kStreams; i < count; i++) lanes[0] += data[i];
  uint64_t total = 0;
  for (uint64_t lane : lanes) total += lane;
  return total;
}

}  // namespace

double measure_host_read_bandwidth(int threads, size_t bytes, int repeats) {
  threads = std::max(1, threads <= 0 ? int(std::thread::hardware_concurrency()) : threads);
  size_t words = bytes / sizeof(uint64_t);
  uint64_t* data = static_cast<uint64_t*>(std::aligned_alloc(64, words * sizeof(uint64_t)));
  if (data == nullptr) return 0;
  for (size_t i = 0; i < words; i++) data[i] = i;  // touch every page so the timing sees no page faults
  double best = 0;
  std::vector<uint64_t> sinks(threads);
  for (int r = 0; r < repeats; r++) {
    auto start = std::chrono::steady_clock::now();
    std::vector<std::thread> workers;
    size_t per_thread = words / threads;
    for (int t = 0; t < threads; t++) {
      workers.emplace_back([&, t] {
        size_t begin = t * per_thread, count = t + 1 == threads ? words - begin : per_thread;
        sinks[t] = sum_words(data + begin, count);
      });
    }
    for (std::thread& worker : workers) worker.join();
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::max(best, double(words * sizeof(uint64_t)) / seconds);
  }
  volatile uint64_t keep = 0;
  for (uint64_t sink : sinks) keep = keep + sink;
  std::free(data);
  return best;
}

}  // namespace layerskip
