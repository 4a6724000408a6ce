// TokenDistribution: the distribution a sampler draws from after temperature, top-k and top-p, kept on the host
// as the surviving tokens (most likely first) and their renormalized probabilities. Speculative sampling needs
// whole distributions, not just one drawn token: p_verify(d) and p_draft(d) for the acceptance test, and
// normalize(max(0, p_verify − p_draft)) at the first rejection. The CPU sampler (cpu/sampling.cc) draws from this
// same builder; the CUDA sampler follows its processing order and tie-breaking.
#pragma once
#include <cstdint>
#include <vector>

#include "backend.h"

namespace layerskip {

struct TokenDistribution {
  std::vector<int32_t> tokens;        // (kept) token ids, most likely first (ties: lower id first)
  std::vector<double> probabilities;  // (kept) renormalized; sums to 1

  // Probability of `token` (0 when it did not survive top-k / top-p).
  double probability_of(int32_t token) const;
  // Inverse-CDF draw with `uniform` in [0, 1).
  int32_t sample(double uniform) const;
};

// Best-first order of token ids: logit descending, then id ascending — a strict total order (the draw order).
struct BetterToken {
  const float* logits;
  bool operator()(int a, int b) const { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); }
};

// Sorts the best `head` of `candidates` (token ids) to its front, best first; the rest follow in no order. A walk
// down the draw order sorts a head of kFirstHead tokens and widens it 4× only when it runs off the end, instead of
// sorting a 128k vocabulary for every row.
constexpr int kFirstHead = 1024;
void sort_best_head(std::vector<int32_t>* candidates, int head, const BetterToken& better);

// Σ exp(logit · inverse_temperature − top) over a row of `vocab` logits.
double tempered_total(const float* logits, int vocab, double inverse_temperature, double top);

// Builds the distribution of one logits row (vocab floats, host memory); params.temperature must be > 0.
void build_token_distribution(const float* logits, int vocab, const SamplingParams& params, TokenDistribution* out);

// Draws from normalize(max(0, verify − draft)); falls back to `verify` when that residual has no mass (the two
// distributions are equal, so a rejection had probability 0). `scratch` is a (vocab) buffer of zeros, left so.
int32_t sample_residual(const TokenDistribution& verify, const TokenDistribution& draft, double uniform,
                        std::vector<double>* scratch);

}  // namespace layerskip
