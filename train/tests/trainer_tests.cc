// Trainer checks: the f32 GEMM against a plain loop at awkward sizes; every parameter's gradient against central
// finite differences (with layer dropout and early exits active, GQA and tied/untied heads); and a micro model that
// learns a repeating sequence at every exit layer.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "../../core/tests/test_framework.h"
#include "../gemm.h"
#include "../trainer.h"

namespace layerskip::train {
namespace {

ModelConfig tiny_config(bool tied) {
  ModelConfig c;
  c.hidden_size = 16;
  c.intermediate_size = 24;
  c.num_layers = 3;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 4;
  c.vocab_size = 11;
  c.max_position_embeddings = 64;
  c.rms_norm_eps = 1e-5;
  c.tie_word_embeddings = tied;
  return c;
}

TEST(train_gemm_matches_loop) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> uniform(-1, 1);
  for (int m : {1, 2, 3, 7, 65}) {
    for (int n : {1, 4, 5, 67}) {
      for (int k : {1, 8, 13, 70}) {
        const int lda = k + 3, ldb = k + 1, ldc = n + 2;
        std::vector<float> a(size_t(m) * lda), b(size_t(n) * ldb), c(size_t(m) * ldc, 0.5f);
        for (float& x : a) x = uniform(rng);
        for (float& x : b) x = uniform(rng);
        gemm_nt(c.data(), a.data(), b.data(), m, n, k, lda, ldb, ldc, true);
        for (int i = 0; i < m; ++i)
          for (int j = 0; j < n; ++j) {
            double expected = 0.5;
            for (int p = 0; p < k; ++p) expected += double(a[size_t(i) * lda + p]) * b[size_t(j) * ldb + p];
            CHECK_MSG(std::fabs(c[size_t(i) * ldc + j] - expected) <= 1e-4 * (1 + std::fabs(expected)),
                      "gemm " << m << "x" << n << "x" << k << " at (" << i << ", " << j << ")");
          }
      }
    }
  }
}

void check_gradients(bool tied) {
  const ModelConfig config = tiny_config(tied);
  std::unique_ptr<Trainer> trainer;
  CHECK_OK(Trainer::create(config, 2, 8, 3, &trainer));
  // Larger weights than the 0.02 init so every op's gradient is well above f32 noise.
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 0.3f);
  for (const ParameterTensor& t : trainer->layout().tensors())
    for (size_t i = 0; i < t.size; ++i)
      trainer->parameters()[t.offset + i] = t.shape.size() == 1 ? 1.0f + 0.2f * normal(rng) : normal(rng);
  trainer->weights_changed();

  const int batch = 3, rows = 6, layers = config.num_layers;
  std::vector<int32_t> tokens(batch * (rows + 1));
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = int32_t((i * 7 + 3) % config.vocab_size);
  std::vector<uint8_t> dropped = {0, 0, 0,  0, 1, 0,  1, 0, 0};  // (batch, layers)
  std::vector<float> exit_weights = {0.25f, 0.0f, 0.75f};
  std::vector<float> analytic;
  double loss = 0;
  CHECK_OK(trainer->gradients(tokens.data(), batch, rows, dropped.data(), exit_weights.data(), &analytic, &loss));

  int checked = 0, bad = 0;
  for (const ParameterTensor& t : trainer->layout().tensors()) {
    for (size_t probe = 0; probe < std::min<size_t>(t.size, 6); ++probe) {
      const size_t index = t.offset + (probe * 7919) % t.size;
      float* w = trainer->parameters() + index;
      const float saved = *w, h = 1e-2f;
      std::vector<float> ignored;
      double plus = 0, minus = 0;
      *w = saved + h;
      trainer->weights_changed();
      CHECK_OK(trainer->gradients(tokens.data(), batch, rows, dropped.data(), exit_weights.data(), &ignored, &plus));
      *w = saved - h;
      trainer->weights_changed();
      CHECK_OK(trainer->gradients(tokens.data(), batch, rows, dropped.data(), exit_weights.data(), &ignored, &minus));
      *w = saved;
      trainer->weights_changed();
      const double numeric = (plus - minus) / (2 * h), got = analytic[index];
      ++checked;
      if (std::fabs(numeric - got) > 2e-2 * std::max(std::fabs(numeric), std::fabs(got)) + 2e-4) {
        ++bad;
        std::ostringstream message;
        message << t.name << "[" << index - t.offset << "]: analytic " << got << " vs numeric " << numeric;
        layerskip::testing::report_failure(__FILE__, __LINE__, message.str());
      }
    }
  }
  CHECK(checked > 50);
  CHECK(bad == 0);
  (void)layers;
}

