#include "batch_wrap.h"

#include <algorithm>
#include <string>
#include <vector>

#include "args.h"
#include "guard.h"
#include "context_wrap.h"
#include "model_wrap.h"
#include "sampling_args.h"

namespace layerskip::binding {

Napi::FunctionReference BatchWrap::constructor;

void BatchWrap::Register(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = DefineClass(env, "NativeBatch",
                                   {InstanceMethod<&BatchWrap::Step>("step"),
                                    InstanceMethod<&BatchWrap::MaxRows>("maxRows"),
                                    InstanceMethod<&BatchWrap::MaxLogitRows>("maxLogitRows"),
                                    InstanceMethod<&BatchWrap::Dispose>("dispose")});
  constructor = Napi::Persistent(cls);
  constructor.SuppressDestruct();
}

// Constructed only by NativeModel.createBatch({ maxRows, maxLogitRows }) as new NativeBatch(model, options).
BatchWrap::BatchWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<BatchWrap>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsObject() || !info[0].As<Napi::Object>().InstanceOf(ModelWrap::constructor.Value())) {
    throw Napi::TypeError::New(env, "NativeBatch is created by NativeModel.createBatch()");
  }
  Napi::Object model_object = info[0].As<Napi::Object>();
  model_wrap_ = ModelWrap::Unwrap(model_object);
  if (model_wrap_->model() == nullptr) throw Napi::Error::New(env, "model has been disposed");
  Napi::Object options = info[1].As<Napi::Object>();
  int max_rows = integer_field(options, "maxRows", 64, 1, 65536);
  int max_logit_rows = integer_field(options, "maxLogitRows", 64, 1, 4096);
  Status status = BatchRunner::create(*model_wrap_->model(), max_rows, max_logit_rows, &runner_);
  if (!status.is_ok()) throw Napi::Error::New(env, status.message());
  model_ref_ = Napi::Persistent(model_object);
  model_wrap_->RetainContext();
}

BatchWrap::~BatchWrap() { ReleaseResources(); }

void BatchWrap::ReleaseResources() {
  if (runner_) {
    runner_.reset();
    model_wrap_->ReleaseContext();
    if (!model_ref_.IsEmpty()) model_ref_.Reset();
  }
}

namespace {

// One item's arguments copied off the JS heap, and its outputs.
struct ItemData {
  BatchItem item;
  std::vector<int32_t> tokens;
  std::vector<double> uniforms;
  SampledToken picked;
  DraftProposal proposal;
  std::vector<VerifyRow> verified;
  std::vector<float> logits;  // with `logits: true`: (rows, vocab) the pick was made from
};

class StepWorker : public Napi::AsyncWorker {
 public:
  StepWorker(Napi::Env env, BatchWrap* batch, Napi::Object batch_object, BatchRunner* runner,
             std::vector<ItemData> items, std::vector<ContextWrap*> contexts, const std::vector<Napi::Object>& owners)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), batch_(batch), runner_(runner),
        items_(std::move(items)), contexts_(std::move(contexts)) {
    batch_ref_ = Napi::Persistent(batch_object);
    for (const Napi::Object& owner : owners) owner_refs_.push_back(Napi::Persistent(owner));
  }

  Napi::Promise start() {
    set_busy(true);
    Queue();
    return deferred_.Promise();
  }

  void Execute() override {
    std::vector<BatchItem> items;
    for (ItemData& data : items_) {
      BatchItem item = data.item;
      item.tokens = data.tokens.empty() ? nullptr : data.tokens.data();
      item.uniforms = data.uniforms.empty() ? nullptr : data.uniforms.data();
      item.picked = &data.picked;
      item.proposal = &data.proposal;
      item.verified = data.verified.empty() ? nullptr : data.verified.data();
      item.logits_out = data.logits.empty() ? nullptr : data.logits.data();
      items.push_back(item);
    }
    Status status = guarded("batch step", [&] { return runner_->run(items); });
    if (!status.is_ok()) SetError(status.message());
  }

