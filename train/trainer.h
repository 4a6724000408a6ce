// Trainer: f32 master weights, AdamW moments and the data-parallel training step. A batch's sequences are split
// across the thread pool (static partition, so a step is deterministic for a given thread count); each thread runs
// SequencePass into its own gradient buffer, the buffers are summed, clipped by global norm, and AdamW updates the
// weights. Layer-dropout masks and exit weights come from the caller (the schedules live in TypeScript).
#pragma once
#include <memory>
#include <vector>

#include "../core/config.h"
#include "../core/status.h"
#include "../cpu/thread_pool.h"
#include "parameters.h"
#include "sequence_pass.h"

namespace layerskip::train {

struct AdamWSettings {
  float learning_rate = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.95f;
  float epsilon = 1e-8f;
  float weight_decay = 0.1f;
  float clip_norm = 1.0f;  // ≤ 0: no clipping
};

struct StepResult {
  std::vector<double> exit_loss;  // (layers) mean cross-entropy per exit; NaN where the exit was inactive
  double gradient_norm = 0;       // before clipping
};

class Trainer {
 public:
  // max_rows: the longest sequence a step or evaluation may use.
  static Status create(const ModelConfig& config, int threads, int max_rows, uint64_t seed,
                       std::unique_ptr<Trainer>* out);

  const ModelConfig& config() const { return config_; }
  const ParameterLayout& layout() const { return layout_; }
  int max_rows() const { return max_rows_; }
  int64_t step_count() const { return step_count_; }
  void set_step_count(int64_t steps) { step_count_ = steps; }
  // Flat buffers with layout(): weights and AdamW's first and second moments. Call weights_changed() after
  // writing into parameters().
  float* parameters() { return parameters_.data(); }
  float* first_moment() { return first_moment_.data(); }
  float* second_moment() { return second_moment_.data(); }
  void weights_changed();

  // One optimizer step over `batch` sequences of rows + 1 tokens each (inputs [0, rows), targets [1, rows]).
  //   dropped: (batch, layers), nonzero = layer skipped for that sequence;
  //   exit_weights: (layers) early-exit loss weights (the caller normalizes them to sum 1; the last layer's > 0).
  Status step(const int32_t* tokens, int batch, int rows, const uint8_t* dropped, const float* exit_weights,
              const AdamWSettings& settings, StepResult* out);

  // Gradients of the same loss without updating anything (for gradient checks); returned in layout() order.
  Status gradients(const int32_t* tokens, int batch, int rows, const uint8_t* dropped, const float* exit_weights,
                   std::vector<float>* out, double* loss);

  // Every exit's totals over `batch` sequences without dropout (evaluation).
  Status evaluate(const int32_t* tokens, int batch, int rows, ExitTotals* out);

 private:
  Trainer(const ModelConfig& config, int threads, int max_rows);
  Status check_batch(const int32_t* tokens, int batch, int rows) const;
  // Runs forward + backward over the batch into gradient buffer 0 (summed over threads); totals per exit.
  void accumulate_gradients(const int32_t* tokens, int batch, int rows, const uint8_t* dropped,
                            const float* exit_weights, ExitTotals* totals);

  ModelConfig config_;
  ParameterLayout layout_;
  int max_rows_;
  ThreadPool pool_;
  int64_t step_count_ = 0;
  std::vector<float> parameters_, first_moment_, second_moment_;  // (layout total) each
  std::vector<float> transposed_;                                 // parameters with matrices transposed
  std::vector<std::vector<float>> thread_gradients_;              // (threads) × (layout total)
  std::vector<std::unique_ptr<SequencePass>> passes_;             // (threads)
  // Per-layer pointers into the buffers above, carved once (the buffers never move).
  ParameterView parameter_view_, transposed_view_;
  std::vector<ParameterView> gradient_views_;                     // (threads)
  std::vector<float> rope_cos_, rope_sin_;                        // (max_rows, head_dim / 2)
};

}  // namespace layerskip::train
