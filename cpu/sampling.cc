// Sampling follows HF's logits-processor order: temperature, then top-k, then top-p (keeping the smallest set of
// most likely tokens whose mass reaches top_p, at least one), then a draw from the renormalized remainder.
// Ties are broken toward the lower token id everywhere, so results are deterministic. The sampled path draws from
// the shared TokenDistribution, so speculative sampling (core/context_speculative.cc) sees the very same distribution.
#include "sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

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

// Temperature alone: the same draw as TokenDistribution::sample (the first token, best first, whose cumulative
// probability exceeds `uniform`), sorting only as much of the vocabulary as the draw walks (DrawOrder).
SampledToken sample_untruncated(const float* logits, int vocab, float temperature, double uniform) {
  const BetterToken better{logits};
  const double inverse_temperature = 1.0 / temperature;
  const double top = double(logits[argmax(logits, vocab)]) * inverse_temperature;
  const double total = tempered_total(logits, vocab, inverse_temperature, top);
  std::vector<int32_t> candidates(vocab);
  std::iota(candidates.begin(), candidates.end(), 0);
  DrawOrder draw_order(&candidates, better);
  double cumulative = 0;
  size_t walked = 0;
  for (size_t head = kFirstHead;; head *= 4) {
    head = draw_order.sorted_prefix(head);
    for (; walked < head; walked++) {
      const double probability = std::exp(double(logits[candidates[walked]]) * inverse_temperature - top) / total;
      cumulative += probability;
      if (uniform < cumulative || walked + 1 == size_t(vocab)) {
        return SampledToken{candidates[walked], float(probability), float(1.0 / total)};
      }
    }
  }
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
    result.top_probability = result.probability;
    return result;
  }

  if (params.top_k <= 0 && params.top_p >= 1.0f) return sample_untruncated(logits, vocab, params.temperature, uniform);
  TokenDistribution distribution;
  build_token_distribution(logits, vocab, params, &distribution);
  result.token = distribution.sample(uniform);
  result.probability = float(distribution.probability_of(result.token));
  result.top_probability = float(distribution.probabilities[0]);
  return result;
}

namespace {

class CpuSpeculativeSampler final : public SpeculativeSampler {
 public:
  CpuSpeculativeSampler(int capacity, int vocab)
      : vocab_(vocab), draft_distributions_(size_t(capacity)), residual_scratch_(size_t(vocab), 0.0) {}

  Status sample_draft(SampledToken* out, const float* logits, const SamplingParams& params, double uniform,
                      int draft_row) override {
    if (draft_row < 0 || size_t(draft_row) >= draft_distributions_.size()) {
      return Status::error("sample_draft: draft row " + std::to_string(draft_row) + " outside the sampler's " +
                           std::to_string(draft_distributions_.size()) + " rows");
    }
    TokenDistribution& distribution = draft_distributions_[size_t(draft_row)];
    build_token_distribution(logits, vocab_, params, &distribution);
    out->token = distribution.sample(uniform);
    out->probability = float(distribution.probability_of(out->token));
    out->top_probability = float(distribution.probabilities[0]);
    return Status::ok();
  }

  Status verify(VerifyRow* out, const float* logits, int row_begin, int n, int drafted, const int32_t* draft_tokens,
                const SamplingParams& params, const double* uniforms) override {
    if (drafted > int(draft_distributions_.size())) return Status::error("verify: more drafts than sampler rows");
    for (int i = 0; i < n; i++) {
      const int row = row_begin + i;
      build_token_distribution(logits + size_t(i) * vocab_, vocab_, params, &verify_distribution_);
      if (row < drafted) {
        const TokenDistribution& drafted_distribution = draft_distributions_[size_t(row)];
        const int32_t proposal = draft_tokens[row];
        out[i].verify_probability = float(verify_distribution_.probability_of(proposal));
        out[i].draft_probability = float(drafted_distribution.probability_of(proposal));
        out[i].token = sample_residual(verify_distribution_, drafted_distribution, uniforms[i], &residual_scratch_);
      } else {
        out[i] = {verify_distribution_.sample(uniforms[i]), 0.0f, 0.0f};
      }
    }
    return Status::ok();
  }

 private:
  int vocab_;
  std::vector<TokenDistribution> draft_distributions_;  // (capacity)
  TokenDistribution verify_distribution_;
  std::vector<double> residual_scratch_;                // (vocab) zeros
};

}  // namespace

std::unique_ptr<SpeculativeSampler> make_speculative_sampler_cpu(int capacity, int vocab) {
  return std::make_unique<CpuSpeculativeSampler>(capacity, vocab);
}

}  // namespace layerskip
