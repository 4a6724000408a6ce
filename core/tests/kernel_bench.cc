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
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "../../core/backend.h"
#include "../../core/host_bandwidth.h"
#include "../../core/quant.h"
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
  explicit Buffer(size_t size)
      : bytes(size), data(static_cast<uint8_t*>(std::aligned_alloc(4096, (size + 4095) / 4096 * 4096))) {
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

// Streaming read of 1 GiB with the pool's threads: one sequential stream per thread, and eight interleaved
// streams per thread (as a decode matvec reads eight rows). The larger is the roofline the matvec is measured
// against; both are printed once.
double measure_read_bandwidth() {
  static double cached = 0;
  if (cached > 0) return cached;
  Buffer buffer(kRotationBytes);
  const float* floats = reinterpret_cast<const float*>(buffer.data);
  const size_t lines = buffer.bytes / 64;
  std::vector<double> sinks(8);
  double best[2] = {0, 0};
  for (int pattern = 0; pattern < 2; pattern++) {
    const int streams = pattern == 0 ? 1 : 8;
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
      best[pattern] = std::max(best[pattern], buffer.bytes / (now_seconds() - start) / 1e9);
    }
  }
  std::printf("    read bandwidth, 2 threads over 1 GiB: %.1f GB/s (1 stream each), %.1f GB/s (8 streams each)\n",
              best[0], best[1]);
  cached = std::max(best[0], best[1]);
  return cached;
}

using MatmulFn = MatmulKernel;

MatmulFn best_matmul() { return default_cpu_kernels().matmul; }

// Seconds per call of `kernel` for n tokens, cycling through copies of the weight so each call reads DRAM.
// A quantized matrix's planes sit one after another in its copy (the buffer's bytes are finite as f16 scales).
Weight weight_at(const uint8_t* data, DType dtype, int rows, int cols) {
  Weight weight{data, dtype, rows, cols};
  if (is_quantized(dtype)) {
    const size_t scales = quant_scale_count(rows, cols) * sizeof(uint16_t);
    weight.scales = reinterpret_cast<const uint16_t*>(data + quant_qs_bytes(dtype, rows, cols));
    if (dtype == DType::Q4) weight.mins = reinterpret_cast<const uint16_t*>(data + quant_qs_bytes(dtype, rows, cols) + scales);
  }
  return weight;
}

double time_matmul(MatmulFn kernel, DType dtype, int rows, int cols, int n, int min_calls, const Buffer& copies,
                   ThreadPool& pool = bench_pool()) {
  const size_t matrix_bytes = (weight_bytes(dtype, rows, cols) + 63) / 64 * 64;
  const size_t count = std::max<size_t>(1, copies.bytes / matrix_bytes);
  std::vector<float> in(size_t(n) * cols, 0.01f), out(size_t(n) * rows);
  Weight weight = weight_at(copies.data, dtype, rows, cols);
  kernel(out.data(), in.data(), weight, n, rows, pool);  // warm-up
  int calls = 0;
  double start = now_seconds();
  while (calls < min_calls || now_seconds() - start < 0.3) {
    weight = weight_at(copies.data + (calls % count) * matrix_bytes, dtype, rows, cols);
    kernel(out.data(), in.data(), weight, n, rows, pool);
    calls++;
  }
  return (now_seconds() - start) / calls;
}

