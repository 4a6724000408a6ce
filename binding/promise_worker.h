// PromiseWorker: runs `work` (which touches no N-API) on the libuv pool, then settles a Promise on the JS thread —
// resolved with `result(env)` or rejected with the Status message. The owning ObjectWrap is kept alive and marked
// busy for the duration (Wrap::set_busy), so one long call at a time runs per object.
#pragma once
#include <napi.h>

#include <functional>

#include "../core/status.h"
#include "guard.h"

namespace layerskip::binding {

template <typename Wrap>
class PromiseWorker : public Napi::AsyncWorker {
 public:
  using Work = std::function<Status()>;
  using Result = std::function<Napi::Value(Napi::Env)>;

  PromiseWorker(Napi::Env env, Napi::Object owner, Wrap* wrap, Work work, Result result,
                const char* operation = "native call")
      : Napi::AsyncWorker(env), resource_name_(operation), deferred_(Napi::Promise::Deferred::New(env)), wrap_(wrap), work_(std::move(work)),
        result_(std::move(result)) {
    owner_ = Napi::Persistent(owner);
  }

  // Marks the owner busy, queues the work and returns the Promise.
  Napi::Promise start() {
    wrap_->set_busy(true);
    Napi::Promise promise = deferred_.Promise();
    Queue();
    return promise;
  }

  void Execute() override {
    Status status = guarded(resource_name_, work_);
    if (!status.is_ok()) SetError(status.message());
  }

  void OnOK() override {
    wrap_->set_busy(false);
    deferred_.Resolve(result_(Env()));
  }

  void OnError(const Napi::Error& error) override {
    wrap_->set_busy(false);
    deferred_.Reject(error.Value());
  }

 private:
  const char* resource_name_;  // names the operation in the error of an exception escaping `work`
  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference owner_;  // keeps the wrapped object (and what it owns) alive until the Promise settles
  Wrap* wrap_;
  Work work_;
  Result result_;
};

}  // namespace layerskip::binding
