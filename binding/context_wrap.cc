#include "context_wrap.h"

#include <algorithm>
#include <functional>
#include <unistd.h>
#include <vector>

#include "../core/exit_evaluation.h"
#include "../core/limits.h"
#include "args.h"
#include "promise_worker.h"
#include "sampling_args.h"
#include "model_wrap.h"

namespace layerskip::binding {

Napi::FunctionReference ContextWrap::constructor;

namespace {

// The KV cache and RoPE tables (built on the host, then copied) of a context of `length` positions, in checked
// 64-bit arithmetic; refused before anything is allocated when they exceed this machine's memory (for a device
// with memory of its own, its free memory after the weights).
Status check_context_memory(const Model& model, int length) {
  const ModelConfig& c = model.config();
  uint64_t kv_bytes = 0, rope_bytes = 0, total = 0;
  const bool fits = checked_mul(uint64_t(length), uint64_t(c.kv_dim()) * 2 * sizeof(float), &kv_bytes) &&
                    checked_mul(kv_bytes, uint64_t(c.num_layers), &kv_bytes) &&
                    checked_mul(uint64_t(length), uint64_t(c.head_dim) * 2 * sizeof(float), &rope_bytes) &&
                    checked_add(kv_bytes, rope_bytes, &total);
  const BackendMemory& memory = model.memory_after_load();
  const uint64_t available = memory.has_device_memory
                                 ? uint64_t(memory.device_free_bytes)
                                 : uint64_t(sysconf(_SC_PHYS_PAGES)) * uint64_t(sysconf(_SC_PAGE_SIZE));
  if (fits && total <= available) return Status::ok();
  return Status::error("contextLength " + std::to_string(length) + " needs " +
                       (fits ? std::to_string(total >> 20) + " MiB" : std::string("more than 2^64 bytes")) +
                       " for its KV cache and RoPE tables, more than the " + std::to_string(available >> 20) +
                       " MiB of " + (memory.has_device_memory ? "free device" : "host") +
                       " memory; use a smaller contextLength");
}

}  // namespace


void ContextWrap::Register(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = DefineClass(env, "NativeContext",
                                   {InstanceMethod<&ContextWrap::Evaluate>("evaluate"),
                                    InstanceMethod<&ContextWrap::EvaluateExitLayers>("evaluateExitLayers"),
                                    InstanceMethod<&ContextWrap::ReadLogits>("readLogits"),
                                    InstanceMethod<&ContextWrap::ReadHidden>("readHidden"),
                                    InstanceMethod<&ContextWrap::ReserveSpeculation>("reserveSpeculation"),
                                    InstanceMethod<&ContextWrap::Draft>("draft"),
                                    InstanceMethod<&ContextWrap::DraftRun>("draftRun"),
                                    InstanceMethod<&ContextWrap::Verify>("verify"),
                                    InstanceMethod<&ContextWrap::ExitRows>("exitRows"),
                                    InstanceMethod<&ContextWrap::ReplaceProposal>("replaceProposal"),
                                    InstanceMethod<&ContextWrap::Truncate>("truncate"),
                                    InstanceMethod<&ContextWrap::Length>("length"),
                                    InstanceMethod<&ContextWrap::ContextLength>("contextLength"),
                                    InstanceMethod<&ContextWrap::LayerLength>("layerLength"),
                                    InstanceMethod<&ContextWrap::Dispose>("dispose")});
  constructor = Napi::Persistent(cls);
  constructor.SuppressDestruct();
}

// Constructed only by NativeModel.createContext(options) as new NativeContext(model, options).
ContextWrap::ContextWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ContextWrap>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsObject() || !info[0].As<Napi::Object>().InstanceOf(ModelWrap::constructor.Value())) {
    throw Napi::TypeError::New(env, "NativeContext is created by NativeModel.createContext()");
  }
  Napi::Object model_object = info[0].As<Napi::Object>();
  model_wrap_ = ModelWrap::Unwrap(model_object);
  if (model_wrap_->model() == nullptr) throw Napi::Error::New(env, "model has been disposed");
  Napi::Object options = info[1].As<Napi::Object>();
  ContextOptions context_options;
  context_options.context_length = integer_field(options, "contextLength", 0, 0, kMaxContextLength);
  context_options.max_batch = integer_field(options, "maxBatch", 512, 1, 65536);
  context_options.max_logit_rows = integer_field(options, "maxLogitRows", 64, 1, 4096);
  const ModelConfig& config = model_wrap_->model()->config();
  const int length = context_options.context_length > 0 ? context_options.context_length
                                                        : std::min(config.max_position_embeddings, 4096);
  Status status = check_context_memory(*model_wrap_->model(), length);
  if (status.is_ok()) status = Context::create(*model_wrap_->model(), context_options, &context_);
  if (!status.is_ok()) throw Napi::Error::New(env, status.message());
  model_ref_ = Napi::Persistent(model_object);
  model_wrap_->RetainContext();
}

