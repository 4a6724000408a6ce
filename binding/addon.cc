// Module entry: registers NativeModel, NativeContext and NativeTrainer, plus build facts and the CUDA probe.
#include <napi.h>

#include "../core/backend_factory.h"
#include "../core/host_bandwidth.h"
#include "args.h"
#include "context_wrap.h"
#include "model_wrap.h"
#include "trainer_wrap.h"

namespace layerskip::binding {

// measureReadBandwidth(threads, megabytes) → bytes per second (synchronous; for benchmarks only).
static Napi::Value MeasureReadBandwidth(const Napi::CallbackInfo& info) {
  int threads = int(integer_arg(info, 0, "threads", 0, 1024));
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

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("measureReadBandwidth", Napi::Function::New(env, MeasureReadBandwidth));
  exports.Set("probeCuda", Napi::Function::New(env, ProbeCuda));
  ModelWrap::Register(env, exports);
  ContextWrap::Register(env, exports);
  TrainerWrap::Register(env, exports);
  exports.Set("cudaCompiledIn", Napi::Boolean::New(env, cuda_compiled_in()));
  return exports;
}

}  // namespace layerskip::binding

static Napi::Object InitLayerskip(Napi::Env env, Napi::Object exports) {
  return layerskip::binding::Init(env, exports);
}

NODE_API_MODULE(layerskip, InitLayerskip)
