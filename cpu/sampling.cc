// Sampling follows HF's logits-processor order: temperature, then top-k, then top-p (keeping the smallest set of
// most likely tokens whose mass reaches top_p, at least one), then a draw from the renormalized remainder.
// Ties are broken toward the lower token id everywhere, so results are deterministic. The sampled path draws from
// the shared TokenDistribution, so speculative sampling (core/context_speculative.cc) sees the very same distribution.
#include "sampling.h"

#include <cmath>

#include "../core/token_distribution.h"

namespace layerskip {

namespace {

int argmax(const float* logits, int vocab) {
  int best = 0;
  for (int i = 1; i < vocab; i++) {
    if (logits[i] > logits[best]) best = i;
  }
  return best;
}

}  // namespace

SampledToken sample_row_cpu(const float* logits, int vocab, const SamplingParams& params, double uniform) {
  SampledToken result;
  if (params.temperature <= 0.0f) {
    int best = argmax(logits, vocab);
    double total = 0;
    for (int i = 0; i < vocab; i++) total += std::exp(double(logits[i]) - logits[best]);
    result.token = best;
    result.probability = float(1.0 / total);
    return result;
  }

  TokenDistribution distribution;
  build_token_distribution(logits, vocab, params, &distribution);
  result.token = distribution.sample(uniform);
  result.probability = float(distribution.probability_of(result.token));
  return result;
}

}  // namespace layerskip
