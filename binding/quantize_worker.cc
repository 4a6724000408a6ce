#include "quantize_worker.h"

#include <atomic>

#include "../core/quant.h"
#include "../core/quantize_checkpoint.h"
#include "args.h"

namespace layerskip::binding {

namespace {

struct QuantizeProgress {
  uint64_t done_bytes;
  uint64_t total_bytes;
};

class QuantizeWorker : public Napi::AsyncProgressWorker<QuantizeProgress> {
 public:
  QuantizeWorker(Napi::Env env, std::string dir, std::string out_path, QuantizeCheckpointOptions options,
                 Napi::Function on_progress)
      : Napi::AsyncProgressWorker<QuantizeProgress>(env, "layerskip:quantize"),
        deferred_(Napi::Promise::Deferred::New(env)), dir_(std::move(dir)), out_path_(std::move(out_path)),
        options_(std::move(options)) {
    if (!on_progress.IsEmpty()) on_progress_ = Napi::Persistent(on_progress);
  }

  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute(const ExecutionProgress& progress) override {
    QuantizeCheckpointOptions options = options_;
    if (!on_progress_.IsEmpty()) {
      options.on_progress = [this, &progress](uint64_t done, uint64_t total) {
        if (callback_failed_.load()) return false;
        QuantizeProgress update{done, total};
        progress.Send(&update, 1);
        return true;
      };
    }
    Status status = quantize_checkpoint(dir_, out_path_, options, &report_);
    if (!status.is_ok()) SetError(status.message());
  }

  void OnProgress(const QuantizeProgress* update, size_t count) override {
    if (update == nullptr || count == 0 || callback_failed_.load()) return;
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    try {
      on_progress_.Call({Napi::Number::New(env, double(update->done_bytes)),
                         Napi::Number::New(env, double(update->total_bytes))});
    } catch (const Napi::Error& error) {
      callback_error_ = error.Message().empty() ? "a value that is not an Error" : error.Message();
      callback_failed_.store(true);
    }
  }

  void OnOK() override {
    if (callback_failed_.load()) return RejectWithCallbackError();
    Napi::Env env = Env();
    Napi::Object out = Napi::Object::New(env);
    out.Set("tensors", report_.tensors);
    out.Set("quantizedTensors", report_.quantized);
    out.Set("inputBytes", double(report_.input_bytes));
    out.Set("outputBytes", double(report_.output_bytes));
    deferred_.Resolve(out);
  }

  void OnError(const Napi::Error& error) override {
    if (callback_failed_.load()) return RejectWithCallbackError();
    deferred_.Reject(error.Value());
  }

 private:
  void RejectWithCallbackError() {
    deferred_.Reject(Napi::Error::New(Env(), "onProgress threw: " + callback_error_).Value());
  }

  Napi::Promise::Deferred deferred_;
  std::string dir_, out_path_;
  QuantizeCheckpointOptions options_;
  QuantizeCheckpointReport report_;
  Napi::FunctionReference on_progress_;
  std::string callback_error_;
  std::atomic<bool> callback_failed_{false};
};

}  // namespace

Napi::Value QuantizeCheckpoint(const Napi::CallbackInfo& info) {
  std::string dir = string_arg(info, 0, "dir");
  std::string out_path = string_arg(info, 1, "outPath");
  Napi::Object options = object_arg(info, 2, "options");
  QuantizeCheckpointOptions quantize;
  const std::string type = string_field(options, "type", "");
  if (!parse_quant_format(type, &quantize.format)) {
    throw Napi::TypeError::New(info.Env(), "type must be \"q8\" or \"q4\", got \"" + type + "\"");
  }
  Napi::Value keep_head = options.Get("keepHead");
  if (!keep_head.IsUndefined() && !keep_head.IsBoolean()) throw Napi::TypeError::New(info.Env(), "keepHead must be a boolean");
  quantize.keep_head = keep_head.IsBoolean() && keep_head.As<Napi::Boolean>().Value();
  quantize.threads = integer_field(options, "threads", 0, 0, 1024);
  auto* worker = new QuantizeWorker(info.Env(), dir, out_path, quantize, function_field(options, "onProgress"));
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

}  // namespace layerskip::binding
