#include "model_wrap.h"

#include "../core/backend_factory.h"
#include "../core/limits.h"
#include "args.h"
#include "batch_wrap.h"
#include "guard.h"
#include "context_wrap.h"
#include "progress_worker.h"

namespace layerskip::binding {

Napi::FunctionReference ModelWrap::constructor;

namespace {

// Loads (mmap + validation + upload) off the JS thread, reporting upload progress (progress_worker.h).
class LoadWorker : public ProgressWorker {
 public:
  LoadWorker(Napi::Env env, std::string dir, std::string device, int threads, std::string cpu_kernels,
             ModelLoadOptions options, Napi::Function on_progress)
      : ProgressWorker(env, "layerskip:load", on_progress), dir_(std::move(dir)), device_(std::move(device)),
        cpu_kernels_(std::move(cpu_kernels)), threads_(threads), options_(std::move(options)) {}

  void Execute(const ExecutionProgress& progress) override {
    ModelLoadOptions options = options_;
    options.threads = threads_;
    options.on_progress = forward_progress(progress);
    BackendChoice choice;
    Status status = guarded("loading the model", [&] {
      Status made = make_backend(device_, threads_, cpu_kernels_, &choice);
      return made.is_ok() ? Model::load(dir_, std::move(choice.backend), &model_, options) : made;
    });
    if (!status.is_ok()) {
      SetError(status.message());
      return;
    }
    chosen_device_ = choice.device;
    fallback_note_ = choice.fallback_note;
  }

  void OnOK() override {
    if (callback_failed()) {
      model_.reset();
      return Resolve(Env().Undefined());  // rejects with the callback's error
    }
    Napi::Object wrapper = ModelWrap::constructor.New({});
    ModelWrap::Unwrap(wrapper)->Attach(std::move(model_), chosen_device_, fallback_note_);
    Resolve(wrapper);
  }

 private:
  std::string dir_, device_, cpu_kernels_;
  int threads_;
  ModelLoadOptions options_;  // quantization and draft head
  std::unique_ptr<Model> model_;
  std::string chosen_device_, fallback_note_;
};

}  // namespace

void ModelWrap::Register(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = DefineClass(env, "NativeModel",
                                   {StaticMethod<&ModelWrap::Load>("load"),
                                    InstanceMethod<&ModelWrap::Info>("info"),
                                    InstanceMethod<&ModelWrap::CreateContext>("createContext"),
                                    InstanceMethod<&ModelWrap::CreateBatch>("createBatch"),
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

// NativeModel.load(dir, { device, threads, cpuKernels, onProgress }) → Promise<NativeModel>
Napi::Value ModelWrap::Load(const Napi::CallbackInfo& info) {
  std::string dir = string_arg(info, 0, "dir");
  Napi::Object options = object_arg(info, 1, "options");
  std::string device = string_field(options, "device", "cpu");
  const int threads = thread_count_for(integer_field(options, "threads", 0, 0, kMaxThreads));
  std::string cpu_kernels = string_field(options, "cpuKernels", "");
  ModelLoadOptions load_options;
  auto quant_field = [&](const char* key, DType* out) {
    const std::string text = string_field(options, key, "");
    if (!text.empty() && !parse_quant_format(text, out)) {
      throw Napi::TypeError::New(info.Env(), std::string(key) + " must be \"q8\" or \"q4\", got \"" + text + "\"");
    }
  };
  quant_field("weights", &load_options.quantize);
  quant_field("draftHead", &load_options.draft_head);
  Napi::Function on_progress = function_field(options, "onProgress");
  auto* worker = new LoadWorker(info.Env(), dir, device, threads, cpu_kernels, load_options, on_progress);
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
  out.Set("headDtype", dtype_name(model_->weights().lm_head.dtype));
  out.Set("draftHeadDtype", dtype_name(model_->draft_head().dtype));
  out.Set("draftHeadWeightBytes", double(model_->draft_head_weight_bytes()));
  const BackendMemory& memory = model_->memory_after_load();
  out.Set("residentWeightBytes", double(memory.weight_bytes));
  out.Set("deviceFreeBytes", memory.has_device_memory ? Napi::Value(Napi::Number::New(env, double(memory.device_free_bytes))) : env.Null());
  out.Set("deviceTotalBytes", memory.has_device_memory ? Napi::Value(Napi::Number::New(env, double(memory.device_total_bytes))) : env.Null());
  return out;
}

Napi::Value ModelWrap::CreateContext(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!model_) throw Napi::Error::New(env, "model has been disposed");
  Napi::Object options = object_arg(info, 0, "options");
  return ContextWrap::constructor.New({Value(), options});
}

// createBatch({ maxRows, maxLogitRows }) → NativeBatch stepping this model's contexts together.
Napi::Value ModelWrap::CreateBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!model_) throw Napi::Error::New(env, "model has been disposed");
  Napi::Object options = object_arg(info, 0, "options");
  return BatchWrap::constructor.New({Value(), options});
}

Napi::Value ModelWrap::Dispose(const Napi::CallbackInfo& info) {
  if (live_contexts_ > 0) {
    throw Napi::Error::New(info.Env(), "dispose every context of this model before disposing the model");
  }
  model_.reset();
  return info.Env().Undefined();
}

}  // namespace layerskip::binding
