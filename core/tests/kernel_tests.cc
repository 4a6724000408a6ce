// Kernel lab for the CPU backend: every op against a double-precision reference at awkward sizes, AVX2 against the
// portable kernels, and bit-exact batch invariance (a row alone vs inside any batch, 1 vs 2 threads).
// Outputs are poisoned with NaN before every run so unwritten elements fail loudly.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "../../core/quant.h"
#include "../../cpu/attention.h"
#include "../../cpu/cpu_features.h"
#include "../../cpu/embed.h"
#include "../../cpu/matmul.h"
#include "../../cpu/mlp.h"
#include "../../cpu/norm.h"
#include "../../cpu/rope.h"
#include "../../cpu/thread_pool.h"
#include "test_framework.h"

namespace layerskip {
namespace {

constexpr float kPoison = std::numeric_limits<float>::quiet_NaN();
constexpr double kF32Epsilon = 1.1920928955078125e-07;

std::vector<float> random_floats(size_t count, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> uniform(-scale, scale);
  std::vector<float> values(count);
  for (float& v : values) v = uniform(rng);
  return values;
}

// A weight matrix in each stored dtype plus its exact f32 values (the reference reads those).
struct TestWeight {
  std::vector<uint16_t> halves;   // (rows, cols) bf16 or f16 bits
  std::vector<float> singles;     // (rows, cols) f32 storage, when dtype is F32
  QuantizedMatrix quantized;      // q8 / q4 planes
  std::vector<float> exact;       // (rows, cols) the stored values as f32 (quantized: dequantized)
  Weight weight;
};

TestWeight make_weight(DType dtype, int rows, int cols, uint32_t seed) {
  TestWeight w;
  std::vector<float> values = random_floats(size_t(rows) * cols, seed);
  w.exact.resize(values.size());
  if (is_quantized(dtype)) {
    Weight source{values.data(), DType::F32, rows, cols};
    CHECK_OK(quantize_matrix(source, dtype, "test", 2, &w.quantized));
    w.weight = w.quantized.view();
    for (int r = 0; r < rows; r++) weight_row_to_f32(w.exact.data() + size_t(r) * cols, w.weight, r);
    return w;
  }
  if (dtype == DType::F32) {
    w.singles = values;
    w.exact = values;
    w.weight.data = w.singles.data();
  } else {
    w.halves.resize(values.size());
    for (size_t i = 0; i < values.size(); i++) {
      w.halves[i] = dtype == DType::BF16 ? f32_to_bf16(values[i]) : f32_to_f16(values[i]);
      w.exact[i] = load_as_f32(w.halves.data(), dtype, i);
    }
    w.weight.data = w.halves.data();
  }
  w.weight.dtype = dtype;
  w.weight.rows = rows;
  w.weight.cols = cols;
  return w;
}

const DType kDtypes[] = {DType::BF16, DType::F16, DType::F32, DType::Q8, DType::Q4};

// Quantized matrices come in whole 32-column blocks.
bool shape_fits(DType dtype, int cols) { return !is_quantized(dtype) || cols % kQuantBlock == 0; }


// The distinct implementations of one op across the runnable variants (variants share most elementwise ops),
// named after the first variant that uses each.
template <class Fn>
std::vector<std::pair<const char*, Fn>> distinct_kernels(Fn CpuKernels::*op) {
  std::vector<std::pair<const char*, Fn>> kernels;
  for (const CpuKernels* variant : runnable_cpu_kernels()) {
    bool seen = false;
    for (auto& known : kernels) seen = seen || known.second == variant->*op;
    if (!seen) kernels.push_back({variant->name, variant->*op});
  }
  return kernels;
}

// Relative error a variant's rounding of the activations adds per product: a variant that rounds them does so to
// bf16 (8 significant bits) for bf16 weights.
double activation_rounding(const CpuKernels& variant, DType dtype) {
  return variant.rounds_activations && dtype == DType::BF16 ? 1.0 / 256 : 0.0;
}

bool same_bits(const float* a, const float* b, size_t count) { return std::memcmp(a, b, count * sizeof(float)) == 0; }

ThreadPool& pool_of(int threads) {
  static ThreadPool one(1), two(2);
  return threads == 1 ? one : two;
}

// ---- matmul ------------------------------------------------------------------------------------------------------

// The matmuls under test: every runnable variant plus the AMX tiling on the software tile unit (bf16 weights only;
// it runs everything else through the scalar kernel, tested already).
std::vector<const CpuKernels*> matmul_variants() {
  std::vector<const CpuKernels*> variants = runnable_cpu_kernels();
  variants.push_back(&amx_emulated_cpu_kernels());
  return variants;
}
bool skips_dtype(const CpuKernels& variant, DType dtype) {
  return &variant == &amx_emulated_cpu_kernels() && dtype != DType::BF16;
}

// |out - ref| ≤ (cols/8 + 4) · ε · Σ|x·w|: an FMA chain of at most cols/8 steps plus the lane tree, in f32 (plus
// the activations' rounding for avx512bf16).
TEST(kernel_matmul_matches_reference) {
  const int ns[] = {1, 2, 3, 5, 7, 17, 64, 111};
  const int cols_list[] = {8, 24, 96, 100, 608, 2048};  // 608: 19 blocks, a full and a partial group of scales
  const int rows_list[] = {1, 7, 33, 4096};
  for (const CpuKernels* variant : matmul_variants()) {
    const char* kernel_name = variant->name;
    const MatmulKernel kernel = variant->matmul;
    for (DType dtype : kDtypes) {
      if (skips_dtype(*variant, dtype)) continue;
      for (int cols : cols_list) {
        for (int rows : rows_list) {
          if (!shape_fits(dtype, cols)) continue;
          TestWeight w = make_weight(dtype, rows, cols, 11u + rows * 7 + cols);
          for (int n : ns) {
            if (double(n) * rows * cols > double(1 << 25)) continue;  // keeps the double reference quick
            std::vector<float> in = random_floats(size_t(n) * cols, 3u + n);
            const int stride = rows + 3;
            std::vector<float> out(size_t(n) * stride, kPoison);
            kernel(out.data(), in.data(), w.weight, n, stride, pool_of(2));
            int bad = 0;
            for (int t = 0; t < n && bad == 0; t++) {
              for (int r = 0; r < rows; r++) {
                double ref = 0, magnitude = 0;
                for (int k = 0; k < cols; k++) {
                  double product = double(in[size_t(t) * cols + k]) * w.exact[size_t(r) * cols + k];
                  ref += product;
                  magnitude += std::fabs(product);
                }
                double bound = ((cols / 8 + 4) * kF32Epsilon + activation_rounding(*variant, dtype)) * magnitude;
                float got = out[size_t(t) * stride + r];
                if (!(std::fabs(got - ref) <= bound)) {
                  bad++;
                  CHECK_MSG(false, kernel_name << " " << dtype_name(dtype) << " n=" << n << " rows=" << rows
                                               << " cols=" << cols << " [" << t << "," << r << "] " << got
                                               << " vs " << ref << " (bound " << bound << ")");
                  break;
                }
              }
            }
          }
        }
      }
    }
  }
}

// Each row of a batch equals the same row computed alone (n = 1), bit for bit, at every batch position,
// for 1 and 2 threads.
TEST(kernel_matmul_batch_invariant) {
  constexpr int kInputs = 140;
  const int ns[] = {2, 3, 4, 5, 6, 7, 8, 9, 17, 64, 111, 140};
  const int shapes[][2] = {{7, 24}, {33, 100}, {9, 96}, {13, 608}, {130, 2048}, {20, 8192}, {5, 11008}};  // rows, cols
  for (const CpuKernels* variant : matmul_variants()) {
    const char* kernel_name = variant->name;
    const MatmulKernel kernel = variant->matmul;
    for (DType dtype : kDtypes) {
      if (skips_dtype(*variant, dtype)) continue;
      for (auto& shape : shapes) {
        const int rows = shape[0], cols = shape[1];
        if (!shape_fits(dtype, cols)) continue;
        TestWeight w = make_weight(dtype, rows, cols, 5u + rows);
        std::vector<float> in = random_floats(size_t(kInputs) * cols, 99u + cols, 3.0f);
        // Each row alone, 1 thread: the ground truth.
        std::vector<float> alone(size_t(kInputs) * rows, kPoison);
        for (int t = 0; t < kInputs; t++) {
          kernel(alone.data() + size_t(t) * rows, in.data() + size_t(t) * cols, w.weight, 1, rows, pool_of(1));
        }
        for (int threads : {1, 2}) {
          for (int n : ns) {
            // Batches starting at different rows put each input row at different batch positions.
            for (int offset : {0, kInputs - n}) {
              const int stride = rows + 5;
              std::vector<float> batch(size_t(n) * stride, kPoison);
              kernel(batch.data(), in.data() + size_t(offset) * cols, w.weight, n, stride, pool_of(threads));
              for (int t = 0; t < n; t++) {
                CHECK_MSG(same_bits(batch.data() + size_t(t) * stride, alone.data() + size_t(offset + t) * rows, rows),
                          kernel_name << " " << dtype_name(dtype) << " rows=" << rows << " cols=" << cols
                                      << " n=" << n << " row " << t << " threads=" << threads);
              }
            }
          }
        }
      }
    }
  }
}


// The AMX tiling computes each output as one chain over k in pairs, c += x[2i]·w[2i] then c += x[2i+1]·w[2i+1],
// on bf16-rounded activations: the emulated tile unit gives exactly that, through row and column tails, token
// blocks and both thread counts.
TEST(kernel_matmul_amx_emulated_follows_the_tile_arithmetic) {
  const int shapes[][3] = {{1, 1, 32}, {5, 17, 64}, {33, 48, 100}, {17, 31, 96}, {40, 70, 608}};  // n, rows, cols
  for (auto& shape : shapes) {
    const int n = shape[0], rows = shape[1], cols = shape[2];
    TestWeight w = make_weight(DType::BF16, rows, cols, 77u + rows);
    std::vector<float> in = random_floats(size_t(n) * cols, 5u + cols, 2.0f);
    for (int threads : {1, 2}) {
      std::vector<float> out(size_t(n) * rows, kPoison);
      matmul_amx_emulated(out.data(), in.data(), w.weight, n, rows, pool_of(threads));
      int bad = 0;
      for (int t = 0; t < n && bad == 0; t++) {
        for (int r = 0; r < rows; r++) {
          float c = 0;
          for (int k = 0; k < cols; k++) c += load_as_f32(w.halves.data(), DType::BF16, size_t(r) * cols + k) *
                                             bf16_to_f32(f32_to_bf16(in[size_t(t) * cols + k]));
          if (!same_bits(&c, &out[size_t(t) * rows + r], 1)) {
            bad++;
            CHECK_MSG(false, "n=" << n << " rows=" << rows << " cols=" << cols << " [" << t << "," << r << "] "
                                  << out[size_t(t) * rows + r] << " vs " << c << " threads=" << threads);
            break;
          }
        }
      }
    }
  }
}

// On a processor with AMX: the hardware tiles agree with the model of them to rounding (the order inside a pair
// sum is the implementation's), on decode, verify and prefill shapes.
TEST(kernel_matmul_amx_hardware_matches_the_emulator) {
#if defined(LAYERSKIP_HAVE_AVX512)
  const CpuKernels* amx = nullptr;
  for (const CpuKernels* variant : runnable_cpu_kernels()) {
    if (std::string(variant->name) == "amx") amx = variant;
  }
  if (amx == nullptr) return;  // no AMX here: the emulated tiling is tested above
  const int ns[] = {1, 5, 9, 16, 40};
  TestWeight w = make_weight(DType::BF16, 80, 2048, 3u);
  for (int n : ns) {
    std::vector<float> in = random_floats(size_t(n) * 2048, 9u + n);
    std::vector<float> hardware(size_t(n) * 80, kPoison), emulated(size_t(n) * 80, kPoison);
    amx->matmul(hardware.data(), in.data(), w.weight, n, 80, pool_of(2));
    matmul_amx_emulated(emulated.data(), in.data(), w.weight, n, 80, pool_of(2));
    for (size_t i = 0; i < hardware.size(); i++) {
      CHECK_MSG(std::fabs(hardware[i] - emulated[i]) <= 1e-4 * (1 + std::fabs(emulated[i])),
                "n=" << n << " element " << i << ": " << hardware[i] << " vs " << emulated[i]);
    }
  }
#endif
}

// ---- attention ---------------------------------------------------------------------------------------------------

std::vector<std::pair<const char*, AttentionKernel>> attention_kernels() {
  return distinct_kernels(&CpuKernels::attention);
}

struct AttentionShape {
  int num_heads, num_kv_heads, head_dim;
};
const AttentionShape kAttentionShapes[] = {{4, 2, 64},  {3, 3, 12},  {8, 2, 100},
                                           {2, 1, 128}, {32, 8, 64}, {16, 1, 64}};

// Double-precision softmax(q·kᵀ / sqrt(d)) · v for query row t at position start_pos + t.
void attention_reference(double* out, const float* q, const float* keys, const float* values, int position,
                         const AttentionShape& s, int h) {
  const int kv_dim = s.num_kv_heads * s.head_dim;
  const int kv_head = h / (s.num_heads / s.num_kv_heads);
  std::vector<double> scores(position + 1);
  double max_score = -INFINITY;
  for (int p = 0; p <= position; p++) {
    double dot = 0;
    for (int d = 0; d < s.head_dim; d++) dot += double(q[d]) * keys[size_t(p) * kv_dim + kv_head * s.head_dim + d];
    scores[p] = dot / std::sqrt(double(s.head_dim));
    max_score = std::max(max_score, scores[p]);
  }
  double total = 0;
  for (double& score : scores) total += (score = std::exp(score - max_score));
  for (int d = 0; d < s.head_dim; d++) {
    double sum = 0;
    for (int p = 0; p <= position; p++) sum += scores[p] * values[size_t(p) * kv_dim + kv_head * s.head_dim + d];
    out[d] = sum / total;
  }
}

// Outputs are convex combinations of values in [-1, 1]: |out - ref| ≤ 2e-5.
TEST(kernel_attention_matches_reference) {
  for (auto [kernel_name, kernel] : attention_kernels()) {
    for (const AttentionShape& s : kAttentionShapes) {
      const int q_dim = s.num_heads * s.head_dim, kv_dim = s.num_kv_heads * s.head_dim;
      for (int n : {1, 2, 3, 5, 7, 17}) {
        for (int start_pos : {0, 9, 300}) {
          const int positions = start_pos + n;
          std::vector<float> keys = random_floats(size_t(positions) * kv_dim, 31u + n, 2.0f);
          std::vector<float> values = random_floats(size_t(positions) * kv_dim, 32u + n);
          std::vector<float> q = random_floats(size_t(n) * q_dim, 33u + n, 2.0f);
          std::vector<float> out(size_t(n) * q_dim, kPoison);
          kernel(out.data(), q.data(), keys.data(), values.data(), n, start_pos, s.num_heads, s.num_kv_heads,
                 s.head_dim, pool_of(2));
          std::vector<double> ref(s.head_dim);
          double worst = 0;
          for (int t = 0; t < n; t++) {
            for (int h = 0; h < s.num_heads; h++) {
              attention_reference(ref.data(), q.data() + size_t(t) * q_dim + h * s.head_dim, keys.data(),
                                  values.data(), start_pos + t, s, h);
              for (int d = 0; d < s.head_dim; d++) {
                double error = std::fabs(out[size_t(t) * q_dim + h * s.head_dim + d] - ref[d]);
                worst = std::isnan(error) ? INFINITY : std::max(worst, error);
              }
            }
          }
          CHECK_MSG(worst <= 2e-5, kernel_name << " heads=" << s.num_heads << "/" << s.num_kv_heads << " d="
                                               << s.head_dim << " n=" << n << " start=" << start_pos
                                               << " max error " << worst);
        }
      }
    }
  }
}

// A row's attention output is the same bits whether the rows were processed as one prefill, one at a time, or in
// chunks of 2..17 (verification-sized and beyond), with 1 or 2 threads.
TEST(kernel_attention_batch_invariant) {
  constexpr int kPositions = 70;
  for (auto [kernel_name, kernel] : attention_kernels()) {
    for (const AttentionShape& s : kAttentionShapes) {
      const int q_dim = s.num_heads * s.head_dim, kv_dim = s.num_kv_heads * s.head_dim;
      std::vector<float> keys = random_floats(size_t(kPositions) * kv_dim, 41u, 2.0f);
      std::vector<float> values = random_floats(size_t(kPositions) * kv_dim, 42u);
      std::vector<float> q = random_floats(size_t(kPositions) * q_dim, 43u, 2.0f);
      auto run_in_chunks = [&](int chunk, int threads) {
        std::vector<float> out(size_t(kPositions) * q_dim, kPoison);
        for (int start = 0; start < kPositions; start += chunk) {
          int n = std::min(chunk, kPositions - start);
          kernel(out.data() + size_t(start) * q_dim, q.data() + size_t(start) * q_dim, keys.data(), values.data(), n,
                 start, s.num_heads, s.num_kv_heads, s.head_dim, pool_of(threads));
        }
        return out;
      };
      std::vector<float> one_by_one = run_in_chunks(1, 1);
      for (int threads : {1, 2}) {
        for (int chunk : {1, 2, 3, 5, 8, 17, kPositions}) {
          CHECK_MSG(same_bits(run_in_chunks(chunk, threads).data(), one_by_one.data(), one_by_one.size()),
                    kernel_name << " heads=" << s.num_heads << " d=" << s.head_dim << " chunk=" << chunk
                                << " threads=" << threads);
        }
      }
    }
  }
}

// ---- row-wise and element-wise ops -------------------------------------------------------------------------------

TEST(kernel_rmsnorm_matches_reference_and_is_batch_invariant) {
  using RmsnormFn = void (*)(float*, const float*, const float*, int, int, float, ThreadPool&);
  std::vector<std::pair<const char*, RmsnormFn>> kernels = distinct_kernels(&CpuKernels::rmsnorm);
  const float eps = 1e-5f;
  for (auto [kernel_name, kernel] : kernels) {
    for (int dim : {8, 24, 100, 2048}) {
      const int n = 111;
      std::vector<float> in = random_floats(size_t(n) * dim, 51u + dim, 4.0f);
      std::vector<float> weight = random_floats(dim, 52u, 2.0f);
      std::vector<float> out(size_t(n) * dim, kPoison);
      kernel(out.data(), in.data(), weight.data(), n, dim, eps, pool_of(2));
      for (int t = 0; t < n; t++) {
        double sum = 0;
        for (int i = 0; i < dim; i++) sum += double(in[size_t(t) * dim + i]) * in[size_t(t) * dim + i];
        double scale = 1.0 / std::sqrt(sum / dim + eps);
        for (int i = 0; i < dim; i++) {
          double ref = in[size_t(t) * dim + i] * scale * weight[i];
          float got = out[size_t(t) * dim + i];
          if (!(std::fabs(got - ref) <= 3e-7 * std::fabs(ref) + 1e-30)) {
            CHECK_MSG(false, kernel_name << " dim=" << dim << " [" << t << "," << i << "] " << got << " vs " << ref);
            t = n;
            break;
          }
        }
      }
      for (int t : {0, 57, 110}) {
        std::vector<float> alone(dim, kPoison);
        kernel(alone.data(), in.data() + size_t(t) * dim, weight.data(), 1, dim, eps, pool_of(1));
        CHECK_MSG(same_bits(alone.data(), out.data() + size_t(t) * dim, dim),
                  kernel_name << " dim=" << dim << " row " << t);
      }
    }
  }
}

// The fused residual add + norm against add_cpu then rmsnorm of the same kernel: same bits in the residual and the
// output, at row widths around the 8-lane blocks and thread splits of 1 and 2 (rows parallelize by width).
TEST(kernel_add_rmsnorm_equals_add_then_rmsnorm) {
  using RmsnormFn = void (*)(float*, const float*, const float*, int, int, float, ThreadPool&);
  using AddRmsnormFn = void (*)(float*, float*, const float*, const float*, int, int, float, ThreadPool&);
  struct Kernel {
    const char* name;
    RmsnormFn plain;
    AddRmsnormFn fused;
  };
  std::vector<Kernel> kernels = {{"dispatch", rmsnorm_cpu, add_rmsnorm_cpu}};
  for (auto [name, fused] : distinct_kernels(&CpuKernels::add_rmsnorm)) {
    for (const CpuKernels* variant : runnable_cpu_kernels()) {
      if (variant->add_rmsnorm == fused) {
        kernels.push_back({name, variant->rmsnorm, fused});
        break;
      }
    }
  }
  const float eps = 1e-5f;
  for (const Kernel& kernel : kernels) {
    for (int dim : {1, 7, 8, 9, 15, 17, 100, 2047, 2048, 2049}) {
      for (int n : {1, 3, 111}) {
        for (int threads : {1, 2}) {
          const uint32_t seed = 1000u * dim + n;
          const std::vector<float> residual = random_floats(size_t(n) * dim, seed, 4.0f);
          const std::vector<float> delta = random_floats(size_t(n) * dim, seed + 1, 2.0f);
          const std::vector<float> weight = random_floats(dim, seed + 2, 2.0f);

          std::vector<float> separate_sum = residual, separate_norm(residual.size(), kPoison);
          add_cpu(separate_sum.data(), delta.data(), separate_sum.size(), pool_of(threads));
          kernel.plain(separate_norm.data(), separate_sum.data(), weight.data(), n, dim, eps, pool_of(threads));

          std::vector<float> fused_sum = residual, fused_norm(residual.size(), kPoison);
          kernel.fused(fused_sum.data(), fused_norm.data(), delta.data(), weight.data(), n, dim, eps, pool_of(threads));
          CHECK_MSG(same_bits(fused_sum.data(), separate_sum.data(), fused_sum.size()),
                    kernel.name << " residual dim=" << dim << " n=" << n << " threads=" << threads);
          CHECK_MSG(same_bits(fused_norm.data(), separate_norm.data(), fused_norm.size()),
                    kernel.name << " normed dim=" << dim << " n=" << n << " threads=" << threads);
        }
      }
    }
  }
}

TEST(kernel_rope_matches_reference_and_is_batch_invariant) {
  using RopeFn = void (*)(float*, int, int, int, int, int, const float*, const float*);
  std::vector<std::pair<const char*, RopeFn>> kernels = distinct_kernels(&CpuKernels::rope);
  for (auto [kernel_name, kernel] : kernels) {
    for (int head_dim : {8, 12, 34, 64, 128}) {
      const int n = 17, heads = 3, stride = heads * head_dim + 4, half = head_dim / 2, start = 5;
      std::vector<float> cos_table = random_floats(size_t(start + n) * half, 61u);
      std::vector<float> sin_table = random_floats(size_t(start + n) * half, 62u);
      std::vector<float> original = random_floats(size_t(n) * stride, 63u, 3.0f);
      std::vector<float> rotated = original;
      kernel(rotated.data(), n, stride, heads, head_dim, start, cos_table.data(), sin_table.data());
      for (int t = 0; t < n; t++) {
        for (int h = 0; h < heads; h++) {
          const float* a = original.data() + size_t(t) * stride + h * head_dim;
          const float* got = rotated.data() + size_t(t) * stride + h * head_dim;
          const float* c = cos_table.data() + size_t(start + t) * half;
          const float* s = sin_table.data() + size_t(start + t) * half;
          for (int i = 0; i < half; i++) {
            double x = a[i], y = a[i + half];
            double magnitude = std::fabs(x * c[i]) + std::fabs(y * s[i]) + std::fabs(y * c[i]) + std::fabs(x * s[i]);
            CHECK(std::fabs(got[i] - (x * c[i] - y * s[i])) <= 2.5e-7 * magnitude);
            CHECK(std::fabs(got[i + half] - (y * c[i] + x * s[i])) <= 2.5e-7 * magnitude);
          }
        }
        std::vector<float> alone(original.begin() + size_t(t) * stride, original.begin() + size_t(t + 1) * stride);
        kernel(alone.data(), 1, stride, heads, head_dim, start + t, cos_table.data(), sin_table.data());
        CHECK_MSG(same_bits(alone.data(), rotated.data() + size_t(t) * stride, stride),
                  kernel_name << " head_dim=" << head_dim << " row " << t);
      }
    }
  }
}

TEST(kernel_swiglu_and_add) {
  using SwigluFn = void (*)(float*, const float*, const float*, size_t, ThreadPool&);
  std::vector<std::pair<const char*, SwigluFn>> kernels = distinct_kernels(&CpuKernels::swiglu);
  for (auto [kernel_name, kernel] : kernels) {
    for (size_t count : {size_t(1), size_t(7), size_t(100), size_t(8192 * 17 + 3)}) {
      std::vector<float> gate = random_floats(count, 71u, 20.0f), up = random_floats(count, 72u, 3.0f);
      if (count > 2) gate[0] = -100.0f, gate[1] = 100.0f;
      std::vector<float> out(count, kPoison);
      kernel(out.data(), gate.data(), up.data(), count, pool_of(2));
      for (size_t i = 0; i < count; i++) {
        double g = gate[i], ref = g / (1.0 + std::exp(-g)) * up[i];
        if (!(std::fabs(out[i] - ref) <= 1e-6 * std::fabs(ref) + 1e-30)) {
          CHECK_MSG(false, kernel_name << " count=" << count << " [" << i << "] silu(" << g << ")·" << up[i] << " = "
                                       << out[i] << " vs " << ref);
          break;
        }
      }
      // Element-wise: any element computed alone, or in place (out aliases gate), gives the same bits.
      for (size_t i : {size_t(0), count / 2, count - 1}) {
        float alone = kPoison;
        kernel(&alone, &gate[i], &up[i], 1, pool_of(1));
        CHECK_MSG(same_bits(&alone, &out[i], 1), kernel_name << " count=" << count << " element " << i);
      }
      std::vector<float> in_place = gate;
      kernel(in_place.data(), in_place.data(), up.data(), count, pool_of(1));
      CHECK(same_bits(in_place.data(), out.data(), count));
    }
  }
  std::vector<float> accumulate = random_floats(100003, 81u), in = random_floats(100003, 82u);
  std::vector<float> expected(accumulate.size());
  for (size_t i = 0; i < expected.size(); i++) expected[i] = accumulate[i] + in[i];
  add_cpu(accumulate.data(), in.data(), accumulate.size(), pool_of(2));
  CHECK(same_bits(accumulate.data(), expected.data(), expected.size()));
}

TEST(kernel_embed_converts_rows_exactly) {
  for (DType dtype : kDtypes) {
    const int dim = is_quantized(dtype) ? 64 : 24;
    TestWeight table = make_weight(dtype, 50, dim, 91u);
    const int32_t tokens[] = {3, 49, 0, 3};
    std::vector<float> out(4 * dim, kPoison);
    embed_cpu(out.data(), tokens, 4, table.weight);
    for (int t = 0; t < 4; t++) {
      CHECK_MSG(same_bits(out.data() + t * dim, table.exact.data() + size_t(tokens[t]) * dim, dim), dtype_name(dtype));
      for (int i = 0; i < dim; i++) {  // and element by element through the slow path
        CHECK(out[size_t(t) * dim + i] == weight_element(table.weight, size_t(tokens[t]), size_t(i)));
      }
    }
  }
}

}  // namespace
}  // namespace layerskip
