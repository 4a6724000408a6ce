#include "trainer.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "../core/rope_table.h"
#include "gemm.h"

namespace layerskip::train {

Trainer::Trainer(const ModelConfig& config, int threads, int max_rows)
    : config_(config), layout_(config), max_rows_(max_rows), pool_(threads) {}

Status Trainer::create(const ModelConfig& config, int threads, int max_rows, uint64_t seed,
                       std::unique_ptr<Trainer>* out) {
  const ModelConfig& c = config;
  if (c.hidden_size <= 0 || c.intermediate_size <= 0 || c.num_layers <= 0 || c.num_heads <= 0 ||
      c.num_kv_heads <= 0 || c.vocab_size <= 0 || c.head_dim <= 0)
    return Status::error("trainer: every model dimension must be positive");
  if (c.num_heads % c.num_kv_heads != 0)
    return Status::error("trainer: num_attention_heads (" + std::to_string(c.num_heads) +
                         ") must be a multiple of num_key_value_heads (" + std::to_string(c.num_kv_heads) + ")");
  if (c.head_dim % 2 != 0) return Status::error("trainer: head_dim must be even for rotary embeddings");
  if (max_rows <= 0) return Status::error("trainer: the sequence length must be positive");
  std::unique_ptr<Trainer> trainer(new Trainer(config, threads, max_rows));
  const size_t total = trainer->layout_.total();
  trainer->parameters_.assign(total, 0.0f);
  trainer->first_moment_.assign(total, 0.0f);
  trainer->second_moment_.assign(total, 0.0f);
  trainer->transposed_.assign(total, 0.0f);
  initialize_parameters(c, trainer->layout_, seed, trainer->parameters_.data());
  for (int t = 0; t < trainer->pool_.size(); ++t) {
    trainer->thread_gradients_.emplace_back(total, 0.0f);
    trainer->passes_.push_back(std::make_unique<SequencePass>(c, max_rows));
  }
  trainer->parameter_view_ = view_parameters(c, trainer->layout_, trainer->parameters_.data());
  trainer->transposed_view_ = view_parameters(c, trainer->layout_, trainer->transposed_.data());
  for (auto& gradients : trainer->thread_gradients_)
    trainer->gradient_views_.push_back(view_parameters(c, trainer->layout_, gradients.data()));
  build_rope_tables(c, max_rows, &trainer->rope_cos_, &trainer->rope_sin_);
  trainer->weights_changed();
  *out = std::move(trainer);
  return Status::ok();
}

void Trainer::weights_changed() {
  const auto& tensors = layout_.tensors();
  pool_.parallel_for(tensors.size(), 1, [&](size_t begin, size_t end, int) {
    for (size_t i = begin; i < end; ++i) {
      const ParameterTensor& t = tensors[i];
      if (t.shape.size() == 2)
        transpose(transposed_.data() + t.offset, parameters_.data() + t.offset, int(t.shape[0]), int(t.shape[1]),
                  int(t.shape[1]));
      else
        std::memcpy(transposed_.data() + t.offset, parameters_.data() + t.offset, sizeof(float) * t.size);
    }
  });
}

Status Trainer::check_batch(const int32_t* tokens, int batch, int rows) const {
  if (batch <= 0) return Status::error("trainer: the batch must hold at least one sequence");
  if (rows <= 0 || rows > max_rows_)
    return Status::error("trainer: sequence length " + std::to_string(rows) + " is outside [1, " +
                         std::to_string(max_rows_) + "]");
  for (size_t i = 0; i < size_t(batch) * (rows + 1); ++i)
    if (tokens[i] < 0 || tokens[i] >= config_.vocab_size)
      return Status::error("trainer: token id " + std::to_string(tokens[i]) + " at index " + std::to_string(i) +
                           " is outside the vocabulary [0, " + std::to_string(config_.vocab_size) + ")");
  return Status::ok();
}

void Trainer::accumulate_gradients(const int32_t* tokens, int batch, int rows, const uint8_t* dropped,
                                   const float* exit_weights, ExitTotals* totals) {
  const int layers = config_.num_layers, threads = pool_.size();
  const size_t total = layout_.total();
  std::vector<ExitTotals> thread_totals(threads);
  for (ExitTotals& t : thread_totals) t.reset(layers);
  const float gradient_scale = 1.0f / float(size_t(batch) * rows);
  pool_.parallel_for_static(size_t(batch), 1, [&](size_t begin, size_t end, int thread) {
    std::fill(thread_gradients_[thread].begin(), thread_gradients_[thread].end(), 0.0f);
    for (size_t s = begin; s < end; ++s) {
      const int32_t* sequence = tokens + s * (rows + 1);
      passes_[thread]->train(parameter_view_, transposed_view_, &gradient_views_[thread], rope_cos_.data(),
                             rope_sin_.data(), sequence, sequence + 1, rows, dropped + s * layers, exit_weights,
                             gradient_scale, &thread_totals[thread]);
    }
  });
  // Threads that got no sequence left their buffers untouched: only sum the ones that ran.
  const int used = int(std::min<size_t>(size_t(threads), size_t(batch)));
  pool_.parallel_for(total, 4096, [&](size_t begin, size_t end, int) {
    for (int t = 1; t < used; ++t)
      for (size_t i = begin; i < end; ++i) thread_gradients_[0][i] += thread_gradients_[t][i];
  });
  totals->reset(layers);
  for (const ExitTotals& t : thread_totals) totals->add(t);
}

Status Trainer::gradients(const int32_t* tokens, int batch, int rows, const uint8_t* dropped,
                          const float* exit_weights, std::vector<float>* out, double* loss) {
  LS_RETURN_IF_ERROR(check_batch(tokens, batch, rows));
  ExitTotals totals;
  accumulate_gradients(tokens, batch, rows, dropped, exit_weights, &totals);
  *out = thread_gradients_[0];
  double sum = 0;
  for (int l = 0; l < config_.num_layers; ++l) sum += exit_weights[l] * totals.loss[l];
  *loss = sum / (double(batch) * rows);
  return Status::ok();
}

Status Trainer::step(const int32_t* tokens, int batch, int rows, const uint8_t* dropped, const float* exit_weights,
                     const AdamWSettings& s, StepResult* out) {
  LS_RETURN_IF_ERROR(check_batch(tokens, batch, rows));
  const int layers = config_.num_layers;
  ExitTotals totals;
  accumulate_gradients(tokens, batch, rows, dropped, exit_weights, &totals);
  float* gradient = thread_gradients_[0].data();
  const size_t total = layout_.total();

  double squares = 0;
  for (size_t i = 0; i < total; ++i) squares += double(gradient[i]) * gradient[i];
  const double norm = std::sqrt(squares);
  if (!std::isfinite(norm)) return Status::error("trainer: the gradient is not finite (loss diverged)");
  const float clip = s.clip_norm > 0 && norm > s.clip_norm ? float(s.clip_norm / norm) : 1.0f;

  ++step_count_;
  const float correction1 = 1.0f - std::pow(s.beta1, float(step_count_));
  const float correction2 = 1.0f - std::pow(s.beta2, float(step_count_));
  for (const ParameterTensor& t : layout_.tensors()) {
    const float decay = t.decays ? s.weight_decay : 0.0f;
    pool_.parallel_for(t.size, 1024, [&](size_t begin, size_t end, int) {
      float* w = parameters_.data() + t.offset;
      float* m = first_moment_.data() + t.offset;
      float* v = second_moment_.data() + t.offset;
      const float* g = gradient + t.offset;
      for (size_t i = begin; i < end; ++i) {
        const float gi = g[i] * clip;
        m[i] = s.beta1 * m[i] + (1.0f - s.beta1) * gi;
        v[i] = s.beta2 * v[i] + (1.0f - s.beta2) * gi * gi;
        const float update = (m[i] / correction1) / (std::sqrt(v[i] / correction2) + s.epsilon);
        w[i] -= s.learning_rate * (update + decay * w[i]);
      }
    });
  }
  weights_changed();

  out->exit_loss.assign(layers, std::numeric_limits<double>::quiet_NaN());
  for (int l = 0; l < layers; ++l)
    if (exit_weights[l] > 0) out->exit_loss[l] = totals.loss[l] / totals.tokens;
  out->gradient_norm = norm;
  return Status::ok();
}

Status Trainer::evaluate(const int32_t* tokens, int batch, int rows, ExitTotals* out) {
  LS_RETURN_IF_ERROR(check_batch(tokens, batch, rows));
  const int layers = config_.num_layers, threads = pool_.size();
  std::vector<ExitTotals> thread_totals(threads);
  for (ExitTotals& t : thread_totals) t.reset(layers);
  pool_.parallel_for_static(size_t(batch), 1, [&](size_t begin, size_t end, int thread) {
    for (size_t s = begin; s < end; ++s) {
      const int32_t* sequence = tokens + s * (rows + 1);
      passes_[thread]->evaluate(parameter_view_, rope_cos_.data(), rope_sin_.data(), sequence, sequence + 1, rows,
                                &thread_totals[thread]);
    }
  });
  out->reset(layers);
  for (const ExitTotals& t : thread_totals) out->add(t);
  return Status::ok();
}

}  // namespace layerskip::train
