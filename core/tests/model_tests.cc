// Model::load and the forward pass on the CPU fixtures (`npm run fixtures` writes them): upload progress per tensor
// ending at the checkpoint's size, the memory report, the fit check refusing before any upload, and the fused
// residual add + norm giving the same logits bits as a separate add then norm through a whole model.
#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "../context.h"
#include "../safetensors.h"
#include "fixture_model.h"
#include "test_framework.h"

using namespace layerskip;

namespace {

// The CPU backend with two knobs: add_rmsnorm as add() then rmsnorm(), and a weight-memory limit for the fit check.
// Counts uploads into *upload_count (which outlives the backend, since a failed load destroys it).
class InstrumentedBackend final : public Backend {
 public:
  InstrumentedBackend(bool separate_add_norm, size_t memory_limit, int* upload_count)
      : inner_(make_cpu_backend(1)), separate_add_norm_(separate_add_norm), memory_limit_(memory_limit),
        upload_count_(upload_count) {}

  std::string describe() const override { return "instrumented " + inner_->describe(); }
  size_t weight_upload_bytes(DType dtype, int rows, int cols) const override {
    return inner_->weight_upload_bytes(dtype, rows, cols);
  }
  Status check_weights_fit(size_t bytes) override {
    if (bytes > memory_limit_) return Status::error("test device: weights need " + std::to_string(bytes) + " bytes");
    return inner_->check_weights_fit(bytes);
  }
  Status memory(BackendMemory* out) override { return inner_->memory(out); }
  Status upload_weight(const Weight& host, const std::string& name, Weight* out) override {
    (*upload_count_)++;
    return inner_->upload_weight(host, name, out);
  }
  bool reads_host_weights() const override { return inner_->reads_host_weights(); }
  Status upload_vector_f32(const TensorView& tensor, float** out) override {
    (*upload_count_)++;
    return inner_->upload_vector_f32(tensor, out);
  }
  Status alloc(size_t count, float** out) override { return inner_->alloc(count, out); }
  void free(float* buffer) override { inner_->free(buffer); }
  Status copy_to_host(float* host_out, const float* buffer, size_t count) override {
    return inner_->copy_to_host(host_out, buffer, count);
  }
  Status copy_from_host(float* buffer, const float* host_in, size_t count) override {
    return inner_->copy_from_host(buffer, host_in, count);
  }
  void copy(float* out, const float* in, size_t count) override { inner_->copy(out, in, count); }
  void embed(float* out, const int32_t* tokens, int n, const Weight& table) override { inner_->embed(out, tokens, n, table); }
  void rmsnorm(float* out, const float* in, const float* weight, int n, int dim, float eps) override {
    inner_->rmsnorm(out, in, weight, n, dim, eps);
  }
  void matmul(float* out, const float* in, const Weight& weight, int n, int out_stride) override {
    inner_->matmul(out, in, weight, n, out_stride);
  }
  void rope(float* vectors, int n, int row_stride, int num_heads, int head_dim, int start_pos, const float* cos_table,
            const float* sin_table) override {
    inner_->rope(vectors, n, row_stride, num_heads, head_dim, start_pos, cos_table, sin_table);
  }
  void attention(float* out, const float* q, const float* k_cache, const float* v_cache, int n, int start_pos,
                 int num_heads, int num_kv_heads, int head_dim) override {
    inner_->attention(out, q, k_cache, v_cache, n, start_pos, num_heads, num_kv_heads, head_dim);
  }
  void swiglu(float* out, const float* gate, const float* up, size_t count) override { inner_->swiglu(out, gate, up, count); }
  void add(float* accumulate, const float* in, size_t count) override { inner_->add(accumulate, in, count); }
  void add_rmsnorm(float* residual, float* normed, const float* delta, const float* weight, int n, int dim,
                   float eps) override {
    if (!separate_add_norm_) return inner_->add_rmsnorm(residual, normed, delta, weight, n, dim, eps);
    inner_->add(residual, delta, size_t(n) * dim);
    inner_->rmsnorm(normed, residual, weight, n, dim, eps);
  }
  Status sample(SampledToken* out, const float* logits, int n, int vocab, const SamplingParams& params,
                const double* uniforms) override {
    return inner_->sample(out, logits, n, vocab, params, uniforms);
  }
  Status make_speculative_sampler(int capacity, int vocab, std::unique_ptr<SpeculativeSampler>* out) override {
    return inner_->make_speculative_sampler(capacity, vocab, out);
  }

 private:
  std::unique_ptr<Backend> inner_;
  const bool separate_add_norm_;
  const size_t memory_limit_;
  int* upload_count_;
};

size_t checkpoint_bytes(const std::string& name) {
  std::unique_ptr<TensorStore> store;
  CHECK_OK(TensorStore::open_dir("test/fixtures/models/" + name, &store));
  return store ? store->total_bytes() : 0;
}

// Logits (count, vocab) of a prefill of `count` tokens, then of `count` single-token decode steps.
std::vector<float> prefill_and_decode_logits(const Model& model, int count) {
  const int vocab = model.config().vocab_size;
  std::unique_ptr<Context> context;
  ContextOptions options;
  options.context_length = 2 * count;
  CHECK_OK(Context::create(model, options, &context));
  std::vector<int32_t> tokens(count);
  for (int i = 0; i < count; i++) tokens[i] = int32_t((i * 7919 + 5) % vocab);
  std::vector<float> logits(size_t(2 * count) * vocab);
  if (!context) return logits;
  CHECK_OK(context->forward(tokens.data(), count, model.config().num_layers, count));
  CHECK_OK(context->read_logits(logits.data(), count));
  for (int i = 0; i < count; i++) {
    CHECK_OK(context->forward(&tokens[i], 1, model.config().num_layers, 1));
    CHECK_OK(context->read_logits(logits.data() + size_t(count + i) * vocab, 1));
  }
  return logits;
}

}  // namespace

