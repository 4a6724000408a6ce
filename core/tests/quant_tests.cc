// Block quantization (core/quant.h): f16 rounding, the q8 and q4 encoders' error bounds and byte layout, and the
// errors for matrices that cannot be quantized. The kernels that read these planes are tested in kernel_tests.cc.
#include <cmath>
#include <random>
#include <vector>

#include "../../core/quant.h"
#include "test_framework.h"

namespace layerskip {
namespace {

std::vector<float> gaussian_row(int cols, uint32_t seed, float scale) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> row(cols);
  for (float& v : row) v = normal(rng);
  return row;
}

TEST(quant_f16_rounding_round_trips_and_ties_to_even) {
  for (uint32_t bits = 0; bits < 0x10000; bits++) {
    const uint16_t half = uint16_t(bits);
    if ((half & 0x7c00) == 0x7c00 && (half & 0x3ff) != 0) continue;  // NaN payloads
    CHECK_MSG(f32_to_f16(f16_to_f32(half)) == half, "f16 bits " << bits);
  }
  // Halfway between 1 and 1 + 2^-10 rounds to the even 1; halfway above 1 + 2^-10 rounds up to 1 + 2^-9.
  CHECK(f32_to_f16(1.0f + std::ldexp(1.0f, -11)) == 0x3c00);
  CHECK(f32_to_f16(1.0f + 3 * std::ldexp(1.0f, -11)) == 0x3c02);
  CHECK(f32_to_f16(std::ldexp(1.0f, -25)) == 0);       // half the smallest subnormal: ties to 0
  CHECK(f32_to_f16(std::ldexp(1.5f, -25)) == 1);       // above half: the smallest subnormal
  CHECK(f32_to_f16(65519.0f) == 0x7bff);
  CHECK(f32_to_f16(65520.0f) == 0x7c00);               // rounds past the largest finite
}

TEST(quant_q8_error_within_half_a_step) {
  const int cols = 256;
  for (uint32_t seed = 1; seed <= 20; seed++) {
    std::vector<float> row = gaussian_row(cols, seed, 0.02f * float(seed));
    std::vector<int8_t> qs(cols);
    std::vector<uint16_t> scales(cols / kQuantBlock);
    CHECK(quantize_row_q8(row.data(), cols, qs.data(), scales.data()));
    Weight w{qs.data(), DType::Q8, 1, cols, scales.data()};
    for (int b = 0; b < cols / kQuantBlock; b++) {
      float amax = 0;
      for (int i = 0; i < kQuantBlock; i++) amax = std::max(amax, std::fabs(row[b * kQuantBlock + i]));
      CHECK(scales[b] == f32_to_f16(amax / 127.0f));
      const float d = f16_to_f32(scales[b]);
      for (int i = 0; i < kQuantBlock; i++) {
        const int k = b * kQuantBlock + i;
        CHECK_MSG(std::fabs(weight_element(w, 0, k) - row[k]) <= 0.5f * d * 1.0001f, "seed " << seed << " k " << k);
      }
    }
  }
}

TEST(quant_q4_layout_and_error) {
  // Levels 0..15 then 15..0 with d = 1, m = 0 are represented exactly: the nibble order shows in the bytes.
  std::vector<float> ramp(kQuantBlock);
  for (int i = 0; i < 16; i++) {
    ramp[i] = float(i);
    ramp[16 + i] = float(15 - i);
  }
  std::vector<uint8_t> qs(16);
  uint16_t scale, min;
  CHECK(quantize_row_q4(ramp.data(), kQuantBlock, qs.data(), &scale, &min));
  CHECK(f16_to_f32(scale) == 1.0f && f16_to_f32(min) == 0.0f);
  for (int j = 0; j < 16; j++) CHECK_MSG(qs[j] == uint8_t(j | ((15 - j) << 4)), "byte " << j);

  // Gaussian rows: the fitted grid is no worse than the plain min/max grid, block by block.
  const int cols = 512;
  for (uint32_t seed = 1; seed <= 10; seed++) {
    std::vector<float> row = gaussian_row(cols, 100 + seed, 0.05f);
    std::vector<uint8_t> packed(cols / 2);
    std::vector<uint16_t> scales(cols / kQuantBlock), mins(cols / kQuantBlock);
    CHECK(quantize_row_q4(row.data(), cols, packed.data(), scales.data(), mins.data()));
    Weight w{packed.data(), DType::Q4, 1, cols, scales.data(), mins.data()};
    for (int b = 0; b < cols / kQuantBlock; b++) {
      const float* x = row.data() + b * kQuantBlock;
      float lo = x[0], hi = x[0];
      for (int i = 1; i < kQuantBlock; i++) lo = std::min(lo, x[i]), hi = std::max(hi, x[i]);
      double fitted = 0, plain = 0;
      const float step = (hi - lo) / 15;
      for (int i = 0; i < kQuantBlock; i++) {
        const double e = weight_element(w, 0, size_t(b) * kQuantBlock + i) - x[i];
        const double p = lo + step * std::nearbyint((x[i] - lo) / step) - x[i];
        fitted += e * e;
        plain += p * p;
      }
      CHECK_MSG(fitted <= plain * 1.02 + 1e-12, "seed " << seed << " block " << b << ": " << fitted << " vs " << plain);
    }
  }
}

TEST(quant_matrix_errors_name_the_tensor) {
  std::vector<float> values(3 * 40, 0.5f);
  QuantizedMatrix out;
  Status status = quantize_matrix(Weight{values.data(), DType::F32, 3, 40}, DType::Q8, "blk.w", 1, &out);
  CHECK(!status.is_ok() && status.message().find("blk.w") != std::string::npos &&
        status.message().find("multiple of the 32") != std::string::npos);
  values[2 * 32 + 5] = NAN;
  for (DType format : {DType::Q8, DType::Q4}) {
    status = quantize_matrix(Weight{values.data(), DType::F32, 3, 32}, format, "blk.w", 2, &out);
    CHECK_MSG(!status.is_ok() && status.message().find("row 2") != std::string::npos, status.message());
  }
  values[2 * 32 + 5] = 1e30f;  // its q8 scale overflows f16
  status = quantize_matrix(Weight{values.data(), DType::F32, 3, 32}, DType::Q8, "blk.w", 2, &out);
  CHECK(!status.is_ok());
}

// A quantized matrix requantized to its own format is unchanged (what `--weights` on a quantized head relies on
// being harmless), and q8 → q4 goes through the dequantized values.
TEST(quant_matrix_threads_agree_and_requantize) {
  const int rows = 37, cols = 96;
  std::vector<float> values = gaussian_row(rows * cols, 7, 0.1f);
  const Weight source{values.data(), DType::F32, rows, cols};
  for (DType format : {DType::Q8, DType::Q4}) {
    QuantizedMatrix one, two;
    CHECK_OK(quantize_matrix(source, format, "m", 1, &one));
    CHECK_OK(quantize_matrix(source, format, "m", 2, &two));
    CHECK(one.qs == two.qs && one.scales == two.scales && one.mins == two.mins);
    if (format == DType::Q8) {
      QuantizedMatrix again;
      CHECK_OK(quantize_matrix(one.view(), DType::Q8, "m", 2, &again));
      CHECK(again.qs == one.qs && again.scales == one.scales);
    }
  }
}

}  // namespace
}  // namespace layerskip
