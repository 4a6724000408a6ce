#include "trainer_wrap.h"

#include <cstring>
#include <functional>
#include <vector>

#include "../core/json.h"
#include "../core/limits.h"
#include "args.h"
#include "promise_worker.h"

namespace layerskip::binding {
namespace {

Napi::Float64Array to_float64_array(Napi::Env env, const std::vector<double>& values) {
  Napi::Float64Array array = Napi::Float64Array::New(env, values.size());
  std::memcpy(array.Data(), values.data(), sizeof(double) * values.size());
  return array;
}

Napi::Float32Array copy_floats(Napi::Env env, const float* data, size_t count) {
  Napi::Float32Array array = Napi::Float32Array::New(env, count);
  std::memcpy(array.Data(), data, sizeof(float) * count);
  return array;
}

}  // namespace

void TrainerWrap::Register(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = DefineClass(env, "NativeTrainer",
                                   {InstanceMethod<&TrainerWrap::Tensors>("tensors"),
                                    InstanceMethod<&TrainerWrap::GetState>("getState"),
                                    InstanceMethod<&TrainerWrap::GetParameters>("getParameters"),
                                    InstanceMethod<&TrainerWrap::SetState>("setState"),
                                    InstanceMethod<&TrainerWrap::Step>("step"),
                                    InstanceMethod<&TrainerWrap::Evaluate>("evaluate")});
  exports.Set("NativeTrainer", cls);
}

TrainerWrap::TrainerWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TrainerWrap>(info) {
  Napi::Env env = info.Env();
  const std::string config_text = string_arg(info, 0, "configJson");
  Napi::Object options = object_arg(info, 1, "options");
  const int threads = thread_count_for(integer_field(options, "threads", 0, 0, kMaxThreads));
  const int max_rows = integer_field(options, "maxRows", 256, 1, 1 << 16);
  const double seed = number_field(options, "seed", 0, 0, 9007199254740991.0);
  JsonValue json;
  ModelConfig config;
  Status status = parse_json(config_text.data(), config_text.size(), "config.json", &json);
  if (status.is_ok()) status = parse_model_config(json, "config.json", &config);
  if (status.is_ok()) status = train::Trainer::create(config, threads, max_rows, uint64_t(seed), &trainer_);
  if (!status.is_ok()) throw Napi::Error::New(env, status.message());
}

train::Trainer* TrainerWrap::idle_trainer(const Napi::Env& env, const char* method) const {
  if (busy_) throw Napi::Error::New(env, std::string("NativeTrainer.") + method + ": another call is still running");
  return trainer_.get();
}

// tensors() → [{ name, shape, offset, size }] in flat-buffer order.
Napi::Value TrainerWrap::Tensors(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const auto& tensors = trainer_->layout().tensors();
  Napi::Array out = Napi::Array::New(env, tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    Napi::Object t = Napi::Object::New(env);
    t.Set("name", tensors[i].name);
    Napi::Array shape = Napi::Array::New(env, tensors[i].shape.size());
    for (size_t d = 0; d < tensors[i].shape.size(); ++d) shape.Set(uint32_t(d), double(tensors[i].shape[d]));
    t.Set("shape", shape);
    t.Set("offset", double(tensors[i].offset));
    t.Set("size", double(tensors[i].size));
    out.Set(uint32_t(i), t);
  }
  return out;
}

// getState() → { parameters, firstMoment, secondMoment: Float32Array (copies), step }
Napi::Value TrainerWrap::GetState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  train::Trainer* trainer = idle_trainer(env, "getState");
  const size_t total = trainer->layout().total();
  Napi::Object state = Napi::Object::New(env);
  state.Set("parameters", copy_floats(env, trainer->parameters(), total));
  state.Set("firstMoment", copy_floats(env, trainer->first_moment(), total));
  state.Set("secondMoment", copy_floats(env, trainer->second_moment(), total));
  state.Set("step", double(trainer->step_count()));
  return state;
}

// getParameters() → Float32Array: a copy of the weights alone (export, --init) without copying the moments.
Napi::Value TrainerWrap::GetParameters(const Napi::CallbackInfo& info) {
  train::Trainer* trainer = idle_trainer(info.Env(), "getParameters");
  return copy_floats(info.Env(), trainer->parameters(), trainer->layout().total());
}

// setState({ parameters, firstMoment?, secondMoment?, step? }): each array must hold exactly the layout's total.
Napi::Value TrainerWrap::SetState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  train::Trainer* trainer = idle_trainer(env, "setState");
  Napi::Object state = object_arg(info, 0, "state");
  const size_t total = trainer->layout().total();
  auto copy_into = [&](const char* key, float* destination, bool required) {
    Napi::Value value = state.Get(key);
    if (value.IsUndefined() && !required) return;
    if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
      throw Napi::TypeError::New(env, std::string("state.") + key + " must be a Float32Array");
    Napi::Float32Array array = value.As<Napi::Float32Array>();
    if (array.ElementLength() != total)
      throw Napi::RangeError::New(env, std::string("state.") + key + " holds " +
                                           std::to_string(array.ElementLength()) + " floats; the model has " +
                                           std::to_string(total));
    std::memcpy(destination, array.Data(), sizeof(float) * total);
  };
  copy_into("parameters", trainer->parameters(), true);
  copy_into("firstMoment", trainer->first_moment(), false);
  copy_into("secondMoment", trainer->second_moment(), false);
  trainer->set_step_count(int64_t(number_field(state, "step", double(trainer->step_count()), 0, 1e15)));
  trainer->weights_changed();
  return env.Undefined();
}