TEST(model_load_reports_progress_per_tensor) {
  for (const char* name : {"tiny-sharded", "tiny-llama3-rope"}) {
    std::vector<std::pair<uint64_t, uint64_t>> calls;
    const std::thread::id caller = std::this_thread::get_id();
    bool on_loading_thread = true;
    ModelLoadOptions options;
    options.on_progress = [&](uint64_t uploaded_bytes, uint64_t total_bytes) {
      calls.push_back({uploaded_bytes, total_bytes});
      on_loading_thread = on_loading_thread && std::this_thread::get_id() == caller;
      return true;
    };
    std::unique_ptr<Model> model = testing::load_fixture_model(name, make_cpu_backend(1), options);
    if (!model) return;
    const ModelConfig& c = model->config();
    // One call per uploaded tensor: embeddings, 9 per layer, the final norm, and lm_head unless tied.
    const size_t tensors = 1 + 9 * size_t(c.num_layers) + 1 + (c.tie_word_embeddings ? 0 : 1);
    CHECK_MSG(calls.size() == tensors, name << ": " << calls.size() << " progress calls for " << tensors << " tensors");
    CHECK(on_loading_thread);
    const uint64_t total = checkpoint_bytes(name);
    for (size_t i = 0; i < calls.size(); i++) {
      CHECK_MSG(calls[i].second == total, name << ": call " << i << " total " << calls[i].second << " != " << total);
      CHECK_MSG(calls[i].first > (i == 0 ? 0 : calls[i - 1].first), name << ": call " << i << " does not increase");
    }
    CHECK(!calls.empty() && calls.back().first == total);
  }
}

TEST(model_load_reports_resident_weight_bytes) {
  std::unique_ptr<Model> model = testing::load_fixture_model("tiny-gqa-bf16");
  if (!model) return;
  const ModelConfig& c = model->config();
  const BackendMemory& memory = model->memory_after_load();
  // The CPU reads matrices from the mapping (their stored bytes) and holds norm weights as f32 copies.
  const size_t norm_bytes = (2 * size_t(c.num_layers) + 1) * c.hidden_size * sizeof(float);
  const size_t embed_bytes = size_t(c.vocab_size) * c.hidden_size * dtype_size(model->weights().embed_tokens.dtype);
  const size_t expected = model->weight_bytes_per_layer() * c.num_layers + embed_bytes + norm_bytes +
                          (c.tie_word_embeddings ? 0 : model->head_weight_bytes());
  CHECK_MSG(memory.weight_bytes == expected, memory.weight_bytes << " resident weight bytes, expected " << expected);
  CHECK(!memory.has_device_memory && memory.device_free_bytes == 0 && memory.device_total_bytes == 0);
}

TEST(model_load_refuses_weights_that_do_not_fit_before_uploading) {
  const std::string dir = "test/fixtures/models/tiny-gqa-bf16";
  struct stat info;
  if (stat(dir.c_str(), &info) != 0) {
    testing::skip(dir + " missing; run `npm run fixtures` from the repository root");
    return;
  }
  int uploads = 0, progress_calls = 0;
  ModelLoadOptions options;
  options.on_progress = [&](uint64_t, uint64_t) {
    progress_calls++;
    return true;
  };
  std::unique_ptr<Model> model;
  Status status = Model::load(dir, std::make_unique<InstrumentedBackend>(false, 1000, &uploads), &model, options);
  CHECK_MSG(!status.is_ok() && status.message().find("test device: weights need") != std::string::npos,
            status.message());
  CHECK(model == nullptr && uploads == 0 && progress_calls == 0);
}

TEST(model_load_stops_when_progress_returns_false) {
  int calls = 0;
  ModelLoadOptions options;
  options.on_progress = [&](uint64_t, uint64_t) { return ++calls < 3; };
  const std::string dir = "test/fixtures/models/tiny-gqa-bf16";
  struct stat info;
  if (stat(dir.c_str(), &info) != 0) {
    testing::skip(dir + " missing; run `npm run fixtures` from the repository root");
    return;
  }
  std::unique_ptr<Model> model;
  Status status = Model::load(dir, make_cpu_backend(1), &model, options);
  CHECK_MSG(!status.is_ok() && status.message().find("loading was cancelled") != std::string::npos, status.message());
  CHECK(model == nullptr && calls == 3);
}

TEST(model_fused_add_rmsnorm_gives_the_same_logits_bits) {
  for (const char* name : {"tiny-gqa-bf16", "tiny-mha-f32", "tiny-deep"}) {
    int uploads = 0;
    std::unique_ptr<Model> fused = testing::load_fixture_model(name, std::make_unique<InstrumentedBackend>(false, SIZE_MAX, &uploads));
    std::unique_ptr<Model> separate = testing::load_fixture_model(name, std::make_unique<InstrumentedBackend>(true, SIZE_MAX, &uploads));
    if (!fused || !separate) return;
    const std::vector<float> expected = prefill_and_decode_logits(*separate, 9);
    const std::vector<float> actual = prefill_and_decode_logits(*fused, 9);
    CHECK_MSG(std::memcmp(actual.data(), expected.data(), expected.size() * sizeof(float)) == 0,
              name << ": logits with the fused add + norm differ from add then norm");
  }
}
