// A software model of the AMX tile unit as matmul_amx_tiling.h uses it (palette 1, every tile 16 rows × 64 bytes),
// so the AMX matmul's tiling, packing and tails are tested on processors without AMX. tdpbf16ps follows Intel's
// pseudo-code: for each k pair in order, C += a₀·b₀ then C += a₁·b₁, every product exact in f32 and every sum
// rounded to nearest even, bf16 inputs that are denormal read as zero and denormal results flushed to zero.
// Real AMX hardware is compared with this model to a tolerance, not bit for bit (the SDM leaves the internal
// order of the pair sum to the implementation); batch invariance is checked on each separately.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

namespace layerskip::amx {

class EmulatedTiles {
 public:
  template <int T>
  void zero() {
    std::memset(tiles_[T], 0, sizeof(tiles_[T]));
  }
  template <int T>
  void load(const void* source, size_t stride_bytes) {
    for (int r = 0; r < 16; r++) std::memcpy(tiles_[T][r], static_cast<const char*>(source) + r * stride_bytes, 64);
  }
  template <int T>
  void store(void* destination, size_t stride_bytes) const {
    for (int r = 0; r < 16; r++) std::memcpy(static_cast<char*>(destination) + r * stride_bytes, tiles_[T][r], 64);
  }
  // C (16 × 16 f32) += A (16 × 32 bf16) · B (16 pairs × 16 columns × 2 bf16).
  template <int C, int A, int B>
  void dot() {
    float a[16][32], b[16][32];
    for (int r = 0; r < 16; r++)
      for (int i = 0; i < 32; i++) a[r][i] = bf16(A, r, i), b[r][i] = bf16(B, r, i);
    for (int m = 0; m < 16; m++) {
      for (int n = 0; n < 16; n++) {
        float c = f32(C, m, n);
        for (int k = 0; k < 16; k++) {
          c = flush(c + a[m][2 * k] * b[k][2 * n]);
          c = flush(c + a[m][2 * k + 1] * b[k][2 * n + 1]);
        }
        std::memcpy(tiles_[C][m] + 4 * n, &c, 4);
      }
    }
  }

 private:
  static float flush(float value) { return std::fabs(value) < 1.17549435e-38f ? std::copysign(0.0f, value) : value; }
  float f32(int tile, int row, int index) const {
    float value;
    std::memcpy(&value, tiles_[tile][row] + 4 * index, 4);
    return value;
  }
  float bf16(int tile, int row, int index) const {
    uint16_t half;
    std::memcpy(&half, tiles_[tile][row] + 2 * index, 2);
    const uint32_t bits = uint32_t(half) << 16;
    float value;
    std::memcpy(&value, &bits, 4);
    return flush(value);
  }
  unsigned char tiles_[8][16][64];
};

}  // namespace layerskip::amx
