// Whole-model checks of the CUDA backend: a random checkpoint written in-process (a tiny one for tests, a
// Llama-3.2-1B-shaped one for the benchmark: the GPU machine has no model files), loaded through Model::load on
// both backends. Checks: logits and greedy tokens against the CPU, bit-identical logits whatever the batch size,
// greedy self-speculative == greedy autoregressive. LAYERSKIP_TEST_MODEL=<dir> adds a real checkpoint.
#if defined(LAYERSKIP_HAVE_CUDA)

#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "../../cuda/cuda_backend.h"
#if defined(LAYERSKIP_CUDA_EMULATOR)
#include "../../cuda/emulator/device.h"
#endif
#include "../context.h"
#include "../model.h"
#include "batch_check.h"
#include "test_framework.h"

namespace layerskip {
namespace {

// --- a random Llama checkpoint on disk ----------------------------------------------------------------------------

struct ModelShape {
  int layers, hidden, heads, kv_heads, head_dim, ffn, vocab;
};

const ModelShape kTinyShape = {4, 256, 8, 2, 32, 512, 1000};
const ModelShape kLlama1BShape = {16, 2048, 32, 8, 64, 8192, 128256};

struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
  float scale;   // values uniform in [center − scale, center + scale]
  float center;
};

std::vector<TensorSpec> tensor_specs(const ModelShape& s) {
  const int q_dim = s.heads * s.head_dim, kv_dim = s.kv_heads * s.head_dim;
  auto matrix = [](std::string name, int rows, int cols) {
    return TensorSpec{std::move(name), {rows, cols}, float(1.7 / std::sqrt(double(cols))), 0.0f};
  };
  auto norm = [](std::string name, int length) { return TensorSpec{std::move(name), {length}, 0.1f, 1.0f}; };
  std::vector<TensorSpec> specs = {{"model.embed_tokens.weight", {s.vocab, s.hidden}, 1.0f, 0.0f}};
  for (int l = 0; l < s.layers; l++) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    specs.push_back(norm(p + "input_layernorm.weight", s.hidden));
    specs.push_back(matrix(p + "self_attn.q_proj.weight", q_dim, s.hidden));
    specs.push_back(matrix(p + "self_attn.k_proj.weight", kv_dim, s.hidden));
    specs.push_back(matrix(p + "self_attn.v_proj.weight", kv_dim, s.hidden));
    specs.push_back(matrix(p + "self_attn.o_proj.weight", s.hidden, q_dim));
    specs.push_back(norm(p + "post_attention_layernorm.weight", s.hidden));
    specs.push_back(matrix(p + "mlp.gate_proj.weight", s.ffn, s.hidden));
    specs.push_back(matrix(p + "mlp.up_proj.weight", s.ffn, s.hidden));
    specs.push_back(matrix(p + "mlp.down_proj.weight", s.hidden, s.ffn));
  }
  specs.push_back(norm("model.norm.weight", s.hidden));
  specs.push_back(matrix("lm_head.weight", s.vocab, s.hidden));
  return specs;
}

std::string config_json(const ModelShape& s) {
  char text[1024];
  std::snprintf(text, sizeof text,
                "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"hidden_size\": %d, "
                "\"intermediate_size\": %d, \"num_hidden_layers\": %d, \"num_attention_heads\": %d, "
                "\"num_key_value_heads\": %d, \"head_dim\": %d, \"vocab_size\": %d, "
                "\"max_position_embeddings\": 131072, \"rms_norm_eps\": 1e-05, \"rope_theta\": 500000.0, "
                "\"rope_scaling\": {\"factor\": 32.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, "
                "\"original_max_position_embeddings\": 8192, \"rope_type\": \"llama3\"}, "
                "\"tie_word_embeddings\": false, \"torch_dtype\": \"bfloat16\", \"bos_token_id\": 0, "
                "\"eos_token_id\": 1}\n",
                s.hidden, s.ffn, s.layers, s.heads, s.kv_heads, s.head_dim, s.vocab);
  return text;
}

