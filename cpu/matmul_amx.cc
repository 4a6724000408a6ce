// AMX-BF16 matmul for bf16 weights (Intel Sapphire Rapids and later): tdpbf16ps multiplies a 16 × 32 tile of
// weights by 32 bf16 activations of 16 tokens per instruction, 16× the work of one vdpbf16ps. The activations are
// rounded to bf16 once per call, as in the avx512bf16 variant. Tiling: matmul_amx_tiling.h; its software model,
// used by the tests on other processors: amx_emulator.h. Other weight dtypes run as matmul_avx512bf16.
// Linux hands out the tile registers only on request (ARCH_REQ_XCOMP_PERM, cpu_features.cc asks once); without
// that permission the "amx" variant is not runnable.
#if defined(LAYERSKIP_HAVE_AVX512)
#include <immintrin.h>

#include <cstdint>

#include "matmul.h"

// Everything below may use AMX and AVX-512; everything included above stays baseline x86-64.
#pragma GCC target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx2,fma,f16c")
#include "matmul_amx_tiling.h"

namespace layerskip {

namespace {

// Palette 1 with all eight tiles 16 rows × 64 bytes (ldtilecfg's 64-byte layout).
struct alignas(64) TileConfig {
  uint8_t palette_id = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t bytes_per_row[16] = {64, 64, 64, 64, 64, 64, 64, 64};
  uint8_t rows[16] = {16, 16, 16, 16, 16, 16, 16, 16};
};

// GCC's tile intrinsics paste the tile number into their assembly text, so it must be a literal: OP(t) for the
// literal t equal to T.
#define LS_WITH_TILE(T, OP)                    \
  if constexpr (T == 0) OP(0);                 \
  else if constexpr (T == 1) OP(1);            \
  else if constexpr (T == 2) OP(2);            \
  else if constexpr (T == 3) OP(3);            \
  else if constexpr (T == 4) OP(4);            \
  else if constexpr (T == 5) OP(5);            \
  else if constexpr (T == 6) OP(6);            \
  else OP(7)

// The processor's tile unit, configured for this thread while the object lives (tile state is per thread, and
// releasing it keeps context switches from saving 8 KiB of tiles).
class HardwareTiles {
 public:
  HardwareTiles() {
    static const TileConfig config;
    _tile_loadconfig(&config);
  }
  ~HardwareTiles() { _tile_release(); }
  HardwareTiles(const HardwareTiles&) = delete;
  HardwareTiles& operator=(const HardwareTiles&) = delete;

  template <int T>
  void zero() {
#define LS_ZERO(t) _tile_zero(t)
    LS_WITH_TILE(T, LS_ZERO);
#undef LS_ZERO
  }
  template <int T>
  void load(const void* source, size_t stride_bytes) {
#define LS_LOAD(t) _tile_loadd(t, source, stride_bytes)
    LS_WITH_TILE(T, LS_LOAD);
#undef LS_LOAD
  }
  template <int T>
  void store(void* destination, size_t stride_bytes) {
#define LS_STORE(t) _tile_stored(t, destination, stride_bytes)
    LS_WITH_TILE(T, LS_STORE);
#undef LS_STORE
  }
  // The four products the tiling uses: C0 = A0·B0, C1 = A0·B1, C2 = A1·B0, C3 = A1·B1.
  template <int C, int A, int B>
  void dot() {
    static_assert(A == amx::kA0 + C / 2 && B == amx::kB0 + C % 2, "matmul_amx_tiling.h's pairing");
    if constexpr (C == 0) _tile_dpbf16ps(0, 4, 6);
    else if constexpr (C == 1) _tile_dpbf16ps(1, 4, 7);
    else if constexpr (C == 2) _tile_dpbf16ps(2, 5, 6);
    else _tile_dpbf16ps(3, 5, 7);
  }
};

}  // namespace

void matmul_amx(float* out, const float* in, const Weight& weight, int n, int out_stride, ThreadPool& pool) {
  if (weight.dtype != DType::BF16) return matmul_avx512bf16(out, in, weight, n, out_stride, pool);
  amx::matmul_bf16<HardwareTiles>(out, in, weight, n, out_stride, pool);
}

}  // namespace layerskip
#endif  // LAYERSKIP_HAVE_AVX512
