// Argument conversion for the binding: every helper throws a TypeError / RangeError naming the argument.
#pragma once
#include <napi.h>

#include <sstream>
#include <string>
#include <vector>

namespace layerskip::binding {

inline Napi::Object object_arg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  if (info.Length() <= index || info[index].IsUndefined()) return Napi::Object::New(info.Env());
  if (!info[index].IsObject()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be an object");
  return info[index].As<Napi::Object>();
}

inline std::string string_arg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  if (info.Length() <= index || !info[index].IsString()) {
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a string");
  }
  return info[index].As<Napi::String>().Utf8Value();
}

// A copy of a typed-array argument of element type T (napi `type`, named `type_name` in the error): a worker must
// not read JS memory off the JS thread.
template <typename T>
std::vector<T> typed_array_arg(const Napi::CallbackInfo& info, size_t index, const char* name,
                               napi_typedarray_type type, const char* type_name) {
  if (info.Length() <= index || !info[index].IsTypedArray() ||
      info[index].As<Napi::TypedArray>().TypedArrayType() != type) {
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be " + type_name);
  }
  Napi::TypedArrayOf<T> array = info[index].As<Napi::TypedArrayOf<T>>();
  return std::vector<T>(array.Data(), array.Data() + array.ElementLength());
}

inline std::vector<int32_t> int32_array_arg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  return typed_array_arg<int32_t>(info, index, name, napi_int32_array, "an Int32Array");
}

// Optional Int32Array field of an options object, copied; empty when absent.
inline std::vector<int32_t> int32_array_field(const Napi::Object& options, const char* key) {
  Napi::Value value = options.Get(key);
  if (value.IsUndefined() || value.IsNull()) return {};
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
    throw Napi::TypeError::New(options.Env(), std::string(key) + " must be an Int32Array");
  }
  Napi::Int32Array array = value.As<Napi::Int32Array>();
  return std::vector<int32_t>(array.Data(), array.Data() + array.ElementLength());
}

inline int64_t integer_arg(const Napi::CallbackInfo& info, size_t index, const char* name, int64_t minimum,
                           int64_t maximum) {
  if (info.Length() <= index || !info[index].IsNumber()) {
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a number");
  }
  double value = info[index].As<Napi::Number>().DoubleValue();
  if (value != value || value < double(minimum) || value > double(maximum) || value != double(int64_t(value))) {
    throw Napi::RangeError::New(info.Env(), std::string(name) + " must be an integer in [" +
                                                std::to_string(minimum) + ", " + std::to_string(maximum) + "]");
  }
  return int64_t(value);
}

inline std::string format_number(double value) {
  std::ostringstream text;
  text << value;
  return text.str();
}

// Optional numeric field of an options object.
inline double number_field(const Napi::Object& options, const char* key, double fallback, double minimum,
                           double maximum) {
  Napi::Value value = options.Get(key);
  if (value.IsUndefined() || value.IsNull()) return fallback;
  if (!value.IsNumber()) throw Napi::TypeError::New(options.Env(), std::string(key) + " must be a number");
  double number = value.As<Napi::Number>().DoubleValue();
  if (!(number >= minimum && number <= maximum)) {
    throw Napi::RangeError::New(options.Env(), std::string(key) + " must be in [" + format_number(minimum) + ", " +
                                                   format_number(maximum) + "], got " + format_number(number));
  }
  return number;
}

inline int integer_field(const Napi::Object& options, const char* key, int fallback, int minimum, int maximum) {
  Napi::Value value = options.Get(key);
  if (value.IsUndefined() || value.IsNull()) return fallback;
  double number = value.IsNumber() ? value.As<Napi::Number>().DoubleValue() : 0.5;
  if (!(number >= minimum && number <= maximum) || number != double(int64_t(number))) {
    throw Napi::RangeError::New(options.Env(), std::string(key) + " must be an integer in [" + std::to_string(minimum) +
                                                   ", " + std::to_string(maximum) + "], got " +
                                                   (value.IsNumber() ? format_number(number) : "a non-number"));
  }
  return int(number);
}

inline std::string string_field(const Napi::Object& options, const char* key, const std::string& fallback) {
  Napi::Value value = options.Get(key);
  if (value.IsUndefined() || value.IsNull()) return fallback;
  if (!value.IsString()) throw Napi::TypeError::New(options.Env(), std::string(key) + " must be a string");
  return value.As<Napi::String>().Utf8Value();
}

// Optional function field of an options object; an empty Function when absent.
inline Napi::Function function_field(const Napi::Object& options, const char* key) {
  Napi::Value value = options.Get(key);
  if (value.IsUndefined() || value.IsNull()) return Napi::Function();
  if (!value.IsFunction()) throw Napi::TypeError::New(options.Env(), std::string(key) + " must be a function");
  return value.As<Napi::Function>();
}

}  // namespace layerskip::binding
