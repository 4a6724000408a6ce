// NativeBatch: steps several NativeContexts of one model in one forward pass (core/batch.h) — the engine of the
// server's continuous batching. step() runs on the libuv pool and marks the batch and every context it names busy
// until its Promise settles.
#pragma once
#include <napi.h>

#include <memory>

#include "../core/batch.h"

namespace layerskip::binding {

class ModelWrap;

class BatchWrap : public Napi::ObjectWrap<BatchWrap> {
 public:
  static void Register(Napi::Env env, Napi::Object exports);
  explicit BatchWrap(const Napi::CallbackInfo& info);
  ~BatchWrap() override;

  static Napi::FunctionReference constructor;
  void set_busy(bool busy) { busy_ = busy; }

 private:
  Napi::Value Step(const Napi::CallbackInfo& info);
  Napi::Value MaxRows(const Napi::CallbackInfo& info);
  Napi::Value MaxLogitRows(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  void ReleaseResources();

  std::unique_ptr<BatchRunner> runner_;
  Napi::ObjectReference model_ref_;  // keeps the model alive while this batch exists
  ModelWrap* model_wrap_ = nullptr;
  bool busy_ = false;
};

}  // namespace layerskip::binding
