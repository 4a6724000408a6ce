// Host-side token distributions for speculative sampling; see token_distribution.h.
#include "token_distribution.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace layerskip {

void build_token_distribution(const float* logits, int vocab, const SamplingParams& params, TokenDistribution* out) {
  // Candidates sorted by logit (descending, then id ascending); top-k bounds how many we sort.
  int keep = params.top_k > 0 ? std::min(params.top_k, vocab) : vocab;
  std::vector<int32_t>& order = out->tokens;
  order.resize(vocab);
  std::iota(order.begin(), order.end(), 0);
  auto better = [&](int a, int b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  if (keep < vocab) {
    std::partial_sort(order.begin(), order.begin() + keep, order.end(), better);
    order.resize(keep);
  } else {
    std::sort(order.begin(), order.end(), better);
  }

  // Tempered softmax weights, then the top-p cut: the smallest prefix whose mass reaches top_p.
  double inverse_temperature = 1.0 / params.temperature;
  double top = double(logits[order[0]]) * inverse_temperature;
  std::vector<double>& weights = out->probabilities;
  weights.resize(order.size());
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
  order.resize(kept);
  weights.resize(kept);
  for (double& weight : weights) weight /= total;
}

double TokenDistribution::probability_of(int32_t token) const {
  for (size_t i = 0; i < tokens.size(); i++) {
    if (tokens[i] == token) return probabilities[i];
  }
  return 0.0;
}

int32_t TokenDistribution::sample(double uniform) const {
  double cumulative = 0;
  for (size_t i = 0; i < tokens.size(); i++) {
    cumulative += probabilities[i];
    if (uniform < cumulative) return tokens[i];
  }
  return tokens.back();
}

int32_t sample_residual(const TokenDistribution& verify, const TokenDistribution& draft, double uniform,
                        std::vector<double>* scratch) {
  // Scatter p_draft, take the positive part of p_verify − p_draft over verify's support, clear the scatter.
  std::vector<double>& draft_probability = *scratch;
  for (size_t i = 0; i < draft.tokens.size(); i++) draft_probability[draft.tokens[i]] = draft.probabilities[i];
  std::vector<double> residual(verify.tokens.size());
  double total = 0;
  for (size_t i = 0; i < verify.tokens.size(); i++) {
    residual[i] = std::max(0.0, verify.probabilities[i] - draft_probability[verify.tokens[i]]);
    total += residual[i];
  }
  for (int32_t token : draft.tokens) draft_probability[token] = 0.0;
  if (!(total > 0)) return verify.sample(uniform);

  double target = uniform * total;
  double cumulative = 0;
  size_t last_positive = 0;
  for (size_t i = 0; i < residual.size(); i++) {
    if (residual[i] <= 0) continue;
    last_positive = i;
    cumulative += residual[i];
    if (target < cumulative) return verify.tokens[i];
  }
  return verify.tokens[last_positive];
}

}  // namespace layerskip
