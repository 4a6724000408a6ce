// NativeContext: one sequence's KV cache and forward pass. The long calls (evaluate, evaluateExitLayers, draft,
// verify) run on the libuv pool and resolve a Promise; only one may be in flight per context.
#pragma once
#include <napi.h>

#include <memory>
#include <vector>

#include "../core/context.h"

namespace layerskip::binding {

class ModelWrap;

class ContextWrap : public Napi::ObjectWrap<ContextWrap> {
 public:
  static void Register(Napi::Env env, Napi::Object exports);
  explicit ContextWrap(const Napi::CallbackInfo& info);
  ~ContextWrap() override;

  static Napi::FunctionReference constructor;
  Context* context() const { return context_.get(); }
  void set_busy(bool busy) { busy_ = busy; }
  // The context, or a JS Error naming `method` when it is disposed or busy.
  Context* live_context(const Napi::Env& env, const char* method) const;

 private:
  Napi::Value Evaluate(const Napi::CallbackInfo& info);
  Napi::Value EvaluateExitLayers(const Napi::CallbackInfo& info);
  Napi::Value ReadLogits(const Napi::CallbackInfo& info);
  Napi::Value ReadHidden(const Napi::CallbackInfo& info);
  Napi::Value ReserveSpeculation(const Napi::CallbackInfo& info);
  Napi::Value Draft(const Napi::CallbackInfo& info);
  Napi::Value DraftRun(const Napi::CallbackInfo& info);
  Napi::Value Verify(const Napi::CallbackInfo& info);
  Napi::Value ExitRows(const Napi::CallbackInfo& info);
  Napi::Value ReplaceProposal(const Napi::CallbackInfo& info);
  Napi::Value Truncate(const Napi::CallbackInfo& info);
  Napi::Value Length(const Napi::CallbackInfo& info);
  Napi::Value ContextLength(const Napi::CallbackInfo& info);
  Napi::Value LayerLength(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  SamplingParams sampling_params(const Napi::Object& options) const;
  void ReleaseResources();

  std::unique_ptr<Context> context_;
  Napi::ObjectReference model_ref_;  // keeps the model alive while this context exists
  ModelWrap* model_wrap_ = nullptr;
  bool busy_ = false;
  bool dispose_requested_ = false;
};

}  // namespace layerskip::binding
