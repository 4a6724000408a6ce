// The AMX matmul's tiling on the software tile unit (amx_emulator.h): what the tests run on processors without
// AMX, so the tiling, packing and tails of matmul_amx.cc are checked everywhere. Portable C++, slow.
#include "amx_emulator.h"
#include "matmul.h"
#include "matmul_amx_tiling.h"

namespace layerskip {

void matmul_amx_emulated(float* out, const float* in, const Weight& weight, int n, int out_stride, ThreadPool& pool) {
  if (weight.dtype != DType::BF16) return matmul_scalar(out, in, weight, n, out_stride, pool);
  amx::matmul_bf16<amx::EmulatedTiles>(out, in, weight, n, out_stride, pool);
}

}  // namespace layerskip
