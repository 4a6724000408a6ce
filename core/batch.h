// BatchRunner: one forward pass over the rows of several sequences (Contexts of one model) at different positions —
// what a server's continuous batching needs. Each layer's weights are read once for every row in the step, while
// RoPE and attention run per sequence against its own KV cache (core/layer_forward.h). An item is one sequence's
// work for the step:
//   forward  n tokens through layers [0, layer_end) at the sequence's length (a prefill chunk, or one decode token),
//            optionally picking the token after the last one;
//   draft    one self-speculative draft pass (Context::draft);
//   verify   a self-speculative verification (Context::verify).
// Rows enter the batch at their first layer (layer 0, or E for drafts being verified) and leave after their last;
// the active rows are kept contiguous, so every matmul covers all of them. Every row's arithmetic is the one it has
// when its Context runs it alone (batch invariance), so results are bit-identical to the single-sequence calls.
#pragma once
#include <memory>
#include <vector>

#include "context.h"
#include "layer_forward.h"

namespace layerskip {

struct BatchItem {
  enum class Kind { kForward, kDraft, kVerify };
  Kind kind = Kind::kForward;
  Context* context = nullptr;
  SamplingParams params;
  // forward: `tokens` (host, n ids) through [0, layer_end); `pick` samples the token after the last one with
  //   uniforms[0] (sampling only) into *picked.
  const int32_t* tokens = nullptr;
  int n = 0;
  int layer_end = 0;
  bool pick = false;
  SampledToken* picked = nullptr;
  // draft: `token` (x, or the previous proposal) through [0, exit_layer); uniforms[0] → *proposal.
  int32_t token = -1;
  int exit_layer = 0;
  DraftProposal* proposal = nullptr;
  // verify: the first draft_count proposals; uniforms has draft_count + 1 entries; verified[draft_count + 1].
  int draft_count = 0;
  VerifyRow* verified = nullptr;
  const double* uniforms = nullptr;  // sampling only
  // forward with pick (1 row) or verify (draft_count + 1 rows): when set, the head's logits rows the pick is made
  // from are copied here (host memory, rows × vocab), e.g. for per-token log-probabilities.
  float* logits_out = nullptr;
};

class BatchRunner {
 public:
  // max_rows: rows one layer may hold at once (all items' rows active together); max_logit_rows: rows of logits
  // a step may produce (forward picks + drafts + verify rows).
  static Status create(const Model& model, int max_rows, int max_logit_rows, std::unique_ptr<BatchRunner>* out);
  ~BatchRunner();

  int max_rows() const { return max_rows_; }
  int max_logit_rows() const { return max_logit_rows_; }
  // Runs one step. Items must name distinct contexts of this runner's model. On an error nothing is picked and a
  // context may hold part of its item's positions (the caller truncates it).
  Status run(const std::vector<BatchItem>& items);

 private:
  struct Segment;
  explicit BatchRunner(const Model& model) : model_(model), backend_(model.backend()) {}
  Status allocate(float** buffer, size_t count);
  Status plan(const std::vector<BatchItem>& items, std::vector<Segment>* segments);
  void enter(Segment& segment, float* rows);
  void leave(const Segment& segment, const float* rows);
  Status pick(const std::vector<BatchItem>& items, const std::vector<Segment>& segments);

  const Model& model_;
  Backend& backend_;
  int max_rows_ = 0;
  int max_logit_rows_ = 0;
  std::vector<float*> owned_;
  ForwardBuffers buffers_;            // (max_rows, ·) working rows; buffers_.hidden swaps with spare_hidden_
  float* spare_hidden_ = nullptr;     // (max_rows, dim) where rows are regrouped when the active set changes
  float* exit_hidden_ = nullptr;      // (max_logit_rows, dim) rows that want logits, as they leave
  float* exit_normed_ = nullptr;      // (max_logit_rows, dim)
  float* logits_ = nullptr;           // (max_logit_rows, vocab)
};

}  // namespace layerskip
