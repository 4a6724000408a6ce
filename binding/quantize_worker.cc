#include "quantize_worker.h"

#include "../core/quant.h"
#include "../core/limits.h"
#include "../core/quantize_checkpoint.h"
#include "args.h"
#include "guard.h"
#include "progress_worker.h"

namespace layerskip::binding {

namespace {

class QuantizeWorker : public ProgressWorker {
 public:
  QuantizeWorker(Napi::Env env, std::string dir, std::string out_path, QuantizeCheckpointOptions options,
                 Napi::Function on_progress)
      : ProgressWorker(env, "layerskip:quantize", on_progress), dir_(std::move(dir)), out_path_(std::move(out_path)),
        options_(std::move(options)) {}

  void Execute(const ExecutionProgress& progress) override {
    QuantizeCheckpointOptions options = options_;
    options.on_progress = forward_progress(progress);
    Status status = guarded("quantizing", [&] { return quantize_checkpoint(dir_, out_path_, options, &report_); });
    if (!status.is_ok()) SetError(status.message());
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::Object out = Napi::Object::New(env);
    out.Set("tensors", report_.tensors);
    out.Set("quantizedTensors", report_.quantized);
    out.Set("inputBytes", double(report_.input_bytes));
    out.Set("outputBytes", double(report_.output_bytes));
    Resolve(out);
  }

 private:
  std::string dir_, out_path_;
  QuantizeCheckpointOptions options_;
  QuantizeCheckpointReport report_;
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
  quantize.threads = thread_count_for(integer_field(options, "threads", 0, 0, kMaxThreads));
  auto* worker = new QuantizeWorker(info.Env(), dir, out_path, quantize, function_field(options, "onProgress"));
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

}  // namespace layerskip::binding
