// BatchRunner against single-sequence Contexts on the CPU (the tiny-deep fixture; batch_check.h has the check),
// and misuse refused with a Status.
#include <cstring>
#include <memory>
#include <vector>

#include "../batch.h"
#include "batch_check.h"
#include "fixture_model.h"
#include "test_framework.h"

using namespace layerskip;

TEST(batch_steps_equal_single_sequence_calls) {
  std::unique_ptr<Model> model = testing::load_fixture_model("tiny-deep");
  if (!model) return;
  testing::check_batch_equals_single(*model);
}

TEST(batch_refuses_misuse) {
  std::unique_ptr<Model> model = testing::load_fixture_model("tiny-deep");
  if (!model) return;
  std::unique_ptr<BatchRunner> runner;
  CHECK(BatchRunner::create(*model, 8, 2, &runner).is_ok());
  std::unique_ptr<Context> context = testing::make_context(*model);
  std::vector<int32_t> tokens = {1, 2, 3};
  SampledToken picked;
  BatchItem item;
  item.context = context.get();
  item.tokens = tokens.data();
  item.n = 3;
  item.layer_end = model->config().num_layers;
  item.pick = true;
  item.picked = &picked;

  CHECK(!runner->run({item, item}).is_ok());  // one item per context
  std::vector<int32_t> many(9, 1);
  BatchItem too_many = item;
  too_many.tokens = many.data();
  too_many.n = 9;
  CHECK(!runner->run({too_many}).is_ok());  // more rows than the batch holds
  std::vector<int32_t> bad = {1, 100000, 3};
  BatchItem out_of_vocab = item;
  out_of_vocab.tokens = bad.data();
  CHECK(!runner->run({out_of_vocab}).is_ok());
  BatchItem draft;
  draft.kind = BatchItem::Kind::kDraft;
  draft.context = context.get();
  draft.token = 1;
  draft.exit_layer = 2;
  DraftProposal proposal;
  draft.proposal = &proposal;
  CHECK(!runner->run({draft}).is_ok());  // no reserve_speculation yet
  BatchItem sampled = item;
  sampled.params.temperature = 0.7f;
  CHECK(!runner->run({sampled}).is_ok());  // sampling without uniforms
  CHECK(runner->run({item}).is_ok());
  CHECK(context->length() == 3);
}
