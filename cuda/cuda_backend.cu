// CudaBackend: the Backend interface on one CUDA device. Memory ops and the adapter from the interface's void
// ops to the Status-returning launchers in cuda/*.cu. A failed launch is kept as the backend's sticky error and
// returned by the next Status-returning call (sample, copy_to_host, alloc, ...); after one, every call reports
// it, since the device state can no longer be trusted.
//
// Memory: weights are uploaded once, one copy per matrix from host memory (the mmap, or the quantized planes the
// model holds), keeping dtype: plain rows padded to padded_cols() (common.cuh), quantized planes as they are (one
// allocation per plane), after check_weights_fit() compared their total with the free device memory.
// Kernel workspaces (matmul staging, attention partials, sampling weights, token ids) grow on demand — only the
// first prefill or sampled step pays for the allocation.
#include "cuda_backend.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "../core/quant.h"
#include "../core/safetensors.h"
#include "attention.cuh"
#include "common.cuh"
#include "embed.cuh"
#include "matmul.cuh"
#include "mlp.cuh"
#include "norm.cuh"
#include "rope.cuh"
#include "sampling.cuh"

#ifndef LAYERSKIP_CUDA_ARCHS_STRING
#define LAYERSKIP_CUDA_ARCHS_STRING "unknown"
#endif

namespace layerskip {

namespace {

constexpr int kMinComputeMajor = 8;

// Its only use: asking the runtime whether this build carries code the device can run.
__global__ void probe_kernel() {}

std::string mib(size_t bytes) { return std::to_string((bytes + (1 << 19)) >> 20) + " MiB"; }

std::string gib(size_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f GiB", double(bytes) / double(1ull << 30));
  return text;
}

std::string device_label(int index, const std::string& name) {
  return "cuda:" + std::to_string(index) + (name.empty() ? "" : " (" + name + ")");
}

// The kernels' tag for a matrix dtype; false for dtypes no kernel reads as a matrix (I8, U8: plane element types).
bool weight_type(DType dtype, WeightType* out) {
  switch (dtype) {
    case DType::F32: *out = WeightType::F32; return true;
    case DType::F16: *out = WeightType::F16; return true;
    case DType::BF16: *out = WeightType::BF16; return true;
    case DType::Q8: *out = WeightType::Q8; return true;
    case DType::Q4: *out = WeightType::Q4; return true;
    case DType::I8: case DType::U8: break;
  }
  return false;
}

// The tag of an uploaded matrix (upload_weight() admitted only dtypes weight_type() maps).
WeightType uploaded_weight_type(DType dtype) {
  WeightType type = WeightType::F32;
  weight_type(dtype, &type);
  return type;
}

class CudaBackend final : public Backend {
 public:
  CudaBackend(int device, std::string name, int major, int minor, size_t total_memory, cudaStream_t stream)
      : device_(device), name_(std::move(name)), major_(major), minor_(minor), total_memory_(total_memory),
        stream_(stream) {}

  ~CudaBackend() override {
    cudaSetDevice(device_);
    cudaStreamSynchronize(stream_);
    for (void* weight : weights_) cudaFree(weight);
    for (auto& entry : buffers_) cudaFree(entry.first);
    for (Scratch* scratch : {&matmul_scratch_, &attention_scratch_, &sampling_scratch_, &token_scratch_,
                             &uniform_scratch_, &result_scratch_}) {
      cudaFree(scratch->data);
    }
    cudaStreamDestroy(stream_);
  }

  std::string describe() const override {
    return device_label(device_, name_) + ", sm_" + std::to_string(major_) + std::to_string(minor_) + ", " +
           mib(total_memory_) + ", weights " + mib(weight_bytes_);
  }

  // --- memory ---------------------------------------------------------------------------------------------------

  size_t weight_upload_bytes(DType dtype, int rows, int cols) const override {
    if (is_quantized(dtype)) return weight_bytes(dtype, rows, cols);
    return size_t(rows) * size_t(padded_cols(cols)) * dtype_size(dtype);
  }