  void OnOK() override {
    set_busy(false);
    Napi::Env env = Env();
    Napi::Array results = Napi::Array::New(env, items_.size());
    for (size_t i = 0; i < items_.size(); i++) {
      const ItemData& data = items_[i];
      Napi::Object result = Napi::Object::New(env);
      switch (data.item.kind) {
        case BatchItem::Kind::kForward:
          if (data.item.pick) {
            result.Set("token", data.picked.token);
            result.Set("probability", data.picked.probability);
          }
          break;
        case BatchItem::Kind::kDraft:
          result.Set("token", data.proposal.token);
          result.Set("probability", data.proposal.probability);
          result.Set("confidence", data.proposal.confidence);
          break;
        case BatchItem::Kind::kVerify: {
          size_t count = data.verified.size();
          Napi::Int32Array tokens = Napi::Int32Array::New(env, count);
          Napi::Float32Array verify_probabilities = Napi::Float32Array::New(env, count);
          Napi::Float32Array draft_probabilities = Napi::Float32Array::New(env, count);
          for (size_t r = 0; r < count; r++) {
            tokens[r] = data.verified[r].token;
            verify_probabilities[r] = data.verified[r].verify_probability;
            draft_probabilities[r] = data.verified[r].draft_probability;
          }
          result.Set("tokens", tokens);
          result.Set("verifyProbabilities", verify_probabilities);
          result.Set("draftProbabilities", draft_probabilities);
          break;
        }
      }
      if (!data.logits.empty()) {
        Napi::Float32Array logits = Napi::Float32Array::New(env, data.logits.size());
        std::copy(data.logits.begin(), data.logits.end(), logits.Data());
        result.Set("logits", logits);
      }
      results[i] = result;
    }
    deferred_.Resolve(results);
  }

  void OnError(const Napi::Error& error) override {
    set_busy(false);
    deferred_.Reject(error.Value());
  }

 private:
  void set_busy(bool busy) {
    batch_->set_busy(busy);
    for (ContextWrap* context : contexts_) context->set_busy(busy);
  }

  Napi::Promise::Deferred deferred_;
  BatchWrap* batch_;
  BatchRunner* runner_;
  std::vector<ItemData> items_;
  std::vector<ContextWrap*> contexts_;
  Napi::ObjectReference batch_ref_;                // keep the batch, its model and every context alive
  std::vector<Napi::ObjectReference> owner_refs_;
};

BatchItem::Kind kind_field(const Napi::Object& options) {
  std::string kind = string_field(options, "kind", "");
  if (kind == "forward") return BatchItem::Kind::kForward;
  if (kind == "draft") return BatchItem::Kind::kDraft;
  if (kind == "verify") return BatchItem::Kind::kVerify;
  throw Napi::TypeError::New(options.Env(), "kind must be \"forward\", \"draft\" or \"verify\", got \"" + kind + "\"");
}

}  // namespace