// A temporary directory holding config.json + model.safetensors (bf16), removed on destruction.
class RandomCheckpoint {
 public:
  RandomCheckpoint(const ModelShape& shape, uint64_t seed) {
    const char* base = getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/layerskip-cuda-XXXXXX";
    std::vector<char> buffer(pattern.begin(), pattern.end());
    buffer.push_back('\0');
    if (mkdtemp(buffer.data()) == nullptr) {
      error_ = "mkdtemp failed for " + pattern;
      return;
    }
    dir_ = buffer.data();
    error_ = write(shape, seed);
  }
  ~RandomCheckpoint() {
    if (dir_.empty()) return;
    unlink((dir_ + "/config.json").c_str());
    unlink((dir_ + "/model.safetensors").c_str());
    rmdir(dir_.c_str());
  }
  const std::string& dir() const { return dir_; }
  const std::string& error() const { return error_; }

 private:
  std::string write(const ModelShape& shape, uint64_t seed) {
    std::ofstream config(dir_ + "/config.json");
    config << config_json(shape);
    if (!config) return "cannot write " + dir_ + "/config.json";

    const std::vector<TensorSpec> specs = tensor_specs(shape);
    std::string header = "{";
    uint64_t offset = 0;
    for (size_t i = 0; i < specs.size(); i++) {
      uint64_t elements = 1;
      std::string dims;
      for (int64_t extent : specs[i].shape) {
        elements *= uint64_t(extent);
        dims += (dims.empty() ? "" : ", ") + std::to_string(extent);
      }
      header += (i ? ", " : "") + std::string("\"") + specs[i].name + "\": {\"dtype\": \"BF16\", \"shape\": [" + dims +
                "], \"data_offsets\": [" + std::to_string(offset) + ", " + std::to_string(offset + elements * 2) + "]}";
      offset += elements * 2;
    }
    header += "}";
    while (header.size() % 8 != 0) header += ' ';

    std::ofstream file(dir_ + "/model.safetensors", std::ios::binary);
    uint8_t length[8];
    for (int i = 0; i < 8; i++) length[i] = uint8_t(uint64_t(header.size()) >> (8 * i));
    file.write(reinterpret_cast<const char*>(length), 8);
    file.write(header.data(), std::streamsize(header.size()));
    uint64_t state = seed * 0x9E3779B97F4A7C15ull + 1;
    std::vector<uint16_t> chunk(1 << 20);
    for (const TensorSpec& spec : specs) {
      uint64_t remaining = 1;
      for (int64_t extent : spec.shape) remaining *= uint64_t(extent);
      while (remaining > 0) {
        const size_t count = size_t(std::min<uint64_t>(remaining, chunk.size()));
        for (size_t i = 0; i < count; i++) {
          state ^= state >> 12;  // xorshift64*
          state ^= state << 25;
          state ^= state >> 27;
          const double unit = double((state * 0x2545F4914F6CDD1Dull) >> 11) / double(1ull << 53);
          chunk[i] = f32_to_bf16(spec.center + spec.scale * float(2.0 * unit - 1.0));
        }
        file.write(reinterpret_cast<const char*>(chunk.data()), std::streamsize(count * 2));
        remaining -= count;
      }
    }
    if (!file) return "cannot write " + dir_ + "/model.safetensors";
    return "";
  }

  std::string dir_;
  std::string error_;
};

// --- helpers --------------------------------------------------------------------------------------------------------

bool cuda_available() {
  CudaDeviceInfo info;
  Status status = cuda_device_info(0, &info);
  if (!status.is_ok()) testing::skip("CUDA unavailable: " + status.message());
  return status.is_ok();
}

