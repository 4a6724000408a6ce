#include "mlp.h"

#include <cmath>

namespace layerskip {

void swiglu_cpu(float* out, const float* gate, const float* up, size_t count) {
  for (size_t i = 0; i < count; i++) {
    float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void add_cpu(float* accumulate, const float* in, size_t count) {
  for (size_t i = 0; i < count; i++) accumulate[i] += in[i];
}

}  // namespace layerskip