  Status check_weights_fit(size_t bytes) override {
    LS_RETURN_IF_ERROR(activate());
    size_t free_bytes = 0, total_bytes = 0;
    LS_CUDA_RETURN_IF_ERROR(cudaMemGetInfo(&free_bytes, &total_bytes), "reading free device memory");
    if (bytes <= free_bytes) return Status::ok();
    return Status::error(device_label(device_, name_) + ": the model needs " + gib(bytes) + " for its weights, the GPU has " +
                         gib(free_bytes) + " free (of " + gib(total_bytes) +
                         "). Free GPU memory (other processes may hold it), use a smaller model or device \"cpu\".");
  }

  Status memory(BackendMemory* out) override {
    LS_RETURN_IF_ERROR(activate());
    *out = BackendMemory();
    out->weight_bytes = weight_bytes_;
    out->buffer_bytes = buffer_bytes_;
    for (const Scratch* scratch : {&matmul_scratch_, &attention_scratch_, &sampling_scratch_, &token_scratch_,
                                   &uniform_scratch_, &result_scratch_}) {
      out->scratch_bytes += scratch->bytes;
    }
    out->has_device_memory = true;
    LS_CUDA_RETURN_IF_ERROR(cudaMemGetInfo(&out->device_free_bytes, &out->device_total_bytes),
                            "reading free device memory");
    return Status::ok();
  }

  Status upload_weight(const Weight& host, const std::string& name, Weight* out) override {
    LS_RETURN_IF_ERROR(activate());
    const std::string label = "tensor \"" + name + "\"";
    WeightType type;
    if (!weight_type(host.dtype, &type)) {
      return Status::error(label + " has dtype " + dtype_name(host.dtype) + ", which the CUDA backend cannot use as "
                           "a weight matrix");
    }
    const bool quantized = is_quantized(host.dtype);
    const bool q4 = host.dtype == DType::Q4;
    if (host.rows < 1 || host.cols < 1 || host.data == nullptr ||
        (quantized && (host.cols % kQuantBlock != 0 || host.scales == nullptr || (q4 && host.mins == nullptr)))) {
      return Status::error(label + ": invalid " + dtype_name(host.dtype) + " matrix [" + std::to_string(host.rows) +
                           ", " + std::to_string(host.cols) + "]" +
                           (quantized ? " (columns must be a multiple of 32, with its scale planes)" : ""));
    }
    if (quantized) {
      const size_t scale_bytes = quant_scale_count(host.rows, host.cols) * sizeof(uint16_t);
      void* qs = nullptr;
      void* scales = nullptr;
      void* mins = nullptr;
      LS_RETURN_IF_ERROR(upload_plane(&qs, host.data, quant_qs_bytes(host.dtype, host.rows, host.cols), label));
      LS_RETURN_IF_ERROR(upload_plane(&scales, host.scales, scale_bytes, label + " (scales)"));
      if (q4) LS_RETURN_IF_ERROR(upload_plane(&mins, host.mins, scale_bytes, label + " (offsets)"));
      *out = host;
      out->data = qs;
      out->scales = static_cast<const uint16_t*>(scales);
      out->mins = static_cast<const uint16_t*>(mins);
      return Status::ok();
    }

    const size_t element = dtype_size(host.dtype);
    const size_t padded = size_t(padded_cols(host.cols));
    const size_t bytes = weight_upload_bytes(host.dtype, host.rows, host.cols);
    void* device_copy = nullptr;
    LS_RETURN_IF_ERROR(device_malloc(&device_copy, bytes, label));
    // On the backend's stream, then wait: the copy is complete before any kernel or the caller moves on.
    cudaError_t error;
    if (padded == size_t(host.cols)) {
      error = cudaMemcpyAsync(device_copy, host.data, bytes, cudaMemcpyHostToDevice, stream_);
    } else {
      error = cudaMemsetAsync(device_copy, 0, bytes, stream_);
      if (error == cudaSuccess) {
        error = cudaMemcpy2DAsync(device_copy, padded * element, host.data, size_t(host.cols) * element,
                                  size_t(host.cols) * element, size_t(host.rows), cudaMemcpyHostToDevice, stream_);
      }
    }
    if (error == cudaSuccess) error = cudaStreamSynchronize(stream_);
    if (error != cudaSuccess) {
      cudaFree(device_copy);
      return Status::error(device_label(device_, name_) + ": uploading " + label + " failed: " +
                           cudaGetErrorString(error));
    }
    weights_.push_back(device_copy);
    weight_bytes_ += bytes;
    *out = host;
    out->data = device_copy;
    out->scales = nullptr;
    out->mins = nullptr;
    return Status::ok();
  }