std::unique_ptr<Model> load(const std::string& dir, bool on_cuda) {
  std::unique_ptr<Backend> backend;
  if (on_cuda) {
    CHECK_OK(make_cuda_backend(0, &backend));
    if (!backend) return nullptr;
  } else {
    backend = make_cpu_backend(0);
  }
  std::unique_ptr<Model> model;
  Status status = Model::load(dir, std::move(backend), &model);
  CHECK_MSG(status.is_ok(), status.message());
  return model;
}

std::unique_ptr<Context> make_context(const Model& model, int context_length = 512) {
  std::unique_ptr<Context> context;
  ContextOptions options;
  options.context_length = context_length;
  Status status = Context::create(model, options, &context);
  CHECK_MSG(status.is_ok(), status.message());
  return context;
}

std::vector<int32_t> prompt_tokens(int count, int vocab) {
  std::vector<int32_t> tokens(count);
  for (int i = 0; i < count; i++) tokens[i] = int32_t((i * 7919 + 13) % vocab);
  return tokens;
}

std::vector<float> last_logits(Context& context, int vocab) {
  std::vector<float> logits(vocab);
  CHECK_OK(context.read_logits(logits.data(), 1));
  return logits;
}

// Greedy decoding of `steps` tokens after `prompt`, with the logits row that chose each token.
std::vector<int32_t> greedy(Context& context, const std::vector<int32_t>& prompt, int layers, int steps, int vocab,
                            std::vector<std::vector<float>>* logits_rows) {
  std::vector<int32_t> tokens;
  CHECK_OK(context.forward(prompt.data(), int(prompt.size()), layers, 1));
  for (int i = 0; i < steps; i++) {
    logits_rows->push_back(last_logits(context, vocab));
    SampledToken next;
    CHECK_OK(context.sample(1, SamplingParams{}, nullptr, &next));
    tokens.push_back(next.token);
    if (i + 1 < steps) CHECK_OK(context.forward(&tokens.back(), 1, layers, 1));
  }
  return tokens;
}

double relative_l2(const std::vector<float>& actual, const std::vector<float>& expected) {
  double error = 0, norm = 0;
  for (size_t i = 0; i < expected.size(); i++) {
    error += (double(actual[i]) - expected[i]) * (double(actual[i]) - expected[i]);
    norm += double(expected[i]) * expected[i];
  }
  return std::sqrt(error / std::max(norm, 1e-30));
}

double top2_margin(const std::vector<float>& logits) {
  float first = -INFINITY, second = -INFINITY;
  for (float x : logits) {
    if (x > first) {
      second = first;
      first = x;
    } else if (x > second) {
      second = x;
    }
  }
  return double(first) - second;
}

// Logits of both backends agree to `tolerance` (relative L2); greedy tokens agree up to the first step where
// the CPU's top-2 margin is within the logit error (after that the sequences may legitimately part).
void compare_backends(const std::string& dir, int prompt_length, int steps, double tolerance) {
  std::unique_ptr<Model> cpu_model = load(dir, false), gpu_model = load(dir, true);
  if (!cpu_model || !gpu_model) return;
  const ModelConfig& c = cpu_model->config();
  std::unique_ptr<Context> cpu_context = make_context(*cpu_model), gpu_context = make_context(*gpu_model);
  const std::vector<int32_t> prompt = prompt_tokens(prompt_length, c.vocab_size);
  std::vector<std::vector<float>> cpu_logits, gpu_logits;
  std::vector<int32_t> cpu_tokens = greedy(*cpu_context, prompt, c.num_layers, steps, c.vocab_size, &cpu_logits);
  std::vector<int32_t> gpu_tokens = greedy(*gpu_context, prompt, c.num_layers, steps, c.vocab_size, &gpu_logits);
  const double first_error = relative_l2(gpu_logits[0], cpu_logits[0]);
  std::printf("    %s: prompt logits relative L2 error %.2e\n", dir.c_str(), first_error);
  CHECK_MSG(first_error <= tolerance, "prompt logits differ by " << first_error << " (relative L2) from the CPU");
  for (int i = 0; i < steps; i++) {
    double scale = 0;
    for (float x : cpu_logits[i]) scale = std::max(scale, std::fabs(double(x)));
    if (top2_margin(cpu_logits[i]) < 4 * tolerance * scale) break;  // a near tie: either token is right
    CHECK_MSG(gpu_tokens[i] == cpu_tokens[i], "greedy token " << i << ": cuda " << gpu_tokens[i] << ", cpu " << cpu_tokens[i]);
    if (gpu_tokens[i] != cpu_tokens[i]) break;
  }
}

