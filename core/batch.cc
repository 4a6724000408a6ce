// One multi-sequence step: plan the items as row segments with a layer range each, run the layers with the active
// rows regrouped whenever a segment enters or leaves, then the final norm + heads over every wanted row at once,
// then each item's pick through its own Context.
#include "batch.h"

#include <algorithm>
#include <string>
#include <unordered_set>

#include "layer_forward.h"

namespace layerskip {

// Rows of one context that run layers [layer_begin, layer_end) at positions [start_pos, start_pos + n).
struct BatchRunner::Segment {
  int item = 0;
  Context* context = nullptr;
  int layer_begin = 0;
  int layer_end = 0;
  int start_pos = 0;
  int n = 0;
  // Input at layer_begin: these token ids embedded, or (verify) the context's exit rows [0, n).
  const int32_t* tokens = nullptr;
  int32_t token = -1;             // the one id of a draft or pending-verify pass (tokens then points here)
  bool from_exit_cache = false;
  int verify_drafts = 0;          // from_exit_cache: the verified item's draft_count
  // Output after layer_end − 1: the single row becomes the context's next exit row, and/or the last logit_count
  // rows go to logits rows [logit_row, logit_row + logit_count).
  bool keeps_exit_row = false;
  int logit_row = -1;
  int logit_count = 0;
  int row = 0;                    // offset in the working rows while active
};

Status BatchRunner::create(const Model& model, int max_rows, int max_logit_rows, std::unique_ptr<BatchRunner>* out) {
  if (max_rows < 1 || max_rows > 65536) return Status::error("batch max_rows must be in [1, 65536]");
  if (max_logit_rows < 1 || max_logit_rows > 4096) return Status::error("batch max_logit_rows must be in [1, 4096]");
  const ModelConfig& c = model.config();
  std::unique_ptr<BatchRunner> runner(new BatchRunner(model));
  runner->max_rows_ = max_rows;
  runner->max_logit_rows_ = max_logit_rows;
  const size_t rows = size_t(max_rows), logit_rows = size_t(max_logit_rows);
  ForwardBuffers& b = runner->buffers_;
  LS_RETURN_IF_ERROR(runner->allocate(&b.hidden, rows * c.hidden_size));
  LS_RETURN_IF_ERROR(runner->allocate(&runner->spare_hidden_, rows * c.hidden_size));
  LS_RETURN_IF_ERROR(runner->allocate(&b.normed, rows * c.hidden_size));
  LS_RETURN_IF_ERROR(runner->allocate(&b.query, rows * c.q_dim()));
  LS_RETURN_IF_ERROR(runner->allocate(&b.attention_out, rows * c.q_dim()));
  LS_RETURN_IF_ERROR(runner->allocate(&b.projection, rows * c.hidden_size));
  LS_RETURN_IF_ERROR(runner->allocate(&b.gate, rows * c.intermediate_size));
  LS_RETURN_IF_ERROR(runner->allocate(&b.up, rows * c.intermediate_size));
  LS_RETURN_IF_ERROR(runner->allocate(&b.keys, rows * c.kv_dim()));
  LS_RETURN_IF_ERROR(runner->allocate(&b.values, rows * c.kv_dim()));
  LS_RETURN_IF_ERROR(runner->allocate(&runner->exit_hidden_, logit_rows * c.hidden_size));
  LS_RETURN_IF_ERROR(runner->allocate(&runner->exit_normed_, logit_rows * c.hidden_size));
  LS_RETURN_IF_ERROR(runner->allocate(&runner->logits_, logit_rows * c.vocab_size));
  *out = std::move(runner);
  return Status::ok();
}

BatchRunner::~BatchRunner() {
  for (float* buffer : owned_) backend_.free(buffer);
}

Status BatchRunner::allocate(float** buffer, size_t count) {
  Status status = backend_.alloc(count, buffer);
  if (!status.is_ok()) {
    return Status::error("cannot allocate the batch buffers (" + std::to_string(count * 4 >> 20) + " MiB): " +
                         status.message() + "; try fewer parallel sequences");
  }
  owned_.push_back(*buffer);
  return Status::ok();
}

// Turns items into segments, validating each against its context. Logit rows: head rows first (forward picks and
// verify rows), then draft-head rows, so each head is one matmul.
Status BatchRunner::plan(const std::vector<BatchItem>& items, std::vector<Segment>* segments) {
  const ModelConfig& c = model_.config();
  const int L = c.num_layers;
  std::unordered_set<const Context*> seen;
  int head_rows = 0;
  for (size_t i = 0; i < items.size(); i++) {
    const BatchItem& item = items[i];
    const std::string name = "batch item " + std::to_string(i) + ": ";
    Context* context = item.context;
    if (context == nullptr || &context->model() != &model_) return Status::error(name + "not a context of this model");
    if (!seen.insert(context).second) return Status::error(name + "its context already has an item in this step");
    if (item.params.temperature > 0 && item.uniforms == nullptr) return Status::error(name + "sampling needs uniforms");
    Segment segment;
    segment.item = int(i);
    segment.context = context;
    switch (item.kind) {
      case BatchItem::Kind::kForward: {
        if (item.n < 1 || item.n > max_rows_ || item.tokens == nullptr) {
          return Status::error(name + "token count " + std::to_string(item.n) + " outside [1, " +
                               std::to_string(max_rows_) + "]");
        }
        if (item.layer_end < 1 || item.layer_end > L) return Status::error(name + "layer_end outside [1, L]");
        if (item.pick && item.picked == nullptr) return Status::error(name + "pick needs an output");
        segment.layer_end = item.layer_end;
        segment.start_pos = context->layer_length_[0];
        segment.n = item.n;
        segment.tokens = item.tokens;
        if (item.pick) {
          segment.logit_row = head_rows;
          segment.logit_count = 1;
          head_rows += 1;
        }
        for (int l = 0; l < item.layer_end; l++) {
          if (context->layer_length_[l] != segment.start_pos) {
            return Status::error(name + "layer " + std::to_string(l) + " holds " +
                                 std::to_string(context->layer_length_[l]) + " positions, layer 0 holds " +
                                 std::to_string(segment.start_pos));
          }
        }
        segments->push_back(segment);
        break;
      }
      case BatchItem::Kind::kDraft: {
        if (item.proposal == nullptr) return Status::error(name + "a draft needs an output");
        LS_RETURN_IF_ERROR(context->begin_draft_pass(item.token, item.exit_layer, item.params, &segment.start_pos));
        segment.layer_end = context->exit_layer_;
        segment.n = 1;
        segment.token = item.token;
        segment.keeps_exit_row = true;
        segment.logit_count = 1;
        segment.logit_row = -2;  // a draft-head row, numbered below
        segments->push_back(segment);
        break;
      }
      case BatchItem::Kind::kVerify: {
        if (item.verified == nullptr) return Status::error(name + "a verify needs an output");
        int pending = -1;
        LS_RETURN_IF_ERROR(context->begin_verify(item.draft_count, item.params, item.uniforms, &pending));
        if (pending >= 0) {  // the last proposal's pass through [0, E) first
          Segment last = segment;
          last.layer_end = context->exit_layer_;
          last.start_pos = pending;
          last.n = 1;
          last.token = context->draft_tokens_[item.draft_count - 1];
          last.keeps_exit_row = true;
          segments->push_back(last);
        }
        segment.layer_begin = context->exit_layer_;
        segment.layer_end = L;
        segment.start_pos = context->speculation_start_;
        segment.n = item.draft_count + 1;
        segment.from_exit_cache = true;
        segment.verify_drafts = item.draft_count;
        segment.logit_row = head_rows;
        segment.logit_count = segment.n;
        head_rows += segment.n;
        segments->push_back(segment);
        break;
      }
    }
  }
  for (Segment& segment : *segments) {
    if (segment.logit_row == -2) segment.logit_row = head_rows++;
    if (segment.start_pos + segment.n > segment.context->context_length_) {
      return Status::error("batch item " + std::to_string(segment.item) + ": context is full (" +
                           std::to_string(segment.start_pos + segment.n) + " positions requested, context length " +
                           std::to_string(segment.context->context_length_) + ")");
    }
  }
  if (head_rows > max_logit_rows_) {
    return Status::error("the step wants " + std::to_string(head_rows) + " logit rows; the batch holds " +
                         std::to_string(max_logit_rows_));
  }
  for (int l = 0; l <= L; l++) {
    int rows = 0;
    for (const Segment& s : *segments) {
      if ((s.layer_begin <= l && l < s.layer_end) || (s.layer_begin == l && s.layer_end == l)) rows += s.n;
    }
    if (rows > max_rows_) {
      return Status::error("the step runs " + std::to_string(rows) + " rows through layer " + std::to_string(l) +
                           "; the batch holds " + std::to_string(max_rows_));
    }
  }
  return Status::ok();
}

void BatchRunner::enter(Segment& segment, float* rows) {
  const ModelConfig& c = model_.config();
  if (segment.from_exit_cache) {
    backend_.copy(rows, segment.context->exit_cache_, size_t(segment.n) * c.hidden_size);
  } else {
    const int32_t* ids = segment.tokens != nullptr ? segment.tokens : &segment.token;
    backend_.embed(rows, ids, segment.n, model_.weights().embed_tokens);
  }
}

void BatchRunner::leave(const Segment& segment, const float* rows) {
  const int dim = model_.config().hidden_size;
  if (segment.keeps_exit_row) segment.context->keep_exit_row(rows);
  if (segment.logit_count > 0) {
    const float* wanted = rows + size_t(segment.n - segment.logit_count) * dim;
    backend_.copy(exit_hidden_ + size_t(segment.logit_row) * dim, wanted, size_t(segment.logit_count) * dim);
  }
}

Status BatchRunner::run(const std::vector<BatchItem>& items) {
  const ModelConfig& c = model_.config();
  const ModelWeights& weights = model_.weights();
  const int L = c.num_layers, dim = c.hidden_size;
  if (items.empty()) return Status::ok();
  for (const BatchItem& item : items) {
    if (item.kind == BatchItem::Kind::kForward && item.tokens != nullptr) {
      for (int i = 0; i < item.n; i++) {
        if (item.tokens[i] < 0 || item.tokens[i] >= c.vocab_size) {
          return Status::error("token id " + std::to_string(item.tokens[i]) + " is outside the vocabulary [0, " +
                               std::to_string(c.vocab_size) + ")");
        }
      }
    }
    if (item.kind == BatchItem::Kind::kDraft && (item.token < 0 || item.token >= c.vocab_size)) {
      return Status::error("draft token " + std::to_string(item.token) + " is outside the vocabulary");
    }
  }
  std::vector<Segment> segments;
  LS_RETURN_IF_ERROR(plan(items, &segments));

  std::vector<Segment*> active;  // in working-row order
  std::vector<SequenceSpan> spans;
  for (int l = 0; l <= L; l++) {
    // Rows whose last layer was l − 1 leave; rows whose first layer is l enter; the rest are regrouped in front.
    bool changed = false;
    for (auto it = active.begin(); it != active.end();) {
      if ((*it)->layer_end == l) {
        leave(**it, buffers_.hidden + size_t((*it)->row) * dim);
        it = active.erase(it);
        changed = true;
      } else {
        ++it;
      }
    }
    bool entering = false;
    for (const Segment& s : segments) entering |= s.layer_begin == l;
    if (changed || entering) {
      int offset = 0;
      for (Segment* s : active) {
        backend_.copy(spare_hidden_ + size_t(offset) * dim, buffers_.hidden + size_t(s->row) * dim, size_t(s->n) * dim);
        s->row = offset;
        offset += s->n;
      }
      for (Segment& s : segments) {
        if (s.layer_begin != l) continue;
        if (s.from_exit_cache) LS_RETURN_IF_ERROR(s.context->start_verify_rows(s.verify_drafts));
        float* rows = spare_hidden_ + size_t(offset) * dim;
        enter(s, rows);
        if (s.layer_end == l) {  // no layers to run (verify at E = L)
          leave(s, rows);
          continue;
        }
        s.row = offset;
        offset += s.n;
        active.push_back(&s);
      }
      std::swap(buffers_.hidden, spare_hidden_);
      if (l < L && offset > 0) {
        backend_.rmsnorm(buffers_.normed, buffers_.hidden, weights.layers[l].attn_norm, offset, dim,
                         float(c.rms_norm_eps));
      }
    }
    if (l == L || active.empty()) continue;

    spans.clear();
    int rows = 0;
    for (Segment* s : active) {
      Context* context = s->context;
      spans.push_back({s->row, s->n, s->start_pos, context->key_cache_[l], context->value_cache_[l],
                       context->rope_cos_, context->rope_sin_});
      rows += s->n;
    }
    const float* next_norm = l + 1 < L ? weights.layers[l + 1].attn_norm : nullptr;
    run_layer(backend_, c, weights.layers[l], next_norm, buffers_, rows, spans.data(), int(spans.size()));
    for (Segment* s : active) s->context->layer_length_[l] = s->start_pos + s->n;
  }
  return pick(items, segments);
}

// Final norm + heads over every wanted row, then each item's token(s).
Status BatchRunner::pick(const std::vector<BatchItem>& items, const std::vector<Segment>& segments) {
  const ModelConfig& c = model_.config();
  const int vocab = c.vocab_size;
  int head_rows = 0, total_rows = 0;
  for (const Segment& s : segments) {
    if (s.logit_count == 0) continue;
    total_rows = std::max(total_rows, s.logit_row + s.logit_count);
    if (!s.keeps_exit_row) head_rows = std::max(head_rows, s.logit_row + s.logit_count);
  }
  if (total_rows == 0) return Status::ok();
  backend_.rmsnorm(exit_normed_, exit_hidden_, model_.weights().final_norm, total_rows, c.hidden_size,
                   float(c.rms_norm_eps));
  const Weight& head = model_.weights().lm_head;
  const Weight& draft_head = model_.draft_head();
  if (draft_head.data == head.data) {
    backend_.matmul(logits_, exit_normed_, head, total_rows, vocab);
  } else {
    if (head_rows > 0) backend_.matmul(logits_, exit_normed_, head, head_rows, vocab);
    if (total_rows > head_rows) {
      backend_.matmul(logits_ + size_t(head_rows) * vocab, exit_normed_ + size_t(head_rows) * c.hidden_size,
                      draft_head, total_rows - head_rows, vocab);
    }
  }
  for (const Segment& s : segments) {
    if (s.logit_count == 0) continue;
    const BatchItem& item = items[s.item];
    const float* logits = logits_ + size_t(s.logit_row) * vocab;
    if (item.logits_out != nullptr && item.kind != BatchItem::Kind::kDraft) {
      LS_RETURN_IF_ERROR(backend_.copy_to_host(item.logits_out, logits, size_t(s.logit_count) * vocab));
    }
    switch (item.kind) {
      case BatchItem::Kind::kForward:
        LS_RETURN_IF_ERROR(backend_.sample(item.picked, logits, 1, vocab, item.params, item.uniforms));
        break;
      case BatchItem::Kind::kDraft:
        LS_RETURN_IF_ERROR(s.context->propose_draft(logits, item.params, item.uniforms ? item.uniforms[0] : 0.0,
                                                    item.proposal));
        break;
      case BatchItem::Kind::kVerify:
        LS_RETURN_IF_ERROR(
            s.context->pick_verified(logits, 0, s.logit_count, item.params, item.uniforms, item.verified));
        break;
    }
  }
  return Status::ok();
}

}  // namespace layerskip
