// Element types of stored weights and their scalar conversions to f32. Weights stay in their stored dtype in memory;
// kernels convert on the fly and accumulate in f32. Q8 and Q4 are block-quantized matrix formats (core/quant.h);
// I8 and U8 are the safetensors element types their planes are stored in.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>

namespace layerskip {

enum class DType { F32, F16, BF16, I8, U8, Q8, Q4 };

constexpr bool is_quantized(DType dtype) { return dtype == DType::Q8 || dtype == DType::Q4; }

// Bytes per stored element of a plain dtype. Quantized formats have no element size: see weight_bytes() in quant.h.
inline size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::F32: return 4;
    case DType::F16: case DType::BF16: return 2;
    case DType::I8: case DType::U8: return 1;
    case DType::Q8: case DType::Q4: return 0;
  }
  return 0;
}

inline const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::I8: return "I8";
    case DType::U8: return "U8";
    case DType::Q8: return "q8";
    case DType::Q4: return "q4";
  }
  return "?";
}

// Calls f(std::integral_constant<DType, D>()) with a matrix's dtype D as a compile-time constant (kernels templated
// on it); I8 / U8 are planes of quantized matrices, never a matrix's dtype, and call nothing.
template <class F>
void with_matrix_dtype(DType dtype, F&& f) {
  switch (dtype) {
    case DType::F32: return f(std::integral_constant<DType, DType::F32>());
    case DType::F16: return f(std::integral_constant<DType, DType::F16>());
    case DType::BF16: return f(std::integral_constant<DType, DType::BF16>());
    case DType::Q8: return f(std::integral_constant<DType, DType::Q8>());
    case DType::Q4: return f(std::integral_constant<DType, DType::Q4>());
    case DType::I8: case DType::U8: return;
  }
}

// Parses a safetensors dtype string; false when it is not one we run.
inline bool parse_dtype(const std::string& text, DType* out) {
  if (text == "F32") { *out = DType::F32; return true; }
  if (text == "F16") { *out = DType::F16; return true; }
  if (text == "BF16") { *out = DType::BF16; return true; }
  if (text == "I8") { *out = DType::I8; return true; }
  if (text == "U8") { *out = DType::U8; return true; }
  return false;
}

inline float bf16_to_f32(uint16_t bits) {
  uint32_t wide = uint32_t(bits) << 16;
  float value;
  std::memcpy(&value, &wide, 4);
  return value;
}

inline float f16_to_f32(uint16_t bits) {
  uint32_t sign = uint32_t(bits & 0x8000) << 16;
  uint32_t exponent = (bits >> 10) & 0x1f;
  uint32_t mantissa = bits & 0x3ff;
  uint32_t wide;
  if (exponent == 0x1f) {
    wide = sign | 0x7f800000u | (mantissa << 13);
  } else if (exponent != 0) {
    wide = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    wide = sign;
  } else {  // subnormal: renormalize
    exponent = 113;
    while ((mantissa & 0x400) == 0) { mantissa <<= 1; exponent--; }
    wide = sign | (exponent << 23) | ((mantissa & 0x3ff) << 13);
  }
  float value;
  std::memcpy(&value, &wide, 4);
  return value;
}

// Round-to-nearest-even f32 → bf16 (used when writing checkpoints and in tests).
inline uint16_t f32_to_bf16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return uint16_t((bits >> 16) | 0x40);  // NaN stays NaN
  bits += 0x7fff + ((bits >> 16) & 1);
  return uint16_t(bits >> 16);
}

// Round-to-nearest-even f32 → f16, subnormals included; out-of-range values become ±inf (callers check).
inline uint16_t f32_to_f16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  const uint16_t sign = uint16_t((bits >> 16) & 0x8000);
  const uint32_t magnitude = bits & 0x7fffffffu;
  if (magnitude > 0x7f800000u) return uint16_t(sign | 0x7e00);        // NaN
  if (magnitude >= 0x477ff000u) return uint16_t(sign | 0x7c00);       // ≥ 65520 rounds to inf
  if (magnitude < 0x38800000u) {                                      // below 2^-14: subnormal or zero
    if (magnitude < 0x33000000u) return sign;                          // below half the smallest subnormal
    const uint32_t mantissa = (magnitude & 0x7fffffu) | 0x800000u;
    const int shift = 126 - int(magnitude >> 23);                      // 14..24
    uint32_t half = mantissa >> shift;
    const uint32_t rest = mantissa & ((1u << shift) - 1), halfway = 1u << (shift - 1);
    if (rest > halfway || (rest == halfway && (half & 1))) half++;
    return uint16_t(sign | half);
  }
  uint32_t rounded = magnitude + 0xfffu + ((magnitude >> 13) & 1);     // round the 13 dropped bits to nearest even
  return uint16_t(sign | ((rounded - 0x38000000u) >> 13));
}

// Element `index` of a buffer of plain `dtype` as f32 (quantized matrices: weight_element() in core/quant.h). Read
// with memcpy: a safetensors file whose header length is not padded to 8 leaves its tensors unaligned in the mapping.
inline float load_as_f32(const void* data, DType dtype, size_t index) {
  const uint8_t* bytes = static_cast<const uint8_t*>(data);
  float f32;
  uint16_t half;
  switch (dtype) {
    case DType::F32: std::memcpy(&f32, bytes + index * 4, 4); return f32;
    case DType::F16: std::memcpy(&half, bytes + index * 2, 2); return f16_to_f32(half);
    case DType::BF16: std::memcpy(&half, bytes + index * 2, 2); return bf16_to_f32(half);
    case DType::I8: return float(static_cast<const int8_t*>(data)[index]);
    case DType::U8: return float(static_cast<const uint8_t*>(data)[index]);
    case DType::Q8: case DType::Q4: break;
  }
  return 0.0f;
}

}  // namespace layerskip
