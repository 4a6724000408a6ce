// Kernel lab for the CPU backend: every op against a double-precision reference at awkward sizes, AVX2 against the
// portable kernels, and bit-exact batch invariance (a row alone vs inside any batch, 1 vs 2 threads).
// Outputs are poisoned with NaN before every run so unwritten elements fail loudly.
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

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

uint16_t f32_to_f16(float value) {  // round-to-nearest-even for the finite normal range the tests use
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  uint32_t sign = (bits >> 16) & 0x8000;
  int exponent = int((bits >> 23) & 0xff) - 127 + 15;
  uint32_t mantissa = bits & 0x7fffff;
  if (exponent <= 0) return uint16_t(sign);
  uint32_t half = (uint32_t(exponent) << 10) | (mantissa >> 13);
  uint32_t rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (half & 1))) half++;
  return uint16_t(sign | half);
}

// A weight matrix in each stored dtype plus its exact f32 values (the reference reads those).
struct TestWeight {
  std::vector<uint16_t> halves;   // (rows, cols) bf16 or f16 bits
  std::vector<float> singles;     // (rows, cols) f32 storage, when dtype is F32
  std::vector<float> exact;       // (rows, cols) the stored values as f32
  Weight weight;
};

TestWeight make_weight(DType dtype, int rows, int cols, uint32_t seed) {
  TestWeight w;
  std::vector<float> values = random_floats(size_t(rows) * cols, seed);
  w.exact.resize(values.size());
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

const DType kDtypes[] = {DType::BF16, DType::F16, DType::F32};

using MatmulFn = void (*)(float*, const float*, const Weight&, int, int, ThreadPool&);

// The kernels this build can run: scalar always, AVX2 when compiled in and supported.
std::vector<std::pair<const char*, MatmulFn>> matmul_kernels() {
  std::vector<std::pair<const char*, MatmulFn>> kernels = {{"scalar", matmul_scalar}};
#if defined(LAYERSKIP_HAVE_AVX2)
  if (cpu_has_avx2()) kernels.push_back({"avx2", matmul_avx2});
#endif
  return kernels;
}

bool same_bits(const float* a, const float* b, size_t count) { return std::memcmp(a, b, count * sizeof(float)) == 0; }

ThreadPool& pool_of(int threads) {
  static ThreadPool one(1), two(2);
  return threads == 1 ? one : two;
}

// ---- matmul ------------------------------------------------------------------------------------------------------

// |out - ref| ≤ (cols/8 + 4) · ε · Σ|x·w|: an FMA chain of cols/8 steps plus the 3-level lane tree, in f32.
TEST(kernel_matmul_matches_reference) {
  const int ns[] = {1, 2, 3, 5, 7, 17, 64, 111};
  const int cols_list[] = {8, 24, 100, 2048};
  const int rows_list[] = {1, 7, 33, 4096};
  for (auto [kernel_name, kernel] : matmul_kernels()) {
    for (DType dtype : kDtypes) {
      for (int cols : cols_list) {
        for (int rows : rows_list) {
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
                double bound = (cols / 8 + 4) * kF32Epsilon * magnitude;
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
  const int ns[] = {2, 3, 4, 5, 6, 7, 8, 9, 17, 64, 111, 300};
  const int shapes[][2] = {{7, 24}, {33, 100}, {200, 2048}, {50, 8192}};  // rows, cols
  for (auto [kernel_name, kernel] : matmul_kernels()) {
    for (DType dtype : kDtypes) {
      for (auto& shape : shapes) {
        const int rows = shape[0], cols = shape[1];
        TestWeight w = make_weight(dtype, rows, cols, 5u + rows);
        std::vector<float> in = random_floats(size_t(300) * cols, 99u + cols, 3.0f);
        // Each row alone, 1 thread: the ground truth.
        std::vector<float> alone(size_t(300) * rows, kPoison);
        for (int t = 0; t < 300; t++) {
          kernel(alone.data() + size_t(t) * rows, in.data() + size_t(t) * cols, w.weight, 1, rows, pool_of(1));
        }
        for (int threads : {1, 2}) {
          for (int n : ns) {
            // Batches starting at different rows put each input row at different batch positions.
            for (int offset : {0, 300 - n}) {
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

#if defined(LAYERSKIP_HAVE_AVX2)
// The scalar kernel follows the same canonical order, so it agrees with AVX2 far inside the reference bound.
TEST(kernel_matmul_scalar_vs_avx2) {
  if (!cpu_has_avx2()) return ::layerskip::testing::skip("no AVX2");
  for (DType dtype : kDtypes) {
    for (int cols : {24, 100, 2048}) {
      const int rows = 33, n = 17;
      TestWeight w = make_weight(dtype, rows, cols, 77u);
      std::vector<float> in = random_floats(size_t(n) * cols, 78u);
      std::vector<float> scalar(size_t(n) * rows, kPoison), vector(size_t(n) * rows, kPoison);
      matmul_scalar(scalar.data(), in.data(), w.weight, n, rows, pool_of(2));
      matmul_avx2(vector.data(), in.data(), w.weight, n, rows, pool_of(2));
      for (size_t i = 0; i < scalar.size(); i++) {
        CHECK_MSG(std::fabs(scalar[i] - vector[i]) <= 1e-5f * (1.0f + std::fabs(scalar[i])),
                  dtype_name(dtype) << " cols=" << cols << " element " << i << ": " << scalar[i] << " vs " << vector[i]);
      }
    }
  }
}
#endif

}  // namespace
}  // namespace layerskip
