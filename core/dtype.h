// Element types of stored weights and their scalar conversions to f32. Weights stay in their stored dtype in memory;
// kernels convert on the fly and accumulate in f32.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>

namespace layerskip {

enum class DType { F32, F16, BF16 };

inline size_t dtype_size(DType dtype) { return dtype == DType::F32 ? 4 : 2; }

inline const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
  }
  return "?";
}

// Parses a safetensors dtype string; false when it is not one we run.
inline bool parse_dtype(const std::string& text, DType* out) {
  if (text == "F32") { *out = DType::F32; return true; }
  if (text == "F16") { *out = DType::F16; return true; }
  if (text == "BF16") { *out = DType::BF16; return true; }
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

// Element `index` of a buffer of `dtype` as f32.
inline float load_as_f32(const void* data, DType dtype, size_t index) {
  switch (dtype) {
    case DType::F32: return static_cast<const float*>(data)[index];
    case DType::F16: return f16_to_f32(static_cast<const uint16_t*>(data)[index]);
    case DType::BF16: return bf16_to_f32(static_cast<const uint16_t*>(data)[index]);
  }
  return 0.0f;
}

}  // namespace layerskip
