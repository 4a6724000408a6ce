// Self-speculative steps on a real Context (the tiny-deep fixture; `npm run fixtures` writes it): greedy
// draft → verify → accept → truncate yields exactly the plain decoding's tokens, every step's per-layer lengths
// are what context.h says, misuse is refused with a Status, and the residual sampler draws
// normalize(max(0, p_verify − p_draft)).
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "../../cpu/cpu_features.h"
#include "../context.h"
#include "../token_distribution.h"
#include "fixture_model.h"
#include "test_framework.h"

using namespace layerskip;

namespace {

std::unique_ptr<Context> make_context(const Model& model) {
  std::unique_ptr<Context> context;
  ContextOptions options;
  options.context_length = 256;
  Status status = Context::create(model, options, &context);
  CHECK_MSG(status.is_ok(), status.message());
  return context;
}

// Prefills `prompt` through every layer and returns the greedy next token.
int32_t prefill(Context& context, const std::vector<int32_t>& prompt, int num_layers) {
  SampledToken next;
  CHECK(context.forward(prompt.data(), int(prompt.size()), num_layers, 1).is_ok());
  CHECK(context.sample(1, SamplingParams{}, nullptr, &next).is_ok());
  return next.token;
}

const std::vector<int32_t> kPrompt = {1, 17, 300, 42, 9, 511, 128};

}  // namespace

// For the default kernels, every variant this processor runs that rounds activations (their own arithmetic, just
// as batch-invariant), and the AMX tiling on the emulated tile unit.
TEST(speculative_greedy_equals_plain_decoding) {
  std::vector<std::string> variants = {"", "amx-emulated"};
  for (const CpuKernels* kernels : runnable_cpu_kernels()) {
    if (kernels->rounds_activations) variants.push_back(kernels->name);
  }
  for (const std::string& variant : variants) {
    std::unique_ptr<Backend> backend;
    CHECK_OK(make_cpu_backend(1, variant, &backend));
    std::unique_ptr<Model> model = testing::load_fixture_model("tiny-deep", std::move(backend));
    if (!model) return;
    const int num_layers = model->config().num_layers;
    const int steps = 40;

    std::unique_ptr<Context> plain = make_context(*model);
    std::vector<int32_t> expected = {prefill(*plain, kPrompt, num_layers)};
    while (int(expected.size()) < steps) {
      SampledToken next;
      CHECK(plain->forward(&expected.back(), 1, num_layers, 1).is_ok());
      CHECK(plain->sample(1, SamplingParams{}, nullptr, &next).is_ok());
      expected.push_back(next.token);
    }

    for (int exit_layer : {1, 2, 4, 7, 8}) {
      for (int num_speculations : {1, 3, 8}) {
        std::unique_ptr<Context> context = make_context(*model);
        CHECK(context->reserve_speculation(num_speculations).is_ok());
        std::vector<int32_t> generated = {prefill(*context, kPrompt, num_layers)};
        while (int(generated.size()) < steps) {
          const int n = context->length();
          DraftProposal proposal;
          std::vector<int32_t> drafts;
          int32_t token = generated.back();
          while (int(drafts.size()) < num_speculations) {
            CHECK(context->draft(token, exit_layer, SamplingParams{}, 0.0, &proposal).is_ok());
            drafts.push_back(proposal.token);
            token = proposal.token;
          }
          std::vector<VerifyRow> rows(drafts.size() + 1);
          CHECK(context->verify(int(drafts.size()), SamplingParams{}, nullptr, rows.data()).is_ok());
          for (int l = 0; l < num_layers; l++) CHECK(context->layer_length(l) == n + int(drafts.size()) + 1);
          size_t accepted = 0;
          while (accepted < drafts.size() && drafts[accepted] == rows[accepted].token) accepted++;
          for (size_t i = 0; i < accepted; i++) generated.push_back(drafts[i]);
          generated.push_back(rows[accepted].token);
          context->truncate(n + int(accepted) + 1);
          CHECK(context->exit_rows() == 0);
        }
        generated.resize(steps);
        CHECK_MSG(generated == expected, (variant.empty() ? "default" : variant)
                                             << " kernels: E = " << exit_layer << ", k = " << num_speculations
                                             << " diverged");
      }
    }
  }
}

