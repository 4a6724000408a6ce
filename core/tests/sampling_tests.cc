// The CPU sampler's shortcuts against the plain definition: build_token_distribution (top-p without a full sort)
// and sample_row_cpu (temperature alone without a full sort) must give exactly what sorting the whole vocabulary
// gives — the same kept tokens in the same order, the same probabilities, the same draws.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <vector>

#include "../../cpu/sampling.h"
#include "../token_distribution.h"
#include "test_framework.h"

namespace layerskip {
namespace {

// The definition: sort everything (logit descending, id ascending), temper, keep top_k, then the smallest prefix
// whose mass reaches top_p, renormalize.
TokenDistribution reference_distribution(const std::vector<float>& logits, const SamplingParams& params) {
  const int vocab = int(logits.size());
  std::vector<int32_t> order(vocab);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int a, int b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  });
  if (params.top_k > 0 && params.top_k < vocab) order.resize(params.top_k);
  std::vector<double> weights;
  double total = 0;
  for (int32_t token : order) {
    weights.push_back(std::exp(double(logits[token]) / params.temperature - double(logits[order[0]]) / params.temperature));
    total += weights.back();
  }
  size_t kept = order.size();
  double mass = 0;
  for (size_t i = 0; i < order.size() && params.top_p < 1.0f; i++) {
    mass += weights[i] / total;
    if (mass >= params.top_p) {
      kept = i + 1;
      break;
    }
  }
  TokenDistribution distribution;
  distribution.tokens.assign(order.begin(), order.begin() + kept);
  const double kept_total = std::accumulate(weights.begin(), weights.begin() + kept, 0.0);
  for (size_t i = 0; i < kept; i++) distribution.probabilities.push_back(weights[i] / kept_total);
  return distribution;
}

TEST(sampling_shortcuts_match_a_full_sort) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  const SamplingParams settings[] = {{1.0f, 0, 1.0f},   {0.7f, 0, 1.0f},  {1.0f, 0, 0.95f}, {0.8f, 0, 0.5f},
                                     {1.3f, 0, 0.999f}, {0.9f, 40, 0.9f}, {1.0f, 0, 0.05f}};
  for (int vocab : {1, 7, 111, 5000, 32000}) {
    for (float spread : {0.5f, 3.0f, 10.0f}) {  // flat to peaked
      std::normal_distribution<float> dist(0.0f, spread);
      std::vector<float> logits(vocab);
      for (float& x : logits) x = std::round(dist(rng) * 4.0f) / 4.0f;  // coarse values: many ties
      for (const SamplingParams& params : settings) {
        const TokenDistribution expected = reference_distribution(logits, params);
        TokenDistribution actual;
        build_token_distribution(logits.data(), vocab, params, &actual);
        CHECK_MSG(actual.tokens == expected.tokens, "kept tokens differ (vocab " << vocab << ", spread " << spread
                                                    << ", T " << params.temperature << ", top_p " << params.top_p << ")");
        bool close = actual.probabilities.size() == expected.probabilities.size();
        for (size_t i = 0; close && i < actual.probabilities.size(); i++) {
          close = std::fabs(actual.probabilities[i] - expected.probabilities[i]) <= 1e-12 * expected.probabilities[i];
        }
        CHECK_MSG(close, "probabilities differ (vocab " << vocab << ", top_p " << params.top_p << ")");
        for (int draw = 0; draw < 20; draw++) {
          const double u = uniform(rng);
          const SampledToken sampled = sample_row_cpu(logits.data(), vocab, params, u);
          const int32_t token = expected.sample(u);
          CHECK_MSG(sampled.token == token, "draw " << u << ": " << sampled.token << " vs " << token << " (vocab " << vocab
                                                    << ", top_k " << params.top_k << ", top_p " << params.top_p << ")");
          CHECK(std::fabs(sampled.probability - float(expected.probability_of(token))) <= 1e-6f * sampled.probability);
          CHECK(std::fabs(sampled.top_probability - float(expected.probabilities[0])) <= 1e-6f * sampled.top_probability);
        }
      }
    }
  }
}

// What one sampled row costs on the CPU (layerskip_core_tests --bench sampling): medians over 41 draws with
// uniforms spread over [0, 1), for flat (σ 3) and peaked (σ 8) random logits.
BENCH(sampling_row_cost) {
  std::printf("    %-7s %-6s %-22s %9s\n", "vocab", "logits", "settings", "ms/row");
  for (int vocab : {2048, 32000, 128256}) {
    for (float spread : {3.0f, 8.0f}) {
      std::mt19937 rng(5);
      std::normal_distribution<float> dist(0.0f, spread);
      std::vector<float> logits(vocab);
      for (float& x : logits) x = dist(rng);
      const SamplingParams settings[] = {{0.8f, 0, 1.0f}, {0.8f, 0, 0.95f}, {0.6f, 0, 0.9f}, {0.8f, 40, 0.95f}};
      for (const SamplingParams& params : settings) {
        std::vector<double> times;
        for (int draw = 0; draw < 41; draw++) {
          const auto begin = std::chrono::steady_clock::now();
          const SampledToken sampled = sample_row_cpu(logits.data(), vocab, params, (draw + 0.5) / 41.0);
          times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - begin).count());
          if (sampled.token < 0) std::printf("    invalid draw\n");
        }
        std::nth_element(times.begin(), times.begin() + 20, times.end());
        char label[64];
        std::snprintf(label, sizeof label, "T %.1f top_k %d top_p %.2f", params.temperature, params.top_k, params.top_p);
        std::printf("    %-7d σ %-4.0f %-22s %9.3f\n", vocab, spread, label, times[20]);
      }
    }
  }
}

}  // namespace
}  // namespace layerskip
