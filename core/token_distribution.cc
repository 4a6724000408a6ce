// Host-side token distributions for speculative sampling; see token_distribution.h.
#include "token_distribution.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace layerskip {

namespace {

// The top-p cut over `order` (sorted best first, weights parallel to it): the length of the smallest prefix whose
// mass reaches top_p, or 0 when rounding keeps the whole prefix from reaching it.
size_t nucleus_length(const std::vector<double>& weights, double total, float top_p) {
  double mass = 0;
  for (size_t i = 0; i < weights.size(); i++) {
    mass += weights[i] / total;
    if (mass >= top_p) return i + 1;
  }
  return 0;
}

}  // namespace

size_t DrawOrder::sorted_prefix(size_t head) {
  head = std::min(head, tokens_.size());
  if (head <= sorted_) return head;
  if (head > partitioned_) {
    const size_t block = std::min(tokens_.size(), std::max({head, kPartitionBlock, partitioned_ * 4}));
    std::nth_element(tokens_.begin() + partitioned_, tokens_.begin() + (block - 1), tokens_.end(), better_);
    partitioned_ = block;
  }
  std::nth_element(tokens_.begin() + sorted_, tokens_.begin() + (head - 1), tokens_.begin() + partitioned_, better_);
  std::sort(tokens_.begin() + sorted_, tokens_.begin() + head, better_);
  sorted_ = head;
  return head;
}

double tempered_total(const float* logits, int vocab, double inverse_temperature, double top) {
  double total = 0;
  for (int token = 0; token < vocab; token++) total += std::exp(double(logits[token]) * inverse_temperature - top);
  return total;
}

void build_token_distribution(const float* logits, int vocab, const SamplingParams& params, TokenDistribution* out) {
  const BetterToken better{logits};
  const double inverse_temperature = 1.0 / params.temperature;
  std::vector<int32_t>& order = out->tokens;
  std::vector<double>& weights = out->probabilities;
  order.resize(vocab);
  std::iota(order.begin(), order.end(), 0);
  auto weigh = [&](double top) {
    weights.resize(order.size());
    for (size_t i = 0; i < order.size(); i++) weights[i] = std::exp(double(logits[order[i]]) * inverse_temperature - top);
  };

  const int keep = params.top_k > 0 ? std::min(params.top_k, vocab) : vocab;
  size_t kept = 0;
  if (keep == vocab && params.top_p < 1.0f) {
    // Top-p alone: the nucleus is usually a small head of the vocabulary, so sort only a head, widened until it
    // holds top_p of the mass — the same prefix a full sort would give.
    const int best = *std::min_element(order.begin(), order.end(), better);
    const double top = double(logits[best]) * inverse_temperature;
    const double total = tempered_total(logits, vocab, inverse_temperature, top);
    std::vector<int32_t> candidates(order);
    DrawOrder draw_order(&candidates, better);
    for (size_t head = kFirstHead;; head *= 4) {
      head = draw_order.sorted_prefix(head);
      order.assign(candidates.begin(), candidates.begin() + head);
      weigh(top);
      kept = nucleus_length(weights, total, params.top_p);
      if (kept > 0 || head == size_t(vocab)) break;
    }
    if (kept == 0) kept = order.size();
    double nucleus_total = 0;
    for (size_t i = 0; i < kept; i++) nucleus_total += weights[i];
    order.resize(kept);
    weights.resize(kept);
    for (double& weight : weights) weight /= nucleus_total;
    return;
  }

  // Top-k (a partial sort of k), or no truncation (a full sort: the draw walks the sorted order).
  if (keep < vocab) {
    std::partial_sort(order.begin(), order.begin() + keep, order.end(), better);
    order.resize(keep);
  } else {
    std::sort(order.begin(), order.end(), better);
  }
  weigh(double(logits[order[0]]) * inverse_temperature);
  double total = std::accumulate(weights.begin(), weights.end(), 0.0);
  kept = order.size();
  if (params.top_p < 1.0f) {
    const size_t cut = nucleus_length(weights, total, params.top_p);
    if (cut > 0) kept = cut;
    total = std::accumulate(weights.begin(), weights.begin() + kept, 0.0);
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
