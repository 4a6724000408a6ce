// Module entry: registers NativeModel, NativeContext and NativeTrainer, plus build facts and the CUDA probe.
#include <napi.h>

#include "../core/backend_factory.h"
#include "../core/host_bandwidth.h"
#include "../core/limits.h"
#include "../cpu/cpu_features.h"
#include "args.h"
#include "batch_wrap.h"
#include "context_wrap.h"
#include "model_wrap.h"
#include "quantize_worker.h"
#include "trainer_wrap.h"

namespace layerskip::binding {

// measureReadBandwidth(threads, megabytes) → bytes per second (synchronous; for benchmarks only).
static Napi::Value MeasureReadBandwidth(const Napi::CallbackInfo& info) {
  const int threads = thread_count_for(int(integer_arg(info, 0, "threads", 0, kMaxThreads)));
  int64_t megabytes = integer_arg(info, 1, "megabytes", 16, 1 << 16);
  return Napi::Number::New(info.Env(), measure_host_read_bandwidth(threads, size_t(megabytes) << 20, 5));
}

// probeCuda(deviceIndex = 0) → { usable, reason, name, totalBytes, freeBytes } (synchronous; asks the driver).
static Napi::Value ProbeCuda(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int device_index = info.Length() > 0 && !info[0].IsUndefined() ? int(integer_arg(info, 0, "deviceIndex", 0, 1023)) : 0;
  CudaProbe probe = probe_cuda_device(device_index);
  Napi::Object out = Napi::Object::New(env);
  out.Set("usable", probe.usable);
  out.Set("reason", probe.reason);
  out.Set("name", probe.name);
  out.Set("totalBytes", double(probe.total_bytes));
  out.Set("freeBytes", double(probe.free_bytes));
  return out;
}

// cpuInfo() → { model, features, defaultKernels, kernels: [{ name, description, runnable, missing }] }: what the
// processor offers and which CPU kernel variants this build has (synchronous; no model needed).
static Napi::Value CpuInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const CpuFeatures& features = cpu_features();
  Napi::Object out = Napi::Object::New(env);
  out.Set("model", features.model_name);
  out.Set("features", features.summary());
  const CpuKernels* chosen = nullptr;
  Status status = select_cpu_kernels("auto", &chosen);
  out.Set("defaultKernels", status.is_ok() ? chosen->name : default_cpu_kernels().name);
  out.Set("defaultKernelsError", status.is_ok() ? "" : status.message());
  Napi::Array kernels = Napi::Array::New(env);
  for (const CpuKernels* variant : compiled_cpu_kernels()) {
    Napi::Object entry = Napi::Object::New(env);
    std::string missing = missing_cpu_features(*variant);
    entry.Set("name", variant->name);
    entry.Set("description", variant->description);
    entry.Set("runnable", missing.empty());
    entry.Set("roundsActivations", variant->rounds_activations);
    entry.Set("missing", missing);
    kernels.Set(kernels.Length(), entry);
  }
  out.Set("kernels", kernels);
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("cpuInfo", Napi::Function::New(env, CpuInfo));
  exports.Set("measureReadBandwidth", Napi::Function::New(env, MeasureReadBandwidth));
  exports.Set("probeCuda", Napi::Function::New(env, ProbeCuda));
  exports.Set("quantizeCheckpoint", Napi::Function::New(env, QuantizeCheckpoint));
  ModelWrap::Register(env, exports);
  ContextWrap::Register(env, exports);
  BatchWrap::Register(env, exports);
  TrainerWrap::Register(env, exports);
  exports.Set("cudaCompiledIn", Napi::Boolean::New(env, cuda_compiled_in()));
  return exports;
}

}  // namespace layerskip::binding

static Napi::Object InitLayerskip(Napi::Env env, Napi::Object exports) {
  return layerskip::binding::Init(env, exports);
}

NODE_API_MODULE(layerskip, InitLayerskip)