TEST(train_gradients_match_finite_differences_tied) { check_gradients(true); }
TEST(train_gradients_match_finite_differences_untied) { check_gradients(false); }

TEST(train_micro_model_learns_at_every_exit) {
  ModelConfig config = tiny_config(true);
  config.vocab_size = 13;
  config.hidden_size = 32;
  config.head_dim = 8;
  std::unique_ptr<Trainer> trainer;
  CHECK_OK(Trainer::create(config, 2, 16, 5, &trainer));
  const int batch = 4, rows = 16, layers = config.num_layers;
  std::vector<int32_t> tokens(batch * (rows + 1));
  for (int s = 0; s < batch; ++s)
    for (int t = 0; t <= rows; ++t) tokens[s * (rows + 1) + t] = (s + t * 5) % config.vocab_size;
  std::vector<uint8_t> dropped(batch * layers, 0);
  std::vector<float> exit_weights = {1.0f / 6, 2.0f / 6, 3.0f / 6};
  AdamWSettings settings;
  settings.learning_rate = 1e-2f;
  ExitTotals before, after;
  CHECK_OK(trainer->evaluate(tokens.data(), batch, rows, &before));
  StepResult result;
  for (int step = 0; step < 150; ++step) {
    for (int i = 0; i < batch * layers; ++i) dropped[i] = (step * 31 + i * 17) % 10 == 0;
    CHECK_OK(trainer->step(tokens.data(), batch, rows, dropped.data(), exit_weights.data(), settings, &result));
  }
  CHECK_OK(trainer->evaluate(tokens.data(), batch, rows, &after));
  for (int l = 0; l < layers; ++l) {
    const double loss_before = before.loss[l] / before.tokens, loss_after = after.loss[l] / after.tokens;
    CHECK(loss_after < 0.5 * loss_before);
    CHECK(after.correct[l] / after.tokens > 0.9);
  }
  CHECK(trainer->step_count() == 150);
}

}  // namespace
}  // namespace layerskip::train

namespace layerskip::train {
namespace {

// Training throughput of the demo model's shape: tokens/s for one step with every exit active and with the last
// layer's only, at 1 and 2 threads.
BENCH(train_step_throughput) {
  ModelConfig c;
  c.hidden_size = 256;
  c.intermediate_size = 768;
  c.num_layers = 8;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 64;
  c.vocab_size = 2048;
  c.max_position_embeddings = 256;
  c.rms_norm_eps = 1e-5;
  c.tie_word_embeddings = true;
  const int rows = 256, batch = 4;
  std::vector<int32_t> tokens(batch * (rows + 1));
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = int32_t((i * 7919) % c.vocab_size);
  std::vector<uint8_t> dropped(batch * c.num_layers, 0);
  for (int threads : {1, 2}) {
    std::unique_ptr<Trainer> trainer;
    CHECK_OK(Trainer::create(c, threads, rows, 1, &trainer));
    for (bool every_exit : {false, true}) {
      std::vector<float> exits(c.num_layers, every_exit ? 1.0f / c.num_layers : 0.0f);
      exits.back() = every_exit ? 1.0f / c.num_layers : 1.0f;
      StepResult result;
      CHECK_OK(trainer->step(tokens.data(), batch, rows, dropped.data(), exits.data(), AdamWSettings(), &result));
      const auto start = std::chrono::steady_clock::now();
      const int steps = 2;
      for (int s = 0; s < steps; ++s)
        CHECK_OK(trainer->step(tokens.data(), batch, rows, dropped.data(), exits.data(), AdamWSettings(), &result));
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::printf("  threads %d, %s: %.0f tokens/s (%.2f s/step of %d tokens)\n", threads,
                  every_exit ? "every exit" : "last exit ", steps * batch * rows / seconds, seconds / steps,
                  batch * rows);
    }
  }
}

}  // namespace
}  // namespace layerskip::train
