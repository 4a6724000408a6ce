// Kernel benchmarks for the CPU backend (`layerskip_core_tests --bench kernel`): memory read bandwidth, matvec
// GB/s against it, matmat GFLOP/s for prefill (n = 512) and verification (n = 5), attention at long contexts, and a
// Llama-3.2-1B-shaped layer end to end. Weights rotate through ≥ 1 GiB of copies so no run is served from the
// (large, shared) last-level cache.
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "../../cpu/attention.h"
#include "../../cpu/cpu_features.h"
#include "../../cpu/matmul.h"
#include "../../cpu/mlp.h"
#include "../../cpu/norm.h"
#include "../../cpu/rope.h"
#include "../../cpu/thread_pool.h"
#include "test_framework.h"

namespace layerskip {
namespace {

constexpr size_t kRotationBytes = size_t(1) << 30;

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Page-aligned bytes filled with small finite values of any 16/32-bit float dtype.
struct Buffer {
  explicit Buffer(size_t size) : bytes(size), data(static_cast<uint8_t*>(std::aligned_alloc(4096, (size + 4095) / 4096 * 4096))) {
    uint32_t state = 12345;
    uint32_t* words = reinterpret_cast<uint32_t*>(data);
    for (size_t i = 0; i < size / 4; i++) {
      state = state * 1664525u + 1013904223u;
      words[i] = 0x3c003c00u | (state & 0x03ff03ffu);  // f16 in [1, 2) / bf16 ~ 0.0078 / f32 ~ 0.0078
    }
  }
  ~Buffer() { std::free(data); }
  size_t bytes;
  uint8_t* data;
};

ThreadPool& bench_pool() {
  static ThreadPool pool(2);
  return pool;
}

// Sum of the floats in [begin, end) cache lines with 32-byte loads (4 independent chains).
#if defined(__x86_64__)
__attribute__((target("avx2"))) float sum_lines(const float* p, size_t begin, size_t end) {
  __m256 a = _mm256_setzero_ps(), b = a, c = a, d = a;
  for (size_t line = begin; line + 2 <= end; line += 2) {
    const float* q = p + line * 16;
    a = _mm256_add_ps(a, _mm256_load_ps(q));
    b = _mm256_add_ps(b, _mm256_load_ps(q + 8));
    c = _mm256_add_ps(c, _mm256_load_ps(q + 16));
    d = _mm256_add_ps(d, _mm256_load_ps(q + 24));
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, _mm256_add_ps(_mm256_add_ps(a, b), _mm256_add_ps(c, d)));
  return lanes[0];
}
#else
float sum_lines(const float* p, size_t begin, size_t end) {
  float lanes[16] = {};
  for (size_t i = begin * 16; i < end * 16; i += 16)
    for (int j = 0; j < 16; j++) lanes[j] += p[i + j];
  return lanes[0];
}
#endif

// Streaming read of 1 GiB with the pool's threads, the best of one sequential stream per thread and eight
// interleaved streams per thread (as a matvec reads eight rows): the memory roofline the matvec is measured against.
double measure_read_bandwidth() {
  static double cached = 0;
  if (cached > 0) return cached;
  Buffer buffer(kRotationBytes);
  const float* floats = reinterpret_cast<const float*>(buffer.data);
  const size_t lines = buffer.bytes / 64;
  std::vector<double> sinks(8);
  double best = 0;
  for (int streams : {1, 8}) {
    for (int repeat = 0; repeat < 3; repeat++) {
      double start = now_seconds();
      bench_pool().parallel_for(lines, 1 << 16, [&](size_t begin, size_t end, int thread) {
        // `streams` sub-ranges advanced together, 1 KiB from each in turn.
        const size_t per_stream = (end - begin) / streams;
        for (size_t offset = 0; offset < per_stream; offset += 16) {
          for (int s = 0; s < streams; s++) {
            size_t first = begin + s * per_stream + offset;
            sinks[thread] += sum_lines(floats, first, std::min(first + 16, begin + (s + 1) * per_stream));
          }
        }
      });
      best = std::max(best, buffer.bytes / (now_seconds() - start) / 1e9);
    }
  }
  cached = best;
  return best;
}

using MatmulFn = void (*)(float*, const float*, const Weight&, int, int, ThreadPool&);

MatmulFn best_matmul() {
#if defined(LAYERSKIP_HAVE_AVX2)
  if (cpu_has_avx2()) return matmul_avx2;
#endif
  return matmul_scalar;
}

// Seconds per call of `kernel` for n tokens, cycling through copies of the weight so each call reads DRAM.
double time_matmul(MatmulFn kernel, DType dtype, int rows, int cols, int n, int min_calls, const Buffer& copies) {
  const size_t matrix_bytes = size_t(rows) * cols * dtype_size(dtype);
  const size_t count = std::max<size_t>(1, copies.bytes / matrix_bytes);
  std::vector<float> in(size_t(n) * cols, 0.01f), out(size_t(n) * rows);
  Weight weight{copies.data, dtype, rows, cols};
  kernel(out.data(), in.data(), weight, n, rows, bench_pool());  // warm-up
  int calls = 0;
  double start = now_seconds();
  while (calls < min_calls || now_seconds() - start < 0.3) {
    weight.data = copies.data + (calls % count) * matrix_bytes;
    kernel(out.data(), in.data(), weight, n, rows, bench_pool());
    calls++;
  }
  return (now_seconds() - start) / calls;
}

BENCH(kernel_matvec_bandwidth) {
  double bandwidth = measure_read_bandwidth();
  std::printf("    read bandwidth (2 threads, 1 GiB streaming sum): %.1f GB/s  [%s]\n", bandwidth, cpu_kernel_variant());
  std::printf("    %-18s %-5s %9s %9s %7s\n", "matvec rows×cols", "dtype", "ms", "GB/s", "% bw");
  Buffer copies(kRotationBytes);
  const int shapes[][2] = {{2048, 8192}, {8192, 2048}, {128256, 2048}, {2048, 2048}, {512, 2048}};
  for (auto& shape : shapes) {
    for (DType dtype : {DType::BF16, DType::F16, DType::F32}) {
      if (dtype != DType::BF16 && shape[0] != 8192) continue;
      double seconds = time_matmul(best_matmul(), dtype, shape[0], shape[1], 1, 3, copies);
      double gbs = double(shape[0]) * shape[1] * dtype_size(dtype) / seconds / 1e9;
      char label[32];
      std::snprintf(label, sizeof label, "%d×%d", shape[0], shape[1]);
      std::printf("    %-18s %-5s %9.3f %9.1f %6.0f%%\n", label, dtype_name(dtype), seconds * 1e3, gbs,
                  100 * gbs / bandwidth);
    }
  }
}

BENCH(kernel_matmat_gflops) {
  Buffer copies(kRotationBytes);
  std::printf("    %-14s %-5s %5s %9s %9s %12s\n", "rows×cols", "dtype", "n", "ms", "GFLOP/s", "vs n×(n=1)");
  const int shapes[][2] = {{2048, 2048}, {8192, 2048}, {2048, 8192}, {512, 2048}};
  for (auto& shape : shapes) {
    for (DType dtype : {DType::BF16, DType::F16, DType::F32}) {
      if (dtype != DType::BF16 && shape[0] != 8192) continue;
      double single = time_matmul(best_matmul(), dtype, shape[0], shape[1], 1, 3, copies);
      for (int n : {2, 5, 8, 16, 512}) {
        double seconds = time_matmul(best_matmul(), dtype, shape[0], shape[1], n, 2, copies);
        char label[32];
        std::snprintf(label, sizeof label, "%d×%d", shape[0], shape[1]);
        std::printf("    %-14s %-5s %5d %9.3f %9.1f %11.2fx\n", label, dtype_name(dtype), n, seconds * 1e3,
                    2.0 * n * shape[0] * shape[1] / seconds / 1e9, n * single / seconds);
      }
    }
  }
}

}  // namespace
}  // namespace layerskip
