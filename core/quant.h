// Block-quantized weight matrices (weight-only; activations stay f32). A block is 32 consecutive columns of one row;
// `cols` must be a multiple of 32 (every Llama dimension is).
//
//   q8  8.5 bits/weight. int8 q in [-127, 127] and an f16 scale d per block: w = d·q.
//       Planes: qs (rows, cols) int8; scales (rows, cols/32) f16.
//   q4  5 bits/weight. 4-bit q in [0, 15], an f16 scale d and an f16 offset m per block: w = d·q + m.
//       Planes: qs (rows, cols/2) bytes, block b of a row in bytes [16b, 16b + 16): byte j holds q[j] in its low
//       nibble and q[j + 16] in its high nibble (llama.cpp's Q4_0/Q4_1 order); scales and mins (rows, cols/32) f16.
//
// Dequantized weights are exact f32 values with one rounding at most: d·q is exact in f32 (11 + 8 significant
// bits), and q4's d·q + m is rounded once (as one FMA or a multiply then add: the product is exact). Every kernel,
// CPU and CUDA, widens a block to these f32 values and runs the same dot product as for f32 weights, so a quantized
// model is exactly "the dequantized weights" and stays batch invariant.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "backend.h"
#include "status.h"

namespace layerskip {

constexpr int kQuantBlock = 32;
constexpr int kQuantFormatVersion = 1;

// Bytes of one block in the value plane: 32 int8 (q8) or 16 bytes of nibbles (q4).
constexpr int quant_block_bytes(DType format) { return format == DType::Q4 ? kQuantBlock / 2 : kQuantBlock; }

// Bytes of each plane of a (rows, cols) matrix of `format` (Q8 or Q4).
inline size_t quant_qs_bytes(DType format, int rows, int cols) {
  return size_t(rows) * size_t(cols) / (format == DType::Q4 ? 2 : 1);
}
inline size_t quant_scale_count(int rows, int cols) { return size_t(rows) * size_t(cols / kQuantBlock); }

// Bytes a (rows, cols) matrix of `dtype` occupies: the element bytes of a plain dtype, or all planes of a format.
inline size_t weight_bytes(DType dtype, int rows, int cols) {
  if (!is_quantized(dtype)) return size_t(rows) * size_t(cols) * dtype_size(dtype);
  const size_t scale_planes = dtype == DType::Q4 ? 2 : 1;
  return quant_qs_bytes(dtype, rows, cols) + scale_planes * quant_scale_count(rows, cols) * sizeof(uint16_t);
}

// Bits each weight of a matrix of `dtype` occupies, scales included (q8 8.5, q4 5).
inline double bits_per_weight(DType dtype) {
  return dtype == DType::Q8 ? 8.5 : dtype == DType::Q4 ? 5.0 : 8.0 * double(dtype_size(dtype));
}

// "q8" / "q4" → Q8 / Q4; false otherwise.
bool parse_quant_format(const std::string& text, DType* out);

// Element (row, col) of any matrix, plain or quantized, as f32 (host memory; slow: for tests and fallbacks).
float weight_element(const Weight& weight, size_t row, size_t col);

// Row `row` of a host matrix as f32.
void weight_row_to_f32(float* out, const Weight& weight, int row);

// A quantized matrix owned in host memory.
struct QuantizedMatrix {
  DType format = DType::Q8;
  int rows = 0, cols = 0;
  std::vector<uint8_t> qs;
  std::vector<uint16_t> scales;
  std::vector<uint16_t> mins;  // q4 only

  // The matrix as a Weight over this memory (valid while this lives and is not resized).
  Weight view() const;
};

// Quantizes one row of `cols` f32 values (a multiple of 32) into its planes. Returns false if a value is not finite
// or a scale does not fit in f16.
bool quantize_row_q8(const float* row, int cols, int8_t* qs, uint16_t* scales);
bool quantize_row_q4(const float* row, int cols, uint8_t* qs, uint16_t* scales, uint16_t* mins);

// Quantizes a host matrix (plain, or quantized: then its dequantized values) to `format` using `threads` threads (≤ 0: one per core). `name` labels
// errors: a column count that is not a multiple of 32, a value that is not finite or out of f16 range.
Status quantize_matrix(const Weight& source, DType format, const std::string& name, int threads,
                       QuantizedMatrix* out);

}  // namespace layerskip
