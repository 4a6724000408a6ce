// Per-exit-layer evaluation on a real Context (the tiny-deep fixture; `npm run fixtures` writes it): every exit
// layer's sums equal those computed from a direct forward to that layer, whatever the chunking by max_batch and
// max_logit_rows; the last layer agrees with itself; bad windows are refused with a Status.
#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "../context.h"
#include "../exit_evaluation.h"
#include "fixture_model.h"
#include "test_framework.h"

using namespace layerskip;

namespace {

std::unique_ptr<Context> make_context(const Model& model, int max_batch, int max_logit_rows) {
  std::unique_ptr<Context> context;
  ContextOptions options;
  options.context_length = 64;
  options.max_batch = max_batch;
  options.max_logit_rows = max_logit_rows;
  Status status = Context::create(model, options, &context);
  CHECK_MSG(status.is_ok(), status.message());
  return context;
}

std::vector<int32_t> token_window(int n, int vocab) {
  std::vector<int32_t> tokens(n);
  uint32_t state = 12345;
  for (int32_t& token : tokens) {
    state = state * 1664525u + 1013904223u;
    token = int32_t(state % uint32_t(vocab));
  }
  return tokens;
}

// Logits (positions, vocab) of a direct forward of tokens[0, positions) through layers [0, layer_end).
std::vector<float> direct_logits(const Model& model, const std::vector<int32_t>& tokens, int positions, int layer_end) {
  std::unique_ptr<Context> context = make_context(model, 64, 64);
  std::vector<float> logits(size_t(positions) * model.config().vocab_size);
  CHECK_OK(context->forward(tokens.data(), positions, layer_end, positions));
  CHECK_OK(context->read_logits(logits.data(), positions));
  return logits;
}

int32_t argmax_of(const float* values, int vocab) {
  return int32_t(std::max_element(values, values + vocab) - values);  // first maximum: lowest id on ties
}

}  // namespace

TEST(exit_evaluation_matches_direct_forward) {
  std::unique_ptr<Model> model = testing::load_fixture_model("tiny-deep");
  if (!model) return;
  const int num_layers = model->config().num_layers, vocab = model->config().vocab_size;
  const int n = 30, positions = n - 1;
  std::vector<int32_t> tokens = token_window(n, vocab);

  // Expected sums from one direct forward per exit layer.
  std::vector<std::vector<int32_t>> expected_argmax(num_layers, std::vector<int32_t>(positions));
  std::vector<double> expected_nll(num_layers, 0.0), expected_correct(num_layers, 0.0);
  for (int layer = 0; layer < num_layers; layer++) {
    std::vector<float> logits = direct_logits(*model, tokens, positions, layer + 1);
    for (int t = 0; t < positions; t++) {
      const float* row = logits.data() + size_t(t) * vocab;
      int32_t best = argmax_of(row, vocab);
      double total = 0.0;
      for (int i = 0; i < vocab; i++) total += std::exp(double(row[i]) - double(row[best]));
      expected_nll[layer] += std::log(total) + double(row[best]) - double(row[tokens[t + 1]]);
      expected_correct[layer] += best == tokens[t + 1] ? 1.0 : 0.0;
      expected_argmax[layer][t] = best;
    }
  }

  // Unchunked, chunked by max_batch, and chunked by both max_batch and max_logit_rows.
  for (auto [max_batch, max_logit_rows] : {std::pair{64, 64}, std::pair{8, 8}, std::pair{7, 3}}) {
    std::unique_ptr<Context> context = make_context(*model, max_batch, max_logit_rows);
    ExitLayerSums sums;
    CHECK_OK(evaluate_exit_layers(*context, tokens.data(), n, &sums));
    CHECK(sums.count == positions);
    for (int l = 0; l < num_layers; l++) CHECK(context->layer_length(l) == positions);
    for (int layer = 0; layer < num_layers; layer++) {
      double agree = 0.0;
      for (int t = 0; t < positions; t++) agree += expected_argmax[layer][t] == expected_argmax[num_layers - 1][t];
      CHECK_MSG(std::fabs(sums.nll[layer] - expected_nll[layer]) <= 1e-6 * expected_nll[layer],
                "max_batch " << max_batch << ", layer " << layer + 1 << ": nll " << sums.nll[layer] << " vs "
                             << expected_nll[layer]);
      CHECK_MSG(sums.correct[layer] == expected_correct[layer], "layer " << layer + 1 << " correct");
      CHECK_MSG(sums.agree[layer] == agree, "layer " << layer + 1 << " agree " << sums.agree[layer] << " vs " << agree);
    }
    CHECK(sums.agree[num_layers - 1] == positions);
  }
}

TEST(exit_evaluation_refuses_bad_windows) {
  std::unique_ptr<Model> model = testing::load_fixture_model("tiny-deep");
  if (!model) return;
  std::unique_ptr<Context> context = make_context(*model, 8, 4);
  ExitLayerSums sums;
  std::vector<int32_t> tokens = token_window(66, model->config().vocab_size);
  CHECK(!evaluate_exit_layers(*context, tokens.data(), 1, &sums).is_ok());   // no prediction
  CHECK(!evaluate_exit_layers(*context, tokens.data(), 66, &sums).is_ok());  // 65 positions > context length 64
  CHECK_OK(evaluate_exit_layers(*context, tokens.data(), 65, &sums));        // exactly fills the context
  tokens[3] = model->config().vocab_size;
  CHECK(!evaluate_exit_layers(*context, tokens.data(), 10, &sums).is_ok());
}