// --- tests ------------------------------------------------------------------------------------------------------------

TEST(cuda_model_matches_cpu_random_checkpoint) {
  if (!cuda_available()) return;
  RandomCheckpoint checkpoint(kTinyShape, 7);
  CHECK_MSG(checkpoint.error().empty(), checkpoint.error());
  compare_backends(checkpoint.dir(), 37, 12, 2e-2);
}

TEST(cuda_model_matches_cpu_test_model) {
  const char* dir = getenv("LAYERSKIP_TEST_MODEL");
  if (dir == nullptr || *dir == '\0') {
    testing::skip("LAYERSKIP_TEST_MODEL is not set");
    return;
  }
  if (!cuda_available()) return;
  compare_backends(dir, 24, 8, 3e-2);
}

// The same tokens give bit-identical logits whether run as one 37-token prefill, as 5-token verification-sized
// chunks or one at a time — through every layer, and through an early exit.
TEST(cuda_model_logits_are_batch_invariant) {
  if (!cuda_available()) return;
  RandomCheckpoint checkpoint(kTinyShape, 11);
  std::unique_ptr<Model> model = load(checkpoint.dir(), true);
  if (!model) return;
  const ModelConfig& c = model->config();
  const int count = 37;
  const std::vector<int32_t> tokens = prompt_tokens(count, c.vocab_size);
  for (int layer_end : {c.num_layers, 2}) {
    std::vector<float> reference(size_t(count) * c.vocab_size);
    std::unique_ptr<Context> whole = make_context(*model);
    CHECK_OK(whole->forward(tokens.data(), count, layer_end, count));
    CHECK_OK(whole->read_logits(reference.data(), count));
    for (int chunk : {1, 5}) {
      std::unique_ptr<Context> pieces = make_context(*model);
      for (int begin = 0; begin < count; begin += chunk) {
        const int n = std::min(chunk, count - begin);
        CHECK_OK(pieces->forward(tokens.data() + begin, n, layer_end, n));
        std::vector<float> logits(size_t(n) * c.vocab_size);
        CHECK_OK(pieces->read_logits(logits.data(), n));
        CHECK_MSG(std::memcmp(logits.data(), reference.data() + size_t(begin) * c.vocab_size, logits.size() * 4) == 0,
                  "logits of tokens [" << begin << ", " << begin + n << ") in chunks of " << chunk << " differ from the "
                                       << count << "-token run (layers [0, " << layer_end << "))");
      }
    }
  }
}

