// Context: one sequence being generated — its KV cache, its scratch activations and the forward pass over a range
// of layers. The steps are separate so decoding strategies compose them:
//   embed(tokens) → run_layers(a, b) → compute_logits(rows) → sample / read_logits,  truncate(length).
// Self-speculative decoding runs layers [0, E) to draft and [E, L) to verify, so each layer tracks its own cache
// length; the cache of layer l holds positions [0, layer_length(l)). Its draft/verify steps live in
// context_speculative.cc.
#pragma once
#include <memory>
#include <vector>

#include "backend.h"
#include "model.h"

namespace layerskip {

// One draft pass's proposal: the next token, its probability under the draft distribution, and the draft's top
// probability (the confidence adaptive drafting compares against draftConfidence).
struct DraftProposal {
  int32_t token = -1;
  float probability = 0.0f;
  float confidence = 0.0f;
};

struct ContextOptions {
  int context_length = 0;   // max positions; ≤ 0: min(max_position_embeddings, 4096)
  int max_batch = 512;      // rows per forward call (prefill is chunked to this)
  int max_logit_rows = 64;  // rows compute_logits may produce at once
};

class Context {
 public:
  static Status create(const Model& model, const ContextOptions& options, std::unique_ptr<Context>* out);
  ~Context();

  const Model& model() const { return model_; }
  int context_length() const { return context_length_; }
  int max_batch() const { return max_batch_; }
  int max_logit_rows() const { return max_logit_rows_; }
  int layer_length(int layer) const { return layer_length_[layer]; }
  // Positions held by every layer (the committed sequence length).
  int length() const;

  // Writes the embeddings of n tokens into working rows [0, n).
  Status embed(const int32_t* tokens, int n);
  // Runs layers [layer_begin, layer_end) over working rows [0, n) at positions [start_pos, start_pos + n),
  // appending their K/V. Each of those layers must hold exactly start_pos positions.
  Status run_layers(int layer_begin, int layer_end, int n, int start_pos);
  // Final norm + LM head over working rows [row_begin, row_begin + count) → logits rows [0, count). `draft`: through
  // the model's draft head (Model::draft_head(): a quantized copy when loaded with one), for speculative proposals.
  Status compute_logits(int row_begin, int count, bool draft = false);
  // Picks a token from each of logits rows [0, count).
  Status sample(int count, const SamplingParams& params, const double* uniforms, SampledToken* out);
  // Copies logits rows [0, count) to host memory (count × vocab floats).
  Status read_logits(float* host_out, int count);
  // Copies working rows [0, count) (the residual stream) to host memory (count × hidden floats).
  Status read_hidden(float* host_out, int count);

  // Convenience for prefill and plain decoding: n tokens through layers [0, layer_end) at the current length,
  // chunked by max_batch, then logits for the last `logit_rows` tokens (logit_rows ≤ max_logit_rows, and when
  // it is more than 1, n ≤ max_batch).
  Status forward(const int32_t* tokens, int n, int layer_end, int logit_rows);

  // Forgets every position ≥ length in every layer (a length update; nothing is copied); ends any speculation.
  void truncate(int length);

