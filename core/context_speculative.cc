// Self-speculative decoding on one Context: draft through layers [0, E) into the exit cache, verify through
// [E, L) once over the drafted positions. The position bookkeeping is in context.h; every step asserts it.
#include <algorithm>
#include <string>

#include "context.h"

namespace layerskip {

Status Context::reserve_speculation(int num_speculations) {
  const ModelConfig& c = model_.config();
  if (num_speculations < 1 || num_speculations + 1 > max_batch_) {
    return Status::error("numSpeculations must be in [1, " + std::to_string(max_batch_ - 1) + "] (max_batch − 1), got " +
                         std::to_string(num_speculations));
  }
  if (exit_rows_ > 0) return Status::error("reserve_speculation: a speculation step is in progress");
  int capacity = num_speculations + 1;
  if (capacity <= exit_capacity_) return Status::ok();
  std::unique_ptr<SpeculativeSampler> sampler;
  LS_RETURN_IF_ERROR(backend_.make_speculative_sampler(capacity, c.vocab_size, &sampler));
  if (exit_cache_ != nullptr) {
    owned_.erase(std::find(owned_.begin(), owned_.end(), exit_cache_));
    backend_.free(exit_cache_);
    exit_cache_ = nullptr;
    exit_capacity_ = 0;
  }
  LS_RETURN_IF_ERROR(allocate(&exit_cache_, size_t(capacity) * c.hidden_size));
  exit_capacity_ = capacity;
  speculative_sampler_ = std::move(sampler);
  return Status::ok();
}

// A step samples every row under one setting: the kept draft distributions must be the ones verify compares with.
bool Context::same_sampling(const SamplingParams& params) const {
  if ((params.temperature > 0) != speculation_sampled_) return false;
  const SamplingParams& step = speculation_params_;
  return !speculation_sampled_ ||
         (params.temperature == step.temperature && params.top_k == step.top_k && params.top_p == step.top_p);
}

// Layers [0, E) must hold n + layers_below_exit positions and layers [E, L) exactly n.
Status Context::check_step_lengths(const char* step, int layers_below_exit) const {
  for (int l = 0; l < int(layer_length_.size()); l++) {
    int expected = speculation_start_ + (l < exit_layer_ ? layers_below_exit : 0);
    if (layer_length_[l] != expected) {
      return Status::error(std::string(step) + ": layer " + std::to_string(l) + " holds " +
                           std::to_string(layer_length_[l]) + " positions, expected " + std::to_string(expected) +
                           " (step started at " + std::to_string(speculation_start_) + ", exit layer " +
                           std::to_string(exit_layer_) + ")");
    }
  }
  return Status::ok();
}

// Validates a draft pass from `token` and returns the position its row takes: a new step when the exit cache is
// empty (every layer then holds the committed length n), else the continuation from the previous proposal.
Status Context::begin_draft_pass(int32_t token, int exit_layer, const SamplingParams& params, int* position) {
  const ModelConfig& c = model_.config();
  if (exit_capacity_ == 0) return Status::error("draft: call reserve_speculation(numSpeculations) first");
  if (exit_rows_ == 0) {
    if (exit_layer < 1 || exit_layer > c.num_layers) {
      return Status::error("draft: exit layer " + std::to_string(exit_layer) + " outside [1, " +
                           std::to_string(c.num_layers) + "]");
    }
    speculation_start_ = layer_length_[0];
    exit_layer_ = exit_layer;
    speculation_sampled_ = params.temperature > 0;
    speculation_params_ = params;
    draft_tokens_.clear();
  } else {
    if (exit_layer != exit_layer_) return Status::error("draft: exit layer changed within a step");
    if (!same_sampling(params)) return Status::error("draft: sampling changed within a step");
    if (token != draft_tokens_.back()) {
      return Status::error("draft: token " + std::to_string(token) + " is not the previous proposal " +
                           std::to_string(draft_tokens_.back()));
    }
  }
  if (exit_rows_ >= exit_capacity_) {
    return Status::error("draft: the exit cache holds " + std::to_string(exit_capacity_) + " rows; verify first");
  }
  LS_RETURN_IF_ERROR(check_step_lengths("draft", exit_rows_));
  *position = speculation_start_ + exit_rows_;
  return Status::ok();
}

// The layer-E hidden state (backend memory, one row) of the pass at the next exit row.
void Context::keep_exit_row(const float* hidden_row) {
  const int dim = model_.config().hidden_size;
  backend_.copy(exit_cache_ + size_t(exit_rows_) * dim, hidden_row, dim);
  exit_rows_++;
}

// The proposal of the pass that filled the last exit row, from its draft-head logits row; sampling keeps the row's
// distribution on the backend for the acceptance rule.
Status Context::propose_draft(const float* logits_row, const SamplingParams& params, double uniform, DraftProposal* out) {
  SampledToken picked;
  if (speculation_sampled_) {
    LS_RETURN_IF_ERROR(speculative_sampler_->sample_draft(&picked, logits_row, params, uniform, exit_rows_ - 1));
  } else {
    LS_RETURN_IF_ERROR(backend_.sample(&picked, logits_row, 1, model_.config().vocab_size, params, nullptr));
  }
  *out = {picked.token, picked.probability, picked.top_probability};
  draft_tokens_.push_back(out->token);
  return Status::ok();
}

Status Context::replace_proposal(int32_t token) {
  if (exit_rows_ == 0 || draft_tokens_.size() != size_t(exit_rows_)) {
    return Status::error("replace_proposal: no draft pass to replace the proposal of");
  }
  if (token < 0 || token >= model_.config().vocab_size) {
    return Status::error("replace_proposal: token " + std::to_string(token) + " is outside the vocabulary");
  }
  if (speculation_sampled_) return Status::error("replace_proposal: only for greedy steps (the sampler keeps its own draws)");
  draft_tokens_.back() = token;
  return Status::ok();
}

Status Context::draft(int32_t token, int exit_layer, const SamplingParams& params, double uniform, DraftProposal* out) {
  int position = 0;
  LS_RETURN_IF_ERROR(begin_draft_pass(token, exit_layer, params, &position));
  // Layers [0, E) for the one token; its hidden state becomes the next exit row.
  LS_RETURN_IF_ERROR(embed(&token, 1));
  LS_RETURN_IF_ERROR(run_layers(0, exit_layer_, 1, position));
  keep_exit_row(hidden_);
  LS_RETURN_IF_ERROR(compute_logits(0, 1, /*draft=*/true));
  return propose_draft(logits_, params, uniform, out);
}

Status Context::draft_run(int32_t token, int exit_layer, const SamplingParams& params, int max_drafts,
                          float min_confidence, const std::vector<int32_t>& stop_tokens, const double* uniforms,
                          std::vector<DraftProposal>* kept) {
  if (max_drafts < 0) return Status::error("draft_run: max_drafts must be ≥ 0, got " + std::to_string(max_drafts));
  if (params.temperature > 0 && uniforms == nullptr) return Status::error("draft_run: sampling needs uniforms");
  kept->clear();
  for (int pass = 0;; pass++) {
    DraftProposal proposal;
    LS_RETURN_IF_ERROR(draft(token, exit_layer, params, uniforms ? uniforms[pass] : 0.0, &proposal));
    if (int(kept->size()) == max_drafts || proposal.confidence < min_confidence) return Status::ok();
    kept->push_back(proposal);
    if (int(kept->size()) == max_drafts ||
        std::find(stop_tokens.begin(), stop_tokens.end(), proposal.token) != stop_tokens.end()) {
      return Status::ok();
    }
    token = proposal.token;
  }
}

// Validates verify(draft_count). When the last proposal has not been through [0, E) yet (draft_count = exit rows),
// *pending_position is the position that pass takes, else -1.
Status Context::begin_verify(int draft_count, const SamplingParams& params, const double* uniforms,
                             int* pending_position) {
  if (exit_rows_ == 0) return Status::error("verify: nothing was drafted");
  if (draft_count != exit_rows_ && draft_count != exit_rows_ - 1) {
    return Status::error("verify: " + std::to_string(draft_count) + " drafts requested after " +
                         std::to_string(exit_rows_) + " draft passes (expected that many or one fewer)");
  }
  if (!same_sampling(params)) return Status::error("verify: sampling differs from the drafts'");
  if (speculation_sampled_ && uniforms == nullptr) return Status::error("verify: sampling needs uniforms");
  *pending_position = -1;
  if (draft_count == exit_rows_) {
    if (exit_rows_ >= exit_capacity_) return Status::error("verify: the exit cache is full");
    LS_RETURN_IF_ERROR(check_step_lengths("verify", exit_rows_));
    *pending_position = speculation_start_ + exit_rows_;
  }
  return Status::ok();
}

// After the pending pass (if any): the draft_count + 1 exit rows [x, d1 … dj] at positions from speculation_start
// go through [E, L). The exit cache restarts whatever happens next.
Status Context::start_verify_rows(int draft_count) {
  LS_RETURN_IF_ERROR(check_step_lengths("verify", draft_count + 1));
  draft_tokens_.resize(draft_count);
  exit_rows_ = 0;
  return Status::ok();
}

Status Context::verify(int draft_count, const SamplingParams& params, const double* uniforms, VerifyRow* out) {
  const ModelConfig& c = model_.config();
  int pending_position = -1;
  LS_RETURN_IF_ERROR(begin_verify(draft_count, params, uniforms, &pending_position));
  if (pending_position >= 0) {
    int32_t last = draft_tokens_[draft_count - 1];
    LS_RETURN_IF_ERROR(embed(&last, 1));
    LS_RETURN_IF_ERROR(run_layers(0, exit_layer_, 1, pending_position));
    keep_exit_row(hidden_);
  }
  const int rows = draft_count + 1;
  LS_RETURN_IF_ERROR(start_verify_rows(draft_count));

  // Layers [E, L) once over the k + 1 positions [x, d1 … dk], starting from their exit rows.
  backend_.copy(hidden_, exit_cache_, size_t(rows) * c.hidden_size);
  LS_RETURN_IF_ERROR(run_layers(exit_layer_, c.num_layers, rows, speculation_start_));

  // Final norm + LM head, as many rows at a time as the logits buffer holds.
  for (int begin = 0; begin < rows; begin += max_logit_rows_) {
    int count = std::min(max_logit_rows_, rows - begin);
    LS_RETURN_IF_ERROR(compute_logits(begin, count));
    LS_RETURN_IF_ERROR(pick_verified(logits_, begin, count, params, uniforms, out));
  }
  return Status::ok();
}

// Fills out[row_begin, row_begin + count) from `count` logits rows (backend memory).
Status Context::pick_verified(const float* logits, int row_begin, int count, const SamplingParams& params,
                              const double* uniforms, VerifyRow* out) {
  const int vocab = model_.config().vocab_size;
  const int draft_count = int(draft_tokens_.size());
  if (speculation_sampled_) {
    return speculative_sampler_->verify(out + row_begin, logits, row_begin, count, draft_count, draft_tokens_.data(),
                                        params, uniforms + row_begin);
  }
  std::vector<SampledToken> picked(count);
  LS_RETURN_IF_ERROR(backend_.sample(picked.data(), logits, count, vocab, params, nullptr));
  for (int i = 0; i < count; i++) {
    int row = row_begin + i;
    bool checks_draft = row < draft_count;
    bool agrees = checks_draft && picked[i].token == draft_tokens_[row];
    out[row] = {picked[i].token, agrees ? 1.0f : 0.0f, checks_draft ? 1.0f : 0.0f};
  }
  return Status::ok();
}

}  // namespace layerskip