#if defined(LAYERSKIP_CUDA_EMULATOR)
// Kernel launches per decode token (forward of one token + greedy sample), counted by the emulator: on a GPU a small
// model's decode is bound by these, not by bandwidth, so the count is pinned here and a change must be deliberate.
TEST(cuda_emulator_counts_launches_per_decode_token) {
  if (!cuda_available()) return;
  RandomCheckpoint checkpoint(kTinyShape, 17);
  std::unique_ptr<Model> model = load(checkpoint.dir(), true);
  if (!model) return;
  const ModelConfig& c = model->config();
  const std::vector<int32_t> prompt = prompt_tokens(9, c.vocab_size);
  // Launches of one token through layers [0, layer_end), the final norm and head, and a greedy sample.
  auto launches_for = [&](int layer_end) -> uint64_t {
    std::unique_ptr<Context> context = make_context(*model);
    CHECK_OK(context->forward(prompt.data(), int(prompt.size()), layer_end, 1));
    const int32_t token = 5;
    const uint64_t before = emulator::launch_count();
    CHECK_OK(context->forward(&token, 1, layer_end, 1));
    SampledToken next;
    CHECK_OK(context->sample(1, SamplingParams{}, nullptr, &next));
    return emulator::launch_count() - before;
  };
  const uint64_t full = launches_for(c.num_layers), one_layer = launches_for(1);
  const uint64_t per_layer = (full - one_layer) / uint64_t(c.num_layers - 1), outside = one_layer - per_layer;
  std::printf("    decode token: %llu launches per layer + %llu outside the layers (embed, final norm, head, sample)\n",
              (unsigned long long)per_layer, (unsigned long long)outside);
  CHECK_MSG(per_layer == 14 && outside == 5 && full == per_layer * c.num_layers + outside,
            full << " launches for " << c.num_layers << " layers, " << one_layer << " for one: expected 14 per layer + 5");
}
#endif

// Continuous batching on the CUDA backend: batched steps equal single-sequence calls bit for bit.
TEST(cuda_batch_steps_equal_single_sequence_calls) {
  if (!cuda_available()) return;
  RandomCheckpoint checkpoint(kTinyShape, 23);
  std::unique_ptr<Model> model = load(checkpoint.dir(), true);
  if (!model) return;
  testing::check_batch_equals_single(*model);
}

TEST(cuda_speculative_greedy_equals_autoregressive) {
  if (!cuda_available()) return;
  RandomCheckpoint checkpoint(kTinyShape, 13);
  std::unique_ptr<Model> model = load(checkpoint.dir(), true);
  if (!model) return;
  const ModelConfig& c = model->config();
  const std::vector<int32_t> prompt = prompt_tokens(9, c.vocab_size);
  const int steps = 30;
  std::unique_ptr<Context> plain = make_context(*model);
  std::vector<std::vector<float>> unused;
  const std::vector<int32_t> expected = greedy(*plain, prompt, c.num_layers, steps, c.vocab_size, &unused);

  for (int exit_layer : {1, 2, 3}) {
    for (int num_speculations : {1, 4, 8}) {
      std::unique_ptr<Context> context = make_context(*model);
      CHECK_OK(context->reserve_speculation(num_speculations));
      CHECK_OK(context->forward(prompt.data(), int(prompt.size()), c.num_layers, 1));
      SampledToken first;
      CHECK_OK(context->sample(1, SamplingParams{}, nullptr, &first));
      std::vector<int32_t> generated = {first.token};
      while (int(generated.size()) < steps) {
        const int n = context->length();
        std::vector<int32_t> drafts;
        int32_t token = generated.back();
        while (int(drafts.size()) < num_speculations) {
          DraftProposal proposal;
          CHECK_OK(context->draft(token, exit_layer, SamplingParams{}, 0.0, &proposal));
          drafts.push_back(proposal.token);
          token = proposal.token;
        }
        std::vector<VerifyRow> rows(drafts.size() + 1);
        CHECK_OK(context->verify(int(drafts.size()), SamplingParams{}, nullptr, rows.data()));
        size_t accepted = 0;
        while (accepted < drafts.size() && drafts[accepted] == rows[accepted].token) accepted++;
        for (size_t i = 0; i < accepted; i++) generated.push_back(drafts[i]);
        generated.push_back(rows[accepted].token);
        context->truncate(n + int(accepted) + 1);
      }
      generated.resize(steps);
      CHECK_MSG(generated == expected, "self-speculative (E = " << exit_layer << ", k = " << num_speculations
                                                                << ") diverged from autoregressive decoding on the GPU");
    }
  }
}

// --- benchmark: a Llama-3.2-1B-shaped bf16 model ------------------------------------------------------------------

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

