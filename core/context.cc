// The forward pass: one transformer layer reads top to bottom in run_layers().
#include "context.h"

#include <algorithm>

#include "layer_forward.h"
#include "rope_table.h"

namespace layerskip {

Status Context::create(const Model& model, const ContextOptions& options, std::unique_ptr<Context>* out) {
  const ModelConfig& c = model.config();
  std::unique_ptr<Context> context(new Context(model));
  int length = options.context_length > 0 ? options.context_length : std::min(c.max_position_embeddings, 4096);
  if (length > (1 << 24)) return Status::error("context length " + std::to_string(length) + " is absurd");
  if (options.max_batch < 1 || options.max_batch > 65536) return Status::error("max_batch must be in [1, 65536]");
  context->context_length_ = length;
  context->max_batch_ = std::min(options.max_batch, length);
  context->max_logit_rows_ = std::max(1, std::min(options.max_logit_rows, context->max_batch_));
  context->layer_length_.assign(c.num_layers, 0);

  size_t batch = size_t(context->max_batch_);
  LS_RETURN_IF_ERROR(context->allocate(&context->hidden_, batch * c.hidden_size));
  LS_RETURN_IF_ERROR(context->allocate(&context->normed_, batch * c.hidden_size));
  LS_RETURN_IF_ERROR(context->allocate(&context->query_, batch * c.q_dim()));
  LS_RETURN_IF_ERROR(context->allocate(&context->attention_out_, batch * c.q_dim()));
  LS_RETURN_IF_ERROR(context->allocate(&context->projection_, batch * c.hidden_size));
  LS_RETURN_IF_ERROR(context->allocate(&context->gate_, batch * c.intermediate_size));
  LS_RETURN_IF_ERROR(context->allocate(&context->up_, batch * c.intermediate_size));
  LS_RETURN_IF_ERROR(context->allocate(&context->logits_, size_t(context->max_logit_rows_) * c.vocab_size));

  std::vector<float> cos_table, sin_table;
  build_rope_tables(c, length, &cos_table, &sin_table);
  LS_RETURN_IF_ERROR(context->allocate(&context->rope_cos_, cos_table.size()));
  LS_RETURN_IF_ERROR(context->allocate(&context->rope_sin_, sin_table.size()));
  LS_RETURN_IF_ERROR(model.backend().copy_from_host(context->rope_cos_, cos_table.data(), cos_table.size()));
  LS_RETURN_IF_ERROR(model.backend().copy_from_host(context->rope_sin_, sin_table.data(), sin_table.size()));

  size_t cache_floats = size_t(length) * c.kv_dim();
  context->key_cache_.resize(c.num_layers);
  context->value_cache_.resize(c.num_layers);
  for (int l = 0; l < c.num_layers; l++) {
    LS_RETURN_IF_ERROR(context->allocate(&context->key_cache_[l], cache_floats));
    LS_RETURN_IF_ERROR(context->allocate(&context->value_cache_[l], cache_floats));
  }
  *out = std::move(context);
  return Status::ok();
}

Context::~Context() {
  for (float* buffer : owned_) backend_.free(buffer);
}

Status Context::allocate(float** buffer, size_t count) {
  Status status = backend_.alloc(count, buffer);
  if (!status.is_ok()) {
    return Status::error("cannot allocate the context's buffers (" + std::to_string(count * 4 >> 20) +
                         " MiB): " + status.message() + "; try a smaller context length");
  }
  owned_.push_back(*buffer);
  return Status::ok();
}

int Context::length() const {
  int length = context_length_;
  for (int layer_length : layer_length_) length = std::min(length, layer_length);
  return length;
}

Status Context::embed(const int32_t* tokens, int n) {
  const ModelConfig& c = model_.config();
  if (n < 1 || n > max_batch_) return Status::error("embed: token count " + std::to_string(n) + " outside [1, " + std::to_string(max_batch_) + "]");
  for (int i = 0; i < n; i++) {
    if (tokens[i] < 0 || tokens[i] >= c.vocab_size) {
      return Status::error("token id " + std::to_string(tokens[i]) + " is outside the vocabulary [0, " +
                           std::to_string(c.vocab_size) + ")");
    }
  }
  backend_.embed(hidden_, tokens, n, model_.weights().embed_tokens);
  return Status::ok();
}

Status Context::run_layers(int layer_begin, int layer_end, int n, int start_pos) {
  const ModelConfig& c = model_.config();
  if (layer_begin < 0 || layer_end > c.num_layers || layer_begin > layer_end) {
    return Status::error("layer range [" + std::to_string(layer_begin) + ", " + std::to_string(layer_end) +
                         ") is outside [0, " + std::to_string(c.num_layers) + "]");
  }
  if (n < 1 || n > max_batch_) return Status::error("run_layers: row count outside [1, max_batch]");
  if (start_pos < 0 || start_pos + n > context_length_) {
    return Status::error("context is full: " + std::to_string(start_pos + n) + " positions requested, context length is " +
                         std::to_string(context_length_));
  }
  for (int l = layer_begin; l < layer_end; l++) {
    if (layer_length_[l] != start_pos) {
      return Status::error("layer " + std::to_string(l) + " holds " + std::to_string(layer_length_[l]) +
                           " positions but new tokens start at position " + std::to_string(start_pos));
    }
  }
  // Each residual add is fused with the norm that reads its result; the last layer's add has none after it.
  const ModelWeights& weights = model_.weights();
  if (layer_begin == layer_end) return Status::ok();
  backend_.rmsnorm(normed_, hidden_, weights.layers[layer_begin].attn_norm, n, c.hidden_size, float(c.rms_norm_eps));
  ForwardBuffers buffers{hidden_, normed_, query_, attention_out_, projection_, gate_, up_, nullptr, nullptr};
  for (int l = layer_begin; l < layer_end; l++) {
    SequenceSpan span{0, n, start_pos, key_cache_[l], value_cache_[l], rope_cos_, rope_sin_};
    const float* next_norm = l + 1 < layer_end ? weights.layers[l + 1].attn_norm : nullptr;
    run_layer(backend_, c, weights.layers[l], next_norm, buffers, n, &span, 1);
    layer_length_[l] = start_pos + n;
  }
  return Status::ok();
}

Status Context::compute_logits(int row_begin, int count, bool draft) {
  const ModelConfig& c = model_.config();
  if (count < 1 || count > max_logit_rows_ || row_begin < 0 || row_begin + count > max_batch_) {
    return Status::error("compute_logits: rows [" + std::to_string(row_begin) + ", " +
                         std::to_string(row_begin + count) + ") exceed the logits buffer (" +
                         std::to_string(max_logit_rows_) + " rows)");
  }
  const float* rows = hidden_ + size_t(row_begin) * c.hidden_size;
  backend_.rmsnorm(normed_, rows, model_.weights().final_norm, count, c.hidden_size, float(c.rms_norm_eps));
  const Weight& head = draft ? model_.draft_head() : model_.weights().lm_head;
  backend_.matmul(logits_, normed_, head, count, c.vocab_size);
  return Status::ok();
}

Status Context::sample(int count, const SamplingParams& params, const double* uniforms, SampledToken* out) {
  if (count < 1 || count > max_logit_rows_) return Status::error("sample: row count outside the logits buffer");
  return backend_.sample(out, logits_, count, model_.config().vocab_size, params, uniforms);
}

Status Context::read_logits(float* host_out, int count) {
  if (count < 1 || count > max_logit_rows_) return Status::error("read_logits: row count outside the logits buffer");
  return backend_.copy_to_host(host_out, logits_, size_t(count) * model_.config().vocab_size);
}

Status Context::read_hidden(float* host_out, int count) {
  if (count < 1 || count > max_batch_) return Status::error("read_hidden: row count outside the working rows");
  return backend_.copy_to_host(host_out, hidden_, size_t(count) * model_.config().hidden_size);
}

Status Context::forward(const int32_t* tokens, int n, int layer_end, int logit_rows) {
  if (n < 1) return Status::error("forward: no tokens");
  if (logit_rows < 0 || logit_rows > max_logit_rows_ || logit_rows > n || (logit_rows > 1 && n > max_batch_)) {
    return Status::error("forward: cannot produce " + std::to_string(logit_rows) + " logit rows for " +
                         std::to_string(n) + " tokens");
  }
  int done = 0;
  int chunk = 0;
  while (done < n) {
    chunk = std::min(max_batch_, n - done);
    int start = layer_length_[0];
    LS_RETURN_IF_ERROR(embed(tokens + done, chunk));
    LS_RETURN_IF_ERROR(run_layers(0, layer_end, chunk, start));
    done += chunk;
  }
  if (logit_rows > 0) LS_RETURN_IF_ERROR(compute_logits(chunk - logit_rows, logit_rows));
  return Status::ok();
}

void Context::truncate(int length) {
  if (length < 0) length = 0;
  for (int& layer_length : layer_length_) layer_length = std::min(layer_length, length);
  exit_rows_ = 0;
  draft_tokens_.clear();
}

}  // namespace layerskip
