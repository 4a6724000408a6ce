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

// A walk down the draw order without sorting the vocabulary: sorted_prefix(head) puts the best `head` tokens at the
// front of `tokens`, best first, extending what earlier calls sorted. Tokens are first partitioned in blocks
// (the best kPartitionBlock, then 4× more, …: one pass over the vocabulary each), and within a block only as much
// is sorted as is asked for — a draw usually ends in the first kFirstHead tokens, so a row costs one partition
// pass and a 32-token sort instead of a 128k-token sort (or a 1024-token one).
constexpr int kFirstHead = 32;
constexpr size_t kPartitionBlock = 1024;

class DrawOrder {
 public:
  DrawOrder(std::vector<int32_t>* tokens, const BetterToken& better) : tokens_(*tokens), better_(better) {}
  // Sorts tokens[0, min(head, size)) best first; returns that length.
  size_t sorted_prefix(size_t head);

 private:
  std::vector<int32_t>& tokens_;
  BetterToken better_;
  size_t sorted_ = 0;       // tokens[0, sorted_) are final
  size_t partitioned_ = 0;  // tokens[0, partitioned_) are the best partitioned_ tokens
};

// Σ exp(logit · inverse_temperature − top) over a row of `vocab` logits.
double tempered_total(const float* logits, int vocab, double inverse_temperature, double top);

// Builds the distribution of one logits row (vocab floats, host memory); params.temperature must be > 0.
void build_token_distribution(const float* logits, int vocab, const SamplingParams& params, TokenDistribution* out);

// Draws from normalize(max(0, verify − draft)); falls back to `verify` when that residual has no mass (the two
// distributions are equal, so a rejection had probability 0). `scratch` is a (vocab) buffer of zeros, left so.
int32_t sample_residual(const TokenDistribution& verify, const TokenDistribution& draft, double uniform,
                        std::vector<double>* scratch);

}  // namespace layerskip
