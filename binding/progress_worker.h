// ProgressWorker: a Promise-returning async worker whose core work reports (done, total) byte progress to an
// optional JS callback (model loading, quantizing). Progress travels through the base class's thread-safe function
// (coalesced: a slow callback sees fewer, later values, always ending at the total); the base releases it on every
// path and settles only after the last progress call. A throwing callback fails the work with its message (the
// core stops at its next progress report) instead of escaping into the event loop.
#pragma once
#include <napi.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

namespace layerskip::binding {

struct ByteProgress {
  uint64_t done_bytes = 0;
  uint64_t total_bytes = 0;
};

class ProgressWorker : public Napi::AsyncProgressWorker<ByteProgress> {
 public:
  ProgressWorker(Napi::Env env, const char* resource_name, Napi::Function on_progress)
      : Napi::AsyncProgressWorker<ByteProgress>(env, resource_name), deferred_(Napi::Promise::Deferred::New(env)) {
    if (!on_progress.IsEmpty()) on_progress_ = Napi::Persistent(on_progress);
  }

  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  // The core's progress hook for Execute(): empty without a callback; returns false (stop) once the callback threw.
  std::function<bool(uint64_t, uint64_t)> forward_progress(const ExecutionProgress& progress) {
    if (on_progress_.IsEmpty()) return {};
    return [this, &progress](uint64_t done, uint64_t total) {
      if (callback_failed_.load()) return false;
      ByteProgress update{done, total};
      progress.Send(&update, 1);
      return true;
    };
  }

  void OnProgress(const ByteProgress* update, size_t count) override {
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

  // Settles with `value`, or with the callback's error if it threw.
  void Resolve(Napi::Value value) {
    if (callback_failed_.load()) return RejectWithCallbackError();
    deferred_.Resolve(value);
  }
  bool callback_failed() const { return callback_failed_.load(); }

  void OnError(const Napi::Error& error) override {
    if (callback_failed_.load()) return RejectWithCallbackError();
    deferred_.Reject(error.Value());
  }

 private:
  void RejectWithCallbackError() {
    deferred_.Reject(Napi::Error::New(Env(), "onProgress threw: " + callback_error_).Value());
  }

  Napi::Promise::Deferred deferred_;
  Napi::FunctionReference on_progress_;  // empty: no progress reporting
  std::string callback_error_;           // message of the exception onProgress threw
  std::atomic<bool> callback_failed_{false};
};

}  // namespace layerskip::binding
