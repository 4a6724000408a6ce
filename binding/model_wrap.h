// NativeModel: a loaded checkpoint (config + weights on a backend). Created by the async NativeModel.load().
#pragma once
#include <napi.h>

#include <memory>

#include "../core/model.h"

namespace layerskip::binding {

class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
 public:
  static void Register(Napi::Env env, Napi::Object exports);
  explicit ModelWrap(const Napi::CallbackInfo& info);

  // The loaded model; null after dispose().
  Model* model() const { return model_.get(); }
  // Called by the load worker on the JS thread once loading succeeded.
  void Attach(std::unique_ptr<Model> model, std::string device, std::string fallback_note);
  // Contexts alive on this model (dispose() refuses while any are).
  void RetainContext() { live_contexts_++; }
  void ReleaseContext() { live_contexts_--; }

  static Napi::FunctionReference constructor;

 private:
  static Napi::Value Load(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value CreateContext(const Napi::CallbackInfo& info);
  Napi::Value CreateBatch(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);

  std::unique_ptr<Model> model_;
  std::string device_;
  std::string fallback_note_;
  int live_contexts_ = 0;
};

}  // namespace layerskip::binding