  bool reads_host_weights() const override { return false; }

  Status upload_vector_f32(const TensorView& tensor, float** out) override {
    LS_RETURN_IF_ERROR(activate());
    size_t count = 1;
    for (int64_t extent : tensor.shape) count *= size_t(extent);
    if (tensor.data == nullptr || tensor.byte_size != count * dtype_size(tensor.dtype)) {
      return Status::error(tensor.file + ": tensor \"" + tensor.name + "\" has an inconsistent size");
    }
    std::vector<float> host(count);
    for (size_t i = 0; i < count; i++) host[i] = load_as_f32(tensor.data, tensor.dtype, i);
    void* device_copy = nullptr;
    LS_RETURN_IF_ERROR(device_malloc(&device_copy, std::max<size_t>(count, 1) * sizeof(float), "tensor \"" + tensor.name + "\""));
    cudaError_t error = cudaMemcpyAsync(device_copy, host.data(), count * sizeof(float), cudaMemcpyHostToDevice, stream_);
    if (error == cudaSuccess) error = cudaStreamSynchronize(stream_);
    if (error != cudaSuccess) {
      cudaFree(device_copy);
      return cuda_status(error, ("uploading tensor \"" + tensor.name + "\"").c_str());
    }
    weights_.push_back(device_copy);
    weight_bytes_ += count * sizeof(float);
    *out = static_cast<float*>(device_copy);
    return Status::ok();
  }

  Status alloc(size_t count, float** out) override {
    LS_RETURN_IF_ERROR(activate());
    const size_t bytes = std::max<size_t>(count, 1) * sizeof(float);
    void* buffer = nullptr;
    LS_RETURN_IF_ERROR(device_malloc(&buffer, bytes, "a buffer"));
    buffers_[buffer] = bytes;
    buffer_bytes_ += bytes;
    *out = static_cast<float*>(buffer);
    return Status::ok();
  }

  void free(float* buffer) override {
    if (buffer == nullptr) return;
    auto entry = buffers_.find(buffer);
    if (entry == buffers_.end()) return;  // not ours: never hand it to cudaFree
    cudaSetDevice(device_);
    cudaStreamSynchronize(stream_);  // kernels still queued may read it
    cudaFree(buffer);
    buffer_bytes_ -= entry->second;
    buffers_.erase(entry);
  }

