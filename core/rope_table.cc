#include "rope_table.h"

#include <cmath>

namespace layerskip {

std::vector<double> rope_inverse_frequencies(const ModelConfig& config) {
  int half = config.head_dim / 2;
  std::vector<double> inv_freq(half);
  for (int i = 0; i < half; i++) {
    inv_freq[i] = 1.0 / std::pow(config.rope_theta, double(2 * i) / config.head_dim);
  }
  const RopeScaling& s = config.rope_scaling;
  if (!s.enabled) return inv_freq;
  double low_freq_wavelen = s.original_max_position_embeddings / s.low_freq_factor;
  double high_freq_wavelen = s.original_max_position_embeddings / s.high_freq_factor;
  for (double& freq : inv_freq) {
    double wavelen = 2.0 * M_PI / freq;
    if (wavelen < high_freq_wavelen) continue;           // high frequencies: unchanged
    if (wavelen > low_freq_wavelen) {                    // low frequencies: slowed by factor
      freq /= s.factor;
      continue;
    }
    double smooth = (s.original_max_position_embeddings / wavelen - s.low_freq_factor) /
                    (s.high_freq_factor - s.low_freq_factor);
    freq = (1.0 - smooth) * freq / s.factor + smooth * freq;
  }
  return inv_freq;
}

void build_rope_tables(const ModelConfig& config, int positions, std::vector<float>* cos_out,
                       std::vector<float>* sin_out) {
  std::vector<double> inv_freq = rope_inverse_frequencies(config);
  size_t half = inv_freq.size();
  cos_out->resize(size_t(positions) * half);
  sin_out->resize(size_t(positions) * half);
  for (int pos = 0; pos < positions; pos++) {
    for (size_t i = 0; i < half; i++) {
      double angle = pos * inv_freq[i];
      (*cos_out)[pos * half + i] = float(std::cos(angle));
      (*sin_out)[pos * half + i] = float(std::sin(angle));
    }
  }
}

}  // namespace layerskip