BENCH(kernel_matvec_bandwidth) {
  double bandwidth = measure_read_bandwidth();
  std::printf("    roofline %.1f GB/s  [%s kernels]\n", bandwidth, cpu_kernel_variant());
  std::printf("    %-18s %-5s %9s %9s %7s\n", "matvec rows×cols", "dtype", "ms", "GB/s", "% bw");
  Buffer copies(kRotationBytes);
  const int shapes[][2] = {{2048, 8192}, {8192, 2048}, {128256, 2048}, {2048, 2048}, {512, 2048}};
  for (auto& shape : shapes) {
    for (DType dtype : {DType::BF16, DType::F16, DType::F32, DType::Q8, DType::Q4}) {
      if ((dtype == DType::F16 || dtype == DType::F32) && shape[0] != 8192) continue;
      double seconds = time_matmul(best_matmul(), dtype, shape[0], shape[1], 1, 3, copies);
      double gbs = double(weight_bytes(dtype, shape[0], shape[1])) / seconds / 1e9;
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

// What verifying k drafts costs each variant: seconds of an n-row matmul over seconds of a 1-row one, for
// n = 1…9 (verification of up to 8 drafts), 16 and 64, at the 1B shape's two matrix shapes, bf16 / q8 / q4.
BENCH(kernel_matmul_rows_per_variant) {
  Buffer copies(kRotationBytes);
  const int ns[] = {1, 2, 3, 4, 5, 6, 8, 9, 16, 64};
  for (DType dtype : {DType::BF16, DType::Q8, DType::Q4})
  for (auto& shape : {std::pair<int, int>{8192, 2048}, std::pair<int, int>{2048, 8192}}) {
    std::printf("    %s %d×%d: time(n) / time(1)\n    %-11s", dtype_name(dtype), shape.first, shape.second, "variant");
    for (int n : ns) std::printf(" %6s%-2d", "n=", n);
    std::printf("\n");
    for (const CpuKernels* variant : runnable_cpu_kernels()) {
      if (std::string(variant->name) == "scalar") continue;
      std::printf("    %-11s", variant->name);
      double single = 0;
      for (int n : ns) {
        double seconds = time_matmul(variant->matmul, dtype, shape.first, shape.second, n, 3, copies);
        if (n == 1) single = seconds;
        std::printf(" %8.2f", seconds / single);
      }
      std::printf("   (n=1: %.3f ms)\n", single * 1e3);
    }
  }
}

// Why verifying 5 rows costs more than one decode step when memory is fast: per thread count, the read rate of bf16
// 8192×2048 matmuls for n = 1 and n = 5 from DRAM (interleaved rounds, medians), and the rate n = 5 would run at
// if memory were free (the same kernel on 128 rows per thread, which stay in L2, scaled to the matrix). When the
// two overlapped, n = 5 would read at the lower of the n = 1 and the compute rate.
BENCH(kernel_verify_cost) {
  Buffer copies(kRotationBytes);
  const int rows = 8192, cols = 2048;
  const double bytes = double(rows) * cols * 2;
  Buffer hot(size_t(128) * bench_pool().size() * cols * 2);
  ThreadPool one_thread(1);
  std::printf("    bf16 %d×%d [%s kernels]: GB/s of weights read (median of 5 interleaved rounds, range)\n", rows, cols,
              cpu_kernel_variant());
  std::printf("    %-8s %-20s %-20s %-22s %s\n", "threads", "n=1 from DRAM", "n=5 from DRAM", "n=5 from L2 (compute)",
              "time n=5 / n=1");
  for (ThreadPool* pool : {&one_thread, &bench_pool()}) {
    const int hot_rows = 128 * pool->size();
    std::vector<double> one, five, hot_five, ratio;
    for (int round = 0; round < 5; round++) {
      const double t1 = time_matmul(best_matmul(), DType::BF16, rows, cols, 1, 3, copies, *pool);
      const double t5 = time_matmul(best_matmul(), DType::BF16, rows, cols, 5, 3, copies, *pool);
      const double hot5 = time_matmul(best_matmul(), DType::BF16, hot_rows, cols, 5, 200, hot, *pool) * rows / hot_rows;
      one.push_back(bytes / t1 / 1e9), five.push_back(bytes / t5 / 1e9), hot_five.push_back(bytes / hot5 / 1e9);
      ratio.push_back(t5 / t1);
    }
    auto cell = [](std::vector<double> v) {
      std::sort(v.begin(), v.end());
      char text[64];
      std::snprintf(text, sizeof text, v.front() < 10 ? "%.2f (%.2f–%.2f)" : "%.1f (%.1f–%.1f)", v[v.size() / 2],
                    v.front(), v.back());
      return std::string(text);
    };
    std::printf("    %-8d %-20s %-20s %-22s %s\n", pool->size(), cell(one).c_str(), cell(five).c_str(),
                cell(hot_five).c_str(), cell(ratio).c_str());
  }
}

// Attention of 1 (decode) and 5 (verification) query rows at the end of a long context, and a 512-row causal
// prefill chunk, Llama-3.2-1B heads (32 query / 8 KV heads of 64).
BENCH(kernel_attention_time) {
  const int num_heads = 32, num_kv_heads = 8, head_dim = 64;
  const int q_dim = num_heads * head_dim, kv_dim = num_kv_heads * head_dim;
  std::printf("    %-8s %5s %10s\n", "context", "n", "ms");
  for (int context : {1024, 4096}) {
    std::vector<float> keys(size_t(context) * kv_dim), values(size_t(context) * kv_dim);
    for (size_t i = 0; i < keys.size(); i++) keys[i] = float(i % 97) * 0.01f, values[i] = float(i % 89) * 0.01f;
    for (int n : {1, 5, 512}) {
      std::vector<float> q(size_t(n) * q_dim, 0.05f), out(size_t(n) * q_dim);
      const int start = context - n;
      int calls = 0;
      double begin = now_seconds();
      while (calls < 3 || now_seconds() - begin < 0.3) {
        attention_cpu(out.data(), q.data(), keys.data(), values.data(), n, start, num_heads, num_kv_heads, head_dim,
                      bench_pool());
        calls++;
      }
      std::printf("    %-8d %5d %10.3f\n", context, n, (now_seconds() - begin) / calls * 1e3);
    }
  }
}

// One Llama-3.2-1B-shaped bf16 model (16 layers, hidden 2048, 32/8 heads of 64, FFN 8192, vocab 128256) run through
// the CPU backend's ops in run_layers() order: decode tokens at context ~512 against the weight-read roofline,
// a 5-row verification step, and a 512-token prefill (2 layers timed, scaled to 16, plus the last row's LM head).
BENCH(kernel_llama1b_shaped_model) {
  const int layers = 16, dim = 2048, heads = 32, kv_heads = 8, head_dim = 64, ffn = 8192, vocab = 128256;
  const int q_dim = heads * head_dim, kv_dim = kv_heads * head_dim, context = 1024;
  const size_t layer_params = size_t(q_dim) * dim * 2 + size_t(kv_dim) * dim * 2 + size_t(ffn) * dim * 3;
  Buffer weights((layer_params * layers + size_t(vocab) * dim) * 2);
  std::unique_ptr<Backend> backend = make_cpu_backend(2);
  struct Layer {
    Weight q, k, v, o, gate, up, down;
  };
  std::vector<Layer> stack(layers);
  const uint8_t* cursor = weights.data;
  auto carve = [&](int rows, int cols) {
    Weight w{cursor, DType::BF16, rows, cols};
    cursor += size_t(rows) * cols * 2;
    return w;
  };
  for (Layer& l : stack) {
    l = {carve(q_dim, dim), carve(kv_dim, dim), carve(kv_dim, dim), carve(dim, q_dim), carve(ffn, dim),
         carve(ffn, dim), carve(dim, ffn)};
  }
  Weight lm_head = carve(vocab, dim);
  const int batch = 512;
  std::vector<float> norm_weight(dim, 1.0f), cos_table(size_t(context) * head_dim / 2, 1.0f),
      sin_table(size_t(context) * head_dim / 2, 0.0f), hidden(size_t(batch) * dim, 0.01f), normed(hidden.size()),
      query(size_t(batch) * q_dim), attended(query.size()), projection(hidden.size()),
      gate(size_t(batch) * ffn), up(gate.size()), logits(vocab);
  std::vector<std::vector<float>> key_cache(layers, std::vector<float>(size_t(context) * kv_dim, 0.01f));
  std::vector<std::vector<float>> value_cache(layers, std::vector<float>(size_t(context) * kv_dim, 0.01f));
  auto run_layers = [&](int layer_end, int n, int start) {
    backend->rmsnorm(normed.data(), hidden.data(), norm_weight.data(), n, dim, 1e-5f);
    for (int l = 0; l < layer_end; l++) {
      const Layer& w = stack[l];
      float* keys = key_cache[l].data() + size_t(start) * kv_dim;
      float* values = value_cache[l].data() + size_t(start) * kv_dim;
      backend->matmul(query.data(), normed.data(), w.q, n, q_dim);
      backend->matmul(keys, normed.data(), w.k, n, kv_dim);
      backend->matmul(values, normed.data(), w.v, n, kv_dim);
      backend->rope(query.data(), n, q_dim, heads, head_dim, start, cos_table.data(), sin_table.data());
      backend->rope(keys, n, kv_dim, kv_heads, head_dim, start, cos_table.data(), sin_table.data());
      backend->attention(attended.data(), query.data(), key_cache[l].data(), value_cache[l].data(), n, start, heads,
                         kv_heads, head_dim);
      backend->matmul(projection.data(), attended.data(), w.o, n, dim);
      backend->add_rmsnorm(hidden.data(), normed.data(), projection.data(), norm_weight.data(), n, dim, 1e-5f);
      backend->matmul(gate.data(), normed.data(), w.gate, n, ffn);
      backend->matmul(up.data(), normed.data(), w.up, n, ffn);
      backend->swiglu(gate.data(), gate.data(), up.data(), size_t(n) * ffn);
      backend->matmul(projection.data(), gate.data(), w.down, n, dim);
      if (l + 1 < layer_end) {
        backend->add_rmsnorm(hidden.data(), normed.data(), projection.data(), norm_weight.data(), n, dim, 1e-5f);
      } else {
        backend->add(hidden.data(), projection.data(), size_t(n) * dim);
      }
    }
  };
  auto head = [&](int rows) {
    backend->rmsnorm(normed.data(), hidden.data(), norm_weight.data(), rows, dim, 1e-5f);
    backend->matmul(logits.data(), normed.data(), lm_head, 1, vocab);
  };
  auto seconds_per_call = [&](int min_calls, const std::function<void()>& step, double min_seconds = 1.0) {
    step();
    int calls = 0;
    double begin = now_seconds();
    while (calls < min_calls || now_seconds() - begin < min_seconds) step(), calls++;
    return (now_seconds() - begin) / calls;
  };
  const double bytes = double(weights.bytes);
  // Each round probes the read bandwidth (best of the scalar and kernel patterns, as `layerskip benchmark` does),
  // then times decode and verification, so every ratio compares runs from the same memory phase of a shared VM.
  constexpr int kRounds = 7;
  std::vector<double> bandwidths, decodes, roofline_fractions, verify5_ratios, verify9_ratios;
  for (int round = 0; round < kRounds; round++) {
    const double bandwidth = measure_host_read_bandwidth(bench_pool().size(), size_t(512) << 20, 2);
    const double d = seconds_per_call(3, [&] { run_layers(layers, 1, 511); head(1); }, 0.3);
    const double v5 = seconds_per_call(3, [&] { run_layers(layers, 5, 507); head(1); }, 0.3);
    const double v9 = seconds_per_call(3, [&] { run_layers(layers, 9, 503); head(1); }, 0.3);
    bandwidths.push_back(bandwidth / 1e9), decodes.push_back(d), roofline_fractions.push_back(bytes / bandwidth / d);
    verify5_ratios.push_back(v5 / d), verify9_ratios.push_back(v9 / d);
  }
  auto median = [](std::vector<double> values) {
    std::sort(values.begin(), values.end());
    return values[values.size() / 2];
  };
  auto spread = [](std::vector<double> values, double scale = 1) {
    std::sort(values.begin(), values.end());
    char text[64];
    std::snprintf(text, sizeof text, scale == 1 ? "%.2f–%.2f" : "%.0f–%.0f", values.front() * scale,
                  values.back() * scale);
    return std::string(text);
  };
  const double decode = median(decodes);
  const double prefill_two = seconds_per_call(1, [&] { run_layers(2, batch, 0); });
  const double prefill = prefill_two * layers / 2;
  const double head_time = seconds_per_call(3, [&] { head(1); });
  const double flops_per_token = 2.0 * layer_params * layers;
  std::printf("    weights %.2f GB; read bandwidth probed each round: median %.1f GB/s (%s) [%s kernels]\n",
              bytes / 1e9, median(bandwidths), spread(bandwidths).c_str(), cpu_kernel_variant());
  std::printf("    decode (n=1, ctx 512):   %8.1f ms/token  %5.1f tok/s (%s ms); %.0f%% of the round's roofline (%s)\n",
              decode * 1e3, 1 / decode, spread(decodes, 1e3).c_str(), 100 * median(roofline_fractions),
              spread(roofline_fractions, 100).c_str());
  std::printf("    verify n=5 (ctx 512):    %.2f × decode (median of %d interleaved rounds, %s)\n",
              median(verify5_ratios), kRounds, spread(verify5_ratios).c_str());
  std::printf("    verify n=9 (ctx 512):    %.2f × decode (%s)\n", median(verify9_ratios),
              spread(verify9_ratios).c_str());
  std::printf("    prefill 512 (2 layers × 8 + head): %6.2f s   %5.1f tok/s  %5.1f GFLOP/s (matrices)\n",
              prefill + head_time, batch / (prefill + head_time),
              flops_per_token * batch / (prefill + head_time) / 1e9);
}

}  // namespace
}  // namespace layerskip
