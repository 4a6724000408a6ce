// A batch-vs-single check shared by the CPU tests (batch_tests.cc) and the CUDA tests (cuda_model_tests.cc): five
// sequences — plain decoding, early-exit decoding, greedy and sampled self-speculation, one with E = L joining
// late — step together through a BatchRunner, and every pick, proposal and verdict must be bit-identical to the
// same calls on a Context of its own (on the same backend), and so must the logits rows a batched pick hands back
// (BatchItem::logits_out) be to the single context's read_logits.
#pragma once
#include <cstring>
#include <memory>
#include <vector>

#include "../batch.h"
#include "test_framework.h"

namespace layerskip::testing {

inline std::unique_ptr<Context> make_context(const Model& model) {
  std::unique_ptr<Context> context;
  ContextOptions options;
  options.context_length = 256;
  Status status = Context::create(model, options, &context);
  CHECK_MSG(status.is_ok(), status.message());
  return context;
}

inline bool same_float(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

// One sequence's decoding strategy and where it is; the batched and the single copy advance identically.
struct Plan {
  std::vector<int32_t> prompt;
  int layer_end = 0;         // forward depth (autoregressive), or 0 for self-speculative
  int exit_layer = 0;        // self-speculative draft depth
  int num_speculations = 0;
  SamplingParams params;
  int joins_at_tick = 0;
};

struct SequenceState {
  std::unique_ptr<Context> context;
  std::vector<int32_t> generated;
  std::vector<int32_t> drafts;
  int step_start = 0;         // self-speculative: the step's committed length
  double next_uniform = 0.1;  // a deterministic stream shared in spirit by both copies
};

// The item this sequence runs next; `storage` keeps the vectors it points into alive for the step.
struct Op {
  BatchItem item;
  std::vector<int32_t> tokens;
  std::vector<double> uniforms;
  SampledToken picked;
  DraftProposal proposal;
  std::vector<VerifyRow> verified;
  std::vector<float> logits;  // forward / verify: (rows, vocab) the pick was made from
};

inline double uniform_from(SequenceState& state) {
  state.next_uniform = state.next_uniform * 3.7 + 0.123;
  state.next_uniform -= int(state.next_uniform);
  return state.next_uniform;
}

inline void make_op(const Plan& plan, SequenceState& state, int num_layers, int vocab, Op* op) {
  op->item = BatchItem();
  op->item.context = state.context.get();
  op->item.params = plan.params;
  const bool sampled = plan.params.temperature > 0;
  if (state.generated.empty()) {
    op->tokens = plan.prompt;
    op->item.kind = BatchItem::Kind::kForward;
    op->item.layer_end = plan.layer_end > 0 ? plan.layer_end : num_layers;
  } else if (plan.layer_end > 0) {
    op->tokens = {state.generated.back()};
    op->item.kind = BatchItem::Kind::kForward;
    op->item.layer_end = plan.layer_end;
  } else if (int(state.drafts.size()) < plan.num_speculations) {
    op->item.kind = BatchItem::Kind::kDraft;
    op->item.token = state.drafts.empty() ? state.generated.back() : state.drafts.back();
    op->item.exit_layer = plan.exit_layer;
    op->item.proposal = &op->proposal;
    if (sampled) op->uniforms = {uniform_from(state)};
  } else {
    op->item.kind = BatchItem::Kind::kVerify;
    op->item.draft_count = int(state.drafts.size());
    op->verified.resize(state.drafts.size() + 1);
    op->item.verified = op->verified.data();
    if (sampled) {
      for (size_t i = 0; i <= state.drafts.size(); i++) op->uniforms.push_back(uniform_from(state));
    }
  }
  if (op->item.kind == BatchItem::Kind::kForward) {
    op->item.tokens = op->tokens.data();
    op->item.n = int(op->tokens.size());
    op->item.pick = true;
    op->item.picked = &op->picked;
    if (sampled) op->uniforms = {uniform_from(state)};
  }
  op->item.uniforms = op->uniforms.empty() ? nullptr : op->uniforms.data();
  if (op->item.kind != BatchItem::Kind::kDraft) {
    const int rows = op->item.kind == BatchItem::Kind::kVerify ? op->item.draft_count + 1 : 1;
    op->logits.assign(size_t(rows) * vocab, -1.0f);
    op->item.logits_out = op->logits.data();
  }
}

// The same op through the single-sequence API.
inline void run_single(Context& context, Op* op) {
  const BatchItem& item = op->item;
  switch (item.kind) {
    case BatchItem::Kind::kForward:
      CHECK(context.forward(item.tokens, item.n, item.layer_end, 1).is_ok());
      CHECK(context.sample(1, item.params, item.uniforms, &op->picked).is_ok());
      break;
    case BatchItem::Kind::kDraft:
      CHECK(context.draft(item.token, item.exit_layer, item.params, item.uniforms ? item.uniforms[0] : 0.0,
                          &op->proposal).is_ok());
      break;
    case BatchItem::Kind::kVerify:
      CHECK(context.verify(item.draft_count, item.params, item.uniforms, op->verified.data()).is_ok());
      break;
  }
  if (!op->logits.empty()) {
    const int vocab = context.model().config().vocab_size;
    CHECK(context.read_logits(op->logits.data(), int(op->logits.size() / size_t(vocab))).is_ok());
  }
}

// Advances a sequence from its op's result (greedy acceptance; sampled steps accept by the probability ratio).
inline void advance(const Plan& plan, SequenceState& state, const Op& op) {
  switch (op.item.kind) {
    case BatchItem::Kind::kForward:
      state.generated.push_back(op.picked.token);
      state.step_start = state.context->length();
      break;
    case BatchItem::Kind::kDraft:
      state.drafts.push_back(op.proposal.token);
      break;
    case BatchItem::Kind::kVerify: {
      size_t accepted = 0;
      while (accepted < state.drafts.size()) {
        const VerifyRow& row = op.verified[accepted];
        bool agrees = plan.params.temperature > 0 ? uniform_from(state) < row.verify_probability / row.draft_probability
                                                  : row.token == state.drafts[accepted];
        if (!agrees) break;
        accepted++;
      }
      for (size_t i = 0; i < accepted; i++) state.generated.push_back(state.drafts[i]);
      state.generated.push_back(op.verified[accepted].token);
      state.context->truncate(state.step_start + int(accepted) + 1);
      state.step_start = state.context->length();
      state.drafts.clear();
      break;
    }
  }
}

inline void check_same(const Op& batched, const Op& single, int sequence, int tick) {
  const char* what = "";
  bool same = true;
  switch (batched.item.kind) {
    case BatchItem::Kind::kForward:
      what = "forward";
      same = batched.picked.token == single.picked.token && same_float(batched.picked.probability, single.picked.probability);
      break;
    case BatchItem::Kind::kDraft:
      what = "draft";
      same = batched.proposal.token == single.proposal.token &&
             same_float(batched.proposal.probability, single.proposal.probability) &&
             same_float(batched.proposal.confidence, single.proposal.confidence);
      break;
    case BatchItem::Kind::kVerify:
      what = "verify";
      for (size_t i = 0; i < batched.verified.size(); i++) {
        same = same && batched.verified[i].token == single.verified[i].token &&
               same_float(batched.verified[i].verify_probability, single.verified[i].verify_probability) &&
               same_float(batched.verified[i].draft_probability, single.verified[i].draft_probability);
      }
      break;
  }
  CHECK_MSG(same, "sequence " << sequence << ", tick " << tick << ": batched " << what << " differs from single");
  CHECK_MSG(batched.logits.size() == single.logits.size() &&
                std::memcmp(batched.logits.data(), single.logits.data(), batched.logits.size() * sizeof(float)) == 0,
            "sequence " << sequence << ", tick " << tick << ": batched " << what << " logits differ from single");
}



inline void check_batch_equals_single(const Model& model_ref) {
  const Model* model = &model_ref;
  const int L = model->config().num_layers;
  const int vocab = model->config().vocab_size;
  SamplingParams sampled;
  sampled.temperature = 0.8f;
  sampled.top_p = 0.95f;
  std::vector<Plan> plans = {
      {{1, 17, 300, 42, 9, 511, 128}, L, 0, 0, SamplingParams{}, 0},          // plain decoding
      {{5, 6, 7}, 3, 0, 0, SamplingParams{}, 0},                              // early exit at layer 3
      {{2, 99, 4, 250, 33}, 0, 2, 3, SamplingParams{}, 0},                    // greedy self-speculative, E 2, k 3
      {{8, 400, 12, 13, 14, 15, 16, 200, 3}, 0, 4, 2, sampled, 0},            // sampled self-speculative, E 4, k 2
      {{77, 78}, 0, L, 1, SamplingParams{}, 5},                              // E = L (verify runs no layers), late
  };
  std::unique_ptr<BatchRunner> runner;
  Status status = BatchRunner::create(*model, 64, 32, &runner);
  CHECK_MSG(status.is_ok(), status.message());

  const size_t count = plans.size();
  std::vector<SequenceState> batched(count), single(count);
  for (size_t s = 0; s < count; s++) {
    batched[s].context = make_context(*model);
    single[s].context = make_context(*model);
    if (plans[s].num_speculations > 0) {
      CHECK(batched[s].context->reserve_speculation(plans[s].num_speculations).is_ok());
      CHECK(single[s].context->reserve_speculation(plans[s].num_speculations).is_ok());
    }
  }
  for (int tick = 0; tick < 40; tick++) {
    std::vector<Op> batched_ops(count), single_ops(count);
    std::vector<BatchItem> items;
    std::vector<size_t> members;
    for (size_t s = 0; s < count; s++) {
      if (tick < plans[s].joins_at_tick) continue;
      make_op(plans[s], batched[s], L, vocab, &batched_ops[s]);
      make_op(plans[s], single[s], L, vocab, &single_ops[s]);
      single_ops[s].item.context = single[s].context.get();
      items.push_back(batched_ops[s].item);
      members.push_back(s);
    }
    status = runner->run(items);
    CHECK_MSG(status.is_ok(), status.message());
    for (size_t s : members) {
      run_single(*single[s].context, &single_ops[s]);
      check_same(batched_ops[s], single_ops[s], int(s), tick);
      for (int l = 0; l < L; l++) CHECK(batched[s].context->layer_length(l) == single[s].context->layer_length(l));
      advance(plans[s], batched[s], batched_ops[s]);
      advance(plans[s], single[s], single_ops[s]);
    }
  }
  for (size_t s = 0; s < count; s++) {
    CHECK_MSG(batched[s].generated.size() > plans[s].prompt.size() / 100 + 5, "sequence " << s << " made no progress");
  }
}


}  // namespace layerskip::testing