// step(tokens: Int32Array (batch·(rows+1)), batch, rows, dropped: Uint8Array (batch·layers),
//      exitWeights: Float32Array (layers), adamw: { learningRate, beta1, beta2, epsilon, weightDecay, clipNorm })
//   → Promise<{ exitLoss: Float64Array (NaN where inactive), gradientNorm }>
Napi::Value TrainerWrap::Step(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  train::Trainer* trainer = idle_trainer(env, "step");
  const int layers = trainer->config().num_layers;
  auto tokens = std::make_shared<std::vector<int32_t>>(int32_array_arg(info, 0, "tokens"));
  const int batch = int(integer_arg(info, 1, "batch", 1, 1 << 20));
  const int rows = int(integer_arg(info, 2, "rows", 1, trainer->max_rows()));
  auto dropped = std::make_shared<std::vector<uint8_t>>(
      typed_array_arg<uint8_t>(info, 3, "dropped", napi_uint8_array, "a Uint8Array"));
  auto exit_weights = std::make_shared<std::vector<float>>(
      typed_array_arg<float>(info, 4, "exitWeights", napi_float32_array, "a Float32Array"));
  Napi::Object adam = object_arg(info, 5, "adamw");
  if (tokens->size() != size_t(batch) * (rows + 1))
    throw Napi::RangeError::New(env, "tokens must hold batch × (rows + 1) = " +
                                         std::to_string(size_t(batch) * (rows + 1)) + " ids, got " +
                                         std::to_string(tokens->size()));
  if (dropped->size() != size_t(batch) * layers)
    throw Napi::RangeError::New(env, "dropped must hold batch × layers = " + std::to_string(size_t(batch) * layers) +
                                         " flags, got " + std::to_string(dropped->size()));
  if (exit_weights->size() != size_t(layers))
    throw Napi::RangeError::New(env, "exitWeights must hold one weight per layer (" + std::to_string(layers) + ")");
  train::AdamWSettings settings;
  settings.learning_rate = float(number_field(adam, "learningRate", settings.learning_rate, 0, 10));
  settings.beta1 = float(number_field(adam, "beta1", settings.beta1, 0, 0.999999));
  settings.beta2 = float(number_field(adam, "beta2", settings.beta2, 0, 0.999999));
  settings.epsilon = float(number_field(adam, "epsilon", settings.epsilon, 0, 1));
  settings.weight_decay = float(number_field(adam, "weightDecay", settings.weight_decay, 0, 10));
  settings.clip_norm = float(number_field(adam, "clipNorm", settings.clip_norm, 0, 1e9));

  auto result = std::make_shared<train::StepResult>();
  auto* worker = new PromiseWorker<TrainerWrap>(
      env, info.This().As<Napi::Object>(), this,
      [=]() {
        return trainer->step(tokens->data(), batch, rows, dropped->data(), exit_weights->data(), settings,
                             result.get());
      },
      [=](Napi::Env env) -> Napi::Value {
        Napi::Object out = Napi::Object::New(env);
        out.Set("exitLoss", to_float64_array(env, result->exit_loss));
        out.Set("gradientNorm", result->gradient_norm);
        return out;
      });
  return worker->start();
}

// evaluate(tokens: Int32Array (batch·(rows+1)), batch, rows)
//   → Promise<{ loss, correct, agree: Float64Array (layers) sums, tokens }> (no dropout, every exit)
Napi::Value TrainerWrap::Evaluate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  train::Trainer* trainer = idle_trainer(env, "evaluate");
  auto tokens = std::make_shared<std::vector<int32_t>>(int32_array_arg(info, 0, "tokens"));
  const int batch = int(integer_arg(info, 1, "batch", 1, 1 << 20));
  const int rows = int(integer_arg(info, 2, "rows", 1, trainer->max_rows()));
  if (tokens->size() != size_t(batch) * (rows + 1))
    throw Napi::RangeError::New(env, "tokens must hold batch × (rows + 1) = " +
                                         std::to_string(size_t(batch) * (rows + 1)) + " ids");
  auto totals = std::make_shared<train::ExitTotals>();
  auto* worker = new PromiseWorker<TrainerWrap>(
      env, info.This().As<Napi::Object>(), this,
      [=]() { return trainer->evaluate(tokens->data(), batch, rows, totals.get()); },
      [=](Napi::Env env) -> Napi::Value {
        Napi::Object out = Napi::Object::New(env);
        out.Set("loss", to_float64_array(env, totals->loss));
        out.Set("correct", to_float64_array(env, totals->correct));
        out.Set("agree", to_float64_array(env, totals->agree));
        out.Set("tokens", totals->tokens);
        return out;
      });
  return worker->start();
}

}  // namespace layerskip::binding