  Status copy_to_host(float* host_out, const float* buffer, size_t count) override {
    LS_RETURN_IF_ERROR(activate());
    LS_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(host_out, buffer, count * sizeof(float), cudaMemcpyDeviceToHost, stream_),
                            "copy to host");
    LS_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_), "copy to host (kernels before it)");
    return sticky_error();
  }

  Status copy_from_host(float* buffer, const float* host_in, size_t count) override {
    LS_RETURN_IF_ERROR(activate());
    LS_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(buffer, host_in, count * sizeof(float), cudaMemcpyHostToDevice, stream_),
                            "copy from host");
    LS_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_), "copy from host");
    return sticky_error();
  }

  void copy(float* out, const float* in, size_t count) override {
    if (!begin_op()) return;
    record(cuda_status(cudaMemcpyAsync(out, in, count * sizeof(float), cudaMemcpyDeviceToDevice, stream_), "copy"));
  }

  // --- ops ------------------------------------------------------------------------------------------------------

  void embed(float* out, const int32_t* tokens, int n, const Weight& table) override {
    if (!begin_op()) return;
    if (!record(ensure(&token_scratch_, size_t(std::max(n, 1)) * sizeof(int32_t), "token ids"))) return;
    int32_t* device_tokens = static_cast<int32_t*>(token_scratch_.data);
    // From pageable memory: the runtime stages the ids before returning, so the caller may reuse `tokens`.
    if (!record(cuda_status(cudaMemcpyAsync(device_tokens, tokens, size_t(n) * sizeof(int32_t),
                                            cudaMemcpyHostToDevice, stream_), "copy token ids"))) {
      return;
    }
    record(embed_cuda(out, device_tokens, n, table.data, table.scales, table.mins, uploaded_weight_type(table.dtype),
                      table.rows, table.cols, stream_));
  }

  void rmsnorm(float* out, const float* in, const float* weight, int n, int dim, float eps) override {
    if (!begin_op()) return;
    record(rmsnorm_cuda(out, in, weight, n, dim, eps, stream_));
  }

  void matmul(float* out, const float* in, const Weight& weight, int n, int out_stride) override {
    if (!begin_op()) return;
    const WeightType type = uploaded_weight_type(weight.dtype);
    const size_t workspace_bytes = matmul_workspace_bytes(n, weight.cols, type);
    if (workspace_bytes > 0 && !record(ensure(&matmul_scratch_, workspace_bytes, "matmul staging"))) return;
    record(matmul_cuda(out, in, weight.data, weight.scales, weight.mins, type, weight.rows, weight.cols, n, out_stride,
                       matmul_scratch_.data, matmul_scratch_.bytes, stream_));
  }

  void rope(float* vectors, int n, int row_stride, int num_heads, int head_dim, int start_pos, const float* cos_table,
            const float* sin_table) override {
    if (!begin_op()) return;
    record(rope_cuda(vectors, n, row_stride, num_heads, head_dim, start_pos, cos_table, sin_table, stream_));
  }

  void attention(float* out, const float* q, const float* k_cache, const float* v_cache, int n, int start_pos,
                 int num_heads, int num_kv_heads, int head_dim) override {
    if (!begin_op()) return;
    const size_t floats = attention_workspace_floats(n, start_pos, num_heads, head_dim);
    if (!record(ensure(&attention_scratch_, floats * sizeof(float), "attention partials"))) return;
    record(attention_cuda(out, q, k_cache, v_cache, n, start_pos, num_heads, num_kv_heads, head_dim,
                          static_cast<float*>(attention_scratch_.data), attention_scratch_.bytes / sizeof(float),
                          stream_));
  }

  void swiglu(float* out, const float* gate, const float* up, size_t count) override {
    if (!begin_op()) return;
    record(swiglu_cuda(out, gate, up, count, stream_));
  }

  void add(float* accumulate, const float* in, size_t count) override {
    if (!begin_op()) return;
    record(add_cuda(accumulate, in, count, stream_));
  }

  void add_rmsnorm(float* residual, float* normed, const float* delta, const float* weight, int n, int dim,
                   float eps) override {
    if (!begin_op()) return;
    record(add_rmsnorm_cuda(residual, normed, delta, weight, n, dim, eps, stream_));
  }

  Status sample(SampledToken* out, const float* logits, int n, int vocab, const SamplingParams& params,
                const double* uniforms) override {
    LS_RETURN_IF_ERROR(activate());
    LS_RETURN_IF_ERROR(sticky_error());
    if (n < 1) return Status::error("sample: no rows");
    const bool greedy = params.temperature <= 0.0f;
    if (!greedy && uniforms == nullptr) return Status::error("sample: temperature sampling needs uniforms");
    LS_RETURN_IF_ERROR(ensure(&result_scratch_, size_t(n) * sizeof(SampledToken), "sampling results"));
    const double* device_uniforms = nullptr;
    float* weights = nullptr;
    size_t weight_floats = 0;
    if (!greedy) {
      LS_RETURN_IF_ERROR(ensure(&uniform_scratch_, size_t(n) * sizeof(double), "sampling uniforms"));
      LS_RETURN_IF_ERROR(ensure(&sampling_scratch_, sampling_workspace_floats(n, vocab) * sizeof(float), "sampling weights"));
      LS_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(uniform_scratch_.data, uniforms, size_t(n) * sizeof(double),
                                              cudaMemcpyHostToDevice, stream_), "copy uniforms");
      device_uniforms = static_cast<const double*>(uniform_scratch_.data);
      weights = static_cast<float*>(sampling_scratch_.data);
      weight_floats = sampling_scratch_.bytes / sizeof(float);
    }
    SampledToken* device_results = static_cast<SampledToken*>(result_scratch_.data);
    LS_RETURN_IF_ERROR(sample_cuda(device_results, logits, n, vocab, params, device_uniforms, weights, weight_floats, stream_));
    LS_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(out, device_results, size_t(n) * sizeof(SampledToken),
                                            cudaMemcpyDeviceToHost, stream_), "copy sampled tokens");
    LS_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_), "sampling (or a kernel before it)");
    return Status::ok();
  }

  Status make_speculative_sampler(int capacity, int vocab, std::unique_ptr<SpeculativeSampler>* out) override {
    LS_RETURN_IF_ERROR(activate());
    if (capacity < 1 || vocab < 1) return Status::error("speculative sampler: invalid capacity or vocabulary");
    auto sampler = std::make_unique<Sampler>(this, capacity, vocab);
    LS_RETURN_IF_ERROR(
        device_malloc(&sampler->draft_logits_, size_t(capacity) * size_t(vocab) * sizeof(float), "draft logits"));
    LS_RETURN_IF_ERROR(device_malloc(&sampler->draft_tokens_, size_t(capacity) * sizeof(int32_t), "draft tokens"));
    sampler->update_accounting();
    *out = std::move(sampler);
    return Status::ok();
  }

 private:
  struct Scratch {
    void* data = nullptr;
    size_t bytes = 0;
  };

  // Speculative sampling for one context: each draft row's logits stay on the device (draft_logits_) until the
  // step's verification rebuilds its distribution there, so no logits row ever crosses to the host.
  class Sampler final : public SpeculativeSampler {
   public:
    Sampler(CudaBackend* backend, int capacity, int vocab) : backend_(backend), capacity_(capacity), vocab_(vocab) {}
    ~Sampler() override {
      backend_->activate();
      cudaStreamSynchronize(backend_->stream_);
      for (void* buffer : {draft_logits_, draft_tokens_, uniforms_.data, results_.data, workspace_.data}) cudaFree(buffer);
      backend_->buffer_bytes_ -= accounted_bytes_;
    }

    // Counts this sampler's device memory in the backend's buffer bytes (BackendMemory), as it grows.
    void update_accounting() {
      const size_t bytes = (draft_logits_ ? size_t(capacity_) * size_t(vocab_) * sizeof(float) : 0) +
                           (draft_tokens_ ? size_t(capacity_) * sizeof(int32_t) : 0) + uniforms_.bytes +
                           results_.bytes + workspace_.bytes;
      backend_->buffer_bytes_ += bytes - accounted_bytes_;
      accounted_bytes_ = bytes;
    }

    Status sample_draft(SampledToken* out, const float* logits, const SamplingParams& params, double uniform,
                        int draft_row) override {
      if (draft_row < 0 || draft_row >= capacity_) {
        return Status::error("sample_draft: draft row " + std::to_string(draft_row) + " outside the sampler's " +
                             std::to_string(capacity_) + " rows");
      }
      LS_RETURN_IF_ERROR(backend_->activate());
      LS_RETURN_IF_ERROR(backend_->sticky_error());
      // Queued before sample()'s draw, whose synchronization then covers the copy too.
      LS_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(static_cast<float*>(draft_logits_) + size_t(draft_row) * vocab_, logits,
                                              size_t(vocab_) * sizeof(float), cudaMemcpyDeviceToDevice,
                                              backend_->stream_),
                              "keeping draft logits");
      return backend_->sample(out, logits, 1, vocab_, params, &uniform);
    }

    Status verify(VerifyRow* out, const float* logits, int row_begin, int n, int drafted, const int32_t* draft_tokens,
                  const SamplingParams& params, const double* uniforms) override {
      if (drafted > capacity_) return Status::error("verify: more drafts than sampler rows");
      LS_RETURN_IF_ERROR(backend_->activate());
      LS_RETURN_IF_ERROR(backend_->sticky_error());
      const size_t workspace_floats = verify_sampled_workspace_floats(n, vocab_);
      LS_RETURN_IF_ERROR(backend_->ensure(&uniforms_, size_t(n) * sizeof(double), "verification uniforms"));
      LS_RETURN_IF_ERROR(backend_->ensure(&results_, size_t(n) * sizeof(VerifyRow), "verification results"));
      LS_RETURN_IF_ERROR(backend_->ensure(&workspace_, workspace_floats * sizeof(float), "verification weights"));
      update_accounting();
      cudaStream_t stream = backend_->stream_;
      if (drafted > 0) {
        LS_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(draft_tokens_, draft_tokens, size_t(drafted) * sizeof(int32_t),
                                                cudaMemcpyHostToDevice, stream), "copy draft tokens");
      }
      LS_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(uniforms_.data, uniforms, size_t(n) * sizeof(double),
                                              cudaMemcpyHostToDevice, stream), "copy verification uniforms");
      VerifyRow* device_rows = static_cast<VerifyRow*>(results_.data);
      LS_RETURN_IF_ERROR(verify_sampled_cuda(device_rows, logits, static_cast<const float*>(draft_logits_),
                                             static_cast<const int32_t*>(draft_tokens_), row_begin, n, drafted, vocab_,
                                             params, static_cast<const double*>(uniforms_.data),
                                             static_cast<float*>(workspace_.data), workspace_floats, stream));
      LS_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(out, device_rows, size_t(n) * sizeof(VerifyRow), cudaMemcpyDeviceToHost,
                                              stream), "copy verified rows");
      LS_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream), "verification (or a kernel before it)");
      return Status::ok();
    }

   private:
    friend class CudaBackend;
    CudaBackend* const backend_;
    const int capacity_, vocab_;
    void* draft_logits_ = nullptr;  // (capacity, vocab) f32: the logits each kept draft row was sampled from
    void* draft_tokens_ = nullptr;  // (capacity) int32
    Scratch uniforms_;              // (n) doubles
    Scratch results_;               // (n) VerifyRow
    Scratch workspace_;             // (n, 2, vocab) f32 verify and draft weights
    size_t accounted_bytes_ = 0;    // what update_accounting() last added to the backend's buffer bytes
  };

  Status activate() { return cuda_status(cudaSetDevice(device_), "select device"); }

  Status sticky_error() const { return error_.empty() ? Status::ok() : Status::error(error_); }

  // Keeps the first failure; true when `status` is ok.
  bool record(const Status& status) {
    if (status.is_ok()) return true;
    if (error_.empty()) error_ = device_label(device_, name_) + ": " + status.message();
    return false;
  }

  // Common entry of the void ops: select the device, and do nothing once an error is pending.
  bool begin_op() { return record(activate()) && error_.empty(); }

  // Copies `bytes` of host memory into a new weight allocation (counted in weight_bytes_, freed with the backend).
  Status upload_plane(void** out, const void* host, size_t bytes, const std::string& what) {
    LS_RETURN_IF_ERROR(device_malloc(out, bytes, what));
    cudaError_t error = cudaMemcpyAsync(*out, host, bytes, cudaMemcpyHostToDevice, stream_);
    if (error == cudaSuccess) error = cudaStreamSynchronize(stream_);
    if (error != cudaSuccess) {
      cudaFree(*out);
      *out = nullptr;
      return Status::error(device_label(device_, name_) + ": uploading " + what + " failed: " +
                           cudaGetErrorString(error));
    }
    weights_.push_back(*out);
    weight_bytes_ += bytes;
    return Status::ok();
  }

  Status device_malloc(void** out, size_t bytes, const std::string& what) {
    cudaError_t error = cudaMalloc(out, bytes);
    if (error == cudaSuccess) return Status::ok();
    cudaGetLastError();  // allocation failures are not sticky; clear it
    size_t free_bytes = 0, total_bytes = 0;
    cudaMemGetInfo(&free_bytes, &total_bytes);
    if (error == cudaErrorMemoryAllocation) {
      return Status::error(device_label(device_, name_) + " is out of memory allocating " + mib(bytes) + " for " +
                           what + " (" + mib(free_bytes) + " free of " + mib(total_bytes) + "; this model holds " +
                           mib(weight_bytes_) + " of weights and " + mib(buffer_bytes_) +
                           " of buffers). Try a smaller context length, a smaller model or the CPU backend.");
    }
    return cuda_status(error, ("allocating " + mib(bytes) + " for " + what).c_str());
  }

  // Grows `scratch` to at least `bytes` (rounded up to 1 MiB). Waits for queued kernels before freeing.
  Status ensure(Scratch* scratch, size_t bytes, const char* what) {
    if (bytes <= scratch->bytes) return Status::ok();
    const size_t rounded = (bytes + (1 << 20) - 1) / (1 << 20) * (1 << 20);
    if (scratch->data != nullptr) {
      LS_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_), "growing a workspace");
      cudaFree(scratch->data);
      scratch->data = nullptr;
      scratch->bytes = 0;
    }
    LS_RETURN_IF_ERROR(device_malloc(&scratch->data, rounded, what));
    scratch->bytes = rounded;
    return Status::ok();
  }

  const int device_;
  const std::string name_;
  const int major_, minor_;
  const size_t total_memory_;
  cudaStream_t stream_;
  std::string error_;                             // first failure of a void op; empty when none
  std::vector<void*> weights_;                    // device copies of weights (each plane) and norm vectors
  std::unordered_map<void*, size_t> buffers_;     // alloc()ed buffers → bytes
  size_t weight_bytes_ = 0;
  size_t buffer_bytes_ = 0;
  Scratch matmul_scratch_;     // (n, padded cols) 16-bit activations for the tiled matmul
  Scratch attention_scratch_;  // per (query, head, chunk) partial softmax state
  Scratch sampling_scratch_;   // (n, vocab) tempered weights
  Scratch token_scratch_;      // (n) token ids for embed
  Scratch uniform_scratch_;    // (n) doubles
  Scratch result_scratch_;     // (n) SampledToken
};

