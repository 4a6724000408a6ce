// The CPU backend: weights stay in the mmap, activations in aligned host memory, ops run on a thread pool.
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <unordered_map>

#include "../core/backend.h"
#include "../core/safetensors.h"
#include "attention.h"
#include "../core/quant.h"
#include "cpu_features.h"
#include "embed.h"
#include "matmul.h"
#include "mlp.h"
#include "norm.h"
#include "rope.h"
#include "sampling.h"
#include "thread_pool.h"

namespace layerskip {

namespace {

class CpuBackend final : public Backend {
 public:
  CpuBackend(int threads, const CpuKernels& kernels) : kernels_(kernels), pool_(threads) {}

  std::string describe() const override {
    std::ostringstream text;
    text << "cpu (" << kernels_.name << ", " << pool_.size() << " thread" << (pool_.size() == 1 ? "" : "s") << ")";
    return text.str();
  }

  // Matrices are read in place (the mapping, or the model's quantized planes): their bytes are what "resident"
  // means here.
  size_t weight_upload_bytes(DType dtype, int rows, int cols) const override { return weight_bytes(dtype, rows, cols); }

  // Host memory is not reserved up front; the mapping pages in on demand.
  Status check_weights_fit(size_t bytes) override { return Status::ok(); }

  Status memory(BackendMemory* out) override {
    *out = BackendMemory();
    out->weight_bytes = weight_bytes_;
    out->buffer_bytes = buffer_bytes_;
    return Status::ok();
  }

  Status upload_weight(const Weight& host, const std::string& name, Weight* out) override {
    *out = host;  // zero copy: kernels read host memory in place
    weight_bytes_ += weight_upload_bytes(host.dtype, host.rows, host.cols);
    return Status::ok();
  }
  bool reads_host_weights() const override { return true; }

  Status upload_vector_f32(const TensorView& tensor, float** out) override {
    size_t count = size_t(tensor.element_count());
    LS_RETURN_IF_ERROR(allocate_aligned(count, out));
    for (size_t i = 0; i < count; i++) (*out)[i] = load_as_f32(tensor.data, tensor.dtype, i);
    weight_bytes_ += count * sizeof(float);
    return Status::ok();
  }

  Status alloc(size_t count, float** out) override {
    LS_RETURN_IF_ERROR(allocate_aligned(count, out));
    buffers_[*out] = count * sizeof(float);
    buffer_bytes_ += count * sizeof(float);
    return Status::ok();
  }

  void free(float* buffer) override {
    auto entry = buffers_.find(buffer);
    if (entry != buffers_.end()) {
      buffer_bytes_ -= entry->second;
      buffers_.erase(entry);
    }
    std::free(buffer);
  }

  Status copy_to_host(float* host_out, const float* buffer, size_t count) override {
    std::memcpy(host_out, buffer, count * sizeof(float));
    return Status::ok();
  }

  Status copy_from_host(float* buffer, const float* host_in, size_t count) override {
    std::memcpy(buffer, host_in, count * sizeof(float));
    return Status::ok();
  }

  void copy(float* out, const float* in, size_t count) override { std::memmove(out, in, count * sizeof(float)); }

  void embed(float* out, const int32_t* tokens, int n, const Weight& table) override {
    embed_cpu(out, tokens, n, table);
  }

  void rmsnorm(float* out, const float* in, const float* weight, int n, int dim, float eps) override {
    kernels_.rmsnorm(out, in, weight, n, dim, eps, pool_);
  }

  void matmul(float* out, const float* in, const Weight& weight, int n, int out_stride) override {
    kernels_.matmul(out, in, weight, n, out_stride, pool_);
  }

  void rope(float* vectors, int n, int row_stride, int num_heads, int head_dim, int start_pos,
            const float* cos_table, const float* sin_table) override {
    kernels_.rope(vectors, n, row_stride, num_heads, head_dim, start_pos, cos_table, sin_table);
  }

  void attention(float* out, const float* q, const float* k_cache, const float* v_cache, int n, int start_pos,
                 int num_heads, int num_kv_heads, int head_dim) override {
    kernels_.attention(out, q, k_cache, v_cache, n, start_pos, num_heads, num_kv_heads, head_dim, pool_);
  }

  void swiglu(float* out, const float* gate, const float* up, size_t count) override {
    kernels_.swiglu(out, gate, up, count, pool_);
  }

  void add(float* accumulate, const float* in, size_t count) override { add_cpu(accumulate, in, count, pool_); }

  void add_rmsnorm(float* residual, float* normed, const float* delta, const float* weight, int n, int dim,
                   float eps) override {
    kernels_.add_rmsnorm(residual, normed, delta, weight, n, dim, eps, pool_);
  }

  Status sample(SampledToken* out, const float* logits, int n, int vocab, const SamplingParams& params,
                const double* uniforms) override {
    for (int i = 0; i < n; i++) {
      out[i] = sample_row_cpu(logits + size_t(i) * vocab, vocab, params, uniforms ? uniforms[i] : 0.0);
    }
    return Status::ok();
  }

  Status make_speculative_sampler(int capacity, int vocab, std::unique_ptr<SpeculativeSampler>* out) override {
    *out = make_speculative_sampler_cpu(capacity, vocab);
    return Status::ok();
  }

 private:
  static Status allocate_aligned(size_t count, float** out) {
    size_t bytes = ((count * sizeof(float) + 63) / 64) * 64;
    void* memory = std::aligned_alloc(64, bytes == 0 ? 64 : bytes);
    if (memory == nullptr) return Status::error("out of host memory");
    *out = static_cast<float*>(memory);
    return Status::ok();
  }

  const CpuKernels& kernels_;
  mutable ThreadPool pool_;
  std::unordered_map<float*, size_t> buffers_;  // alloc()ed buffers → bytes
  size_t weight_bytes_ = 0;                     // mapped matrices + f32 norm copies
  size_t buffer_bytes_ = 0;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(int threads) {
  return std::unique_ptr<Backend>(new CpuBackend(threads, default_cpu_kernels()));
}

Status make_cpu_backend(int threads, const std::string& kernels, std::unique_ptr<Backend>* out) {
  const CpuKernels* chosen = nullptr;
  LS_RETURN_IF_ERROR(select_cpu_kernels(kernels, &chosen));
  out->reset(new CpuBackend(threads, *chosen));
  return Status::ok();
}

}  // namespace layerskip
