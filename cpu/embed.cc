#include "embed.h"

namespace layerskip {

void embed_cpu(float* out, const int32_t* tokens, int n, const Weight& table) {
  const int dim = table.cols;
  for (int t = 0; t < n; t++) {
    size_t base = size_t(tokens[t]) * dim;
    for (int i = 0; i < dim; i++) out[size_t(t) * dim + i] = load_as_f32(table.data, table.dtype, base + i);
  }
}

}  // namespace layerskip