TEST(speculative_positions_are_asserted) {
  std::unique_ptr<Model> model = testing::load_fixture_model("tiny-deep");
  if (!model) return;
  const int exit_layer = 3, num_layers = model->config().num_layers;
  std::unique_ptr<Context> context = make_context(*model);
  DraftProposal proposal;
  VerifyRow rows[4];
  CHECK(!context->draft(5, exit_layer, SamplingParams{}, 0.0, &proposal).is_ok());  // no exit cache yet
  CHECK(context->reserve_speculation(2).is_ok());
  int32_t x = prefill(*context, kPrompt, num_layers);
  const int n = int(kPrompt.size());
  CHECK(!context->verify(0, SamplingParams{}, nullptr, rows).is_ok());  // nothing drafted

  // Two draft passes: layers below E run ahead by two positions.
  CHECK(context->draft(x, exit_layer, SamplingParams{}, 0.0, &proposal).is_ok());
  int32_t d1 = proposal.token;
  CHECK(!context->draft(d1 == 0 ? 1 : 0, exit_layer, SamplingParams{}, 0.0, &proposal).is_ok());  // not the proposal
  CHECK(!context->draft(d1, exit_layer + 1, SamplingParams{}, 0.0, &proposal).is_ok());  // exit layer changed
  CHECK(context->draft(d1, exit_layer, SamplingParams{}, 0.0, &proposal).is_ok());
  for (int l = 0; l < num_layers; l++) CHECK(context->layer_length(l) == (l < exit_layer ? n + 2 : n));
  CHECK(context->exit_rows() == 2);
  CHECK(!context->verify(5, SamplingParams{}, nullptr, rows).is_ok());  // more drafts than proposed

  // The exit cache holds k + 1 = 3 rows: a third pass fits, a fourth does not, nor verifying all three proposals.
  CHECK(context->draft(proposal.token, exit_layer, SamplingParams{}, 0.0, &proposal).is_ok());
  CHECK(!context->draft(proposal.token, exit_layer, SamplingParams{}, 0.0, &proposal).is_ok());
  CHECK(!context->verify(3, SamplingParams{}, nullptr, rows).is_ok());

  // Verifying both drafts runs d2 through [0, E) first; then every layer holds n + 3.
  context->truncate(n);
  CHECK(context->exit_rows() == 0);
  CHECK(context->draft(x, exit_layer, SamplingParams{}, 0.0, &proposal).is_ok());
  CHECK(context->draft(proposal.token, exit_layer, SamplingParams{}, 0.0, &proposal).is_ok());
  CHECK(context->verify(2, SamplingParams{}, nullptr, rows).is_ok());
  for (int l = 0; l < num_layers; l++) CHECK(context->layer_length(l) == n + 3);
  CHECK(context->exit_rows() == 0);

  // Dropping the last proposal verifies one fewer row and runs nothing extra through [0, E).
  context->truncate(n);
  CHECK(context->draft(x, exit_layer, SamplingParams{}, 0.0, &proposal).is_ok());
  CHECK(context->verify(0, SamplingParams{}, nullptr, rows).is_ok());
  for (int l = 0; l < num_layers; l++) CHECK(context->layer_length(l) == n + 1);

  // A sampled step keeps one setting: its drafts' distributions are what verification compares against.
  context->truncate(n);
  const SamplingParams sampled{0.8f, 0, 0.9f}, hotter{0.9f, 0, 0.9f}, narrower{0.8f, 0, 0.5f};
  const double uniforms[3] = {0.3, 0.6, 0.9};
  CHECK(context->draft(x, exit_layer, sampled, 0.5, &proposal).is_ok());
  CHECK(!context->draft(proposal.token, exit_layer, hotter, 0.5, &proposal).is_ok());
  CHECK(!context->draft(proposal.token, exit_layer, SamplingParams{}, 0.5, &proposal).is_ok());
  CHECK(!context->verify(1, narrower, uniforms, rows).is_ok());
  CHECK(context->verify(1, sampled, uniforms, rows).is_ok());
  context->truncate(n);

  // A step cannot start from uneven layers (an early-exit decode left [E, L) behind).
  CHECK(context->forward(&x, 1, exit_layer, 1).is_ok());
  CHECK(!context->draft(x, exit_layer, SamplingParams{}, 0.0, &proposal).is_ok());
}

TEST(speculative_residual_sampler_draws_the_positive_part) {
  // p_verify = (0.5, 0.3, 0.2) over tokens 0..2, p_draft = (0.6, 0.1, 0.3): residual ∝ (0, 0.2, 0) → always 1.
  TokenDistribution verify{{0, 1, 2}, {0.5, 0.3, 0.2}};
  TokenDistribution draft{{0, 2, 1}, {0.6, 0.3, 0.1}};
  std::vector<double> scratch(4, 0.0);
  for (double u = 0.0; u < 1.0; u += 0.01) CHECK(sample_residual(verify, draft, u, &scratch) == 1);
  CHECK(std::all_of(scratch.begin(), scratch.end(), [](double v) { return v == 0.0; }));

  // Residual ∝ (0.3, 0.1) over tokens 3, 1 (draft gives 0 to 3): a uniform grid lands 3/4 on token 3.
  TokenDistribution verify2{{3, 1, 0}, {0.3, 0.3, 0.4}};
  TokenDistribution draft2{{0, 1}, {0.8, 0.2}};
  int hits = 0, total = 0;
  for (double u = 0.0005; u < 1.0; u += 0.001, total++) hits += sample_residual(verify2, draft2, u, &scratch) == 3;
  CHECK_MSG(std::abs(double(hits) / total - 0.75) < 0.002, "token 3 drawn " << hits << " / " << total);

  // Equal distributions leave no residual: fall back to p_verify.
  CHECK(sample_residual(verify, verify, 0.1, &scratch) == 0);

  // build_token_distribution: temperature, top-k, top-p in HF order, renormalized.
  float logits[5] = {1.0f, 3.0f, 2.0f, 3.0f, -1.0f};
  TokenDistribution built;
  build_token_distribution(logits, 5, SamplingParams{1.0f, 3, 1.0f}, &built);
  CHECK((built.tokens == std::vector<int32_t>{1, 3, 2}));
  double sum = 0;
  for (double p : built.probabilities) sum += p;
  CHECK(std::abs(sum - 1.0) < 1e-12);
  build_token_distribution(logits, 5, SamplingParams{1.0f, 0, 0.5f}, &built);
  CHECK((built.tokens == std::vector<int32_t>{1, 3}));
  CHECK(std::abs(built.probability_of(3) - 0.5) < 1e-12 && built.probability_of(2) == 0.0);
}
