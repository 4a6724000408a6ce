// Sampling arguments shared by NativeContext and NativeBatch: { temperature, topK, topP } and the uniforms that
// drive sampling.
#pragma once
#include <napi.h>

#include <string>
#include <vector>

#include "../core/backend.h"
#include "args.h"

namespace layerskip::binding {

inline SamplingParams sampling_params_field(const Napi::Object& options, int vocab_size) {
  SamplingParams params;
  params.temperature = float(number_field(options, "temperature", 0.0, 0.0, 1e6));
  params.top_k = integer_field(options, "topK", 0, 0, vocab_size);
  params.top_p = float(number_field(options, "topP", 1.0, 0.0, 1.0));
  return params;
}

// options.uniforms: a Float64Array of at least `count` values in [0, 1), required when sampling.
inline std::vector<double> uniforms_field(const Napi::Object& options, const SamplingParams& params, int count,
                                          const char* expectation) {
  Napi::Env env = options.Env();
  Napi::Value value = options.Get("uniforms");
  if (value.IsUndefined()) {
    if (params.temperature > 0) throw Napi::TypeError::New(env, "sampling (temperature > 0) needs uniforms");
    return {};
  }
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
    throw Napi::TypeError::New(env, "uniforms must be a Float64Array");
  }
  Napi::Float64Array array = value.As<Napi::Float64Array>();
  if (int(array.ElementLength()) < count) throw Napi::RangeError::New(env, std::string("uniforms needs ") + expectation);
  return std::vector<double>(array.Data(), array.Data() + array.ElementLength());
}

}  // namespace layerskip::binding
