// Sampling follows HF's logits-processor order: temperature, then top-k, then top-p (keeping the smallest set of
// most likely tokens whose mass reaches top_p, at least one), then a draw from the renormalized remainder.
// Ties are broken toward the lower token id everywhere, so results are deterministic.
#include "sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

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

  // Candidates sorted by logit (descending, then id ascending); top-k bounds how many we sort.
  int keep = params.top_k > 0 ? std::min(params.top_k, vocab) : vocab;
  std::vector<int> order(vocab);
  std::iota(order.begin(), order.end(), 0);
  auto better = [&](int a, int b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  if (keep < vocab) {
    std::partial_sort(order.begin(), order.begin() + keep, order.end(), better);
    order.resize(keep);
  } else {
    std::sort(order.begin(), order.end(), better);
  }

  double inverse_temperature = 1.0 / params.temperature;
  double top = double(logits[order[0]]) * inverse_temperature;
  std::vector<double> weights(order.size());
  double total = 0;
  for (size_t i = 0; i < order.size(); i++) {
    weights[i] = std::exp(double(logits[order[i]]) * inverse_temperature - top);
    total += weights[i];
  }
  size_t kept = order.size();
  if (params.top_p < 1.0f) {
    double mass = 0;
    for (size_t i = 0; i < order.size(); i++) {
      mass += weights[i] / total;
      if (mass >= params.top_p) {
        kept = i + 1;
        break;
      }
    }
    total = 0;
    for (size_t i = 0; i < kept; i++) total += weights[i];
  }
  double target = uniform * total;
  size_t chosen = kept - 1;
  double cumulative = 0;
  for (size_t i = 0; i < kept; i++) {
    cumulative += weights[i];
    if (target < cumulative) {
      chosen = i;
      break;
    }
  }
  result.token = order[chosen];
  result.probability = float(weights[chosen] / total);
  return result;
}

}  // namespace layerskip