// step(items: Array<{ context: NativeContext, kind: 'forward' | 'draft' | 'verify', temperature, topK, topP,
//   uniforms?: Float64Array, logits?: boolean,
//   forward: tokens: Int32Array, layerEnd, pick: boolean;  draft: token, exitLayer;  verify: draftCount }>)
//   → Promise<Array<forward: { token?, probability? } | draft: { token, probability, confidence }
//                   | verify: { tokens: Int32Array, verifyProbabilities, draftProbabilities: Float32Array }>>
//   With logits: true, a picking forward or a verify also returns logits: Float32Array (rows × vocab).
Napi::Value BatchWrap::Step(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!runner_) throw Napi::Error::New(env, "step: batch has been disposed");
  if (busy_) throw Napi::Error::New(env, "step: the previous step is still running");
  if (info.Length() < 1 || !info[0].IsArray()) throw Napi::TypeError::New(env, "items must be an array");
  const ModelConfig& config = model_wrap_->model()->config();
  Napi::Array array = info[0].As<Napi::Array>();
  std::vector<ItemData> items(array.Length());
  std::vector<ContextWrap*> contexts;
  std::vector<Napi::Object> owners;
  for (uint32_t i = 0; i < array.Length(); i++) {
    Napi::Value value = array.Get(i);
    if (!value.IsObject()) throw Napi::TypeError::New(env, "items[" + std::to_string(i) + "] must be an object");
    Napi::Object options = value.As<Napi::Object>();
    Napi::Value context_value = options.Get("context");
    if (!context_value.IsObject() || !context_value.As<Napi::Object>().InstanceOf(ContextWrap::constructor.Value())) {
      throw Napi::TypeError::New(env, "items[" + std::to_string(i) + "].context must be a NativeContext");
    }
    ContextWrap* context_wrap = ContextWrap::Unwrap(context_value.As<Napi::Object>());
    Context* context = context_wrap->live_context(env, "step");
    ItemData& data = items[i];
    BatchItem& item = data.item;
    item.kind = kind_field(options);
    item.context = context;
    item.params = sampling_params_field(options, config.vocab_size);
    switch (item.kind) {
      case BatchItem::Kind::kForward: {
        Napi::Value tokens = options.Get("tokens");
        if (!tokens.IsTypedArray() || tokens.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
          throw Napi::TypeError::New(env, "items[" + std::to_string(i) + "].tokens must be an Int32Array");
        }
        Napi::Int32Array ids = tokens.As<Napi::Int32Array>();
        data.tokens.assign(ids.Data(), ids.Data() + ids.ElementLength());
        item.n = int(data.tokens.size());
        item.layer_end = integer_field(options, "layerEnd", config.num_layers, 1, config.num_layers);
        item.pick = options.Get("pick").ToBoolean();
        data.uniforms = uniforms_field(options, item.params, item.pick ? 1 : 0, "one value");
        break;
      }
      case BatchItem::Kind::kDraft:
        item.token = integer_field(options, "token", -1, 0, config.vocab_size - 1);
        item.exit_layer = integer_field(options, "exitLayer", config.num_layers, 1, config.num_layers);
        data.uniforms = uniforms_field(options, item.params, 1, "one value");
        break;
      case BatchItem::Kind::kVerify:
        item.draft_count = integer_field(options, "draftCount", 0, 0, runner_->max_rows() - 1);
        data.verified.resize(item.draft_count + 1);
        data.uniforms = uniforms_field(options, item.params, item.draft_count + 1, "draftCount + 1 values");
        break;
    }
    // Logits rows back (forward with pick: 1, verify: draftCount + 1), for log-probabilities.
    if (options.Get("logits").ToBoolean() && item.kind != BatchItem::Kind::kDraft && (item.pick || item.kind == BatchItem::Kind::kVerify)) {
      const int rows = item.kind == BatchItem::Kind::kVerify ? item.draft_count + 1 : 1;
      data.logits.resize(size_t(rows) * size_t(config.vocab_size));
    }
    contexts.push_back(context_wrap);
    owners.push_back(context_value.As<Napi::Object>());
  }
  auto* worker = new StepWorker(env, this, Value(), runner_.get(), std::move(items), std::move(contexts), owners);
  return worker->start();
}

Napi::Value BatchWrap::MaxRows(const Napi::CallbackInfo& info) {
  if (!runner_) throw Napi::Error::New(info.Env(), "maxRows: batch has been disposed");
  return Napi::Number::New(info.Env(), runner_->max_rows());
}

Napi::Value BatchWrap::MaxLogitRows(const Napi::CallbackInfo& info) {
  if (!runner_) throw Napi::Error::New(info.Env(), "maxLogitRows: batch has been disposed");
  return Napi::Number::New(info.Env(), runner_->max_logit_rows());
}

Napi::Value BatchWrap::Dispose(const Napi::CallbackInfo& info) {
  if (busy_) throw Napi::Error::New(info.Env(), "dispose: wait for the running step() to settle first");
  ReleaseResources();
  return info.Env().Undefined();
}

}  // namespace layerskip::binding