BENCH(cuda_llama1b_decode) {
  if (!cuda_available()) return;
  double copy_gbps = 0;
  CHECK_OK(cuda_measure_copy_bandwidth(0, &copy_gbps));
  auto start = std::chrono::steady_clock::now();
  RandomCheckpoint checkpoint(kLlama1BShape, 1);
  CHECK_MSG(checkpoint.error().empty(), checkpoint.error());
  std::printf("  result: llama1b_checkpoint_write_s = %.1f\n", seconds_since(start));
  start = std::chrono::steady_clock::now();
  std::unique_ptr<Model> model = load(checkpoint.dir(), true);
  if (!model) return;
  std::printf("  result: llama1b_load_s = %.1f (%s)\n", seconds_since(start), model->backend().describe().c_str());
  const ModelConfig& c = model->config();
  std::unique_ptr<Context> context = make_context(*model, 2048);
  const std::vector<int32_t> prompt = prompt_tokens(512, c.vocab_size);
  SampledToken next;

  // Prefill 512 tokens (warm-up pass first: workspaces are allocated on first use).
  CHECK_OK(context->forward(prompt.data(), 512, c.num_layers, 1));
  CHECK_OK(context->sample(1, SamplingParams{}, nullptr, &next));
  context->truncate(0);
  start = std::chrono::steady_clock::now();
  CHECK_OK(context->forward(prompt.data(), 512, c.num_layers, 1));
  CHECK_OK(context->sample(1, SamplingParams{}, nullptr, &next));
  const double prefill = seconds_since(start);
  std::printf("  result: llama1b_prefill_512_ms = %.1f (%.0f tokens/s, %.0f TFLOP/s)\n", prefill * 1e3, 512 / prefill,
              2.0 * double(model->weight_bytes_per_token() / 2) * 512 / prefill / 1e12);

  // Decode: one token per step, greedy, as the generation loop does it.
  const int steps = 64;
  int32_t token = next.token;
  start = std::chrono::steady_clock::now();
  for (int i = 0; i < steps; i++) {
    CHECK_OK(context->forward(&token, 1, c.num_layers, 1));
    CHECK_OK(context->sample(1, SamplingParams{}, nullptr, &next));
    token = next.token;
  }
  const double step = seconds_since(start) / steps;
  const double bytes = double(model->weight_bytes_per_token());
  std::printf("  result: llama1b_decode_ms_per_token = %.3f (%.0f tokens/s)\n", step * 1e3, 1 / step);
  std::printf("  result: llama1b_decode_roofline_pct = %.0f (%.0f GB/s of weights vs %.0f GB/s copy)\n",
              100 * bytes / step / 1e9 / copy_gbps, bytes / step / 1e9, copy_gbps);

  // Verification of k + 1 = 5 tokens against one decode step (same position each time).
  const int length = context->length();
  const std::vector<int32_t> five = prompt_tokens(5, c.vocab_size);
  SampledToken rows[5];
  const int repeats = 32;
  start = std::chrono::steady_clock::now();
  for (int i = 0; i < repeats; i++) {
    CHECK_OK(context->forward(five.data(), 5, c.num_layers, 5));
    CHECK_OK(context->sample(5, SamplingParams{}, nullptr, rows));
    context->truncate(length);
  }
  const double verify = seconds_since(start) / repeats;
  start = std::chrono::steady_clock::now();
  for (int i = 0; i < repeats; i++) {
    CHECK_OK(context->forward(five.data(), 1, c.num_layers, 1));
    CHECK_OK(context->sample(1, SamplingParams{}, nullptr, rows));
    context->truncate(length);
  }
  const double single = seconds_since(start) / repeats;
  std::printf("  result: llama1b_verify5_over_decode1 = %.2f (%.3f ms vs %.3f ms)\n", verify / single, verify * 1e3,
              single * 1e3);
}

}  // namespace
}  // namespace layerskip

#endif  // LAYERSKIP_HAVE_CUDA
