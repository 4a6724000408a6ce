// CUDA ops against their CPU twins: fresh random inputs (seed printed on failure) at awkward sizes, device
// outputs poisoned with NaN before every run, stated error bounds per dtype, and bit-exact batch invariance.
// Compiled only in CUDA builds; every test skips with the probe's reason when no usable GPU is present.
#if defined(LAYERSKIP_HAVE_CUDA)

#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <vector>

#include "../../cpu/sampling.h"
#include "../../cuda/cuda_backend.h"
#include "../backend.h"
#include "../quant.h"
#include "../token_distribution.h"
#include "test_framework.h"

namespace layerskip {
namespace {

const float kNaN = std::numeric_limits<float>::quiet_NaN();

// Both backends, created once per process; null cuda (and a skip) when there is no usable GPU.
struct Backends {
  std::unique_ptr<Backend> cpu;
  std::unique_ptr<Backend> cuda;
  std::string unavailable;
};

Backends& backends() {
  static Backends instance = [] {
    Backends b;
    b.cpu = make_cpu_backend(0);
    Status status = make_cuda_backend(0, &b.cuda);
    if (!status.is_ok()) b.unavailable = status.message();
    return b;
  }();
  return instance;
}

bool need_cuda() {
  if (backends().cuda) return true;
  testing::skip("CUDA unavailable: " + backends().unavailable);
  return false;
}

Backend& cpu() { return *backends().cpu; }
Backend& gpu() { return *backends().cuda; }

// A new seed per run (each failure prints it); LAYERSKIP_TEST_SEED replays one.
uint32_t fresh_seed() {
  if (const char* replay = std::getenv("LAYERSKIP_TEST_SEED")) return uint32_t(std::strtoul(replay, nullptr, 10));
  return std::random_device()();
}

std::vector<float> random_vector(std::mt19937& rng, size_t count, float scale = 1.0f) {
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<float> values(count);
  for (float& v : values) v = dist(rng);
  return values;
}

// A device buffer of the CUDA backend, freed on scope exit.
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t count) : count_(count) { CHECK_OK(gpu().alloc(count, &data_)); }
  ~DeviceBuffer() { gpu().free(data_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  float* get() const { return data_; }
  void upload(const std::vector<float>& host) { CHECK_OK(gpu().copy_from_host(data_, host.data(), std::min(host.size(), count_))); }
  void poison() { upload(std::vector<float>(count_, kNaN)); }
  std::vector<float> download() const {
    std::vector<float> host(count_);
    CHECK_OK(gpu().copy_to_host(host.data(), data_, count_));
    return host;
  }

 private:
  size_t count_;
  float* data_ = nullptr;
};

// A weight matrix in host memory in `dtype` (plain, or quantized from random f32 values), uploaded to both
// backends (the CPU one reads the host memory in place).
struct TestWeight {
  std::vector<uint16_t> half_bits;
  std::vector<float> f32;
  QuantizedMatrix quantized;
  std::vector<float> as_f32;  // (rows, cols) the stored values, widened (weight_element())
  Weight host, on_cpu, on_gpu;
};

std::unique_ptr<TestWeight> make_weight(std::mt19937& rng, DType dtype, int rows, int cols, float scale = 1.0f) {
  auto weight = std::make_unique<TestWeight>();
  std::vector<float> values = random_vector(rng, size_t(rows) * cols, scale);
  if (dtype == DType::F32) {
    weight->f32 = values;
    weight->host = Weight{weight->f32.data(), dtype, rows, cols};
  } else if (is_quantized(dtype)) {
    CHECK_OK(quantize_matrix(Weight{values.data(), DType::F32, rows, cols}, dtype, "test.weight", 0, &weight->quantized));
    weight->host = weight->quantized.view();
  } else {
    weight->half_bits.resize(values.size());
    for (size_t i = 0; i < values.size(); i++) {
      weight->half_bits[i] = dtype == DType::BF16 ? f32_to_bf16(values[i]) : f32_to_f16(values[i]);
    }
    weight->host = Weight{weight->half_bits.data(), dtype, rows, cols};
  }
  weight->as_f32.resize(values.size());
  for (int r = 0; r < rows; r++) weight_row_to_f32(weight->as_f32.data() + size_t(r) * cols, weight->host, r);
  CHECK_OK(cpu().upload_weight(weight->host, "test.weight", &weight->on_cpu));
  CHECK_OK(gpu().upload_weight(weight->host, "test.weight", &weight->on_gpu));
  return weight;
}

bool bit_equal(const float* a, const float* b, size_t count) { return std::memcmp(a, b, count * sizeof(float)) == 0; }

// --- matmul ------------------------------------------------------------------------------------------------------

// f32 and quantized weights meet f32 activations on both backends; 16-bit weights round the activations.
bool f32_activations(DType dtype) { return dtype == DType::F32 || is_quantized(dtype); }

// Bound per element: |gpu − cpu| ≤ rel · Σ_k |x_k w_k| + 1e-30. 16-bit weights: the activation is rounded to the
// weight's type (≤ 2⁻⁹ relative for bf16, 2⁻¹¹ for f16) and both sides accumulate in f32 in different orders, so
// 2⁻⁷ is a hard bound with margin; f32 and quantized weights (dequantized exactly on both): only accumulation
// order differs.
double matmul_bound(DType dtype) { return f32_activations(dtype) ? 1e-5 : 1.0 / 128; }

// Worst-case error of the device's f32-activation kernels against the exact dot product, per unit of
// Σ_k |x_k w_k|: a lane runs one fmaf chain (one rounding per step) over its units — f32: float4s of the row
// padded to 64 columns, q8: 16-column, q4: 32-column units; lane l takes units l, l + 32, … — then 5 butterfly
// additions, so by the recursive-summation bound the error is at most γ_m = m·u / (1 − m·u), m = chain + 5,
// u = 2⁻²⁴. Any wrong weight or column pairing breaks it by orders of magnitude.
double device_exact_bound(DType dtype, int cols) {
  const int unit_cols = dtype == DType::Q4 ? 32 : dtype == DType::Q8 ? 16 : 4;
  const int row_cols = dtype == DType::F32 ? cols + 63 : cols;
  const double steps = double((row_cols / unit_cols + 31) / 32 * unit_cols + 5);
  const double u = std::ldexp(1.0, -24);
  return steps * u / (1 - steps * u);
}

void check_matmul(DType dtype, int rows, int cols, int n, int extra_stride) {
  const uint32_t seed = fresh_seed();
  std::mt19937 rng(seed);
  auto weight = make_weight(rng, dtype, rows, cols);
  std::vector<float> input = random_vector(rng, size_t(n) * cols);
  const int stride = rows + extra_stride;
  const float sentinel = 12345.0f;

  std::vector<float> expected(size_t(n) * stride, sentinel);
  cpu().matmul(expected.data(), input.data(), weight->on_cpu, n, stride);

  DeviceBuffer in(input.size()), out(size_t(n) * stride);
  in.upload(input);
  std::vector<float> poisoned(size_t(n) * stride, kNaN);
  for (int t = 0; t < n; t++) {
    for (int r = rows; r < stride; r++) poisoned[size_t(t) * stride + r] = sentinel;  // gaps must stay untouched
  }
  out.upload(poisoned);
  gpu().matmul(out.get(), in.get(), weight->on_gpu, n, stride);
  std::vector<float> actual = out.download();

  const double rel = matmul_bound(dtype);
  const double exact_rel = f32_activations(dtype) ? device_exact_bound(dtype, cols) : 0.0;
  double error_sq = 0, scale_sq = 0;
  int bad = 0, samples = 0;
  // Large shapes: the O(rows · cols) bound is evaluated on every 7th row to keep the test fast.
  const int row_step = double(rows) * cols * n > 1e8 ? 7 : 1;
  for (int t = 0; t < n; t++) {
    for (int r = 0; r < stride; r++) {
      const size_t i = size_t(t) * stride + r;
      if (r < rows && r % row_step != 0) continue;
      if (r >= rows) {
        if (actual[i] != sentinel && bad++ < 3) CHECK_MSG(false, "matmul wrote the stride gap at token " << t << " column " << r << " (seed " << seed << ")");
        continue;
      }
      double magnitude = 0, products_sq = 0, exact = 0;  // products of f32 values are exact in double
      for (int k = 0; k < cols; k++) {
        const double product = double(input[size_t(t) * cols + k]) * weight->as_f32[size_t(r) * cols + k];
        exact += product;
        magnitude += std::fabs(product);
        products_sq += product * product;
      }
      const double exact_error = std::fabs(double(actual[i]) - exact);
      if (exact_rel > 0 && !(exact_error <= (exact_rel + cols * 0x1p-52) * magnitude + 1e-30) && bad++ < 3) {
        CHECK_MSG(false, "matmul " << dtype_name(dtype) << " " << rows << "x" << cols << " n=" << n << ": out[" << t << "][" << r
                                   << "] = " << actual[i] << ", exact " << exact << " (worst-case bound "
                                   << exact_rel * magnitude << ", seed " << seed << ")");
      }
      const double error = std::fabs(double(actual[i]) - expected[i]);
      error_sq += error * error;
      scale_sq += products_sq;
      samples++;
      if (!(error <= rel * magnitude + 1e-30) && bad++ < 3) {
        CHECK_MSG(false, "matmul " << dtype_name(dtype) << " " << rows << "x" << cols << " n=" << n << ": out[" << t << "][" << r
                                   << "] = " << actual[i] << ", cpu " << expected[i] << " (bound " << rel * magnitude << ", seed " << seed << ")");
      }
    }
  }
  // Typical error: the per-product rounding errors are independent, so an output's error is about
  // 2⁻⁹/√3 · ‖x ∘ w‖₂ for bf16 (the L2 norm of its products — not |output|, which cancellation can make tiny).
  // Over ≥ 32 outputs the RMS must stay under 2⁻⁸ of that scale; fewer outputs are too few to average.
  const double typical = f32_activations(dtype) ? 1e-5 : 1.0 / 256;
  CHECK_MSG(samples < 32 || std::sqrt(error_sq) <= typical * std::sqrt(scale_sq) + 1e-30,
            "matmul " << dtype_name(dtype) << " " << rows << "x" << cols << " n=" << n << ": RMS error "
                      << std::sqrt(error_sq / (double(n) * rows / row_step)) << " too large (seed " << seed << ")");
}

TEST(cuda_matmul_small_shapes) {
  if (!need_cuda()) return;
  for (DType dtype : {DType::BF16, DType::F16, DType::F32}) {
    for (int rows : {1, 7, 111}) {
      for (int cols : {1, 7, 111}) {
        for (int n : {1, 7, 13, 111}) check_matmul(dtype, rows, cols, n, n % 2 == 0 ? 0 : 5);
      }
    }
  }
}

TEST(cuda_matmul_model_shapes) {
  if (!need_cuda()) return;
  for (DType dtype : {DType::BF16, DType::F16}) {
    for (int n : {1, 7, 111}) {
      check_matmul(dtype, 4096, 4096, n, 0);
      check_matmul(dtype, 2048, 8192, n, 0);
    }
  }
  check_matmul(DType::BF16, 8192, 2048, 17, 0);
  check_matmul(DType::F32, 1000, 4096, 7, 0);
}

// Quantized weights (q8, q4): against the exact dot product of the dequantized weights (weight_element()) within
// the kernel's worst-case f32 bound, and against the CPU twin. Column counts are multiples of the 32-column block
// but not all of 64 or 128 (96, 160, 1056), so half-filled warps and odd block counts per lane are covered; n spans
// one token tile, several, and a partial last tile.
TEST(cuda_matmul_quantized_matches_cpu) {
  if (!need_cuda()) return;
  for (DType dtype : {DType::Q8, DType::Q4}) {
    for (int rows : {1, 7, 111}) {
      for (int cols : {32, 96, 160, 1056}) {
        for (int n : {1, 2, 5, 9, 17, 40}) check_matmul(dtype, rows, cols, n, n % 2 == 0 ? 0 : 5);
      }
    }
    for (int n : {1, 9, 40}) check_matmul(dtype, 300, 4096, n, 0);
  }
}

TEST(cuda_matmul_quantized_model_shapes) {
  if (!need_cuda()) return;
  for (DType dtype : {DType::Q8, DType::Q4}) {
    for (int n : {1, 9}) check_matmul(dtype, 2048, 8192, n, 0);
    check_matmul(dtype, 8192, 2048, 5, 0);
  }
}

// A row's result is bit-identical alone (skinny kernel), in a small batch at another position (skinny, two token
// tiles) and in a large batch (tiled kernel).
void check_matmul_invariance(DType dtype, int rows, int cols) {
  const uint32_t seed = fresh_seed();
  std::mt19937 rng(seed);
  auto weight = make_weight(rng, dtype, rows, cols, 0.5f);
  const int n = 111;
  std::vector<float> input = random_vector(rng, size_t(n) * cols);
  DeviceBuffer in(input.size()), batch_out(size_t(n) * rows), single_out(size_t(16) * rows);
  in.upload(input);
  batch_out.poison();
  gpu().matmul(batch_out.get(), in.get(), weight->on_gpu, n, rows);
  std::vector<float> batch = batch_out.download();
  for (int t : {0, 5, 64, 110}) {
    for (int window : {1, 7, 13}) {
      const int first = std::max(0, std::min(t - window / 2, n - window));  // t somewhere inside the window
      single_out.poison();
      gpu().matmul(single_out.get(), in.get() + size_t(first) * cols, weight->on_gpu, window, rows);
      std::vector<float> single = single_out.download();
      CHECK_MSG(bit_equal(single.data() + size_t(t - first) * rows, batch.data() + size_t(t) * rows, rows),
                "matmul " << dtype_name(dtype) << " " << rows << "x" << cols << ": token " << t << " differs between n=" << window
                          << " and n=" << n << " (seed " << seed << ")");
    }
  }
}

TEST(cuda_matmul_batch_invariance) {
  if (!need_cuda()) return;
  for (DType dtype : {DType::BF16, DType::F16, DType::F32}) {
    check_matmul_invariance(dtype, 111, 111);
    check_matmul_invariance(dtype, 300, 4096);
    check_matmul_invariance(dtype, 2048, 8192);
  }
}

// The same for quantized weights: a token alone (n = 1), in a 7- or 13-token batch at another tile position and in
// the 111-token batch gives the same bits.
TEST(cuda_matmul_quantized_batch_invariance) {
  if (!need_cuda()) return;
  for (DType dtype : {DType::Q8, DType::Q4}) {
    check_matmul_invariance(dtype, 111, 160);
    check_matmul_invariance(dtype, 300, 4096);
    check_matmul_invariance(dtype, 2048, 8192);
  }
}

// --- attention ---------------------------------------------------------------------------------------------------

struct AttentionCase {
  int num_heads, num_kv_heads, head_dim, start_pos, n;
};

void check_attention(const AttentionCase& c) {
  const uint32_t seed = fresh_seed();
  std::mt19937 rng(seed);
  const int q_width = c.num_heads * c.head_dim, kv_width = c.num_kv_heads * c.head_dim;
  const int length = c.start_pos + c.n, capacity = length + 9;
  std::vector<float> q = random_vector(rng, size_t(c.n) * q_width, 2.0f);
  std::vector<float> keys = random_vector(rng, size_t(capacity) * kv_width, 2.0f);
  std::vector<float> values = random_vector(rng, size_t(capacity) * kv_width);
  for (size_t i = size_t(length) * kv_width; i < keys.size(); i++) keys[i] = values[i] = kNaN;  // past the sequence

  std::vector<float> expected(q.size());
  cpu().attention(expected.data(), q.data(), keys.data(), values.data(), c.n, c.start_pos, c.num_heads, c.num_kv_heads, c.head_dim);

  DeviceBuffer q_device(q.size()), k_device(keys.size()), v_device(values.size()), out(q.size());
  q_device.upload(q);
  k_device.upload(keys);
  v_device.upload(values);
  out.poison();
  gpu().attention(out.get(), q_device.get(), k_device.get(), v_device.get(), c.n, c.start_pos, c.num_heads, c.num_kv_heads, c.head_dim);
  std::vector<float> actual = out.download();
  // Outputs are convex combinations of values in [-1, 1]: an absolute bound (f32 throughout, sums in different
  // orders; head_dim-long dot products shift scores by ~1e-6 relative).
  int bad = 0;
  for (size_t i = 0; i < actual.size(); i++) {
    if (!(std::fabs(actual[i] - expected[i]) <= 1e-4f) && bad++ < 3) {
      CHECK_MSG(false, "attention heads " << c.num_heads << "/" << c.num_kv_heads << " dim " << c.head_dim << " start " << c.start_pos
                                          << " n " << c.n << ": out[" << i << "] = " << actual[i] << ", cpu " << expected[i] << " (seed " << seed << ")");
    }
  }

  // Each query alone (n = 1 at its own position) must reproduce its batched row bit for bit.
  DeviceBuffer single(q_width);
  for (int t : {0, c.n / 2, c.n - 1}) {
    single.poison();
    gpu().attention(single.get(), q_device.get() + size_t(t) * q_width, k_device.get(), v_device.get(), 1, c.start_pos + t,
                    c.num_heads, c.num_kv_heads, c.head_dim);
    std::vector<float> alone = single.download();
    CHECK_MSG(bit_equal(alone.data(), actual.data() + size_t(t) * q_width, q_width),
              "attention query " << t << " differs alone vs batched (start " << c.start_pos << ", n " << c.n << ", seed " << seed << ")");
  }
}

TEST(cuda_attention_matches_cpu) {
  if (!need_cuda()) return;
  const AttentionCase cases[] = {
      {1, 1, 1, 0, 1},      {7, 7, 7, 3, 7},       {4, 1, 16, 0, 111},   {32, 8, 64, 0, 1},     {32, 8, 64, 5, 7},
      {32, 8, 64, 300, 7},  {32, 8, 64, 200, 111}, {32, 8, 64, 1000, 1}, {24, 8, 128, 700, 13}, {8, 2, 256, 40, 7},
      {32, 1, 96, 250, 9},
  };
  for (const AttentionCase& c : cases) check_attention(c);
}

// --- element-wise ops, norm, rope, embed ------------------------------------------------------------------------

// Embedded rows are the stored values widened to f32: bit-identical to the CPU's embed and to weight_element().
void check_embed(std::mt19937& rng, DType dtype, int cols) {
  const int vocab = 1000;
  auto table = make_weight(rng, dtype, vocab, cols);
  for (int n : {1, 7, 111}) {
    std::vector<int32_t> tokens(n);
    for (int32_t& token : tokens) token = int32_t(rng() % vocab);
    std::vector<float> expected(size_t(n) * cols), widened(size_t(n) * cols);
    cpu().embed(expected.data(), tokens.data(), n, table->on_cpu);
    for (int t = 0; t < n; t++) {
      std::memcpy(widened.data() + size_t(t) * cols, table->as_f32.data() + size_t(tokens[t]) * cols, cols * sizeof(float));
    }
    DeviceBuffer out(expected.size());
    out.poison();
    gpu().embed(out.get(), tokens.data(), n, table->on_gpu);
    const std::vector<float> actual = out.download();
    CHECK_MSG(bit_equal(actual.data(), expected.data(), expected.size()), "embed " << dtype_name(dtype) << " cols " << cols << " n " << n << " differs from the CPU");
    CHECK_MSG(bit_equal(actual.data(), widened.data(), widened.size()), "embed " << dtype_name(dtype) << " cols " << cols << " n " << n << " differs from weight_element()");
  }
}

TEST(cuda_embed_exact) {
  if (!need_cuda()) return;
  std::mt19937 rng(fresh_seed());
  for (DType dtype : {DType::BF16, DType::F16, DType::F32}) {
    for (int cols : {1, 7, 111, 2048}) check_embed(rng, dtype, cols);
  }
}

TEST(cuda_embed_quantized_exact) {
  if (!need_cuda()) return;
  std::mt19937 rng(fresh_seed());
  for (DType dtype : {DType::Q8, DType::Q4}) {
    for (int cols : {32, 96, 2048}) check_embed(rng, dtype, cols);
  }
}

void check_close(const std::vector<float>& actual, const std::vector<float>& expected, double rel, double abs,
                 const std::string& what) {
  int bad = 0;
  for (size_t i = 0; i < expected.size(); i++) {
    if (!(std::fabs(double(actual[i]) - expected[i]) <= rel * std::fabs(expected[i]) + abs) && bad++ < 3) {
      CHECK_MSG(false, what << ": [" << i << "] = " << actual[i] << ", cpu " << expected[i]);
    }
  }
}

TEST(cuda_rmsnorm_and_fused_add) {
  if (!need_cuda()) return;
  const uint32_t seed = fresh_seed();
  std::mt19937 rng(seed);
  for (int dim : {1, 7, 111, 2048, 4096}) {
    for (int n : {1, 7, 111}) {
      std::vector<float> x = random_vector(rng, size_t(n) * dim, 3.0f), y = random_vector(rng, size_t(n) * dim);
      std::vector<float> weight = random_vector(rng, dim);
      std::vector<float> expected(x.size());
      cpu().rmsnorm(expected.data(), x.data(), weight.data(), n, dim, 1e-5f);
      DeviceBuffer in(x.size()), w(dim), out(x.size()), other(y.size());
      in.upload(x);
      w.upload(weight);
      out.poison();
      gpu().rmsnorm(out.get(), in.get(), w.get(), n, dim, 1e-5f);
      std::vector<float> plain = out.download();
      check_close(plain, expected, 5e-5, 1e-6, "rmsnorm dim " + std::to_string(dim) + " n " + std::to_string(n) + " seed " + std::to_string(seed));

      // Fused residual add + norm == add then norm on the device, bit for bit.
      other.upload(y);
      gpu().add(in.get(), other.get(), x.size());
      out.poison();
      gpu().rmsnorm(out.get(), in.get(), w.get(), n, dim, 1e-5f);
      std::vector<float> separate_norm = out.download(), separate_sum = in.download();
      in.upload(x);
      out.poison();
      gpu().add_rmsnorm(in.get(), out.get(), other.get(), w.get(), n, dim, 1e-5f);
      std::vector<float> fused_norm = out.download(), fused_sum = in.download();
      CHECK_MSG(bit_equal(fused_norm.data(), separate_norm.data(), x.size()) && bit_equal(fused_sum.data(), separate_sum.data(), x.size()),
                "add_rmsnorm differs from add + rmsnorm (dim " << dim << ", n " << n << ")");

      // ... and against the CPU's fused op: the sums are the same IEEE additions (exact), the norm within rmsnorm's bound.
      std::vector<float> cpu_sum = x, cpu_norm(x.size(), kNaN);
      cpu().add_rmsnorm(cpu_sum.data(), cpu_norm.data(), y.data(), weight.data(), n, dim, 1e-5f);
      CHECK_MSG(bit_equal(fused_sum.data(), cpu_sum.data(), x.size()), "add_rmsnorm residual differs from the CPU (dim " << dim << ", n " << n << ")");
      check_close(fused_norm, cpu_norm, 5e-5, 1e-6, "add_rmsnorm dim " + std::to_string(dim) + " n " + std::to_string(n) + " seed " + std::to_string(seed));
    }
  }
}

TEST(cuda_rope_matches_cpu) {
  if (!need_cuda()) return;
  const uint32_t seed = fresh_seed();
  std::mt19937 rng(seed);
  for (int head_dim : {2, 64, 128}) {
    for (int n : {1, 7, 111}) {
      const int heads = 5, stride = heads * head_dim + 3, positions = 400, start = 17;
      std::vector<float> cos_table(size_t(positions) * head_dim / 2), sin_table(cos_table.size());
      for (size_t i = 0; i < cos_table.size(); i++) {
        const double angle = double(rng() % 100000) / 1000.0;
        cos_table[i] = float(std::cos(angle));
        sin_table[i] = float(std::sin(angle));
      }
      std::vector<float> vectors = random_vector(rng, size_t(n) * stride, 4.0f);
      std::vector<float> expected = vectors;
      cpu().rope(expected.data(), n, stride, heads, head_dim, start, cos_table.data(), sin_table.data());
      DeviceBuffer data(vectors.size()), cos_device(cos_table.size()), sin_device(sin_table.size());
      data.upload(vectors);
      cos_device.upload(cos_table);
      sin_device.upload(sin_table);
      gpu().rope(data.get(), n, stride, heads, head_dim, start, cos_device.get(), sin_device.get());
      check_close(data.download(), expected, 1e-6, 2e-6, "rope head_dim " + std::to_string(head_dim) + " n " + std::to_string(n) + " seed " + std::to_string(seed));
    }
  }
}

TEST(cuda_swiglu_add_copy) {
  if (!need_cuda()) return;
  const uint32_t seed = fresh_seed();
  std::mt19937 rng(seed);
  for (size_t count : {size_t(1), size_t(7), size_t(111), size_t(4096), size_t(2048) * 8192}) {
    std::vector<float> gate = random_vector(rng, count, 8.0f), up = random_vector(rng, count, 2.0f);
    std::vector<float> expected(count);
    cpu().swiglu(expected.data(), gate.data(), up.data(), count);
    DeviceBuffer g(count), u(count), out(count);
    g.upload(gate);
    u.upload(up);
    out.poison();
    gpu().swiglu(out.get(), g.get(), u.get(), count);
    check_close(out.download(), expected, 1e-6, 1e-7, "swiglu count " + std::to_string(count) + " seed " + std::to_string(seed));
    gpu().swiglu(g.get(), g.get(), u.get(), count);  // in place, as the Context calls it
    check_close(g.download(), expected, 1e-6, 1e-7, "swiglu in place");

    std::vector<float> sum = gate;
    cpu().add(sum.data(), up.data(), count);
    g.upload(gate);
    gpu().add(g.get(), u.get(), count);
    CHECK_MSG(bit_equal(g.download().data(), sum.data(), count), "add count " << count);
    out.poison();
    gpu().copy(out.get(), u.get(), count);
    CHECK_MSG(bit_equal(out.download().data(), up.data(), count), "copy count " << count);
  }
}

// --- sampling ----------------------------------------------------------------------------------------------------

std::vector<float> random_logits(std::mt19937& rng, int vocab, bool with_ties) {
  std::normal_distribution<float> dist(0.0f, 3.0f);
  std::vector<float> logits(vocab);
  for (float& x : logits) x = with_ties ? std::round(dist(rng) * 2.0f) / 2.0f : dist(rng);
  return logits;
}

TEST(cuda_sample_greedy) {
  if (!need_cuda()) return;
  const uint32_t seed = fresh_seed();
  std::mt19937 rng(seed);
  for (int vocab : {1, 7, 111, 4096, 128256}) {
    for (int n : {1, 7}) {
      for (bool ties : {false, true}) {
        std::vector<float> logits;
        for (int i = 0; i < n; i++) {
          std::vector<float> row = random_logits(rng, vocab, ties);
          logits.insert(logits.end(), row.begin(), row.end());
        }
        DeviceBuffer device_logits(logits.size());
        device_logits.upload(logits);
        std::vector<SampledToken> actual(n);
        CHECK_OK(gpu().sample(actual.data(), device_logits.get(), n, vocab, SamplingParams(), nullptr));
        for (int i = 0; i < n; i++) {
          SampledToken expected = sample_row_cpu(logits.data() + size_t(i) * vocab, vocab, SamplingParams(), 0.0);
          CHECK_MSG(actual[i].token == expected.token && std::fabs(actual[i].probability - expected.probability) <= 1e-4f * expected.probability,
                    "greedy vocab " << vocab << " row " << i << ": cuda " << actual[i].token << " p " << actual[i].probability << ", cpu "
                                    << expected.token << " p " << expected.probability << " (seed " << seed << ")");
        }
      }
    }
  }
}

// The device sums in f32 (block trees), the CPU in f64 (in order), so a uniform within the f32 error of a cumulative
// boundary may draw a neighbour. Over a 128k flat tail, whose tokens each hold ~1e-6 of the mass, that is not rare.
// A disagreement is accepted only when the device's token is the CPU's inverse CDF at u within kDrawTolerance of
// cumulative probability; and disagreements must stay a small share of the draws, which any real bug (an
// off-by-one in the walk, a wrong distribution) would exceed. √128256 · 2⁻²⁴ ≈ 2e-5 is a random-walk f32 error
// over the full vocabulary; the bound is twice that. (Misses of 7.6e-5 and 2.4e-4 on tied tails — seeds 4199144460
// and 3787837782 — were not rounding: the device ordered a logit of -0 after +0, the CPU as a tie.)
constexpr double kDrawTolerance = 4e-5;

// [before, after): the cumulative probability interval of `token` in `distribution`'s draw order (empty if absent).
std::pair<double, double> draw_interval(const TokenDistribution& distribution, int32_t token) {
  double cumulative = 0;
  for (size_t i = 0; i < distribution.tokens.size(); i++) {
    if (distribution.tokens[i] == token) return {cumulative, cumulative + distribution.probabilities[i]};
    cumulative += distribution.probabilities[i];
  }
  return {2.0, 2.0};
}

// The same for a residual draw: normalize(max(0, verify − draft)) walked in verify's order (verify itself when the
// residual has no mass), as core/token_distribution.cc's sample_residual.
std::pair<double, double> residual_interval(const TokenDistribution& verify, const TokenDistribution& draft,
                                            int32_t token) {
  std::vector<double> residual(verify.tokens.size());
  double total = 0;
  for (size_t i = 0; i < verify.tokens.size(); i++) {
    residual[i] = std::max(0.0, verify.probabilities[i] - draft.probability_of(verify.tokens[i]));
    total += residual[i];
  }
  if (!(total > 0)) return draw_interval(verify, token);
  double cumulative = 0;
  for (size_t i = 0; i < verify.tokens.size(); i++) {
    if (verify.tokens[i] == token) return {cumulative / total, (cumulative + residual[i]) / total};
    cumulative += residual[i];
  }
  return {2.0, 2.0};
}

bool near_draw(const std::pair<double, double>& interval, double u) {
  return u >= interval.first - kDrawTolerance && u <= interval.second + kDrawTolerance;
}

// -0 and +0 compare equal, so the CPU orders them as one tie, by id; the device must draw the same token for a
// uniform in the middle of each token's interval.
TEST(cuda_sample_orders_signed_zero_logits_as_ties) {
  if (!need_cuda()) return;
  const std::vector<float> logits = {-0.0f, 0.0f, -0.0f, 0.0f, 1.0f, -0.0f, 0.0f, -0.0f};
  const int vocab = int(logits.size());
  DeviceBuffer device_logits(logits.size());
  device_logits.upload(logits);
  const SamplingParams params{1.0f, 0, 1.0f};
  TokenDistribution distribution;
  build_token_distribution(logits.data(), vocab, params, &distribution);
  double cumulative = 0;
  for (size_t i = 0; i < distribution.tokens.size(); i++) {
    const double u = cumulative + distribution.probabilities[i] / 2;
    cumulative += distribution.probabilities[i];
    SampledToken actual;
    CHECK_OK(gpu().sample(&actual, device_logits.get(), 1, vocab, params, &u));
    CHECK_MSG(actual.token == distribution.tokens[i],
              "u " << u << ": cuda drew " << actual.token << ", the CPU's order has " << distribution.tokens[i]);
  }
}

TEST(cuda_sample_top_k_top_p) {
  if (!need_cuda()) return;
  const uint32_t seed = fresh_seed();
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  const SamplingParams settings[] = {{1.0f, 0, 1.0f}, {0.7f, 40, 1.0f}, {1.0f, 0, 0.9f}, {0.8f, 50, 0.95f},
                                     {1.3f, 1, 1.0f}, {1.0f, 3, 0.5f},  {0.5f, 100000, 0.99f}};
  int draws = 0, disagreements = 0;
  for (int vocab : {7, 111, 4096, 128256}) {
    for (bool ties : {false, true}) {
      const int n = 3;
      std::vector<float> logits;
      for (int i = 0; i < n; i++) {
        std::vector<float> row = random_logits(rng, vocab, ties);
        logits.insert(logits.end(), row.begin(), row.end());
      }
      DeviceBuffer device_logits(logits.size());
      device_logits.upload(logits);
      for (const SamplingParams& params : settings) {
        for (int repeat = 0; repeat < 4; repeat++) {
          double uniforms[n];
          for (double& u : uniforms) u = uniform(rng);
          SampledToken actual[n];
          CHECK_OK(gpu().sample(actual, device_logits.get(), n, vocab, params, uniforms));
          for (int i = 0; i < n; i++) {
            SampledToken expected = sample_row_cpu(logits.data() + size_t(i) * vocab, vocab, params, uniforms[i]);
            draws++;
            const bool same = actual[i].token == expected.token;
            if (!same) {
              disagreements++;
              TokenDistribution distribution;
              build_token_distribution(logits.data() + size_t(i) * vocab, vocab, params, &distribution);
              const auto got = draw_interval(distribution, actual[i].token);
              const auto want = draw_interval(distribution, expected.token);
              CHECK_MSG(near_draw(got, uniforms[i]),
                        "cuda drew " << actual[i].token << " [" << got.first << ", " << got.second << "), cpu "
                                     << expected.token << " [" << want.first << ", " << want.second << ") at u "
                                     << uniforms[i] << ": not a rounding neighbour (vocab " << vocab << ", T "
                                     << params.temperature << ", top_k " << params.top_k << ", top_p " << params.top_p
                                     << ", ties " << ties << ", seed " << seed << ")");
            }
            if (same) {
              CHECK_MSG(std::fabs(actual[i].probability - expected.probability) <= 1e-4f * expected.probability + 1e-7f,
                        "probability of token " << expected.token << ": cuda " << actual[i].probability << ", cpu " << expected.probability
                                                << " (vocab " << vocab << ", T " << params.temperature << ", top_k " << params.top_k
                                                << ", top_p " << params.top_p << ", seed " << seed << ")");
            }
          }
        }
      }
    }
  }
  CHECK_MSG(disagreements * 100 <= draws, disagreements << " of " << draws << " draws differ from the CPU (seed " << seed << ")");
}

// Speculative sampling against the CPU twin: draft rows sampled on both (probability and top probability), then
// verification in two calls (rows [0, 2) hold two drafts, rows [2, 4) the last draft and the bonus row), with
// p_verify(d) and p_draft(d) within 1e-4 and the residual draws equal. Verify rows are the draft rows plus noise,
// so the two distributions overlap and the residual is small but not empty. As for plain sampling, a uniform
// within rounding of a cumulative boundary may draw a neighbour (checked to be one).
TEST(cuda_speculative_sampler_matches_cpu) {
  if (!need_cuda()) return;
  const uint32_t seed = fresh_seed();
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  std::normal_distribution<float> noise(0.0f, 0.5f);
  const SamplingParams settings[] = {{1.0f, 0, 1.0f}, {0.8f, 40, 0.95f}, {1.2f, 0, 0.9f}};
  auto close = [](float actual, float expected) { return std::fabs(actual - expected) <= 1e-4f * expected + 1e-6f; };
  int draws = 0, disagreements = 0;
  for (int vocab : {7, 111, 4096, 32000}) {
    constexpr int kDrafted = 3, kRows = kDrafted + 1;
    std::vector<float> draft_logits, verify_logits;
    for (int r = 0; r < kRows; r++) {
      std::vector<float> row = random_logits(rng, vocab, false);
      draft_logits.insert(draft_logits.end(), row.begin(), row.end());
      for (float& x : row) x += noise(rng);
      verify_logits.insert(verify_logits.end(), row.begin(), row.end());
    }
    DeviceBuffer device_draft(draft_logits.size()), device_verify(verify_logits.size());
    device_draft.upload(draft_logits);
    device_verify.upload(verify_logits);
    for (const SamplingParams& params : settings) {
      std::unique_ptr<SpeculativeSampler> on_cpu, on_gpu;
      CHECK_OK(cpu().make_speculative_sampler(kRows, vocab, &on_cpu));
      CHECK_OK(gpu().make_speculative_sampler(kRows, vocab, &on_gpu));
      if (!on_cpu || !on_gpu) return;
      int32_t draft_tokens[kDrafted];
      for (int d = 0; d < kDrafted; d++) {
        const double u = uniform(rng);
        SampledToken expected, actual;
        CHECK_OK(on_cpu->sample_draft(&expected, draft_logits.data() + size_t(d) * vocab, params, u, d));
        CHECK_OK(on_gpu->sample_draft(&actual, device_draft.get() + size_t(d) * vocab, params, u, d));
        draws++;
        if (actual.token != expected.token) {
          disagreements++;
          TokenDistribution distribution;
          build_token_distribution(draft_logits.data() + size_t(d) * vocab, vocab, params, &distribution);
          CHECK_MSG(near_draw(draw_interval(distribution, actual.token), u),
                    "draft: cuda drew " << actual.token << ", cpu " << expected.token << " (seed " << seed << ")");
        }
        CHECK_MSG(close(actual.top_probability, expected.top_probability),
                  "draft top probability: cuda " << actual.top_probability << ", cpu " << expected.top_probability << " (seed " << seed << ")");
        if (actual.token == expected.token) {
          CHECK_MSG(close(actual.probability, expected.probability),
                    "draft probability: cuda " << actual.probability << ", cpu " << expected.probability << " (seed " << seed << ")");
        }
        draft_tokens[d] = expected.token;
      }
      for (int begin : {0, 2}) {
        constexpr int kCount = 2;
        double uniforms[kCount];
        for (double& u : uniforms) u = uniform(rng);
        VerifyRow expected[kCount], actual[kCount];
        CHECK_OK(on_cpu->verify(expected, verify_logits.data() + size_t(begin) * vocab, begin, kCount, kDrafted,
                                draft_tokens, params, uniforms));
        CHECK_OK(on_gpu->verify(actual, device_verify.get() + size_t(begin) * vocab, begin, kCount, kDrafted,
                                draft_tokens, params, uniforms));
        for (int i = 0; i < kCount; i++) {
          draws++;
          if (actual[i].token != expected[i].token) {
            disagreements++;
            const int row = begin + i;
            TokenDistribution verify, draft;
            build_token_distribution(verify_logits.data() + size_t(row) * vocab, vocab, params, &verify);
            if (row < kDrafted) build_token_distribution(draft_logits.data() + size_t(row) * vocab, vocab, params, &draft);
            CHECK_MSG(near_draw(row < kDrafted ? residual_interval(verify, draft, actual[i].token)
                                               : draw_interval(verify, actual[i].token),
                                uniforms[i]),
                      "row " << row << ": cuda drew " << actual[i].token << ", cpu " << expected[i].token
                             << " (seed " << seed << ")");
          }
          CHECK_MSG(close(actual[i].verify_probability, expected[i].verify_probability) &&
                        close(actual[i].draft_probability, expected[i].draft_probability),
                    "row " << begin + i << " (vocab " << vocab << ", T " << params.temperature << ", top_k " << params.top_k
                           << ", top_p " << params.top_p << "): p_verify cuda " << actual[i].verify_probability << " cpu "
                           << expected[i].verify_probability << ", p_draft cuda " << actual[i].draft_probability << " cpu "
                           << expected[i].draft_probability << " (seed " << seed << ")");
        }
      }
    }
  }
  CHECK_MSG(disagreements <= 2 + draws / 50, disagreements << " of " << draws << " draws differ from the CPU (seed " << seed << ")");
}

TEST(cuda_probe_and_errors) {
  CudaDeviceInfo info;
  Status status = cuda_device_info(0, &info);
  if (!status.is_ok()) {
    CHECK(!status.message().empty());
    testing::skip("CUDA unavailable: " + status.message());
    return;
  }
  CHECK(info.device_count >= 1 && !info.name.empty() && info.total_memory > 0 && info.compute_major >= 8);
  CHECK(!cuda_device_info(info.device_count, &info).is_ok());  // out of range, with a message
  // Asking for more memory than exists fails with a Status naming the device, and the backend stays usable.
  float* huge = nullptr;
  Status too_big = gpu().alloc(size_t(1) << 50, &huge);
  CHECK(!too_big.is_ok() && too_big.message().find("cuda:0") != std::string::npos);
  DeviceBuffer still_fine(16);
  still_fine.upload(std::vector<float>(16, 1.0f));
  CHECK(still_fine.download()[15] == 1.0f);
  BackendMemory memory;
  CHECK_OK(gpu().memory(&memory));
  CHECK(memory.has_device_memory && memory.buffer_bytes >= 64 && memory.device_total_bytes > 0 &&
        memory.device_free_bytes > 0 && memory.device_free_bytes <= memory.device_total_bytes);
  // A weight set larger than the free memory is refused before anything is uploaded, with both sizes named.
  Status too_many_weights = gpu().check_weights_fit(memory.device_free_bytes + (size_t(1) << 30));
  CHECK_MSG(!too_many_weights.is_ok() && too_many_weights.message().find("GiB free") != std::string::npos,
            too_many_weights.message());
  CHECK_OK(gpu().check_weights_fit(1 << 20));
  CHECK_OK(cpu().memory(&memory));
  CHECK(!memory.has_device_memory);
}

// Quantized uploads: the device copies every plane (reads_host_weights() is false) and counts exactly what
// weight_upload_bytes() promised; a malformed quantized matrix or a dtype no kernel reads fails naming the tensor.
TEST(cuda_upload_quantized_weights) {
  if (!need_cuda()) return;
  CHECK(!gpu().reads_host_weights());
  std::mt19937 rng(fresh_seed());
  for (DType dtype : {DType::Q8, DType::Q4}) {
    BackendMemory before, after;
    CHECK_OK(gpu().memory(&before));
    auto weight = make_weight(rng, dtype, 7, 96);
    CHECK_OK(gpu().memory(&after));
    CHECK_EQ(gpu().weight_upload_bytes(dtype, 7, 96), weight_bytes(dtype, 7, 96));
    CHECK_EQ(after.weight_bytes - before.weight_bytes, weight_bytes(dtype, 7, 96));
    Weight uploaded;
    Weight odd_columns = weight->host;
    odd_columns.cols = 48;
    Weight no_scales = weight->host;
    (dtype == DType::Q4 ? no_scales.mins : no_scales.scales) = nullptr;
    for (const Weight& bad : {odd_columns, no_scales}) {
      Status status = gpu().upload_weight(bad, "layers.0.bad_proj.weight", &uploaded);
      CHECK_MSG(!status.is_ok() && status.message().find("layers.0.bad_proj.weight") != std::string::npos, status.message());
    }
  }
  const std::vector<int8_t> plane(64, 1);
  Weight uploaded;
  Status status = gpu().upload_weight(Weight{plane.data(), DType::I8, 2, 32}, "stray.qs", &uploaded);
  CHECK_MSG(!status.is_ok() && status.message().find("stray.qs") != std::string::npos, status.message());
}

// --- benchmarks ----------------------------------------------------------------------------------------------
// Lines "  result: name = value" are collected by scripts/gpu-check.sh into its summary table.

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Waits for the backend's queue (copy_to_host synchronizes) and surfaces any sticky error.
void wait_for(Backend& backend, float* any_buffer) {
  float value;
  CHECK_OK(backend.copy_to_host(&value, any_buffer, 1));
}

// Seconds per call of matmul(rows × cols weight, n tokens), averaged after a warm-up.
double time_matmul(const TestWeight& weight, int n, int iterations) {
  DeviceBuffer in(size_t(n) * weight.on_gpu.cols), out(size_t(n) * weight.on_gpu.rows);
  in.upload(std::vector<float>(size_t(n) * weight.on_gpu.cols, 0.5f));
  gpu().matmul(out.get(), in.get(), weight.on_gpu, n, weight.on_gpu.rows);
  wait_for(gpu(), out.get());
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < iterations; i++) gpu().matmul(out.get(), in.get(), weight.on_gpu, n, weight.on_gpu.rows);
  wait_for(gpu(), out.get());
  return seconds_since(start) / iterations;
}

BENCH(cuda_matvec_bandwidth) {
  if (!need_cuda()) return;
  double copy_gbps = 0;
  CHECK_OK(cuda_measure_copy_bandwidth(0, &copy_gbps));
  std::printf("  result: copy_bandwidth_GBps = %.0f\n", copy_gbps);
  std::mt19937 rng(1);
  const int shapes[][2] = {{2048, 2048}, {512, 2048}, {8192, 2048}, {2048, 8192}, {128256, 2048}};
  for (const auto& shape : shapes) {
    // Quantized: every plane read counts (qs, scales, q4 offsets); the LM-head shape stays bf16 only.
    for (DType dtype : {DType::BF16, DType::Q8, DType::Q4}) {
      if (dtype != DType::BF16 && shape[0] > 8192) continue;
      auto weight = make_weight(rng, dtype, shape[0], shape[1], 0.02f);
      const double seconds = time_matmul(*weight, 1, 200);
      const double gbps = double(weight_bytes(dtype, shape[0], shape[1])) / seconds / 1e9;
      std::printf("  result: matvec_%s_%dx%d_GBps = %.0f (%.0f%% of copy, %.1f us)\n",
                  dtype == DType::BF16 ? "bf16" : dtype_name(dtype), shape[0], shape[1], gbps, 100 * gbps / copy_gbps,
                  seconds * 1e6);
    }
  }
}

BENCH(cuda_matmat_tflops) {
  if (!need_cuda()) return;
  double peak = 0;
  CHECK_OK(cuda_measure_mma_tflops(0, &peak));
  std::printf("  result: mma_bf16_peak_TFLOPs = %.0f\n", peak);
  std::mt19937 rng(2);
  const int shapes[][2] = {{2048, 2048}, {8192, 2048}, {2048, 8192}, {128256, 2048}};
  for (const auto& shape : shapes) {
    auto weight = make_weight(rng, DType::BF16, shape[0], shape[1], 0.02f);
    for (int n : {5, 512}) {
      const double seconds = time_matmul(*weight, n, n == 512 ? 20 : 100);
      const double tflops = 2.0 * shape[0] * shape[1] * n / seconds / 1e12;
      std::printf("  result: matmul_bf16_%dx%d_n%d_TFLOPs = %.1f (%.0f%% of mma peak, %.1f us)\n", shape[0], shape[1], n,
                  tflops, 100 * tflops / peak, seconds * 1e6);
    }
  }
  // Quantized weights run on CUDA cores for every n (matmul_quant.cu): verification and prefill cost.
  for (DType dtype : {DType::Q8, DType::Q4}) {
    for (const auto& shape : {std::pair<int, int>{8192, 2048}, std::pair<int, int>{2048, 8192}}) {
      auto weight = make_weight(rng, dtype, shape.first, shape.second, 0.02f);
      for (int n : {5, 512}) {
        const double seconds = time_matmul(*weight, n, n == 512 ? 10 : 100);
        const double tflops = 2.0 * shape.first * shape.second * n / seconds / 1e12;
        std::printf("  result: matmul_%s_%dx%d_n%d_TFLOPs = %.1f (CUDA cores, %.1f us)\n", dtype_name(dtype), shape.first,
                    shape.second, n, tflops, seconds * 1e6);
      }
    }
  }
}

}  // namespace
}  // namespace layerskip

#endif  // LAYERSKIP_HAVE_CUDA
