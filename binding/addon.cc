// Module entry: registers NativeModel and NativeContext, plus build facts.
#include <napi.h>

#include "../core/backend_factory.h"
#include "context_wrap.h"
#include "model_wrap.h"

namespace layerskip::binding {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  ModelWrap::Register(env, exports);
  ContextWrap::Register(env, exports);
  exports.Set("cudaCompiledIn", Napi::Boolean::New(env, cuda_compiled_in()));
  return exports;
}

}  // namespace layerskip::binding

static Napi::Object InitLayerskip(Napi::Env env, Napi::Object exports) {
  return layerskip::binding::Init(env, exports);
}

NODE_API_MODULE(layerskip, InitLayerskip)