// Shared checks of cuda_device_info and make_cuda_backend.
Status probe(int device_index, CudaDeviceInfo* info) {
  *info = CudaDeviceInfo();
  info->device_index = device_index;
  int count = 0;
  cudaError_t error = cudaGetDeviceCount(&count);
  if (error == cudaErrorNoDevice || (error == cudaSuccess && count == 0)) {
    cudaGetLastError();
    return Status::error("no CUDA device found (the NVIDIA driver reports none)");
  }
  if (error == cudaErrorInsufficientDriver) {
    cudaGetLastError();
    return Status::error("the NVIDIA driver is missing or too old for this build (CUDA runtime " +
                         std::to_string(CUDART_VERSION / 1000) + "." + std::to_string(CUDART_VERSION % 1000 / 10) +
                         "); install or update the driver, or use the CPU backend");
  }
  if (error != cudaSuccess) {
    cudaGetLastError();
    return Status::error(std::string("cannot query CUDA devices: ") + cudaGetErrorString(error));
  }
  info->device_count = count;
  if (device_index < 0 || device_index >= count) {
    return Status::error("cuda:" + std::to_string(device_index) + " does not exist (" + std::to_string(count) +
                         " CUDA device" + (count == 1 ? "" : "s") + " found)");
  }
  cudaDeviceProp properties;
  LS_CUDA_RETURN_IF_ERROR(cudaGetDeviceProperties(&properties, device_index), "reading device properties");
  info->name = properties.name;
  info->compute_major = properties.major;
  info->compute_minor = properties.minor;
  info->total_memory = properties.totalGlobalMem;
  const std::string label = device_label(device_index, info->name);
  if (properties.major < kMinComputeMajor) {
    return Status::error(label + " has compute capability " + std::to_string(properties.major) + "." +
                         std::to_string(properties.minor) + "; the CUDA kernels need 8.0 (Ampere) or newer");
  }
  error = cudaSetDevice(device_index);
  if (error == cudaSuccess) {
    size_t free_bytes = 0, total_bytes = 0;
    error = cudaMemGetInfo(&free_bytes, &total_bytes);
    info->free_memory = free_bytes;
  }
  if (error != cudaSuccess) {
    cudaGetLastError();
    return Status::error(label + " cannot be used: " + cudaGetErrorString(error));
  }
  cudaFuncAttributes attributes;
  error = cudaFuncGetAttributes(&attributes, probe_kernel);
  if (error != cudaSuccess) {
    cudaGetLastError();
    return Status::error(label + " (sm_" + std::to_string(properties.major) + std::to_string(properties.minor) +
                         ") cannot run this build's kernels (built for CUDA architectures " +
                         LAYERSKIP_CUDA_ARCHS_STRING + "): " + cudaGetErrorString(error) +
                         ". Rebuild with LAYERSKIP_CUDA_ARCHS including this GPU.");
  }
  return Status::ok();
}

}  // namespace

Status cuda_device_info(int device_index, CudaDeviceInfo* out) { return probe(device_index, out); }

Status make_cuda_backend(int device_index, std::unique_ptr<Backend>* out) {
  CudaDeviceInfo info;
  LS_RETURN_IF_ERROR(probe(device_index, &info));
  cudaStream_t stream = nullptr;
  cudaError_t error = cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
  if (error != cudaSuccess) {
    cudaGetLastError();
    return Status::error(device_label(device_index, info.name) + ": cannot create a stream: " +
                         cudaGetErrorString(error));
  }
  out->reset(new CudaBackend(device_index, info.name, info.compute_major, info.compute_minor, info.total_memory, stream));
  return Status::ok();
}

}  // namespace layerskip
