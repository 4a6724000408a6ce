#include "model_wrap.h"

#include "../core/backend_factory.h"
#include "args.h"
#include "context_wrap.h"

namespace layerskip::binding {

Napi::FunctionReference ModelWrap::constructor;

namespace {

// Loads (mmap + validation + upload) off the JS thread.
class LoadWorker : public Napi::AsyncWorker {
 public:
  LoadWorker(Napi::Env env, std::string dir, std::string device, int threads)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), dir_(std::move(dir)),
        device_(std::move(device)), threads_(threads) {}

  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override {
    BackendChoice choice;
    Status status = make_backend(device_, threads_, &choice);
    if (status.is_ok()) status = Model::load(dir_, std::move(choice.backend), &model_);
    if (!status.is_ok()) {
      SetError(status.message());
      return;
    }
    chosen_device_ = choice.device;
    fallback_note_ = choice.fallback_note;
  }

  void OnOK() override {
    Napi::Object wrapper = ModelWrap::constructor.New({});
    ModelWrap::Unwrap(wrapper)->Attach(std::move(model_), chosen_device_, fallback_note_);
    deferred_.Resolve(wrapper);
  }

  void OnError(const Napi::Error& error) override { deferred_.Reject(error.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::string dir_, device_;
  int threads_;
  std::unique_ptr<Model> model_;
  std::string chosen_device_, fallback_note_;
};

}  // namespace

void ModelWrap::Register(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = DefineClass(env, "NativeModel",
                                   {StaticMethod<&ModelWrap::Load>("load"),
                                    InstanceMethod<&ModelWrap::Info>("info"),
                                    InstanceMethod<&ModelWrap::CreateContext>("createContext"),
                                    InstanceMethod<&ModelWrap::Dispose>("dispose")});
  constructor = Napi::Persistent(cls);
  constructor.SuppressDestruct();
  exports.Set("NativeModel", cls);
}

ModelWrap::ModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelWrap>(info) {}

void ModelWrap::Attach(std::unique_ptr<Model> model, std::string device, std::string fallback_note) {
  model_ = std::move(model);
  device_ = std::move(device);
  fallback_note_ = std::move(fallback_note);
}

// NativeModel.load(dir, { device, threads }) → Promise<NativeModel>
Napi::Value ModelWrap::Load(const Napi::CallbackInfo& info) {
  std::string dir = string_arg(info, 0, "dir");
  Napi::Object options = object_arg(info, 1, "options");
  std::string device = string_field(options, "device", "cpu");
  int threads = integer_field(options, "threads", 0, 0, 1024);
  auto* worker = new LoadWorker(info.Env(), dir, device, threads);
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

Napi::Value ModelWrap::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!model_) throw Napi::Error::New(env, "model has been disposed");
  const ModelConfig& c = model_->config();
  Napi::Object out = Napi::Object::New(env);
  out.Set("hiddenSize", c.hidden_size);
  out.Set("intermediateSize", c.intermediate_size);
  out.Set("numLayers", c.num_layers);
  out.Set("numHeads", c.num_heads);
  out.Set("numKvHeads", c.num_kv_heads);
  out.Set("headDim", c.head_dim);
  out.Set("vocabSize", c.vocab_size);
  out.Set("maxPositionEmbeddings", c.max_position_embeddings);
  out.Set("ropeTheta", c.rope_theta);
  out.Set("tieWordEmbeddings", c.tie_word_embeddings);
  out.Set("bosTokenId", c.bos_token_id);
  Napi::Array eos = Napi::Array::New(env, c.eos_token_ids.size());
  for (size_t i = 0; i < c.eos_token_ids.size(); i++) eos.Set(uint32_t(i), c.eos_token_ids[i]);
  out.Set("eosTokenIds", eos);
  out.Set("dtype", dtype_name(model_->matrix_dtype()));
  out.Set("device", device_);
  out.Set("backend", model_->backend().describe());
  out.Set("deviceFallbackReason", fallback_note_);
  out.Set("weightBytesPerToken", double(model_->weight_bytes_per_token()));
  out.Set("weightBytesPerLayer", double(model_->weight_bytes_per_layer()));
  out.Set("headWeightBytes", double(model_->head_weight_bytes()));
  return out;
}

Napi::Value ModelWrap::CreateContext(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!model_) throw Napi::Error::New(env, "model has been disposed");
  Napi::Object options = object_arg(info, 0, "options");
  return ContextWrap::constructor.New({Value(), options});
}

Napi::Value ModelWrap::Dispose(const Napi::CallbackInfo& info) {
  if (live_contexts_ > 0) {
    throw Napi::Error::New(info.Env(), "dispose every context of this model before disposing the model");
  }
  model_.reset();
  return info.Env().Undefined();
}

}  // namespace layerskip::binding