  // --- Self-speculative decoding (exit layer E, L layers) ---
  // A step starts with every layer holding n positions and the last emitted token x not yet evaluated.
  //   draft(x), draft(d1), …, draft(d_{r−1}): each runs one token through layers [0, E) at position n + i, keeps
  //     its layer-E hidden state (the residual stream before the final norm) in exit-cache row i, and proposes
  //     d_{i+1} from it through the final norm + LM head. Layers [0, E) then hold n + r positions, [E, L) hold n.
  //   verify(j) with j ∈ {r − 1, r} drafts (j = r − 1 drops the last proposal): when j = r, d_r first runs through
  //     [0, E). Layers [E, L) then run once over exit rows [0, j] at positions [n, n + j] — layers < E are never
  //     recomputed — and every layer holds n + j + 1. Row i yields the token after position n + i.
  //   truncate(n + accepted + 1) rolls back; the exit cache restarts.
  // Sizes the exit cache for up to num_speculations drafts per step: (num_speculations + 1, hidden) floats,
  // allocated once (it only grows).
  Status reserve_speculation(int num_speculations);
  // `token` is x for a step's first draft, else the previous proposal. params.temperature 0 = greedy.
  Status draft(int32_t token, int exit_layer, const SamplingParams& params, double uniform, DraftProposal* out);
  // A whole draft phase in one call: draft() from `token`, then from each kept proposal, until max_drafts proposals
  // are kept, a kept proposal is a stop token, or a proposal's confidence is below min_confidence (that one is not
  // kept, though its pass ran: verify(kept.size()) then drops it). `uniforms` (sampling only) has
  // max(1, max_drafts) entries, one per pass. `kept` receives the kept proposals in order.
  Status draft_run(int32_t token, int exit_layer, const SamplingParams& params, int max_drafts, float min_confidence,
                   const std::vector<int32_t>& stop_tokens, const double* uniforms, std::vector<DraftProposal>* kept);
  // Verifies the first `draft_count` proposals; `out` and `uniforms` (sampling only) have draft_count + 1 entries.
  Status verify(int draft_count, const SamplingParams& params, const double* uniforms, VerifyRow* out);
  // Rows in the exit cache (0 between steps).
  int exit_rows() const { return exit_rows_; }
  // Replaces the last draft pass's proposal with `token`: a caller that picks drafts itself from the draft logits
  // (read_logits after draft(), e.g. under repetition penalties) continues the step from its own pick. The next
  // draft() must then start from `token`, and verify() checks it.
  Status replace_proposal(int32_t token);

 private:
  Context(const Model& model) : model_(model), backend_(model.backend()) {}
  Status allocate(float** buffer, size_t count);
  Status check_step_lengths(const char* step, int layers_below_exit) const;
  bool same_sampling(const SamplingParams& params) const;
  // The steps of draft() and verify(), shared with BatchRunner (which runs the passes batched with other contexts).
  Status begin_draft_pass(int32_t token, int exit_layer, const SamplingParams& params, int* position);
  void keep_exit_row(const float* hidden_row);
  Status propose_draft(const float* logits_row, const SamplingParams& params, double uniform, DraftProposal* out);
  Status begin_verify(int draft_count, const SamplingParams& params, const double* uniforms, int* pending_position);
  Status start_verify_rows(int draft_count);
  Status pick_verified(const float* logits, int row_begin, int count, const SamplingParams& params,
                       const double* uniforms, VerifyRow* out);
  friend class BatchRunner;

  const Model& model_;
  Backend& backend_;
  int context_length_ = 0;
  int max_batch_ = 0;
  int max_logit_rows_ = 0;
  std::vector<int> layer_length_;   // (layers) positions cached per layer

  std::vector<float*> owned_;       // every buffer below, for freeing
  float* hidden_ = nullptr;         // (max_batch, dim) residual stream
  float* normed_ = nullptr;         // (max_batch, dim) rmsnorm output
  float* query_ = nullptr;          // (max_batch, q_dim)
  float* attention_out_ = nullptr;  // (max_batch, q_dim)
  float* projection_ = nullptr;     // (max_batch, dim) o_proj / down_proj output
  float* gate_ = nullptr;           // (max_batch, ffn)
  float* up_ = nullptr;             // (max_batch, ffn)
  float* logits_ = nullptr;         // (max_logit_rows, vocab)
  float* rope_cos_ = nullptr;       // (context_length, head_dim / 2)
  float* rope_sin_ = nullptr;       // (context_length, head_dim / 2)
  std::vector<float*> key_cache_;   // (layers) × (context_length, kv_dim)
  std::vector<float*> value_cache_; // (layers) × (context_length, kv_dim)

  // Self-speculative state (see draft/verify).
  float* exit_cache_ = nullptr;     // (exit_capacity, dim) layer-E hidden state of positions n, n + 1, …
  int exit_capacity_ = 0;
  int exit_rows_ = 0;
  int exit_layer_ = 0;
  int speculation_start_ = 0;       // n: the position of the step's first exit row
  bool speculation_sampled_ = false;
  SamplingParams speculation_params_;  // the step's sampling setting (every draft and the verify share it)
  std::vector<int32_t> draft_tokens_;                // (exit_rows) proposals d1, d2, …
  std::unique_ptr<SpeculativeSampler> speculative_sampler_;  // sampling only: draft rows' distributions
};

}  // namespace layerskip