ContextWrap::~ContextWrap() { ReleaseResources(); }

void ContextWrap::ReleaseResources() {
  if (context_) {
    context_.reset();
    model_wrap_->ReleaseContext();
    if (!model_ref_.IsEmpty()) model_ref_.Reset();
  }
}

Context* ContextWrap::live_context(const Napi::Env& env, const char* method) const {
  if (!context_ || dispose_requested_) throw Napi::Error::New(env, std::string(method) + ": context has been disposed");
  if (busy_) throw Napi::Error::New(env, std::string(method) + ": another evaluate() is still running on this context");
  return context_.get();
}

// evaluate(tokens: Int32Array, { layerEnd, logitRows, temperature, topK, topP, uniforms: Float64Array })
//   → Promise<{ tokens: Int32Array, probabilities: Float32Array }>
Napi::Value ContextWrap::Evaluate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Context* context = live_context(env, "evaluate");
  std::vector<int32_t> token_copy = int32_array_arg(info, 0, "tokens");
  if (token_copy.empty()) throw Napi::RangeError::New(env, "tokens must not be empty");
  Napi::Object options = object_arg(info, 1, "options");
  const ModelConfig& config = model_wrap_->model()->config();
  int layer_end = integer_field(options, "layerEnd", config.num_layers, 1, config.num_layers);
  int logit_rows = integer_field(options, "logitRows", 1, 0, context->max_logit_rows());
  SamplingParams params = sampling_params(options);
  std::vector<double> uniforms = uniforms_field(options, params, logit_rows, "one value per logit row");
  auto sampled = std::make_shared<std::vector<SampledToken>>(logit_rows);
  auto* worker = new PromiseWorker<ContextWrap>(
      env, Value(), this,
      // Feeds the tokens through layers [0, layer_end), then computes and samples `logit_rows` rows.
      [=, tokens = std::move(token_copy), uniforms = std::move(uniforms)] {
        Status status = context->forward(tokens.data(), int(tokens.size()), layer_end, logit_rows);
        if (status.is_ok() && logit_rows > 0) {
          status = context->sample(logit_rows, params, uniforms.empty() ? nullptr : uniforms.data(), sampled->data());
        }
        return status;
      },
      [sampled](Napi::Env env) -> Napi::Value {
        Napi::Int32Array ids = Napi::Int32Array::New(env, sampled->size());
        Napi::Float32Array probabilities = Napi::Float32Array::New(env, sampled->size());
        for (size_t i = 0; i < sampled->size(); i++) {
          ids[i] = (*sampled)[i].token;
          probabilities[i] = (*sampled)[i].probability;
        }
        Napi::Object result = Napi::Object::New(env);
        result.Set("tokens", ids);
        result.Set("probabilities", probabilities);
        return result;
      });
  return worker->start();
}

// evaluateExitLayers(tokens: Int32Array) → Promise<{ nll: Float64Array, correct: Float64Array, agree: Float64Array,
//   count }>: per-exit-layer sums over the window's count = tokens.length − 1 predictions (core/exit_evaluation.h).
//   Leaves the cache holding tokens[0, count).
Napi::Value ContextWrap::EvaluateExitLayers(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Context* context = live_context(env, "evaluateExitLayers");
  std::vector<int32_t> token_copy = int32_array_arg(info, 0, "tokens");
  const size_t most = size_t(context->context_length()) + 1;
  if (token_copy.size() < 2 || token_copy.size() > most) {
    throw Napi::RangeError::New(env, "tokens must hold between 2 and context length + 1 (" + std::to_string(most) +
                                         ") ids, got " + std::to_string(token_copy.size()));
  }
  auto sums = std::make_shared<ExitLayerSums>();
  auto* worker = new PromiseWorker<ContextWrap>(
      env, Value(), this,
      [=, tokens = std::move(token_copy)] {
        return evaluate_exit_layers(*context, tokens.data(), int(tokens.size()), sums.get());
      },
      [sums](Napi::Env env) -> Napi::Value {
        auto to_array = [&](const std::vector<double>& values) {
          Napi::Float64Array array = Napi::Float64Array::New(env, values.size());
          std::copy(values.begin(), values.end(), array.Data());
          return array;
        };
        Napi::Object result = Napi::Object::New(env);
        result.Set("nll", to_array(sums->nll));
        result.Set("correct", to_array(sums->correct));
        result.Set("agree", to_array(sums->agree));
        result.Set("count", sums->count);
        return result;
      });
  return worker->start();
}

SamplingParams ContextWrap::sampling_params(const Napi::Object& options) const {
  return sampling_params_field(options, model_wrap_->model()->config().vocab_size);
}

