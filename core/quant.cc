// Block quantization (formats in quant.h). q8 is absmax scaling. q4 searches a few scales per block and fits scale
// and offset by least squares to the levels each one assigns (as llama.cpp's make_qkx quantizers do), keeping the
// lowest squared error; the levels are then re-assigned against the f16-rounded scale and offset actually stored.
#include "quant.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <thread>

#include "available_cores.h"

namespace layerskip {

namespace {

bool all_finite(const float* row, int cols) {
  for (int k = 0; k < cols; k++) {
    if (!std::isfinite(row[k])) return false;
  }
  return true;
}

bool fits_f16(float value) { return std::isfinite(value) && std::fabs(value) <= 65504.0f; }

// Nearest integer, halves away from zero (plain arithmetic: std::nearbyint is a library call on baseline x86-64,
// and the quantizers round a few billion values).
inline int round_to_int(float v) { return int(v + (v >= 0 ? 0.5f : -0.5f)); }

// q4 levels of x against scale d and offset m (d > 0).
inline int q4_level(float x, float d, float m) { return std::clamp(round_to_int((x - m) / d), 0, 15); }

// Sums over a block that the least-squares fit and its error need; the x-only ones are the same for every grid.
struct BlockSums {
  double x = 0, xx = 0;  // Σx, Σx²
};

// Least-squares scale d and offset m for fixed levels, and the squared error Σ(d·l + m − x)² in closed form
// (d²Σl² + 2dmΣl + n·m² − 2dΣlx − 2mΣx + Σx²); false when the levels are all equal.
bool fit_scale_offset(const float* x, const int* levels, const BlockSums& sums, float* d, float* m, double* error) {
  int sum_l = 0, sum_ll = 0;
  double lx[8] = {0, 0, 0, 0, 0, 0, 0, 0};  // eight partial sums: a loop the compiler vectorizes
  for (int i = 0; i < kQuantBlock; i++) {
    sum_l += levels[i];
    sum_ll += levels[i] * levels[i];
    lx[i % 8] += double(levels[i]) * x[i];
  }
  const double sum_lx = ((lx[0] + lx[1]) + (lx[2] + lx[3])) + ((lx[4] + lx[5]) + (lx[6] + lx[7]));
  const double n = kQuantBlock;
  const double det = n * sum_ll - double(sum_l) * sum_l;
  if (det <= 0) return false;
  *d = float((n * sum_lx - sum_l * sums.x) / det);
  *m = float((sum_ll * sums.x - sum_l * sum_lx) / det);
  const double dd = *d, mm = *m;
  *error = dd * dd * sum_ll + 2 * dd * mm * sum_l + n * mm * mm - 2 * dd * sum_lx - 2 * mm * sums.x + sums.xx;
  return *d > 0;
}

bool quantize_block_q4(const float* x, uint8_t* qs, uint16_t* scale, uint16_t* min_out) {
  float lo = x[0], hi = x[0];
  for (int i = 1; i < kQuantBlock; i++) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  if (!std::isfinite(lo) || !std::isfinite(hi)) return false;
  float best_d = (hi - lo) / 15.0f, best_m = lo;
  if (hi > lo) {
    int levels[kQuantBlock];
    double best_error = INFINITY;
    BlockSums sums;
    for (int i = 0; i < kQuantBlock; i++) {
      sums.x += x[i];
      sums.xx += double(x[i]) * x[i];
    }
    // Scales from 15/(hi-lo) outwards: the plain min/max grid, then slightly denser grids that clip the extremes.
    for (int step = 0; step <= 6; step++) {
      const float inverse = (15.0f + 0.25f * step) / (hi - lo);
      for (int i = 0; i < kQuantBlock; i++) levels[i] = std::min(round_to_int((x[i] - lo) * inverse), 15);
      float d, m;
      double error;
      if (!fit_scale_offset(x, levels, sums, &d, &m, &error)) continue;
      if (error < best_error) {
        best_error = error;
        best_d = d;
        best_m = m;
      }
    }
  }
  if (!fits_f16(best_d) || !fits_f16(best_m)) return false;
  *scale = f32_to_f16(best_d);
  *min_out = f32_to_f16(best_m);
  const float d = f16_to_f32(*scale), m = f16_to_f32(*min_out);
  for (int j = 0; j < kQuantBlock / 2; j++) {
    const int low = d > 0 ? q4_level(x[j], d, m) : 0;
    const int high = d > 0 ? q4_level(x[j + 16], d, m) : 0;
    qs[j] = uint8_t(low | (high << 4));
  }
  return true;
}

}  // namespace

bool parse_quant_format(const std::string& text, DType* out) {
  if (text == "q8") { *out = DType::Q8; return true; }
  if (text == "q4") { *out = DType::Q4; return true; }
  return false;
}

float weight_element(const Weight& weight, size_t row, size_t col) {
  const size_t index = row * size_t(weight.cols) + col;
  if (!is_quantized(weight.dtype)) return load_as_f32(weight.data, weight.dtype, index);
  const size_t block = index / kQuantBlock;
  const float d = f16_to_f32(weight.scales[block]);
  if (weight.dtype == DType::Q8) return d * float(static_cast<const int8_t*>(weight.data)[index]);
  const int within = int(index % kQuantBlock);
  const uint8_t byte = static_cast<const uint8_t*>(weight.data)[block * 16 + (within & 15)];
  const int level = within < 16 ? byte & 15 : byte >> 4;
  return std::fma(d, float(level), f16_to_f32(weight.mins[block]));
}

void weight_row_to_f32(float* out, const Weight& weight, int row) {
  const size_t base = size_t(row) * weight.cols;
  if (!is_quantized(weight.dtype)) {
    for (int k = 0; k < weight.cols; k++) out[k] = load_as_f32(weight.data, weight.dtype, base + k);
    return;
  }
  for (int b = 0; b < weight.cols / kQuantBlock; b++) {
    const size_t block = base / kQuantBlock + b;
    const float d = f16_to_f32(weight.scales[block]);
    float* values = out + b * kQuantBlock;
    if (weight.dtype == DType::Q8) {
      const int8_t* q = static_cast<const int8_t*>(weight.data) + block * kQuantBlock;
      for (int i = 0; i < kQuantBlock; i++) values[i] = d * float(q[i]);
    } else {
      const float m = f16_to_f32(weight.mins[block]);
      const uint8_t* bytes = static_cast<const uint8_t*>(weight.data) + block * 16;
      for (int j = 0; j < 16; j++) {
        values[j] = std::fma(d, float(bytes[j] & 15), m);
        values[j + 16] = std::fma(d, float(bytes[j] >> 4), m);
      }
    }
  }
}

Weight QuantizedMatrix::view() const {
  Weight weight;
  weight.data = qs.data();
  weight.dtype = format;
  weight.rows = rows;
  weight.cols = cols;
  weight.scales = scales.data();
  weight.mins = format == DType::Q4 ? mins.data() : nullptr;
  return weight;
}

bool quantize_row_q8(const float* row, int cols, int8_t* qs, uint16_t* scales) {
  if (!all_finite(row, cols)) return false;
  for (int b = 0; b < cols / kQuantBlock; b++) {
    const float* x = row + b * kQuantBlock;
    float amax = 0;
    for (int i = 0; i < kQuantBlock; i++) amax = std::max(amax, std::fabs(x[i]));
    if (!std::isfinite(amax) || !fits_f16(amax / 127.0f)) return false;
    scales[b] = f32_to_f16(amax / 127.0f);
    const float d = f16_to_f32(scales[b]);
    for (int i = 0; i < kQuantBlock; i++) {
      const int level = d > 0 ? round_to_int(x[i] / d) : 0;
      qs[b * kQuantBlock + i] = int8_t(std::clamp(level, -127, 127));
    }
  }
  return true;
}

bool quantize_row_q4(const float* row, int cols, uint8_t* qs, uint16_t* scales, uint16_t* mins) {
  if (!all_finite(row, cols)) return false;
  for (int b = 0; b < cols / kQuantBlock; b++) {
    if (!quantize_block_q4(row + b * kQuantBlock, qs + b * 16, scales + b, mins + b)) return false;
  }
  return true;
}

Status quantize_matrix(const Weight& source, DType format, const std::string& name, int threads,
                       QuantizedMatrix* out) {
  if (!is_quantized(format)) return Status::error(std::string("not a quantized format: ") + dtype_name(format));
  if (source.cols % kQuantBlock != 0) {
    return Status::error("cannot quantize tensor \"" + name + "\": its " + std::to_string(source.cols) +
                         " columns are not a multiple of the " + std::to_string(kQuantBlock) + "-column block");
  }
  out->format = format;
  out->rows = source.rows;
  out->cols = source.cols;
  out->qs.assign(quant_qs_bytes(format, source.rows, source.cols), 0);
  out->scales.assign(quant_scale_count(source.rows, source.cols), 0);
  out->mins.assign(format == DType::Q4 ? out->scales.size() : 0, 0);

  const int workers = std::max(1, threads > 0 ? threads : available_cores());
  std::atomic<int> next_row{0};
  std::atomic<int> bad_row{-1};
  auto work = [&] {
    std::vector<float> row(source.cols);
    const size_t blocks_per_row = size_t(source.cols / kQuantBlock);
    for (int r = next_row++; r < source.rows && bad_row.load() < 0; r = next_row++) {
      weight_row_to_f32(row.data(), source, r);
      bool ok;
      if (format == DType::Q8) {
        ok = quantize_row_q8(row.data(), source.cols,
                             reinterpret_cast<int8_t*>(out->qs.data()) + size_t(r) * source.cols,
                             out->scales.data() + size_t(r) * blocks_per_row);
      } else {
        ok = quantize_row_q4(row.data(), source.cols, out->qs.data() + size_t(r) * source.cols / 2,
                             out->scales.data() + size_t(r) * blocks_per_row,
                             out->mins.data() + size_t(r) * blocks_per_row);
      }
      if (!ok) bad_row = r;
    }
  };
  std::vector<std::thread> pool;
  for (int i = 1; i < workers; i++) pool.emplace_back(work);
  work();
  for (std::thread& thread : pool) thread.join();
  if (bad_row.load() >= 0) {
    return Status::error("cannot quantize tensor \"" + name + "\": row " + std::to_string(bad_row.load()) +
                         " holds a value that is not finite or too large for an f16 block scale");
  }
  return Status::ok();
}

}  // namespace layerskip
