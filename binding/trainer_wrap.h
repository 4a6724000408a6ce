// NativeTrainer: the native training loop's state (f32 weights, AdamW moments) and its two long calls, step and
// evaluate, which run on the libuv pool and resolve a Promise; only one may be in flight at a time. Schedules
// (learning rate, layer dropout, early-exit weights) are computed in TypeScript and passed per step.
#pragma once
#include <napi.h>

#include <memory>

#include "../train/trainer.h"

namespace layerskip::binding {

class TrainerWrap : public Napi::ObjectWrap<TrainerWrap> {
 public:
  static void Register(Napi::Env env, Napi::Object exports);
  // new NativeTrainer(configJson: string, { threads, maxRows, seed })
  explicit TrainerWrap(const Napi::CallbackInfo& info);

  void set_busy(bool busy) { busy_ = busy; }

 private:
  Napi::Value Tensors(const Napi::CallbackInfo& info);
  Napi::Value GetState(const Napi::CallbackInfo& info);
  Napi::Value GetParameters(const Napi::CallbackInfo& info);
  Napi::Value SetState(const Napi::CallbackInfo& info);
  Napi::Value Step(const Napi::CallbackInfo& info);
  Napi::Value Evaluate(const Napi::CallbackInfo& info);
  train::Trainer* idle_trainer(const Napi::Env& env, const char* method) const;

  std::unique_ptr<train::Trainer> trainer_;
  bool busy_ = false;
};

}  // namespace layerskip::binding