// reserveSpeculation(numSpeculations): sizes the exit cache for up to numSpeculations drafts per step.
Napi::Value ContextWrap::ReserveSpeculation(const Napi::CallbackInfo& info) {
  Context* context = live_context(info.Env(), "reserveSpeculation");
  int num_speculations = int(integer_arg(info, 0, "numSpeculations", 1, context->max_batch() - 1));
  Status status = context->reserve_speculation(num_speculations);
  if (!status.is_ok()) throw Napi::Error::New(info.Env(), status.message());
  return info.Env().Undefined();
}

// draft(token, { exitLayer, temperature, topK, topP, uniform }) → Promise<{ token, probability, confidence }>
Napi::Value ContextWrap::Draft(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Context* context = live_context(env, "draft");
  const ModelConfig& config = model_wrap_->model()->config();
  int32_t token = int32_t(integer_arg(info, 0, "token", 0, config.vocab_size - 1));
  Napi::Object options = object_arg(info, 1, "options");
  int exit_layer = integer_field(options, "exitLayer", config.num_layers, 1, config.num_layers);
  SamplingParams params = sampling_params(options);
  double uniform = number_field(options, "uniform", -1.0, 0.0, 1.0);
  if (params.temperature > 0 && uniform < 0) throw Napi::TypeError::New(env, "sampling (temperature > 0) needs uniform");
  auto proposal = std::make_shared<DraftProposal>();
  auto* worker = new PromiseWorker<ContextWrap>(
      env, Value(), this,
      [=] { return context->draft(token, exit_layer, params, uniform, proposal.get()); },
      [proposal](Napi::Env env) -> Napi::Value {
        Napi::Object result = Napi::Object::New(env);
        result.Set("token", proposal->token);
        result.Set("probability", proposal->probability);
        result.Set("confidence", proposal->confidence);
        return result;
      });
  return worker->start();
}

// draftRun(token, { exitLayer, temperature, topK, topP, maxDrafts, draftConfidence, stopTokenIds: Int32Array,
//                    uniforms: Float64Array(max(1, maxDrafts)) })
//   → Promise<{ tokens: Int32Array, probabilities: Float32Array, confidences: Float32Array }>: the kept proposals
//   of a whole draft phase (Context::draft_run), one native call instead of one per draft.
Napi::Value ContextWrap::DraftRun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Context* context = live_context(env, "draftRun");
  const ModelConfig& config = model_wrap_->model()->config();
  int32_t token = int32_t(integer_arg(info, 0, "token", 0, config.vocab_size - 1));
  Napi::Object options = object_arg(info, 1, "options");
  int exit_layer = integer_field(options, "exitLayer", config.num_layers, 1, config.num_layers);
  int max_drafts = integer_field(options, "maxDrafts", 1, 0, context->max_batch() - 1);
  float min_confidence = float(number_field(options, "draftConfidence", 0.0, 0.0, 1.0));
  std::vector<int32_t> stop_tokens = int32_array_field(options, "stopTokenIds");
  SamplingParams params = sampling_params(options);
  std::vector<double> uniforms = uniforms_field(options, params, std::max(1, max_drafts), "max(1, maxDrafts) values");
  auto kept = std::make_shared<std::vector<DraftProposal>>();
  auto* worker = new PromiseWorker<ContextWrap>(
      env, Value(), this,
      [=, uniforms = std::move(uniforms), stop_tokens = std::move(stop_tokens)] {
        return context->draft_run(token, exit_layer, params, max_drafts, min_confidence, stop_tokens,
                                  uniforms.empty() ? nullptr : uniforms.data(), kept.get());
      },
      [kept](Napi::Env env) -> Napi::Value {
        size_t count = kept->size();
        Napi::Int32Array tokens = Napi::Int32Array::New(env, count);
        Napi::Float32Array probabilities = Napi::Float32Array::New(env, count);
        Napi::Float32Array confidences = Napi::Float32Array::New(env, count);
        for (size_t i = 0; i < count; i++) {
          tokens[i] = (*kept)[i].token;
          probabilities[i] = (*kept)[i].probability;
          confidences[i] = (*kept)[i].confidence;
        }
        Napi::Object result = Napi::Object::New(env);
        result.Set("tokens", tokens);
        result.Set("probabilities", probabilities);
        result.Set("confidences", confidences);
        return result;
      });
  return worker->start();
}

