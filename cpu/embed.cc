#include "embed.h"

#include "../core/quant.h"

namespace layerskip {

void embed_cpu(float* out, const int32_t* tokens, int n, const Weight& table) {
  const int dim = table.cols;
  for (int t = 0; t < n; t++) {
    float* row = out + size_t(t) * dim;
    if (is_quantized(table.dtype)) {
      weight_row_to_f32(row, table, tokens[t]);  // the row dequantized, exactly as the matmul kernels see it
      continue;
    }
    const size_t base = size_t(tokens[t]) * dim;
    for (int i = 0; i < dim; i++) row[i] = load_as_f32(table.data, table.dtype, base + i);
  }
}

}  // namespace layerskip
