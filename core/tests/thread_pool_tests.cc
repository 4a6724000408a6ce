// ThreadPool: every element of every op is visited exactly once, in grain-aligned chunks, over many back-to-back
// dynamic and static ops (where a late worker could mix two ops up), and with every thread on one core — a worker
// the OS does not schedule in time must not hold the caller back: it prints the time per op there (reported, not
// asserted: the machine is shared).
#include <sched.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <vector>

#include "../../cpu/thread_pool.h"
#include "test_framework.h"

using namespace layerskip;

namespace {

// Runs `ops` ops alternating dynamic and static over varying counts; checks coverage and grain alignment.
void check_coverage(ThreadPool& pool, int ops) {
  std::vector<std::atomic<int>> visits(5000);
  for (int op = 0; op < ops; op++) {
    const size_t count = 1 + (size_t(op) * 7919) % visits.size();
    const size_t grain = 1 + op % 5;
    for (size_t i = 0; i < count; i++) visits[i].store(0, std::memory_order_relaxed);
    std::atomic<bool> misaligned{false};
    auto body = [&](size_t begin, size_t end, int) {
      if (begin % grain != 0 || (end != count && (end - begin) % grain != 0)) misaligned = true;
      for (size_t i = begin; i < end; i++) visits[i].fetch_add(1, std::memory_order_relaxed);
    };
    if (op % 3 == 2) {
      pool.parallel_for_static(count, grain, body);
    } else {
      pool.parallel_for(count, grain, body);
    }
    CHECK_MSG(!misaligned, "op " << op << ": a chunk is not a multiple of the grain " << grain);
    for (size_t i = 0; i < count; i++) {
      if (visits[i].load() != 1) {
        CHECK_MSG(false, "op " << op << " (count " << count << "): element " << i << " visited " << visits[i].load() << " times");
        return;
      }
    }
  }
}

}  // namespace

TEST(thread_pool_covers_every_element_once) {
  for (int threads : {1, 2, 3, 5}) {
    ThreadPool pool(threads);
    check_coverage(pool, 3000);
  }
}

// Every thread pinned to one core: the workers get the core only when the caller yields it. The caller must not
// wait for them — it takes their chunks.
TEST(thread_pool_on_one_core_does_not_wait_for_descheduled_workers) {
  cpu_set_t original, one;
  if (sched_getaffinity(0, sizeof original, &original) != 0) {
    testing::skip("sched_getaffinity failed");
    return;
  }
  CPU_ZERO(&one);
  for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
    if (CPU_ISSET(cpu, &original)) {
      CPU_SET(cpu, &one);
      break;
    }
  }
  CHECK(sched_setaffinity(0, sizeof one, &one) == 0);
  {
    ThreadPool pool(4);  // workers inherit the one-core mask
    check_coverage(pool, 2000);
    const int ops = 2000;
    std::vector<float> data(4096, 1.0f);
    auto started = std::chrono::steady_clock::now();
    for (int op = 0; op < ops; op++) {
      pool.parallel_for(data.size(), 64, [&](size_t begin, size_t end, int) {
        for (size_t i = begin; i < end; i++) data[i] = data[i] * 0.5f + 0.5f;
      });
    }
    double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - started).count() / ops;
    std::printf("    4 threads on one core: %.1f µs per small op\n", us);
    for (float value : data) CHECK(value == 1.0f);
  }
  sched_setaffinity(0, sizeof original, &original);
}