// verify(draftCount, { temperature, topK, topP, uniforms: Float64Array(draftCount + 1) })
//   → Promise<{ tokens: Int32Array, verifyProbabilities: Float32Array, draftProbabilities: Float32Array }>,
//   each draftCount + 1 long (see VerifyRow in core/context.h).
Napi::Value ContextWrap::Verify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Context* context = live_context(env, "verify");
  int draft_count = int(integer_arg(info, 0, "draftCount", 0, context->max_batch() - 1));
  Napi::Object options = object_arg(info, 1, "options");
  SamplingParams params = sampling_params(options);
  std::vector<double> uniforms = uniforms_field(options, params, draft_count + 1, "draftCount + 1 values");
  auto rows = std::make_shared<std::vector<VerifyRow>>(draft_count + 1);
  auto* worker = new PromiseWorker<ContextWrap>(
      env, Value(), this,
      [=, uniforms = std::move(uniforms)] {
        return context->verify(draft_count, params, uniforms.empty() ? nullptr : uniforms.data(), rows->data());
      },
      [rows](Napi::Env env) -> Napi::Value {
        size_t count = rows->size();
        Napi::Int32Array tokens = Napi::Int32Array::New(env, count);
        Napi::Float32Array verify_probabilities = Napi::Float32Array::New(env, count);
        Napi::Float32Array draft_probabilities = Napi::Float32Array::New(env, count);
        for (size_t i = 0; i < count; i++) {
          tokens[i] = (*rows)[i].token;
          verify_probabilities[i] = (*rows)[i].verify_probability;
          draft_probabilities[i] = (*rows)[i].draft_probability;
        }
        Napi::Object result = Napi::Object::New(env);
        result.Set("tokens", tokens);
        result.Set("verifyProbabilities", verify_probabilities);
        result.Set("draftProbabilities", draft_probabilities);
        return result;
      });
  return worker->start();
}

Napi::Value ContextWrap::ExitRows(const Napi::CallbackInfo& info) {
  if (!context_) throw Napi::Error::New(info.Env(), "exitRows: context has been disposed");
  return Napi::Number::New(info.Env(), context_->exit_rows());
}

// replaceProposal(token): the last draft pass's proposal becomes `token` (Context::replace_proposal).
Napi::Value ContextWrap::ReplaceProposal(const Napi::CallbackInfo& info) {
  Context* context = live_context(info.Env(), "replaceProposal");
  Status status = context->replace_proposal(int32_t(integer_arg(info, 0, "token", 0, model_wrap_->model()->config().vocab_size - 1)));
  if (!status.is_ok()) throw Napi::Error::New(info.Env(), status.message());
  return info.Env().Undefined();
}

// readLogits(rows) → Float32Array (rows × vocab) of the last evaluate()'s logits.
Napi::Value ContextWrap::ReadLogits(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Context* context = live_context(env, "readLogits");
  int rows = int(integer_arg(info, 0, "rows", 1, context->max_logit_rows()));
  int vocab = model_wrap_->model()->config().vocab_size;
  Napi::Float32Array out = Napi::Float32Array::New(env, size_t(rows) * vocab);
  Status status = context->read_logits(out.Data(), rows);
  if (!status.is_ok()) throw Napi::Error::New(env, status.message());
  return out;
}

// readHidden(rows) → Float32Array (rows × hidden) of the working residual stream.
Napi::Value ContextWrap::ReadHidden(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Context* context = live_context(env, "readHidden");
  int rows = int(integer_arg(info, 0, "rows", 1, context->max_batch()));
  int hidden = model_wrap_->model()->config().hidden_size;
  Napi::Float32Array out = Napi::Float32Array::New(env, size_t(rows) * hidden);
  Status status = context->read_hidden(out.Data(), rows);
  if (!status.is_ok()) throw Napi::Error::New(env, status.message());
  return out;
}

Napi::Value ContextWrap::Truncate(const Napi::CallbackInfo& info) {
  Context* context = live_context(info.Env(), "truncate");
  context->truncate(int(integer_arg(info, 0, "length", 0, context->context_length())));
  return info.Env().Undefined();
}

Napi::Value ContextWrap::Length(const Napi::CallbackInfo& info) {
  if (!context_) throw Napi::Error::New(info.Env(), "length: context has been disposed");
  return Napi::Number::New(info.Env(), context_->length());
}

// contextLength() → positions the KV cache holds (the resolved default when none was asked for).
Napi::Value ContextWrap::ContextLength(const Napi::CallbackInfo& info) {
  if (!context_) throw Napi::Error::New(info.Env(), "contextLength: context has been disposed");
  return Napi::Number::New(info.Env(), context_->context_length());
}

Napi::Value ContextWrap::LayerLength(const Napi::CallbackInfo& info) {
  if (!context_) throw Napi::Error::New(info.Env(), "layerLength: context has been disposed");
  int layer = int(integer_arg(info, 0, "layer", 0, model_wrap_->model()->config().num_layers - 1));
  return Napi::Number::New(info.Env(), context_->layer_length(layer));
}

Napi::Value ContextWrap::Dispose(const Napi::CallbackInfo& info) {
  if (busy_) throw Napi::Error::New(info.Env(), "dispose: wait for the running evaluate() to settle first");
  ReleaseResources();
  return info.Env().Undefined();
}

}  // namespace layerskip::binding
